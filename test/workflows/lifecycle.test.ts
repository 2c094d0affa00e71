/**
 * modelLifecycleWorkflow on the time-skipping server, with fake activities (the workflow's logic only: approval
 * rules, expiry, bake times, analysis outcomes, abort, cancellation rollback). The real activities run in
 * test/integration/lifecycle.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createRolloutActivities } from '../../activities/rollout';
import type { VariantWindowStats } from '../../lib/canary-analysis';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import type { FleetDesiredState, SlotState } from '../../lib/fleet';
import {
  abortSignal,
  approveSignal,
  approveUpdate,
  promoteSignal,
  rejectUpdate,
  statusQuery,
  type LifecycleInput,
  type LifecycleStatus,
  type modelLifecycleWorkflow,
} from '../../workflows/lifecycle';
import { testWorkflowBundle, timeSkippingEnv } from '../helpers/temporal';

type Traffic = 'good' | 'bad-ctr' | 'errors' | 'quiet';

/** A fake world: a fleet, a registry, and the traffic the analysis will see. */
class FakeWorld {
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
      trainModel: async () => ({
        checkpoint: ref('checkpoint', 'c1'),
        backend: 'cpu',
        epochsRun: 2,
        bestEpoch: 2,
        resumedFromEpoch: null,
        metrics: { ndcg10: 0.2, hr10: 0.3, loss: 0.5 },
        samplesPerSec: 1000,
      }),
      exportModel: async () => ({ bundle: ref('bundle', 'b2'), reused: false, sizes: {} }),
      evaluateModel: async () => ({
        evaluation: ref('evaluation', 'e1'),
        reused: false,
        blessed: this.blessed,
        gates: [{ name: 'abs:auc', passed: this.blessed, observed: 0.7, threshold: 0.75, reason: 'auc 0.7 < 0.75' }],
        headline: { auc: 0.7 },
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
      simulateTraffic: async () => ({ requests: 0, errors: 0, clicks: 0 }),
      writeRunReport: async () => ({ report: ref('report', 'r1'), html: '/store/report/r1/index.html' }),
    };
  }
}

/** An update refused by its validator, for the reason `re`. */
const refused = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof WorkflowUpdateFailedError, String(e));
  assert.match(String(e.cause?.message), re);
  return true;
};

function ref(kind: string, id: string) {
  return { kind, id, path: `/store/${kind}/${id}`, contentHash: id };
}

const baseInput: LifecycleInput = {
  requestedBy: 'alice',
  approval: { reviewers: ['bob', 'carol'] },
  rollout: {
    steps: [
      { weight: 10, bake: '10 minutes' },
      { weight: 100, bake: '10 minutes' },
    ],
    maxExtensions: 1,
  },
};

