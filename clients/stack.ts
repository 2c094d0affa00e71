import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { createCpuActivities, createGpuActivities } from '../activities';
import { defaultDeps } from '../activities/deps';
import type { RecflowConfig } from '../lib/config';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../lib/constants';
import type { Logger } from '../lib/log';
import { connectClient, connectWorker, findTemporalTarget, type TemporalTarget } from '../lib/temporal/connection';
import { isOrphanedServer, isReachable, startEmbeddedTemporal, type EmbeddedTemporal } from '../lib/temporal/embedded';
import { createWorker, installRuntimeLogger } from '../workers/run-worker';

/** A running recflow: Temporal (embedded or external), and optionally CPU and GPU-queue workers in this process. */
export interface Stack {
  target: TemporalTarget;
  client: Client;
  embedded?: EmbeddedTemporal;
  workers: Worker[];
  /** Stop the workers (finishing tasks in hand), then the embedded server if this process started it. */
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Start CPU and GPU-queue workers in this process. @default true */
  workers?: boolean;
  /** Web UI of the embedded server. @default config.temporal.ui */
  ui?: boolean;
  /** Port of the embedded server (0: a free one). @default config.temporal.embeddedPort */
  port?: number;
  /** Start a GPU-queue worker (on a machine without a GPU it trains with the best CPU backend). @default true */
  gpuWorker?: boolean;
}

/**
 * Connect to Temporal (the `TEMPORAL_*` variables, or an embedded server another recflow process runs), or start
 * the embedded dev server; then start the workers.
 */
export async function startStack(config: RecflowConfig, logger: Logger, opts: StackOptions = {}): Promise<Stack> {
  // The SDK's native runtime only for workers: installed with nothing to run it would never shut down (its log
  // forwarding keeps the process alive after Ctrl-C: `dev --no-workers` did not exit).
  if (opts.workers !== false) installRuntimeLogger(logger, config.workerMetrics);
  let target = findTemporalTarget(config);
  if (target?.source === 'embedded' && !(await isReachable(target.connectionOptions.address ?? ''))) {
    logger.warn({ address: target.connectionOptions.address }, 'embedded server state is stale; starting a new server');
    target = undefined;
  } else if (target?.source === 'embedded' && isOrphanedServer(config)) {
    target = undefined; // its owner was killed: this process adopts the server (and stops it on exit)
  }
  let embedded: EmbeddedTemporal | undefined;
  if (!target) {
    embedded = await startEmbeddedTemporal(config, { port: opts.port, ui: opts.ui });
    target = { source: 'embedded', namespace: embedded.namespace, connectionOptions: { address: embedded.address } };
    logger.info(
      { address: embedded.address, ui: embedded.uiUrl, temporal: embedded.cliVersion, db: config.temporalDir },
      embedded.adopted
        ? 'adopted the embedded Temporal dev server a killed recflow left running'
        : 'embedded Temporal dev server started',
    );
  } else {
    logger.info({ address: target.connectionOptions.address, source: target.source }, 'using Temporal server');
  }
  const workers: Worker[] = [];
  const running: Promise<void>[] = [];
  let connection: NativeConnection | undefined;
  let client: Client;
  try {
    client = await connectClient(target);
    if (opts.workers ?? true) {
      connection = await connectWorker(target);
      const deps = defaultDeps(config);
      workers.push(
        await createWorker({
          connection,
          namespace: target.namespace,
          taskQueue: CPU_TASK_QUEUE,
          activities: createCpuActivities(deps),
          workflows: true,
        }),
      );
      if (opts.gpuWorker ?? true) {
        workers.push(
          await createWorker({
            connection,
            namespace: target.namespace,
            taskQueue: GPU_TASK_QUEUE,
            activities: createGpuActivities(deps),
            workflows: false,
            maxConcurrentActivityTaskExecutions: 1,
          }),
        );
      }
      for (const w of workers) running.push(w.run());
    }
  } catch (err) {
    await connection?.close().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    throw err;
  }
  let stopped = false;
  return {
    target,
    client,
    embedded,
    workers,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled(running);
      await connection?.close();
      await client.connection.close();
      await embedded?.stop();
    },
  };
}
