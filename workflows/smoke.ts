import { proxyActivities } from '@temporalio/workflow';
import type { RecflowActivities } from '../activities';
import { CPU_TASK_QUEUE } from '../lib/constants';
import { onGpuOrCpu, type Placement } from './gpu-fallback';

export interface SmokeWorkflowInput {
  requestedBy?: string;
  /** How long a GPU worker has to pick up its task before the CPU queue takes it. @default '10 seconds' */
  gpuScheduleToStartTimeout?: string;
}

export interface SmokeWorkflowResult {
  cpu: Awaited<ReturnType<RecflowActivities['describeWorker']>>;
  gpu: Awaited<ReturnType<RecflowActivities['describeWorker']>>;
  gpuPlacement: Placement;
}

/**
 * The smallest real run: asks the CPU worker and the GPU queue (with CPU fallback) to describe themselves.
 * `npx recflow doctor` and the foundation tests run it.
 */
export async function smokeWorkflow(input: SmokeWorkflowInput = {}): Promise<SmokeWorkflowResult> {
  const cpuActs = proxyActivities<RecflowActivities>({
    taskQueue: CPU_TASK_QUEUE,
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 3 },
  });
  const cpu = await cpuActs.describeWorker({ requestedBy: input.requestedBy });
  const { result: gpu, placement } = await onGpuOrCpu('describeWorker', (taskQueue) =>
    proxyActivities<RecflowActivities>({
      taskQueue,
      scheduleToStartTimeout: input.gpuScheduleToStartTimeout ?? '10 seconds',
      startToCloseTimeout: '1 minute',
      retry: { maximumAttempts: 3 },
    }).describeWorker({ requestedBy: input.requestedBy }),
  );
  return { cpu, gpu, gpuPlacement: placement };
}
