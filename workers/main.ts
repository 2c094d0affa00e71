import { hostname } from 'node:os';
import { createCpuActivities, createGpuActivities } from '../activities';
import { defaultDeps } from '../activities/deps';
import { loadConfig } from '../lib/config';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../lib/constants';
import { createLogger } from '../lib/log';
import { connectWorker, requireTemporalTarget } from '../lib/temporal/connection';
import { createWorker, installRuntimeLogger } from './run-worker';

/**
 * Run one worker process for a task queue until SIGINT or SIGTERM; then finish the tasks in hand (up to the
 * shutdown grace time) and exit.
 */
export async function runWorkerProcess(kind: 'cpu' | 'gpu'): Promise<void> {
  const config = loadConfig();
  const taskQueue = kind === 'cpu' ? CPU_TASK_QUEUE : GPU_TASK_QUEUE;
  const logger = createLogger(`worker-${kind}`, config);
  installRuntimeLogger(logger, config.workerMetrics);
  const target = requireTemporalTarget(config);
  const connection = await connectWorker(target);
  const deps = defaultDeps(config);
  const worker = await createWorker({
    connection,
    namespace: target.namespace,
    taskQueue,
    activities: kind === 'cpu' ? createCpuActivities(deps) : createGpuActivities(deps),
    workflows: kind === 'cpu',
    maxConcurrentActivityTaskExecutions: kind === 'gpu' ? 1 : 4,
    identity: `${kind}@${hostname()}:${process.pid}`,
  });
  // The SDK's Runtime shuts workers down on SIGINT/SIGTERM by default; log it and let run() resolve.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => logger.info({ signal: sig, taskQueue }, 'shutting down: finishing tasks in hand'));
  }
  logger.info({ taskQueue, target: target.connectionOptions.address, namespace: target.namespace }, 'worker started');
  // The person who started it sees where it polls and where the structured logs go (pretty mode: a file).
  console.log(`recflow worker ${kind}: polling ${taskQueue} at ${target.connectionOptions.address}`);
  if (config.logFormat === 'pretty')
    console.log(`logs: ${config.logFile} (JSON lines; --log-format json prints them here)`);
  await worker.run();
  await connection.close();
  logger.info({ taskQueue }, 'worker stopped');
}
