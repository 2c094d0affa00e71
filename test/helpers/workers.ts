import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createCpuActivities, createGpuActivities } from '../../activities';
import { defaultDeps } from '../../activities/deps';
import { loadConfig } from '../../lib/config';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import { testWorkflowBundle } from './temporal';

/**
 * The CPU worker (workflows and every activity) and the GPU-queue worker of a recflow installation whose home is
 * `home`, polling `env`, running until `fn` settles: what `npx recflow dev` starts, in the test process.
 */
export async function withRecflowWorkers<T>(
  env: Pick<TestWorkflowEnvironment, 'nativeConnection' | 'namespace'>,
  home: string,
  fn: () => Promise<T>,
): Promise<T> {
  const deps = defaultDeps(loadConfig({ RECFLOW_HOME: home, RECFLOW_LOG_LEVEL: 'warn' }));
  const cpu = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: CPU_TASK_QUEUE,
    activities: createCpuActivities(deps),
    workflowBundle: await testWorkflowBundle(),
  });
  const gpu = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: GPU_TASK_QUEUE,
    activities: createGpuActivities(deps),
  });
  return gpu.runUntil(cpu.runUntil(fn));
}
