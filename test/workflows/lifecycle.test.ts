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
import { submitReview } from '../../clients/commands/lifecycle';
import { fleetLockWorkflowId } from '../../lib/fleet/lock';
import { FakeWorld } from '../helpers/fake-world';
import { maybeRecordHistory } from '../helpers/histories';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import {
  abortSignal,
  approveSignal,
  approveUpdate,
  promoteSignal,
  rejectSignal,
  rejectUpdate,
  statusQuery,
} from '../../lib/lifecycle/messages';
import type { LifecycleInput, LifecycleStatus } from '../../lib/lifecycle/types';
import type { modelLifecycleWorkflow } from '../../workflows/lifecycle';
import { testWorkflowBundle, timeSkippingEnv } from '../helpers/temporal';
import { activityInterceptors } from '../../activities/interceptors';

/** An update refused by its validator, for the reason `re`. */
const refused = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof WorkflowUpdateFailedError, String(e));
  assert.match(String(e.cause?.message), re);
  return true;
};

const baseInput: LifecycleInput = {
  requestedBy: 'alice',
  approval: { reviewers: ['bob', 'carol'] },
  rollout: {
    steps: [
      { weight: 10, bake: '10 minutes' },
      { weight: 100, bake: '10 minutes' },
    ],
    maxExtensions: 1,
    preWindow: false, // its own test below: the other tests poll the status, during which time does not skip
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
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities,
      workflowBundle: await testWorkflowBundle(),
    });
    const gpu = await Worker.create({
      interceptors: { activity: activityInterceptors },
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

  /** The first analysis window is being measured. */
  const analysing = (x: LifecycleStatus) =>
    x.rollout?.currentStepIndex === 1 && x.rollout.steps[1]?.state === 'running';

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
      ['passed', 'passed', 'passed', 'passed'],
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

  it('after the run ended: the decision it recorded, repeated, is answered as recorded; any other is refused', async () => {
    const world = new FakeWorld('good');
    const { same, other, overlong } = await run(world, { ...baseInput, rollout: { skip: true } }, async (h) => {
      await waitFor(h, (s) => s.stage === 'awaiting_approval');
      const first = await submitReview(env.client, h.workflowId, 'approve', { reviewer: 'bob', comment: 'lgtm' });
      assert.ok(first.ok, first.message);
      await h.result();
      return {
        same: await submitReview(env.client, h.workflowId, 'approve', { reviewer: 'bob', comment: 'lgtm' }),
        other: await submitReview(env.client, h.workflowId, 'reject', { reviewer: 'carol', comment: 'no' }),
        overlong: await submitReview(env.client, h.workflowId, 'approve', {
          reviewer: 'bob',
          comment: 'x'.repeat(5000),
        }),
      };
    });
    assert.equal(same.ok, true, same.message);
    assert.match(same.message, /approved by bob \(already recorded; run approved\)/);
    assert.equal(other.ok, false);
    assert.match(other.message, /has ended \(approved: .*\); nothing left to reject/);
    // The comment limit is checked before anything is sent.
    assert.equal(overlong.ok, false);
    assert.match(overlong.message, /comment/);
  });

  it('expires after 72 hours without a review (in skipped time)', async () => {
    const world = new FakeWorld('good');
    const started = Date.now();
    let late: Awaited<ReturnType<typeof submitReview>> | undefined;
    const result = await run(world, { requestedBy: 'alice' }, async (h) => {
      const r = await h.result();
      // A reviewer who comes back after the expiry is told the run is over, and how it ended.
      late = await submitReview(env.client, h.workflowId, 'approve', { reviewer: 'bob', comment: 'sorry, late' });
      return r;
    });
    assert.equal(result.outcome, 'expired');
    assert.match(result.reason, /72 hours/);
    assert.equal(late?.ok, false);
    assert.match(late?.message ?? '', /has ended \(expired: .*72 hours.*\); nothing left to approve/);
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
      await waitFor(h, (x) => analysing(x));
      await env.sleep('25 minutes'); // the bake and its one extension (10 minutes each), in skipped time
      const s = await waitFor(h, (x) => x.stage === 'awaiting_decision');
      assert.equal(s.rollout!.steps[1]!.extensions, 1);
      assert.equal(s.rollout!.steps[1]!.analyses?.length, 2);
      assert.equal(s.rollout!.pause?.reason, 'InconclusiveAnalysis');
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
      await waitFor(h, (x) => analysing(x));
      await h.signal(abortSignal, { actor: 'oncall', reason: 'pager' });
      return h.result();
    });
    assert.equal(result.outcome, 'aborted');
    assert.match(result.reason, /aborted by oncall: pager/);
    assert.equal(result.status.rollout!.steps[1]!.analyses?.length, 0);
    assert.equal(world.fleet.canary, null);
    assert.deepEqual(world.statuses.at(-1), [2, 'rolled_back']);
  });

  it('cancellation mid-canary rolls the fleet back before the run ends', async () => {
    const world = new FakeWorld('good');
    await run(world, { ...baseInput, approval: { autoApprove: true } }, async (h) => {
      await waitFor(h, (x) => analysing(x));
      assert.equal(world.fleet.canary?.version, 'shop-recs@v2');
      await h.cancel();
      await assert.rejects(h.result(), (e: unknown) => e instanceof WorkflowFailedError);
    });
    assert.equal(world.fleet.canary, null);
    assert.equal(world.fleet.canaryWeight, 0);
    assert.deepEqual(world.statuses.at(-1), [2, 'rolled_back']);
    assert.equal(world.aliases.get('canary'), null);
  });

  it('a run terminated while holding the fleet lock does not block the fleet: the lock notices and passes on', async () => {
    const world = new FakeWorld('good');
    const result = await run(world, { ...baseInput, approval: { autoApprove: true } }, async (a) => {
      const held = await waitFor(a, (x) => x.rollout?.lock === 'held' && analysing(x));
      // Let the run go idle first (the bake's timer only): the time-skipping server stops skipping for good when a
      // workflow task in flight is refused because its run was terminated.
      for (let i = 0; i < 200; i++) {
        const d = await a.describe();
        if (!d.raw.pendingActivities?.length && !d.raw.pendingWorkflowTask) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 300));
      // On-call terminates the stuck run: no cleanup runs, so the lock is never released by it.
      await a.terminate('stuck');
      const b = await env.client.workflow.start<typeof modelLifecycleWorkflow>('modelLifecycleWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId: `${a.workflowId}-next`,
        args: [
          {
            ...baseInput,
            approval: { autoApprove: true },
            rollout: { ...baseInput.rollout, fleet: held.rollout!.fleet },
          },
        ],
      });
      const r = await b.result();
      const lock = env.client.workflow.getHandle(fleetLockWorkflowId(held.rollout!.fleet));
      await lock.result();
      await maybeRecordHistory(lock, 'fleetLockWorkflow', 'terminated-holder');
      return r;
    });
    assert.equal(result.outcome, 'promoted', result.reason);
    assert.equal(result.status.rollout?.lock, 'released');
  });

  it('refuses malformed review payloads without breaking the run, then takes a valid approval', async () => {
    const world = new FakeWorld('good');
    const malformed: unknown[] = [
      { reviewer: 'bob', comment: 5 },
      { reviewer: 'bob', comment: { x: 1 } },
      { reviewer: 42 },
      { reviewer: '' },
      null,
      'bob',
      [1, 2],
      { reviewer: 'bob', extra: true },
      { reviewer: 'x'.repeat(500) },
    ];
    const result = await run(world, { ...baseInput, rollout: { skip: true } }, async (h) => {
      // Before the review opens (they wait for it), and while it is open.
      await h.signal(rejectSignal, { reviewer: 'bob', comment: 5 } as never);
      await waitFor(h, (s) => s.stage === 'awaiting_approval');
      for (const p of malformed) {
        await h.signal(approveSignal, p as never);
        await assert.rejects(h.executeUpdate(approveUpdate, { args: [p as never] }), (e: unknown) => {
          assert.ok(e instanceof WorkflowUpdateFailedError, String(e));
          assert.equal((e.cause as { nonRetryable?: boolean } | undefined)?.nonRetryable, true);
          return true;
        });
      }
      await h.signal(abortSignal, { actor: 7 } as never);
      const s = await waitFor(h, (x) => x.approval.refused.length >= malformed.length + 2);
      assert.equal(s.approval.state, 'waiting', 'a malformed payload decides nothing');
      assert.match(s.approval.refused[0]!.reason, /comment must be a string, got number 5/);
      const ok = await h.executeUpdate(approveUpdate, { args: [{ reviewer: 'carol', comment: 'fine' }] });
      assert.equal(ok.state, 'approved');
      return h.result();
    });
    assert.equal(result.outcome, 'approved');
    assert.equal(result.status.approval.comment, 'fine');
    assert.ok(result.status.approval.refused.some((r) => /actor must be a string/.test(r.reason)));
  });

  it('fails at once, naming every field, on a bad input', async () => {
    const world = new FakeWorld('good');
    const err = await run(
      world,
      {
        kind: 'nope',
        rollout: { steps: [{ setWeight: 120 }, { analysis: { duration: 'soon' } }], maxExtensions: -1 },
        approval: { timeout: 'forever' },
      } as never,
      (h) =>
        h.result().then(
          () => undefined,
          (e: unknown) => e,
        ),
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    const cause = err.cause as { type?: string; message?: string; nonRetryable?: boolean };
    assert.equal(cause.type, 'InvalidInput');
    assert.equal(cause.nonRetryable, true);
    for (const field of [
      'kind',
      'rollout.steps[0].setWeight',
      'rollout.steps[1].analysis.duration',
      'rollout.maxExtensions',
      'approval.timeout',
    ])
      assert.ok(cause.message?.includes(field), `${field} in: ${cause.message}`);
    assert.deepEqual(world.statuses, []);
  });

  it('ends unchanged, registering nothing, when the candidate equals the champion', async () => {
    const world = new FakeWorld('good');
    world.exportedBundle = 'b1';
    const result = await run(world, baseInput, (h) => h.result());
    assert.equal(result.outcome, 'unchanged');
    assert.match(result.reason, /equals shop-recs@v1/);
    assert.equal(result.status.registered, undefined);
    assert.deepEqual(world.statuses, []);
    assert.deepEqual(world.fleetChanges, []);
  });

  it('runs rollout steps as data: a timed pause resumes by itself, an indefinite one waits for promote', async () => {
    const world = new FakeWorld('good');
    const input: LifecycleInput = {
      ...baseInput,
      approval: { autoApprove: true },
      rollout: {
        preWindow: false,
        steps: [
          { setWeight: 10 },
          { pause: { duration: '1 hour' } },
          { analysis: { duration: '10 minutes' } },
          { setWeight: 50 },
          { pause: {} },
          { setWeight: 100 },
          { analysis: { duration: '10 minutes' } },
        ],
      },
    };
    const result = await run(world, input, async (h) => {
      const timed = await waitFor(h, (x) => x.rollout?.currentStepIndex === 1 && x.rollout.pause !== undefined);
      assert.equal(timed.rollout!.pause!.reason, 'PausedStep');
      assert.ok(timed.rollout!.pause!.until, 'a timed pause says when it resumes');
      await env.sleep('75 minutes'); // the pause (1 hour) and the analysis window (10 minutes), in skipped time
      const held = await waitFor(h, (x) => x.rollout?.currentStepIndex === 4 && x.stage === 'awaiting_decision');
      assert.equal(held.rollout!.weight, 50);
      assert.equal(held.rollout!.pause!.until, undefined);
      await h.signal(promoteSignal, { actor: 'dave' });
      return h.result();
    });
    assert.equal(result.outcome, 'promoted', result.reason);
    assert.deepEqual(world.fleetChanges, ['shop-recs@v2@10', 'shop-recs@v2@50', 'shop-recs@v2@100', '-@0']);
    assert.deepEqual(
      result.status.rollout!.steps.map((s) => s.state),
      ['passed', 'passed', 'passed', 'passed', 'passed', 'passed', 'passed'],
    );
  });

  it('auto trains every candidate kind, ships the best on validation, and records them all', async () => {
    const world = new FakeWorld('good');
    world.kindScores = { ease: 0.21, als: 0.25, 'two-tower': 0.23, sequential: 'unavailable' };
    const result = await run(world, { ...baseInput, rollout: { skip: true }, approval: { autoApprove: true } }, (h) =>
      h.result(),
    );
    assert.equal(result.outcome, 'approved', result.reason);
    assert.equal(result.status.kind, 'als');
    assert.deepEqual(
      result.status.candidates!.map((c) => [c.kind, c.state, c.chosen]),
      [
        ['ease', 'trained', false],
        ['als', 'trained', true],
        ['two-tower', 'trained', false],
        ['sequential', 'failed', false],
      ],
    );
    assert.match(result.status.candidates![3]!.reason ?? '', /InvalidInput: model kind 'sequential' is not available/);
    assert.deepEqual(world.exportedKinds, ['als']);
    assert.equal(result.status.training?.checkpointId, 'c-als');
  });

  it('a named kind trains alone', async () => {
    const world = new FakeWorld('good');
    const result = await run(
      world,
      { ...baseInput, kind: 'ease', rollout: { skip: true }, approval: { autoApprove: true } },
      (h) => h.result(),
    );
    assert.deepEqual(
      result.status.candidates!.map((c) => c.kind),
      ['ease'],
    );
    assert.deepEqual(world.exportedKinds, ['ease']);
  });

  it('a step that fails for good: the run fails with the root cause (type, message, step), and status says it', async () => {
    const world = new FakeWorld('good');
    world.kindScores = { ease: 'unavailable' };
    const { err, status } = await run(
      world,
      { ...baseInput, kind: 'ease', rollout: { skip: true }, approval: { autoApprove: true } },
      async (h) => {
        const e = await h.result().then(
          () => undefined,
          (x: unknown) => x,
        );
        return { err: e, status: await h.query(statusQuery) };
      },
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    const cause = err.cause as { type?: string; message?: string; nonRetryable?: boolean };
    assert.equal(cause.type, 'InvalidInput');
    assert.equal(cause.nonRetryable, true);
    assert.equal(cause.message, "trainModel: model kind 'ease' is not available");
    assert.equal(status.outcome, 'failed');
    assert.equal(status.error?.type, 'InvalidInput');
    assert.equal(status.error?.message, "model kind 'ease' is not available");
    assert.equal(status.error?.step, 'trainModel');
    assert.doesNotMatch(status.reason ?? '', /Activity task failed/);
    assert.equal(status.steps.find((x) => x.name === 'trainModel')?.state, 'failed');
    assert.deepEqual(world.statuses, []);
  });

  it('measures a pre-rollout window with the canary loaded at 0 % before the first step', async () => {
    const world = new FakeWorld('good');
    const result = await run(
      world,
      { ...baseInput, approval: { autoApprove: true }, rollout: { ...baseInput.rollout, preWindow: '5 minutes' } },
      (h) => h.result(),
    );
    assert.equal(result.outcome, 'promoted', result.reason);
    assert.deepEqual(world.fleetChanges, ['shop-recs@v2@0', 'shop-recs@v2@10', 'shop-recs@v2@100', '-@0']);
    assert.ok(result.status.steps.some((st) => st.detail?.includes('pre-rollout window')));
  });

  it('drives one user panel through every window of a rollout (the pre-rollout window included)', async () => {
    const world = new FakeWorld('good');
    const rollout = { ...baseInput.rollout, preWindow: '5 minutes', traffic: { rps: 20, users: 50, seed: 4242 } };
    const result = await run(world, { ...baseInput, approval: { autoApprove: true }, rollout }, (h) => h.result());
    assert.equal(result.outcome, 'promoted', result.reason);
    const windows = world.trafficInputs;
    assert.equal(windows.length, 3, 'the pre-rollout window and the two steps');
    assert.deepEqual(
      windows.map((w) => w.panelSeed),
      [4242, 4242, 4242],
      'the same users in every window',
    );
    assert.equal(new Set(windows.map((w) => w.seed)).size, 3, 'a request stream of its own per window');
  });

  it('without a traffic seed, each rollout replays a panel of its own (from its salt)', async () => {
    const rollout = { ...baseInput.rollout, preWindow: '5 minutes', traffic: { rps: 20, users: 50 } };
    const panels: number[] = [];
    for (let k = 0; k < 2; k++) {
      const world = new FakeWorld('good');
      const result = await run(world, { ...baseInput, approval: { autoApprove: true }, rollout }, (h) => h.result());
      assert.equal(result.outcome, 'promoted', result.reason);
      const seeds = new Set(world.trafficInputs.map((w) => w.panelSeed));
      assert.equal(seeds.size, 1, 'one panel for every window of the rollout');
      const [seed] = seeds;
      assert.equal(typeof seed, 'number');
      panels.push(seed as number);
    }
    assert.notEqual(panels[0], panels[1], 'another rollout, another panel');
  });
});
