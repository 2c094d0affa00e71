import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createCpuActivities } from '../../activities';
import { defaultDeps } from '../../activities/deps';
import { loadConfig } from '../../lib/config';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { maybeRecordHistory } from '../helpers/histories';
import { devServerEnv, tempHome, testWorkflowBundle } from '../helpers/temporal';
import { activityInterceptors } from '../../activities/interceptors';

describe('smokeWorkflow on the real dev server', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await devServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  it('runs a real activity on recflow-cpu and falls back to CPU when no GPU worker polls', async () => {
    const config = loadConfig({ RECFLOW_HOME: tempHome() });
    const worker = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities: createCpuActivities(defaultDeps(config)),
      workflowBundle: await testWorkflowBundle(),
    });
    const workflowId = `test-smoke-${Date.now()}`;
    const result = await worker.runUntil(
      env.client.workflow.execute('smokeWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId,
        args: [{ requestedBy: 'test', gpuScheduleToStartTimeout: '2 seconds' }],
      }),
    );
    assert.equal(result.cpu.pid, process.pid);
    assert.equal(result.cpu.taskQueue, CPU_TASK_QUEUE);
    assert.equal(result.cpu.artifactsDir, config.artifactsDir);
    assert.equal(result.gpuPlacement.fellBackToCpu, true);
    assert.equal(result.gpuPlacement.taskQueue, CPU_TASK_QUEUE);
    assert.match(result.gpuPlacement.reason ?? '', /no recflow-gpu worker/);
    // The history shows the GPU attempt timed out on schedule-to-start before the CPU attempt.
    const handle = env.client.workflow.getHandle(workflowId);
    await maybeRecordHistory(handle, 'smokeWorkflow', 'gpu-fallback');
    const history = await handle.fetchHistory();
    const timeouts = (history.events ?? []).filter((e) => e.activityTaskTimedOutEventAttributes);
    assert.equal(timeouts.length, 1);
  });
});
