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
import type { ArtifactStore } from '../lib/artifacts';
import { loadDataset } from '../lib/data/dataset';
import { HISTORY_MAX_PER_USER, historyOf, loadBundle, readHistories } from '../lib/onnx/bundle-io';
import { weightedSampleIndices } from '../lib/rng';
import { LATENCY_BUCKETS, quantileFromBuckets, type VariantCounters } from '../serving/metrics';
import { routeUser } from '../serving/router';
import { readSearchBundle } from '../kinds/search/bundle';
import {
  knownItemSearchers,
  simulateTraffic,
  type ClickModel,
  type SearchClicks,
  type VariantTotals,
} from '../serving/simulator';
import { DEFAULT_SLOT_MS, type BucketedStats } from '../serving/stats';
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
   * Measure the window of the next `windowMs`: impressions (and requests) served in it, with their clicks. Without
   * it: the change since the previous call without a window (a snapshot kept in the fleet folder), or since the
   * replicas started.
   */
  windowMs?: number;
  /**
   * With `windowMs`: how long after each end of the window to read it. The window is `[T0, T1)` by serve time
   * (`T0` the next 1 s slot boundary after the call, `T1 = T0 + windowMs` rounded up to a slot); the start is read
   * at `T0 + delay` with `servedBefore = T0` and the end at `T1 + delay` with `servedBefore = T1`, so clicks that
   * arrive up to `delay` after their impression are all counted in the window of the impression. The activity
   * takes up to `windowMs + feedbackDelayMs + 2 s`. @default 0
   */
  feedbackDelayMs?: number;
  /**
   * Also read the replicas every `sliceMs` during the window and return each slice's p99 per variant (`latency`):
   * the canary's latency is compared with the concurrent stable slice by slice, not on one window's tail.
   */
  sliceMs?: number;
}

/** One slice of a window: requests and p99 of each variant over the same time. */
export interface LatencySliceStats {
  stable: { requests: number; p99Ms: number };
  canary: { requests: number; p99Ms: number };
}

/** Per-bucket counts of one variant, summed over replicas (arrays of length `buckets`). */
export interface BucketCounts {
  requests: number[];
  errors: number[];
  impressions: number[];
  clicks: number[];
}

export interface ReadFleetStatsResult {
  variants: Record<'stable' | 'canary', VariantStats>;
  /** Replicas scraped. */
  replicas: number;
  /** Which live replicas the window covers, and which it misses (died, restarted or unreachable meanwhile). */
  coverage: WindowCoverage;
  /**
   * The same window per user bucket (bucket = `fnv1a("<salt>|<userId>") mod count`, serving/stats.ts), summed over
   * replicas: the per-bucket counts the canary statistics use. Absent when no replica reported buckets.
   */
  buckets?: { count: number; salt: string; stable: BucketCounts; canary: BucketCounts };
  /** Per-slice latency (with `sliceMs`). */
  latency?: LatencySliceStats[];
  /** The window by serve time (epoch ms, slot-aligned), when `windowMs` was given. */
  window?: { servedFrom: number; servedBefore: number; feedbackDelayMs: number };
  /** Model requests the replicas shed (503, admission control) during the reads; such a window is suspect. */
  shed: number;
}

export interface SimulateTrafficInput {
  fleet?: string;
  /** Shop whose ground truth draws the clicks (when the factory was given `clickModelFor`). */
  shopId?: string;
  /**
   * How many distinct known users to replay: a sample of the whole user base drawn by activity (the users'
   * interaction counts in the bundle's history). @default every known user
   */
  users?: number;
  durationMs: number;
  rps: number;
  /** Seed of the request stream (which user asks when, their clicks). @default 1 */
  seed?: number;
  /**
   * Seed of the sample of `users`: a rollout passes one seed for all its windows (`windowPlan` `panelSeed`), so the
   * same users come back in every window, as active users do over a real rollout. @default `seed` (a new sample
   * per window)
   */
  panelSeed?: number;
}
export interface SimulateTrafficResult {
  requests: number;
  errors: number;
  clicks: number;
  impressions?: number;
  /** Requests due but not sent (too many in flight), and requests abandoned after the timeout. */
  dropped?: number;
  timedOut?: number;
  /** Per variant, with `dropped` and `timedOut` attributed to the variant routing would have picked. */
  byVariant?: Record<string, VariantTotals>;
}

