/**
 * Serving-control activities: change the fleet's desired state and wait for the replicas to apply it, read it,
 * read windowed per-variant statistics from the replicas over HTTP, and drive simulated traffic. The rollout
 * workflow calls these; the replicas (serving/) reconcile to the desired state on their own.
 */
import { Context, log } from '@temporalio/activity';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../lib/errors';
import { DEFAULT_FLEET, type FleetDesiredState, type ReplicaReport, type SlotState } from '../lib/fleet/types';
import { locateBundle } from '../lib/fleet/locate';
import { loadFleetSecret, statsReaderToken } from '../lib/fleet/secret';
import { FleetStore, REPLICA_LIVE_MS } from '../lib/fleet/store';
import { LATENCY_BUCKETS, quantileFromBuckets, type VariantCounters } from '../serving/metrics';
import { simulateTraffic, type ClickModel, type VariantTotals } from '../serving/simulator';
import type { ActivityDeps } from './deps';
import type { VariantWindowStats, WindowCoverage } from '../lib/canary/analysis';

export interface ApplyFleetStateInput {
  /** @default `default` */
  fleet?: string;
  /** Fields left undefined are kept; null empties the slot. */
  stable?: SlotState | null;
  canary?: SlotState | null;
  /** 0..100 */
  canaryWeight?: number;
  /** Salt of the sticky user hash (the rollout's own); null removes it. */
  salt?: string | null;
  /** Who and why (`rollout <workflowId> step 2`). */
  reason: string;
  /** How long to wait for every live replica to apply the new generation. @default 30000 */
  waitForReplicasMs?: number;
}

export interface ApplyFleetStateResult {
  generation: number;
  /** True when at least one replica is live and every live replica applied `generation`. */
  converged: boolean;
  /** False when the desired state already had this content (no new generation). */
  changed?: boolean;
  replicas: ReplicaReport[];
}

export interface GetFleetStateInput {
  fleet?: string;
}
export interface GetFleetStateResult {
  desired: FleetDesiredState | null;
  /** Live replicas (heartbeat within 10 s). */
  replicas: ReplicaReport[];
}

/** One variant over the window: what the canary analysis reads, plus the CTR for people. */
export interface VariantStats extends VariantWindowStats {
  ctr: number;
}

export interface ReadFleetStatsInput {
  fleet?: string;
  /**
   * Measure over the next `windowMs` (snapshot, wait, snapshot). Without it: the change since the previous call
   * without a window (a snapshot kept in the fleet folder), or since the replicas started.
   */
  windowMs?: number;
}
export interface ReadFleetStatsResult {
  variants: Record<'stable' | 'canary', VariantStats>;
  /** Replicas scraped. */
  replicas: number;
  /** Which live replicas the window covers, and which it misses (died, restarted or unreachable meanwhile). */
  coverage: WindowCoverage;
}

export interface SimulateTrafficInput {
  fleet?: string;
  /** Shop whose ground truth draws the clicks (when the factory was given `clickModelFor`). */
  shopId?: string;
  /** How many distinct known users to replay. @default 200 */
  users?: number;
  durationMs: number;
  rps: number;
  seed?: number;
}
export interface SimulateTrafficResult {
  requests: number;
  errors: number;
  clicks: number;
  impressions?: number;
  byVariant?: Record<string, VariantTotals>;
}

/** Extra dependencies of the serving activities. */
export interface ServingActivityOptions {
  /** The click model of a shop (its ground truth), or undefined to click by served score. */
  clickModelFor?: (shopId: string) => Promise<ClickModel | undefined>;
  /** Poll interval while waiting for replicas. @default 250 */
  pollMs?: number;
}

type Snapshot = Record<string, VariantCounters[]>;
const SNAPSHOT_FILE = 'stats-snapshot.json';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* called outside an activity (CLI) */
  }
}

/** Bearer tokens that may read a replica's stats: the fleet's stats-reader token, then the admin token. */
type Tokens = string[];

async function scrape(replicas: ReplicaReport[], tokens: Tokens): Promise<Snapshot> {
  const out: Snapshot = {};
  await Promise.all(
    replicas.map(async (r) => {
      try {
        let res: Response | undefined;
        for (const token of tokens) {
          res = await fetch(`${r.url}/v1/admin/stats`, {
            headers: { authorization: `Bearer ${token}` },
            signal: AbortSignal.timeout(5000),
          });
          if (res.status !== 401 && res.status !== 403) break;
          await res.body?.cancel();
        }
        if (!res?.ok) throw new Error(`HTTP ${res?.status}`);
        out[r.replicaId] = ((await res.json()) as { counters: VariantCounters[] }).counters;
      } catch (err) {
        log.warn('could not read replica stats', { replicaId: r.replicaId, url: r.url, error: String(err) });
      }
    }),
  );
  return out;
}

