/**
 * The lifecycle's activity proxies, one per kind of work, each with its timeouts and retry policy. Durations are
 * the SDK's `Duration` strings. Retries stop at once on the non-retryable error types (bad data, bad input...).
 */
import { ActivityCancellationType, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { RecflowActivities } from '../../activities';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { NON_RETRYABLE_ERROR_TYPES } from '../../lib/errors';

const retry = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 5,
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
} as const;

/** Activities on the CPU queue with these options over the defaults (10 minutes, the retry policy above). */
export function acts(options: Partial<ActivityOptions>) {
  return proxyActivities<RecflowActivities>({
    taskQueue: CPU_TASK_QUEUE,
    startToCloseTimeout: '10 minutes',
    retry,
    ...options,
  });
}

/** Registry, analysis, report: short. */
export const quick = acts({ startToCloseTimeout: '1 minute' });
/** Data generation and preparation: long, heartbeating. */
export const dataActs = acts({ startToCloseTimeout: '2 hours', heartbeatTimeout: '2 minutes' });
/** Export and evaluation: long, heartbeating. */
export const heavy = acts({ startToCloseTimeout: '1 hour', heartbeatTimeout: '2 minutes' });

/** Training on `taskQueue`: heartbeats every few seconds, so a dead worker is noticed after `heartbeatTimeout`. */
export function trainingActs(taskQueue: string, scheduleToStartTimeout: Duration, heartbeatTimeout: Duration) {
  return acts({
    taskQueue,
    scheduleToStartTimeout,
    startToCloseTimeout: '6 hours',
    heartbeatTimeout,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
}

/** Fleet changes: as long as replicas may take to converge, plus a minute. */
export function fleetActs(convergeMs: number) {
  return acts({ startToCloseTimeout: convergeMs + 60_000, heartbeatTimeout: '30 seconds' });
}

/** A measurement window of `windowMs` (stats and simulated traffic). */
export function windowActs(windowMs: number) {
  return acts({ startToCloseTimeout: windowMs + 120_000, heartbeatTimeout: '30 seconds' });
}
