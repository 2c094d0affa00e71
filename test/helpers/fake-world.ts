/**
 * A fake world for workflow tests: an in-memory fleet and registry and the traffic stats the canary analysis will
 * see. Activities only; the workflow under test is real.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { SimulateTrafficInput } from '../../activities/serving';
import type { VariantWindowStats } from '../../lib/canary/analysis';
import type { FleetDesiredState, SlotState } from '../../lib/fleet/types';

export type Traffic = 'good' | 'bad-ctr' | 'errors' | 'quiet';

/** A fake world: a fleet, a registry, and the traffic the analysis will see. */
export class FakeWorld {
  fleet: FleetDesiredState = {
    fleet: 'default',
    generation: 1,
    stable: { version: 'shop-recs@v1', bundlePath: '/b/v1', precision: 'int8' },
    canary: null,
    canaryWeight: 0,
    updatedAt: '',
    reason: 'seed',
  };
  statuses: Array<[number, string]> = [];
  aliases = new Map<string, number | null>([['champion', 1]]);
  approvals: unknown[] = [];
  fleetChanges: string[] = [];
  /** The bundle the export returns (the champion's is `b1`: a candidate equal to it ends `unchanged`). */
  exportedBundle = 'b2';
  /** Validation NDCG@10 by kind (`auto` runs choose the best); a kind missing here trains to 0.2. */
  kindScores: Record<string, number | 'unavailable'> = {};
  /** Kinds the export was asked for. */
  exportedKinds: string[] = [];
  /** What each `simulateTraffic` call was asked for, in order. */
  trafficInputs: SimulateTrafficInput[] = [];
  constructor(
    public traffic: Traffic = 'good',
    public blessed = true,
  ) {}

  stats(traffic: Traffic): { stable: VariantWindowStats; canary: VariantWindowStats } {
    const base = { version: 'x', requests: 2000, errors: 2, p50Ms: 3, p99Ms: 9, impressions: 20000, clicks: 1000 };
    const canary = { ...base };
    if (traffic === 'bad-ctr') canary.clicks = 600;
    if (traffic === 'errors') canary.errors = 200;
    if (traffic === 'quiet') Object.assign(canary, { requests: 5, impressions: 50, clicks: 2 });
    return { stable: base, canary };
  }

  /** What the fake training returns for a kind. */
  trained(kind: string, ndcg10: number) {
    return {
      kind,
      checkpoint: ref('checkpoint', `c-${kind}`),
      backend: 'cpu',
      epochsRun: 2,
      bestEpoch: 2,
      resumedFromEpoch: null,
      metrics: { ndcg10, hr10: 0.3, loss: 0.5 },
      samplesPerSec: 1000,
    };
  }

  activities() {
    let version = 1;
    return {
      generateShop: async () => ({ shop: ref('shop', 's1'), reused: false, counts: { users: 1, items: 1, events: 1 } }),
      prepareDataset: async () => ({
        dataset: ref('dataset', 'd1'),
        reused: false,
        rows: { train: 10, validation: 2, test: 2 },
        validation: { hard: 0, soft: 0 },
      }),
      compareDatasets: async () => ({ maxPsi: 0.01, psi: {}, newUserRate: 0, newItemRate: 0, drifted: false }),
      getAlias: async ({ alias }: { alias: string }) => {
        const v = this.aliases.get(alias) ?? null;
        return { version: v, bundleId: v ? `b${v}` : null, datasetId: v ? 'd0' : null, status: null };
      },
      trainModel: async (i: { kind?: string }) => {
        const score = this.kindScores[i.kind ?? 'two-tower'] ?? 0.2;
        if (score === 'unavailable')
          throw ApplicationFailure.nonRetryable(`model kind '${i.kind}' is not available`, 'InvalidInput');
        return this.trained(i.kind ?? 'two-tower', score);
      },

      exportModel: async (i: { kind?: string }) => {
        this.exportedKinds.push(i.kind ?? 'two-tower');
        return { bundle: ref('bundle', this.exportedBundle), reused: false, sizes: {} };
      },
      sweepAbandonedVersions: async () => ({ swept: [] }),
      compareBundles: async (i: { bundleId: string; otherBundleId: string }) => ({
        identical: i.bundleId === i.otherBundleId,
        reason: i.bundleId === i.otherBundleId ? 'same bundle artifact' : 'different model.onnx',
      }),
      evaluateModel: async () => ({
        evaluation: ref('evaluation', 'e1'),
        reused: false,
        blessed: this.blessed,
        gates: [{ name: 'abs:auc', passed: this.blessed, observed: 0.7, threshold: 0.75, reason: 'auc 0.7 < 0.75' }],
        headline: { auc: 0.7 },
        precision: 'int8',
      }),
      checkServingHealth: async () => ({ kind: 'infra', blessed: true, gates: [], decidedAt: '', p99Ms: 1 }),
      registerModel: async () => {
        version = 2;
        return { model: 'shop-recs', version, ref: `shop-recs@v${version}`, status: 'candidate', created: true };
      },
      setModelStatus: async ({ version: v, status }: { version: number; status: string }) => {
        this.statuses.push([v, status]);
        return { model: 'shop-recs', version: v, status };
      },
      setAlias: async ({ alias, version: v }: { alias: string; version: number | null }) => {
        const previous = this.aliases.get(alias) ?? null;
        this.aliases.set(alias, v);
        return { previous };
      },
      recordApproval: async (a: { approver: string }) => {
        this.approvals.push(a);
        return { status: 'approved', approver: a.approver };
      },
      getFleetState: async () => ({ desired: this.fleet, replicas: [] }),
      applyFleetState: async (i: {
        stable?: SlotState | null;
        canary?: SlotState | null;
        canaryWeight?: number;
        reason: string;
      }) => {
        this.fleet = {
          ...this.fleet,
          generation: this.fleet.generation + 1,
          ...(i.stable !== undefined ? { stable: i.stable } : {}),
          ...(i.canary !== undefined ? { canary: i.canary } : {}),
          ...(i.canaryWeight !== undefined ? { canaryWeight: i.canaryWeight } : {}),
          reason: i.reason,
        };
        this.fleetChanges.push(`${this.fleet.canary?.version ?? '-'}@${this.fleet.canaryWeight}`);
        return { generation: this.fleet.generation, converged: true, replicas: [] };
      },
      readFleetStats: async () => {
        const s = this.stats(this.traffic);
        return { variants: s, replicas: 2 };
      },
      simulateTraffic: async (i: SimulateTrafficInput) => {
        this.trafficInputs.push(i);
        return { requests: 0, errors: 0, clicks: 0 };
      },
      writeRunReport: async () => ({ report: ref('report', 'r1'), html: '/store/report/r1/index.html' }),
    };
  }
}

export function ref(kind: string, id: string) {
  return { kind, id, path: `/store/${kind}/${id}`, contentHash: id };
}