/** Extra dependencies of the serving activities. */
export interface ServingActivityOptions {
  /** The click model of a shop (its ground truth), or undefined to click by served score. */
  clickModelFor?: (shopId: string) => Promise<ClickModel | undefined>;
  /**
   * The searchers of a shop (its search truth: queries and graded relevance), for a search model; undefined for
   * known-item searchers over the bundle's catalogue.
   */
  searchClicksFor?: (shopId: string) => Promise<SearchClicks | undefined>;
  /** Poll interval while waiting for replicas. @default 250 */
  pollMs?: number;
}

/** What one replica's `/v1/admin/stats` answered (the fields the activities read). */
interface ReplicaStats {
  counters: VariantCounters[];
  bucketed?: BucketedStats;
  startedAt?: number;
  shed?: number;
}
type Snapshot = Record<string, ReplicaStats>;
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

async function scrape(replicas: ReplicaReport[], tokens: Tokens, servedBefore?: number): Promise<Snapshot> {
  const out: Snapshot = {};
  const query = servedBefore === undefined ? '' : `?servedBefore=${Math.floor(servedBefore)}`;
  await Promise.all(
    replicas.map(async (r) => {
      try {
        let res: Response | undefined;
        for (const token of tokens) {
          res = await fetch(`${r.url}/v1/admin/stats${query}`, {
            headers: { authorization: `Bearer ${token}` },
            signal: AbortSignal.timeout(5000),
          });
          if (res.status !== 401 && res.status !== 403) break;
          await res.body?.cancel();
        }
        if (!res?.ok) throw new Error(`HTTP ${res?.status}`);
        const body = (await res.json()) as ReplicaStats;
        out[r.replicaId] = {
          counters: body.counters,
          bucketed: body.bucketed,
          startedAt: body.startedAt,
          shed: body.shed,
        };
      } catch (err) {
        log.warn('could not read replica stats', { replicaId: r.replicaId, url: r.url, error: String(err) });
      }
    }),
  );
  return out;
}

/** Old snapshot files held bare counter arrays per replica. */
function asSnapshot(raw: Record<string, unknown> | undefined): Snapshot | undefined {
  if (!raw) return undefined;
  const out: Snapshot = {};
  for (const [k, v] of Object.entries(raw))
    out[k] = Array.isArray(v) ? { counters: v as VariantCounters[] } : (v as ReplicaStats);
  return out;
}

/** A replica restarted between two reads when its start time changed or any of its counters went back. */
function restartedBetween(start: ReplicaStats | undefined, end: ReplicaStats): boolean {
  if (!start) return false;
  if (start.startedAt !== undefined && end.startedAt !== undefined && start.startedAt !== end.startedAt) return true;
  return start.counters.some(
    (p) => (end.counters.find((c) => c.version === p.version && c.variant === p.variant)?.requests ?? 0) < p.requests,
  );
}