/** A replica restarted between two reads when any of its counters went back (or vanished). */
function restartedBetween(start: VariantCounters[] | undefined, end: VariantCounters[]): boolean {
  return (
    start?.some(
      (p) => (end.find((c) => c.version === p.version && c.variant === p.variant)?.requests ?? 0) < p.requests,
    ) ?? false
  );
}

/** Per (variant, version) deltas of `now - before`, summed over replicas (a restarted replica counts from zero). */
function delta(now: Snapshot, before: Snapshot | undefined): Map<string, VariantCounters> {
  const sum = new Map<string, VariantCounters>();
  for (const [replica, counters] of Object.entries(now)) {
    const restarted = restartedBetween(before?.[replica], counters);
    for (const c of counters) {
      const prev = before?.[replica]?.find((p) => p.variant === c.variant && p.version === c.version);
      const base = prev && !restarted ? prev : undefined;
      const key = `${c.variant}|${c.version}`;
      const acc = sum.get(key) ?? {
        variant: c.variant,
        version: c.version,
        requests: 0,
        errors: 0,
        impressions: 0,
        clicks: 0,
        latencyBuckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0),
      };
      acc.requests += c.requests - (base?.requests ?? 0);
      acc.errors += c.errors - (base?.errors ?? 0);
      acc.impressions += c.impressions - (base?.impressions ?? 0);
      acc.clicks += c.clicks - (base?.clicks ?? 0);
      c.latencyBuckets.forEach((n, i) => {
        acc.latencyBuckets[i] = (acc.latencyBuckets[i] ?? 0) + n - (base?.latencyBuckets[i] ?? 0);
      });
      sum.set(key, acc);
    }
  }
  return sum;
}

/**
 * Which of the replicas live at the window's start the window really covers: a replica must answer at both ends
 * with counters that did not go back (a restart loses the first part of the window).
 */
function windowCoverage(live: ReplicaReport[], before: Snapshot | undefined, now: Snapshot): WindowCoverage {
  const missing: string[] = [];
  for (const r of live) {
    const end = now[r.replicaId];
    const start = before?.[r.replicaId];
    if (!end || (before && !start) || restartedBetween(start, end)) missing.push(r.replicaId);
  }
  return { expected: live.length, covered: live.length - missing.length, missing };
}

function variantStats(d: Map<string, VariantCounters>, variant: 'stable' | 'canary', version: string | null) {
  const c = version === null ? undefined : d.get(`${variant}|${version}`);
  const ms = (q: number) => Math.round(quantileFromBuckets(c?.latencyBuckets ?? [], q) * 1e6) / 1e3;
  const impressions = c?.impressions ?? 0;
  const clicks = c?.clicks ?? 0;
  return {
    version,
    requests: c?.requests ?? 0,
    errors: c?.errors ?? 0,
    p50Ms: ms(0.5),
    p99Ms: ms(0.99),
    impressions,
    clicks,
    ctr: impressions ? clicks / impressions : 0,
  };
}

