import { ActivityFailure, TimeoutFailure, log } from '@temporalio/workflow';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../lib/constants';
import type { Placement } from '../lib/lifecycle/types';

export type { Placement } from '../lib/lifecycle/types';

/** True when an activity failed because no worker picked it up within its schedule-to-start timeout. */
export function isScheduleToStartTimeout(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === 'SCHEDULE_TO_START'
  );
}

/**
 * Run a step on the GPU task queue; when no GPU worker starts it within the schedule-to-start timeout that `run`
 * sets on its GPU proxy, run it on the CPU queue instead and say so.
 */
export async function onGpuOrCpu<T>(
  step: string,
  run: (taskQueue: string) => Promise<T>,
): Promise<{ result: T; placement: Placement }> {
  try {
    return { result: await run(GPU_TASK_QUEUE), placement: { taskQueue: GPU_TASK_QUEUE, fellBackToCpu: false } };
  } catch (err) {
    if (!isScheduleToStartTimeout(err)) throw err;
    const reason = `no ${GPU_TASK_QUEUE} worker started '${step}' in time; running on ${CPU_TASK_QUEUE}`;
    log.warn(reason, { step });
    return { result: await run(CPU_TASK_QUEUE), placement: { taskQueue: CPU_TASK_QUEUE, fellBackToCpu: true, reason } };
  }
}
