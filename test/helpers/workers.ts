import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createCpuActivities, createGpuActivities } from '../../activities';
import { defaultDeps } from '../../activities/deps';
import { loadConfig } from '../../lib/config';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import { testWorkflowBundle } from './temporal';
import { activityInterceptors } from '../../activities/interceptors';

type Env = Pick<TestWorkflowEnvironment, 'nativeConnection' | 'namespace'>;

/**
 * The CPU worker (workflows and every activity) and the GPU-queue worker of a recflow installation whose home is
 * `home`, polling `env`: what `npx recflow dev` starts, in the test process. Running until `stop()`.
 */
export async function startRecflowWorkers(env: Env, home: string): Promise<{ stop(): Promise<void> }> {
  const workers = await createRecflowWorkers(env, home);
  const running = Promise.all(workers.map((w) => w.run()));
  return {
    async stop() {
      for (const w of workers) w.shutdown();
      await running.catch(() => undefined);
    },
  };
}

/** {@link startRecflowWorkers}, running until `fn` settles. */
export async function withRecflowWorkers<T>(env: Env, home: string, fn: () => Promise<T>): Promise<T> {
  const [cpu, gpu] = await createRecflowWorkers(env, home);
  return gpu.runUntil(cpu.runUntil(fn));
}

async function createRecflowWorkers(env: Env, home: string): Promise<[Worker, Worker]> {
  const deps = defaultDeps(loadConfig({ RECFLOW_HOME: home, RECFLOW_LOG_LEVEL: 'warn' }));
  const cpu = await Worker.create({
    interceptors: { activity: activityInterceptors },
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: CPU_TASK_QUEUE,
    activities: createCpuActivities(deps),
    workflowBundle: await testWorkflowBundle(),
  });
  const gpu = await Worker.create({
    interceptors: { activity: activityInterceptors },
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: GPU_TASK_QUEUE,
    activities: createGpuActivities(deps),
  });
  return [cpu, gpu];
}