/** Serving-control activities (see lib/fleet.ts for the desired state contract). */
export function createServingActivities(deps: ActivityDeps, opts: ServingActivityOptions = {}) {
  const store = (fleet?: string) => new FleetStore(deps.config.registryDir, fleet ?? DEFAULT_FLEET);
  const live = (s: FleetStore) => s.readReports({ liveWithinMs: REPLICA_LIVE_MS });
  const tokens = async (s: FleetStore): Promise<Tokens> => {
    const { adminToken, feedbackSecret } = deps.config.serving;
    const reader = statsReaderToken(await loadFleetSecret(s.dir, feedbackSecret));
    return adminToken ? [reader, adminToken] : [reader];
  };

  return {
    /**
     * Change the fleet's desired state (fields left undefined are kept) and wait, heartbeating, until every live
     * replica has applied it or `waitForReplicasMs` ends. Idempotent: the same content makes no new generation.
     */
    async applyFleetState(input: ApplyFleetStateInput): Promise<ApplyFleetStateResult> {
      const s = store(input.fleet);
      const { desired, changed } = await s.updateDesired({
        stable: input.stable,
        canary: input.canary,
        canaryWeight: input.canaryWeight,
        salt: input.salt,
        reason: input.reason,
      });
      log.info('fleet desired state', {
        fleet: s.fleet,
        generation: desired.generation,
        changed,
        stable: desired.stable?.version ?? null,
        canary: desired.canary?.version ?? null,
        canaryWeight: desired.canaryWeight,
      });
      const deadline = Date.now() + (input.waitForReplicasMs ?? 30_000);
      for (;;) {
        const replicas = await live(s);
        const converged = replicas.length > 0 && replicas.every((r) => r.appliedGeneration >= desired.generation);
        heartbeat({ generation: desired.generation, applied: replicas.map((r) => r.appliedGeneration) });
        if (converged || Date.now() >= deadline) {
          if (!converged)
            log.warn('fleet did not converge in time', {
              generation: desired.generation,
              replicas: replicas.map((r) => ({ id: r.replicaId, applied: r.appliedGeneration })),
            });
          return { generation: desired.generation, converged, changed, replicas };
        }
        await sleep(opts.pollMs ?? 250);
      }
    },

    /** The fleet's desired state and its live replicas. */
    async getFleetState(input: GetFleetStateInput): Promise<GetFleetStateResult> {
      const s = store(input.fleet);
      return { desired: await s.readDesired(), replicas: await live(s) };
    },

    /**
     * Requests, errors, latency percentiles, impressions, clicks and CTR per variant (of the versions now in the
     * desired state), summed over the live replicas, read from their `/v1/admin/stats` over HTTP.
     */
    async readFleetStats(input: ReadFleetStatsInput): Promise<ReadFleetStatsResult> {
      const s = store(input.fleet);
      const replicas = await live(s);
      let d: Map<string, VariantCounters>;
      let scraped: number;
      let coverage: WindowCoverage;
      if (input.windowMs !== undefined) {
        const auth = await tokens(s);
        const before = await scrape(replicas, auth);
        const end = Date.now() + input.windowMs;
        while (Date.now() < end) {
          heartbeat({ waitingMs: end - Date.now() });
          await sleep(Math.min(1000, Math.max(0, end - Date.now())));
        }
        const now = await scrape(replicas, auth);
        d = delta(now, before);
        scraped = Object.keys(now).length;
        coverage = windowCoverage(replicas, before, now);
      } else {
        const before = await s.readAux<Snapshot>(SNAPSHOT_FILE);
        const now = await scrape(replicas, await tokens(s));
        d = delta(now, before);
        scraped = Object.keys(now).length;
        coverage = windowCoverage(replicas, undefined, now);
        await s.writeAux(SNAPSHOT_FILE, { ...before, ...now });
      }
      if (coverage.missing.length)
        log.warn('the stats window misses replicas', { fleet: s.fleet, missing: coverage.missing });
      const desired = await s.readDesired();
      return {
        variants: {
          stable: variantStats(d, 'stable', desired?.stable?.version ?? null),
          canary: variantStats(d, 'canary', desired?.canary?.version ?? null),
        },
        replicas: scraped,
        coverage,
      };
    },

    /**
     * Drive recommend + click traffic against the live replicas for `durationMs` (heartbeating). Users are the
     * stable bundle's known users; clicks come from the shop's ground truth when available, else from the score.
     * @throws `FleetUnavailable` (retryable) when no replica is live or no stable model is set.
     */
    async simulateTraffic(input: SimulateTrafficInput): Promise<SimulateTrafficResult> {
      if (!(input.rps > 0) || !(input.durationMs >= 0))
        throw new RecflowError(ErrorType.InvalidInput, `rps (${input.rps}) must be > 0 and durationMs >= 0`);
      const s = store(input.fleet);
      const replicas = await live(s);
      const desired = await s.readDesired();
      if (!replicas.length || !desired?.stable)
        throw new RecflowError(
          ErrorType.FleetUnavailable,
          `fleet ${s.fleet}: ${replicas.length} live replicas, stable ${desired?.stable?.version ?? 'unset'}`,
        );
      const bundleDir = await locateBundle(desired.stable, [deps.config.artifactsDir]);
      const vocab = JSON.parse(await readFile(join(bundleDir, 'vocab.json'), 'utf8')) as {
        users: string[];
      };
      const users = vocab.users.slice(1, 1 + (input.users ?? 200));
      const clickModel = input.shopId && opts.clickModelFor ? await opts.clickModelFor(input.shopId) : undefined;
      const res = await simulateTraffic({
        urls: replicas.map((r) => r.url),
        users,
        durationMs: input.durationMs,
        rps: input.rps,
        seed: input.seed,
        clickModel,
        onProgress: (p) => heartbeat({ requests: p.requests, errors: p.errors, clicks: p.clicks }),
      });
      log.info('simulated traffic', { fleet: s.fleet, ...res, byVariant: undefined });
      return {
        requests: res.requests,
        errors: res.errors,
        clicks: res.clicks,
        impressions: res.impressions,
        byVariant: res.byVariant,
      };
    },
  };
}