describe('modelLifecycleWorkflow (time-skipping)', () => {
  let env: TestWorkflowEnvironment;
  let n = 0;
  before(async () => {
    env = await timeSkippingEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  async function run<T>(
    world: FakeWorld,
    input: LifecycleInput,
    drive: (h: WorkflowHandle<typeof modelLifecycleWorkflow>) => Promise<T>,
  ): Promise<T> {
    const activities = { ...world.activities(), ...createRolloutActivities({} as never) };
    const cpu = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities,
      workflowBundle: await testWorkflowBundle(),
    });
    const gpu = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: GPU_TASK_QUEUE,
      activities: { trainModel: activities.trainModel },
    });
    return gpu.runUntil(
      cpu.runUntil(async () => {
        const h = await env.client.workflow.start<typeof modelLifecycleWorkflow>('modelLifecycleWorkflow', {
          taskQueue: CPU_TASK_QUEUE,
          workflowId: `lifecycle-test-${++n}`,
          // A fleet per test: a run left behind by a failed test cannot hold another test's rollout lock.
          args: [{ ...input, rollout: { ...input.rollout, fleet: `fleet-${n}` } }],
        });
        return drive(h);
      }),
    );
  }

  async function waitFor(
    h: WorkflowHandle<typeof modelLifecycleWorkflow>,
    pred: (s: LifecycleStatus) => boolean,
  ): Promise<LifecycleStatus> {
    for (let i = 0; i < 400; i++) {
      const s = await h.query(statusQuery);
      if (pred(s)) return s;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`condition not reached; status: ${JSON.stringify(await h.query(statusQuery))}`);
  }

  it('refuses the requester, non-reviewers and comment-less rejections; promotes after a reviewer approves', async () => {
    const world = new FakeWorld('good');
    const result = await run(world, baseInput, async (h) => {
      await waitFor(h, (s) => s.stage === 'awaiting_approval');
      await assert.rejects(
        h.executeUpdate(approveUpdate, { args: [{ reviewer: 'alice' }] }),
        refused(/four-eyes rule: alice requested this run/),
      );
      await assert.rejects(
        h.executeUpdate(approveUpdate, { args: [{ reviewer: 'mallory' }] }),
        refused(/not a reviewer/),
      );
      await assert.rejects(
        h.executeUpdate(rejectUpdate, { args: [{ reviewer: 'carol' }] }),
        refused(/needs a comment/),
      );
      const first = await h.executeUpdate(approveUpdate, { args: [{ reviewer: 'bob', comment: 'lgtm' }] });
      assert.equal(first.state, 'approved');
      // Idempotent: the same decision again is accepted and changes nothing; the opposite one is refused.
      const again = await h.executeUpdate(approveUpdate, { args: [{ reviewer: 'bob', comment: 'lgtm' }] });
      assert.equal(again.decidedAt, first.decidedAt);
      await assert.rejects(
        h.executeUpdate(rejectUpdate, { args: [{ reviewer: 'carol', comment: 'no' }] }),
        refused(/not awaiting approval/),
      );
      return h.result();
    });
    assert.equal(result.outcome, 'promoted', result.reason);
    assert.equal(result.status.approval.reviewer, 'bob');
    assert.deepEqual(
      result.status.rollout!.steps.map((s) => s.state),
      ['passed', 'passed'],
    );
    assert.deepEqual(world.fleetChanges, ['shop-recs@v2@10', 'shop-recs@v2@100', '-@0']);
    assert.equal(world.fleet.stable?.version, 'shop-recs@v2');
    assert.equal(world.aliases.get('champion'), 2);
    assert.equal(world.aliases.get('canary'), null);
    assert.deepEqual(world.statuses, [
      [2, 'pending_approval'],
      [2, 'production'],
      [1, 'archived'],
    ]);
    assert.deepEqual(world.approvals, [
      { model: 'shop-recs', version: 2, approved: true, approver: 'bob', comment: 'lgtm' },
    ]);
  });

  it('expires after 72 hours without a review (in skipped time)', async () => {
    const world = new FakeWorld('good');
    const started = Date.now();
    const result = await run(world, { requestedBy: 'alice' }, (h) => h.result());
    assert.equal(result.outcome, 'expired');
    assert.match(result.reason, /72 hours/);
    assert.deepEqual(world.statuses.at(-1), [2, 'rejected']);
    assert.equal(world.fleet.canary, null);
    assert.ok(Date.now() - started < 60_000);
  });

  it('lists refused signal decisions in the status and takes a valid one', async () => {
    const world = new FakeWorld('good');
    const result = await run(world, { ...baseInput, rollout: { skip: true } }, async (h) => {
      await waitFor(h, (s) => s.stage === 'awaiting_approval');
      await h.signal(approveSignal, { reviewer: 'alice' });
      await h.signal(approveSignal, { reviewer: 'carol', comment: 'ok' });
      return h.result();
    });
    assert.equal(result.outcome, 'approved');
    assert.equal(result.status.approval.via, 'signal');
    assert.equal(result.status.approval.reviewer, 'carol');
    assert.equal(result.status.approval.refused.length, 1);
    assert.match(result.status.approval.refused[0]!.reason, /four-eyes/);
  });

  it('stops at the gates: no approval asked, the version rejected', async () => {
    const world = new FakeWorld('good', false);
    const result = await run(world, baseInput, (h) => h.result());
    assert.equal(result.outcome, 'gate_failed');
    assert.match(result.reason, /abs:auc \(auc 0.7 < 0.75\)/);
    assert.deepEqual(world.statuses, [[2, 'rejected']]);
    assert.equal(result.status.approval.state, 'not_requested');
  });

  for (const traffic of ['bad-ctr', 'errors'] as const) {
    it(`rolls back by itself when the analysis fails (${traffic})`, async () => {
      const world = new FakeWorld(traffic);
      const result = await run(world, { ...baseInput, approval: { autoApprove: true } }, (h) => h.result());
      assert.equal(result.outcome, 'rolled_back', result.reason);
      assert.match(result.reason, traffic === 'bad-ctr' ? /ctr/ : /error-rate/);
      assert.equal(world.fleet.canary, null);
      assert.equal(world.fleet.canaryWeight, 0);
      assert.equal(world.fleet.stable?.version, 'shop-recs@v1');
      assert.equal(world.aliases.get('champion'), 1);
      assert.equal(world.aliases.get('canary'), null);
      assert.deepEqual(world.statuses.at(-1), [2, 'rolled_back']);
    });
  }

  it('extends an inconclusive bake, then waits for a human promote', async () => {
    const world = new FakeWorld('quiet');
    const result = await run(world, { ...baseInput, approval: { autoApprove: true } }, async (h) => {
      await waitFor(h, (x) => x.rollout?.steps[0]?.state === 'baking');
      await env.sleep('25 minutes'); // the bake and its one extension (10 minutes each), in skipped time
      const s = await waitFor(h, (x) => x.stage === 'awaiting_decision');
      assert.equal(s.rollout!.steps[0]!.extensions, 1);
      assert.equal(s.rollout!.steps[0]!.analyses.length, 2);
      await h.signal(promoteSignal, { actor: 'dave', reason: 'low traffic night' });
      return h.result();
    });
    assert.equal(result.outcome, 'promoted');
    assert.match(result.reason, /promoted by dave/);
    assert.equal(world.fleet.stable?.version, 'shop-recs@v2');
  });

  it('abort rolls back at once, without analysis', async () => {
    const world = new FakeWorld('good');
    const result = await run(world, { ...baseInput, approval: { autoApprove: true } }, async (h) => {
      await waitFor(h, (x) => x.rollout?.steps[0]?.state === 'baking');
      await h.signal(abortSignal, { actor: 'oncall', reason: 'pager' });
      return h.result();
    });
    assert.equal(result.outcome, 'aborted');
    assert.match(result.reason, /aborted by oncall: pager/);
    assert.equal(result.status.rollout!.steps[0]!.analyses.length, 0);
    assert.equal(world.fleet.canary, null);
    assert.deepEqual(world.statuses.at(-1), [2, 'rolled_back']);
  });

  it('cancellation mid-canary rolls the fleet back before the run ends', async () => {
    const world = new FakeWorld('good');
    await run(world, { ...baseInput, approval: { autoApprove: true } }, async (h) => {
      await waitFor(h, (x) => x.rollout?.steps[0]?.state === 'baking');
      assert.equal(world.fleet.canary?.version, 'shop-recs@v2');
      await h.cancel();
      await assert.rejects(h.result(), (e: unknown) => e instanceof WorkflowFailedError);
    });
    assert.equal(world.fleet.canary, null);
    assert.equal(world.fleet.canaryWeight, 0);
    assert.deepEqual(world.statuses.at(-1), [2, 'rolled_back']);
    assert.equal(world.aliases.get('canary'), null);
  });
});
