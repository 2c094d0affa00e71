import { executeChild, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { RecflowActivities } from '../activities';
import { CPU_TASK_QUEUE, DEFAULT_MODEL_NAME, MODEL_NAME_SA, OUTCOME_SA, STAGE_SA } from '../lib/constants';
import { NON_RETRYABLE_ERROR_TYPES } from '../lib/errors';
import type { LifecycleInput, LifecycleResult } from '../lib/lifecycle/types';

export interface NightlyInput {
  /** The lifecycle run to start when there is something new; its `data` is the source checked for news. */
  lifecycle: LifecycleInput;
  /** Retrain even when the data did not change at all. @default false */
  force?: boolean;
  /** Skip also when the data changed but no feature drifted (max PSI under the data stage's threshold). @default false */
  skipWithoutDrift?: boolean;
}

export interface NightlyResult {
  action: 'skipped' | 'retrained';
  reason: string;
  datasetId: string;
  championDatasetId: string | null;
  drift?: { maxPsi: number; newUserRate: number; newItemRate: number; drifted: boolean };
  lifecycleWorkflowId?: string;
  outcome?: LifecycleResult['outcome'];
}

const { getAlias, compareDatasets } = proxyActivities<RecflowActivities>({
  taskQueue: CPU_TASK_QUEUE,
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});
const { prepareDataset, generateShop } = proxyActivities<RecflowActivities>({
  taskQueue: CPU_TASK_QUEUE,
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/**
 * The nightly retrain a Temporal Schedule starts (`npx recflow schedule create`): prepare the newest data, compare it
 * with the data the champion was trained on, and skip, saying why, when nothing changed; otherwise run the whole
 * lifecycle as a child workflow. Preparing the data here costs nothing extra: the child reuses the same dataset
 * artifact (same inputs, same id).
 */
export async function nightlyRetrainWorkflow(input: NightlyInput): Promise<NightlyResult> {
  const info = workflowInfo();
  const modelName = input.lifecycle.modelName ?? DEFAULT_MODEL_NAME;
  upsertSearchAttributes([
    { key: MODEL_NAME_SA, value: modelName },
    { key: STAGE_SA, value: 'data' },
  ]);
  const source = input.lifecycle.data ?? { kind: 'synthetic' as const };
  let dataSource: { kind: 'shop'; id: string } | { kind: 'dir'; path: string; format?: 'recflow' | 'movielens' };
  if (source.kind === 'synthetic') {
    const { kind: _kind, ...params } = source;
    dataSource = { kind: 'shop', id: (await generateShop(params)).shop.id };
  } else dataSource = source;
  const prepared = await prepareDataset({ source: dataSource });
  const datasetId = prepared.dataset.id;
  const champion = await getAlias({ model: modelName, alias: 'champion' });
  const championDatasetId = champion.datasetId;

  const skip = (reason: string, drift?: NightlyResult['drift']): NightlyResult => {
    upsertSearchAttributes([
      { key: STAGE_SA, value: 'done' },
      { key: OUTCOME_SA, value: 'skipped' },
    ]);
    return { action: 'skipped', reason, datasetId, championDatasetId, drift };
  };

  let drift: NightlyResult['drift'];
  if (championDatasetId === datasetId && !input.force) {
    return skip(`no new data: ${datasetId} is the dataset ${modelName}@v${champion.version} was trained on`);
  }
  if (championDatasetId && championDatasetId !== datasetId) {
    const d = await compareDatasets({ baseId: championDatasetId, candidateId: datasetId });
    drift = { maxPsi: d.maxPsi, newUserRate: d.newUserRate, newItemRate: d.newItemRate, drifted: d.drifted };
    if (!d.drifted && input.skipWithoutDrift && !input.force) {
      return skip(`new data but no drift (max PSI ${d.maxPsi.toFixed(3)})`, drift);
    }
  }
  upsertSearchAttributes([{ key: STAGE_SA, value: 'lifecycle' }]);
  const childId = `${info.workflowId}-lifecycle-${datasetId.slice(0, 12)}`;
  const result = await executeChild('modelLifecycleWorkflow', {
    workflowId: childId,
    taskQueue: CPU_TASK_QUEUE,
    args: [{ ...input.lifecycle, data: dataSource, requestedBy: input.lifecycle.requestedBy ?? 'nightly-schedule' }],
  });
  const outcome = (result as LifecycleResult).outcome;
  upsertSearchAttributes([
    { key: STAGE_SA, value: 'done' },
    { key: OUTCOME_SA, value: outcome },
  ]);
  return {
    action: 'retrained',
    reason: championDatasetId ? 'new data since the champion' : 'no champion yet',
    datasetId,
    championDatasetId,
    drift,
    lifecycleWorkflowId: childId,
    outcome,
  };
}