/** Per (variant, version) deltas of `now - before`, summed over replicas (a restarted replica counts from zero). */
function delta(now: Snapshot, before: Snapshot | undefined): Map<string, VariantCounters> {
  const sum = new Map<string, VariantCounters>();
  for (const [replica, stats] of Object.entries(now)) {
    const restarted = restartedBetween(before?.[replica], stats);
    for (const c of stats.counters) {
      const prev = before?.[replica]?.counters.find((p) => p.variant === c.variant && p.version === c.version);
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

const emptyCounts = (n: number): BucketCounts => ({
  requests: new Array<number>(n).fill(0),
  errors: new Array<number>(n).fill(0),
  impressions: new Array<number>(n).fill(0),
  clicks: new Array<number>(n).fill(0),
});

/**
 * Per-bucket deltas `now - before` of one (variant, version, salt), summed over the replicas that report buckets
 * (a restarted replica counts from zero). Undefined when none reports them.
 */
function bucketDelta(
  now: Snapshot,
  before: Snapshot | undefined,
  variant: 'stable' | 'canary',
  version: string | null,
  salt: string,
): BucketCounts | undefined {
  let acc: BucketCounts | undefined;
  for (const [replica, stats] of Object.entries(now)) {
    const b = stats.bucketed;
    if (!b) continue;
    acc ??= emptyCounts(b.buckets);
    if (version === null) continue;
    const pick = (s: ReplicaStats | undefined) =>
      s?.bucketed?.series.find((x) => x.variant === variant && x.version === version && x.salt === salt);
    const end = pick(stats);
    if (!end) continue;
    const prev = before?.[replica];
    const start = prev && !restartedBetween(prev, stats) ? pick(prev) : undefined;
    for (const f of ['requests', 'errors', 'impressions', 'clicks'] as const)
      end[f].forEach((n, i) => {
        acc![f][i] = (acc![f][i] ?? 0) + n - (start?.[f][i] ?? 0);
      });
  }
  return acc;
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

const total = (xs: number[]) => xs.reduce((a, x) => a + x, 0);

function variantStats(
  d: Map<string, VariantCounters>,
  variant: 'stable' | 'canary',
  version: string | null,
  buckets: BucketCounts | undefined,
): VariantStats {
  const c = version === null ? undefined : d.get(`${variant}|${version}`);
  const ms = (q: number) => Math.round(quantileFromBuckets(c?.latencyBuckets ?? [], q) * 1e6) / 1e3;
  // Counts by serve time from the buckets when the replicas report them, else the totals.
  const impressions = buckets ? total(buckets.impressions) : (c?.impressions ?? 0);
  const clicks = buckets ? total(buckets.clicks) : (c?.clicks ?? 0);
  return {
    version,
    requests: buckets ? total(buckets.requests) : (c?.requests ?? 0),
    errors: buckets ? total(buckets.errors) : (c?.errors ?? 0),
    p50Ms: ms(0.5),
    p99Ms: ms(0.99),
    impressions,
    clicks,
    ctr: impressions ? clicks / impressions : 0,
  };
}

/** One latency slice: each variant's requests and p99 over it. */
function sliceOf(d: Map<string, VariantCounters>, desired: FleetDesiredState | null): LatencySliceStats {
  const of = (variant: 'stable' | 'canary', version: string | null | undefined) => {
    const c = version ? d.get(`${variant}|${version}`) : undefined;
    return {
      requests: c?.requests ?? 0,
      p99Ms: Math.round(quantileFromBuckets(c?.latencyBuckets ?? [], 0.99) * 1e6) / 1e3,
    };
  };
  return { stable: of('stable', desired?.stable?.version), canary: of('canary', desired?.canary?.version) };
}

const shedBetween = (now: Snapshot, before: Snapshot | undefined) =>
  Object.entries(now).reduce((a, [id, s]) => {
    const prev = before?.[id];
    const base = prev && !restartedBetween(prev, s) ? (prev.shed ?? 0) : 0;
    return a + Math.max(0, (s.shed ?? 0) - base);
  }, 0);

/** Wait until `at` (epoch ms), heartbeating. */
async function waitUntil(at: number): Promise<void> {
  while (Date.now() < at) {
    heartbeat({ waitingMs: at - Date.now() });
    await sleep(Math.min(1000, Math.max(0, at - Date.now())));
  }
}

/**
 * The searchers for a search bundle (its manifest's task is `search`): the shop's search truth when there is one,
 * else known-item searchers over the bundle's catalogue; undefined for a recommender.
 */
async function searchersOf(
  bundleDir: string,
  shopId: string | undefined,
  opts: ServingActivityOptions,
): Promise<SearchClicks | undefined> {
  if ((await loadBundle(bundleDir)).manifest.task !== 'search') return undefined;
  const truth = shopId && opts.searchClicksFor ? await opts.searchClicksFor(shopId) : undefined;
  if (truth) return truth;
  const { items } = await readSearchBundle(bundleDir);
  return knownItemSearchers(items.ids.map((id, i) => ({ id, text: items.texts[i] ?? '' })));
}

/**
 * Users drawn by activity: every known user of a bundle, weighted by their interactions in the model's training
 * data. From the bundle's stored histories (`history.bin`, capped at its `maxPerUser`) when it has them; else from
 * the training split of the bundle's dataset in `store`, capped the same way (bundles written before every kind
 * stored histories); uniform only when neither is there.
 */
export async function usersByActivity(
  bundleDir: string,
  store?: ArtifactStore,
): Promise<{ users: string[]; weights: number[]; source: 'history' | 'dataset' | 'uniform' }> {
  const vocab = JSON.parse(await readFile(join(bundleDir, 'vocab.json'), 'utf8')) as { users: string[] };
  const users = vocab.users.slice(1);
  const bundle = await loadBundle(bundleDir);
  const h = await readHistories(bundleDir, bundle.manifest).catch(() => undefined);
  if (h) return { users, weights: users.map((_, i) => historyOf(h, i + 1).length), source: 'history' };
  const ref = store ? await store.find('dataset', bundle.manifest.datasetId).catch(() => undefined) : undefined;
  const ds = ref ? await loadDataset(ref.path).catch(() => undefined) : undefined;
  if (!ds) return { users, weights: users.map(() => 1), source: 'uniform' };
  const index = new Map(users.map((u, i) => [u, i]));
  const weights = users.map(() => 0);
  const train = ds.splits.train.user;
  for (let r = 0; r < train.length; r++) {
    const i = index.get(ds.vocab.users[train[r] ?? 0] ?? '');
    if (i !== undefined) weights[i] = Math.min(HISTORY_MAX_PER_USER, (weights[i] ?? 0) + 1);
  }
  return { users, weights, source: 'dataset' };
}

/** A sample of `n` distinct users drawn by weight (Efraimidis-Spirakis keys), seeded: the simulator's replay set. */
export function sampleByWeight(
  users: string[],
  weights: number[],
  n: number,
  seed: number,
): { users: string[]; weights: number[] } {
  if (n >= users.length) return { users, weights };
  const picked = weightedSampleIndices(weights, n, seed);
  return { users: picked.map((i) => users[i] ?? ''), weights: picked.map((i) => weights[i] ?? 0) };
}

/**
 * The users `simulateTraffic` replays for `input`: `input.users` of the bundle's users drawn by activity with the
 * panel seed (`panelSeed`, else the stream's `seed`), so windows with one panel seed replay the same users.
 */
export function simulatedUsers(
  all: { users: string[]; weights: number[] },
  input: Pick<SimulateTrafficInput, 'users' | 'seed' | 'panelSeed'>,
): { users: string[]; weights: number[] } {
  return sampleByWeight(all.users, all.weights, input.users ?? all.users.length, input.panelSeed ?? input.seed ?? 1);
}

/** Serving-control activities (see lib/fleet.ts for the desired state contract). */
export function createServingActivities(deps: ActivityDeps, opts: ServingActivityOptions = {}) {
  const store = (fleet?: string) => new FleetStore(deps.config.registryDir, fleet ?? DEFAULT_FLEET);
  // Bundles are immutable: their users' activity is read once per bundle folder.
  const activity = new Map<string, ReturnType<typeof usersByActivity>>();
  const usersOf = (dir: string) => {
    let a = activity.get(dir);
    if (!a) {
      a = usersByActivity(dir, deps.store);
      a.catch(() => activity.delete(dir));
      activity.set(dir, a);
    }
    return a;
  };
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
     * Requests, errors, latency percentiles, impressions, clicks and CTR per variant (of the versions and salt now
     * in the desired state), summed over the live replicas, read from their `/v1/admin/stats` over HTTP with the
     * fleet's stats-reader token; with the per-bucket counts (`buckets`) the canary statistics need. Windowed reads
     * count impressions by serve time with all their clicks (see `feedbackDelayMs`).
     */
    async readFleetStats(input: ReadFleetStatsInput): Promise<ReadFleetStatsResult> {
      const s = store(input.fleet);
      const replicas = await live(s);
      const auth = await tokens(s);
      let before: Snapshot | undefined;
      let now: Snapshot;
      let coverage: WindowCoverage;
      let window: ReadFleetStatsResult['window'];
      const latency: LatencySliceStats[] = [];
      if (input.windowMs !== undefined) {
        // The window by serve time, on the replicas' slot boundaries (serving/stats.ts): it starts at the next
        // boundary, so nothing served earlier in the current slot leaks in.
        const delay = Math.max(0, input.feedbackDelayMs ?? 0);
        const slot = DEFAULT_SLOT_MS;
        const from = Math.ceil(Date.now() / slot) * slot;
        const to = Math.ceil((from + input.windowMs) / slot) * slot;
        await waitUntil(from + delay);
        before = await scrape(replicas, auth, from);
        if (input.sliceMs && input.sliceMs > 0) {
          // Latency histograms by wall-clock slice (they are plain counters: no serve-time attribution needed).
          let prev = await scrape(replicas, auth);
          for (let t = Date.now() + input.sliceMs; t <= to + delay; t += input.sliceMs) {
            await waitUntil(t);
            const cur = await scrape(replicas, auth);
            latency.push(sliceOf(delta(cur, prev), await s.readDesired()));
            prev = cur;
          }
        }
        await waitUntil(to + delay);
        now = await scrape(replicas, auth, to);
        coverage = windowCoverage(replicas, before, now);
        window = { servedFrom: from, servedBefore: to, feedbackDelayMs: delay };
      } else {
        before = asSnapshot(await s.readAux<Record<string, unknown>>(SNAPSHOT_FILE));
        now = await scrape(replicas, auth);
        coverage = windowCoverage(replicas, undefined, now);
        await s.writeAux(SNAPSHOT_FILE, { ...before, ...now });
      }
      if (coverage.missing.length)
        log.warn('the stats window misses replicas', { fleet: s.fleet, missing: coverage.missing });
      const desired = await s.readDesired();
      const salt = desired?.salt ?? '';
      const d = delta(now, before);
      const stableVersion = desired?.stable?.version ?? null;
      const canaryVersion = desired?.canary?.version ?? null;
      const stableBuckets = bucketDelta(now, before, 'stable', stableVersion, salt);
      const canaryBuckets = bucketDelta(now, before, 'canary', canaryVersion, salt);
      const count = Object.values(now).find((x) => x.bucketed)?.bucketed?.buckets;
      return {
        variants: {
          stable: variantStats(d, 'stable', stableVersion, stableBuckets),
          canary: variantStats(d, 'canary', canaryVersion, canaryBuckets),
        },
        replicas: Object.keys(now).length,
        coverage,
        ...(stableBuckets && canaryBuckets && count
          ? { buckets: { count, salt, stable: stableBuckets, canary: canaryBuckets } }
          : {}),
        ...(window ? { window } : {}),
        ...(latency.length ? { latency } : {}),
        shed: shedBetween(now, before),
      };
    },

    /**
     * Drive recommend + click traffic against the live replicas for `durationMs` (heartbeating). Users are the
     * stable bundle's known users, drawn by their activity (training interactions: {@link usersByActivity}) over
     * the whole user base; clicks come from the shop's ground truth when available, else from the score, and go to
     * any replica with the response's feedback token. Dropped and timed-out requests are counted per variant (the
     * one routing would pick). When the stable bundle is a search model the users search instead (`/v1/search`):
     * queries and graded-relevance clicks from the shop's search truth, else known-item searches over the bundle's
     * catalogue.
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
      const all = await usersOf(bundleDir);
      if (all.source === 'uniform')
        log.warn('no user activity for the bundle (no histories, dataset not in the store): users drawn uniformly', {
          bundleDir,
        });
      const { users, weights } = simulatedUsers(all, input);
      // A search model gets searchers (queries, clicks by graded relevance) against /v1/search.
      const search = await searchersOf(bundleDir, input.shopId, opts);
      const clickModel =
        !search && input.shopId && opts.clickModelFor ? await opts.clickModelFor(input.shopId) : undefined;
      const canaryOn = desired.canary !== null;
      const res = await simulateTraffic({
        urls: replicas.map((r) => r.url),
        users,
        weights,
        route: (u) => routeUser(u, desired.canaryWeight, canaryOn, desired.salt ?? ''),
        durationMs: input.durationMs,
        rps: input.rps,
        seed: input.seed,
        clickModel,
        search,
        onProgress: (p) =>
          heartbeat({
            requests: p.requests,
            errors: p.errors,
            clicks: p.clicks,
            dropped: p.dropped,
            timedOut: p.timedOut,
          }),
      });
      log.info('simulated traffic', {
        fleet: s.fleet,
        route: search ? 'search' : 'recommend',
        ...res,
        byVariant: undefined,
      });
      if (res.dropped || res.timedOut)
        log.warn('simulated requests dropped or timed out', { dropped: res.dropped, timedOut: res.timedOut });
      return {
        requests: res.requests,
        errors: res.errors,
        clicks: res.clicks,
        impressions: res.impressions,
        dropped: res.dropped,
        timedOut: res.timedOut,
        byVariant: res.byVariant,
      };
    },
  };
}
