/**
 * Load: 20 lifecycle runs at once on the real dev server, fast fake activities (the workflow, the fleet lock and the
 * canary analysis are real). All complete, and their rollouts never overlap on the fleet: the per-fleet lock
 * serializes them, first come first served.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createRolloutActivities } from '../../activities/rollout';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import type { LifecycleResult } from '../../lib/lifecycle/types';
import { FakeWorld } from '../helpers/fake-world';
import { devServerEnv, testWorkflowBundle } from '../helpers/temporal';
import { activityInterceptors } from '../../activities/interceptors';

const RUNS = 20;

describe(`${RUNS} concurrent lifecycle runs on one fleet (dev server)`, () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await devServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  it('all complete and their canaries are serialized by the fleet lock', async () => {
    const world = new FakeWorld('good');
    const fake = world.activities();
    let holder: string | null = null;
    const overlaps: string[] = [];
    const order: string[] = [];
    const activities = {
      ...fake,
      ...createRolloutActivities({} as never),
      // The fleet remembers which run has a canary on it; another run's canary meanwhile is an overlap.
      applyFleetState: async (i: Parameters<typeof fake.applyFleetState>[0]) => {
        const who = Context.current().info.workflowExecution?.workflowId ?? 'unknown';
        if (i.canary) {
          if (holder && holder !== who) overlaps.push(`${who} while ${holder}`);
          if (holder !== who) order.push(who);
          holder = who;
        } else if (i.canary === null && holder === who) holder = null;
        return fake.applyFleetState(i);
      },
    };
    const cpu = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities,
      workflowBundle: await testWorkflowBundle(),
      maxConcurrentActivityTaskExecutions: 50,
    });
    const gpu = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: GPU_TASK_QUEUE,
      activities: { trainModel: fake.trainModel },
    });
    const started = Date.now();
    const results = await gpu.runUntil(
      cpu.runUntil(
        Promise.all(
          Array.from(
            { length: RUNS },
            (_, i) =>
              env.client.workflow.execute('modelLifecycleWorkflow', {
                taskQueue: CPU_TASK_QUEUE,
                workflowId: `load-${i}-${started}`,
                args: [
                  {
                    requestedBy: 'load',
                    kind: 'two-tower' as const,
                    approval: { autoApprove: true },
                    rollout: { fleet: 'load', steps: [{ weight: 50, bake: '1s' }] },
                  },
                ],
              }) as Promise<LifecycleResult>,
          ),
        ),
      ),
    );
    assert.equal(results.length, RUNS);
    for (const r of results) assert.equal(r.outcome, 'promoted', r.reason);
    assert.deepEqual(overlaps, []);
    assert.equal(order.length, RUNS, 'each run had its canary turn once');
    // With a 1 s bake each, serialized runs take at least RUNS seconds.
    assert.ok(Date.now() - started >= RUNS * 1000);
  });
});
