import {
  DefaultLogger,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { Logger } from 'pino';
import { activityInterceptors } from '../activities/interceptors';

/** The one `workflowsPath`. */
export const WORKFLOWS_PATH = require.resolve('../workflows');

let bundlePromise: Promise<WorkflowBundleWithSourceMap> | undefined;

/** Bundle the workflows once per process (several workers in one process share it). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundlePromise ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
  return bundlePromise;
}

let runtimeInstalled = false;

/**
 * Core messages that are routine, not warnings: a query answered after its caller stopped waiting (a status query
 * that reached the worker while a long synchronous step held its event loop; `recflow status --watch` and the demo
 * ask again on their next tick) is logged at debug, so it does not scroll the terminal a person watches.
 */
const ROUTINE_CORE_MESSAGES = [/^Query not found when attempting to respond to it/];

/** The pino level of an SDK log entry (see {@link ROUTINE_CORE_MESSAGES}). */
export function levelOf(
  level: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR',
  message: string,
): 'trace' | 'debug' | 'info' | 'warn' | 'error' {
  if (level === 'WARN' && ROUTINE_CORE_MESSAGES.some((re) => re.test(message))) return 'debug';
  return ({ TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const)[level];
}

/** Route the Temporal SDK's own logs (workers, workflows, activities) into a pino logger, once per process. */
export function installRuntimeLogger(logger: Logger, metricsAddress?: string): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  // RECFLOW_WORKER_METRICS=host:port (config `workerMetrics`): the worker's Prometheus endpoint (Temporal SDK
  // metrics, training progress, lifecycle outcomes) at http://host:port/metrics.
  const bindAddress = metricsAddress;
  Runtime.install({
    logger: new DefaultLogger('INFO', (entry) => {
      const meta = { ...(entry.meta ?? {}) };
      logger[levelOf(entry.level, entry.message)](meta, entry.message);
    }),
    // Not `telemetryOptions.logging.forward`: a forwarding runtime that never gets a connection (a worker whose server
    // is unreachable) keeps the process alive after the command fails. The core's own warnings stay on stderr.
    ...(bindAddress
      ? {
          telemetryOptions: {
            metrics: { prometheus: { bindAddress, countersTotalSuffix: true, useSecondsForDurations: true } },
          },
        }
      : {}),
  });
}

export interface WorkerSpec {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: object;
  /** Poll workflow tasks too (the CPU worker does; the GPU worker runs activities only). */
  workflows: boolean;
  /** Concurrent activities. Training is memory-heavy: keep it low on GPU hosts. */
  maxConcurrentActivityTaskExecutions?: number;
  identity?: string;
}

/** Create a worker for one task queue. */
export async function createWorker(spec: WorkerSpec): Promise<Worker> {
  return Worker.create({
    interceptors: { activity: activityInterceptors },
    connection: spec.connection,
    namespace: spec.namespace,
    taskQueue: spec.taskQueue,
    activities: spec.activities,
    workflowBundle: spec.workflows ? await workflowBundle() : undefined,
    ...(spec.maxConcurrentActivityTaskExecutions
      ? { maxConcurrentActivityTaskExecutions: spec.maxConcurrentActivityTaskExecutions }
      : {}),
    ...(spec.identity ? { identity: spec.identity } : {}),
    shutdownGraceTime: '10 seconds',
  });
}
