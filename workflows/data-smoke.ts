import { proxyActivities } from '@temporalio/workflow';
import type { RecflowActivities } from '../activities';
import type { DataSource } from '../lib/data/pipeline';
import { CPU_TASK_QUEUE } from '../lib/constants';
import { NON_RETRYABLE_ERROR_TYPES } from '../lib/errors';

export interface PrepareDataWorkflowInput {
  /** Synthetic shop parameters (defaults: the small shop of lib/data/generator.ts). */
  shop?: { seed?: number; users?: number; items?: number; events?: number; dirt?: number };
  /** A folder of exports instead of a generated shop. */
  source?: DataSource;
  previousDatasetId?: string;
}

export interface PrepareDataWorkflowResult {
  shopId?: string;
  reportId: string;
  datasetId: string;
  datasetReused: boolean;
  rows: { train: number; validation: number; test: number };
  validation: { hard: number; soft: number };
}

/** The data stage on its own: generate a shop, validate it, prepare a dataset. Returns artifact ids only. */
export async function prepareDataWorkflow(input: PrepareDataWorkflowInput = {}): Promise<PrepareDataWorkflowResult> {
  const acts = proxyActivities<RecflowActivities>({
    taskQueue: CPU_TASK_QUEUE,
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '2 minutes',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
  });
  let shopId: string | undefined;
  let source = input.source;
  if (!source) {
    const { shop } = await acts.generateShop(input.shop ?? {});
    shopId = shop.id;
    source = { kind: 'shop', id: shop.id };
  }
  const report = await acts.validateData({ source, previousDatasetId: input.previousDatasetId });
  const prepared = await acts.prepareDataset({ source, previousDatasetId: input.previousDatasetId });
  return {
    shopId,
    reportId: report.report.id,
    datasetId: prepared.dataset.id,
    datasetReused: prepared.reused,
    rows: prepared.rows,
    validation: prepared.validation,
  };
}
