/**
 * All recflow activities, built from their dependencies. Workflows import the *type* only:
 * `import type { RecflowActivities } from './'`.
 */
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../lib/constants';
import { createDataActivities } from './data';
import type { ActivityDeps } from './deps';
import { createEnvironmentActivities } from './environment';
import { createEvaluateActivities } from './evaluate';
import { createExportActivities } from './export';
import { createRegistryActivities } from './registry';
import { createReportActivities } from './report';
import { createRolloutActivities } from './rollout';
import { createServingActivities } from './serving';
import { groundTruthClickModels, searchClickModels } from './click-model';
import { createTrainingActivities } from './training';

/** Activities of the CPU worker (`recflow-cpu`): everything, training included (the GPU fallback). */
export function createCpuActivities(deps: ActivityDeps) {
  return {
    ...createEnvironmentActivities(deps, CPU_TASK_QUEUE),
    ...createDataActivities(deps),
    ...createExportActivities(deps),
    ...createEvaluateActivities(deps),
    ...createRegistryActivities(deps),
    ...createRolloutActivities(deps),
    ...createReportActivities(deps),
    ...createServingActivities(deps, {
      clickModelFor: groundTruthClickModels(deps),
      searchClicksFor: searchClickModels(deps),
    }),
    ...createTrainingActivities(deps),
  };
}

/** Activities of the GPU worker (`recflow-gpu`): training and what a GPU host must answer. */
export function createGpuActivities(deps: ActivityDeps) {
  return {
    ...createEnvironmentActivities(deps, GPU_TASK_QUEUE),
    ...createTrainingActivities(deps),
  };
}

export type RecflowActivities = ReturnType<typeof createCpuActivities>;
export type GpuActivities = ReturnType<typeof createGpuActivities>;
