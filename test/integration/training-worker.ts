/**
 * A worker process for the kill test (test/integration/training.test.ts): polls one task queue with the CPU
 * worker's activities (training included) against a given server, prints `ready` when polling, runs until killed.
 *
 * Env: TEMPORAL_ADDRESS, RECFLOW_HOME, TASK_QUEUE (and RECFLOW_TF_BACKEND, passed through to the backend choice).
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createCpuActivities } from '../../activities';
import { defaultDeps } from '../../activities/deps';
import { loadConfig } from '../../lib/config';
import { activityInterceptors } from '../../activities/interceptors';

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const address = process.env.TEMPORAL_ADDRESS;
  const taskQueue = process.env.TASK_QUEUE;
  if (!address || !taskQueue) throw new Error('TEMPORAL_ADDRESS and TASK_QUEUE are required');
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    interceptors: { activity: activityInterceptors },
    connection,
    namespace: 'default',
    taskQueue,
    activities: createCpuActivities(defaultDeps(loadConfig(process.env))),
  });
  console.log('ready');
  await worker.run();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
