import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { RecflowActivities } from '../../activities';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import type { smokeWorkflow } from '../../workflows/smoke';
import { testWorkflowBundle, timeSkippingEnv } from '../helpers/temporal';
import { activityInterceptors } from '../../activities/interceptors';

type Describe = RecflowActivities['describeWorker'];
const fake =
  (taskQueue: string): Describe =>
  async () => ({
    host: 'fake',
    pid: 1,
    node: 'v0',
    taskQueue,
    artifactsDir: '/nowhere',
    packages: {},
  });

describe('smokeWorkflow on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await timeSkippingEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  it('runs on the GPU queue when a GPU worker polls', async () => {
    const cpu = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities: { describeWorker: fake(CPU_TASK_QUEUE) },
      workflowBundle: await testWorkflowBundle(),
    });
    const gpu = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: GPU_TASK_QUEUE,
      activities: { describeWorker: fake(GPU_TASK_QUEUE) },
    });
    const result = await gpu.runUntil(
      cpu.runUntil(
        env.client.workflow.execute<typeof smokeWorkflow>('smokeWorkflow', {
          taskQueue: CPU_TASK_QUEUE,
          workflowId: 'smoke-gpu',
          args: [{}],
        }),
      ),
    );
    assert.equal(result.gpu.taskQueue, GPU_TASK_QUEUE);
    assert.deepEqual(result.gpuPlacement, { taskQueue: GPU_TASK_QUEUE, fellBackToCpu: false });
  });

  // The time-skipping server does not skip over a schedule-to-start timeout of a task nobody polls (the test hung),
  // so this one waits a short real timeout.
  it('falls back to the CPU queue after the schedule-to-start timeout', async () => {
    const cpu = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities: { describeWorker: fake(CPU_TASK_QUEUE) },
      workflowBundle: await testWorkflowBundle(),
    });
    const started = Date.now();
    const result = await cpu.runUntil(
      env.client.workflow.execute<typeof smokeWorkflow>('smokeWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId: 'smoke-fallback',
        args: [{ gpuScheduleToStartTimeout: '3 seconds' }],
      }),
    );
    assert.equal(result.gpuPlacement.fellBackToCpu, true);
    assert.equal(result.gpu.taskQueue, CPU_TASK_QUEUE);
    assert.ok(Date.now() - started >= 3_000, 'the GPU queue had its 3 seconds');
  });
});
