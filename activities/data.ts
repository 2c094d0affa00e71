/**
 * Data activities (task queue `recflow-cpu`): generate a synthetic shop, validate a source, prepare a dataset,
 * compare two datasets. They return artifact references and counts, never data. Long steps heartbeat
 * `{step, file, rows}`; artifacts are built in a temp folder and renamed, so a retry after a killed worker
 * starts clean. Bad data is a non-retryable `InvalidData` failure naming file, row, column and value.
 */
import { Context, log } from '@temporalio/activity';
import type { ArtifactRef } from '../lib/artifacts';
import type { DriftResult } from '../lib/data/drift';
import {
  compareDatasets,
  makeShop,
  prepareDataset,
  validateData,
  type DataSource,
  type PrepareResult,
  type Progress,
} from '../lib/data/pipeline';
import type { SplitOptions } from '../lib/data/preprocess';
import type { ValidationPolicy } from '../lib/data/validate';
import type { ActivityDeps } from './deps';

export type { DataSource } from '../lib/data/pipeline';

export interface GenerateShopInput {
  seed?: number;
  users?: number;
  items?: number;
  events?: number;
  /** Queries of the search log. @default 3000 (lib/data/generator.ts) */
  queries?: number;
  dirt?: number;
}
export interface GenerateShopResult {
  shop: ArtifactRef;
  reused: boolean;
  counts: { users: number; items: number; events: number };
}
export interface ValidateDataInput {
  source: DataSource;
  previousDatasetId?: string;
  policy?: Partial<ValidationPolicy>;
}
export interface ValidateDataResult {
  report: ArtifactRef;
  hard: number;
  soft: number;
  rows: Record<string, number>;
}
export interface PrepareDatasetInput {
  source: DataSource;
  previousDatasetId?: string;
  split?: SplitOptions;
  policy?: Partial<ValidationPolicy>;
}
export type PrepareDatasetResult = PrepareResult;
export interface CompareDatasetsInput {
  baseId: string;
  candidateId: string;
}
export type CompareDatasetsResult = DriftResult;

/** Heartbeat with progress details (and log every heartbeat at debug). */
function heartbeat(): Progress {
  return (details) => {
    Context.current().heartbeat(details);
    log.debug('data progress', details);
  };
}

/** The data activities, bound to their dependencies. */
export function createDataActivities(deps: ActivityDeps) {
  return {
    /** Generate (or reuse) a seeded synthetic shop: artifact kind `shop`, id from the parameters. */
    generateShop: async (input: GenerateShopInput = {}): Promise<GenerateShopResult> => {
      const res = await makeShop(deps.store, input, heartbeat());
      log.info('shop ready', { shopId: res.shop.id, reused: res.reused, ...res.counts, dirt: res.counts.dirt });
      return {
        shop: res.shop,
        reused: res.reused,
        counts: { users: res.counts.users, items: res.counts.items, events: res.counts.events },
      };
    },

    /** Validate a source; the report is a `report` artifact. Hard anomalies fail, non-retryable. */
    validateData: async (input: ValidateDataInput): Promise<ValidateDataResult> => {
      const { details: _d, ...res } = await validateData(deps.store, input, heartbeat());
      log.info('data validated', { reportId: res.report.id, hard: res.hard, soft: res.soft, rows: res.rows });
      return res;
    },

    /** Validate, then preprocess into a `dataset` artifact (reused when the inputs and settings are the same). */
    prepareDataset: async (input: PrepareDatasetInput): Promise<PrepareDatasetResult> => {
      const res = await prepareDataset(deps.store, input, heartbeat());
      log.info('dataset ready', { datasetId: res.dataset.id, reused: res.reused, rows: res.rows });
      return res;
    },

    /** PSI per feature and new user/item rates between two datasets. */
    compareDatasets: async (input: CompareDatasetsInput): Promise<CompareDatasetsResult> => {
      const res = await compareDatasets(deps.store, input);
      log.info('datasets compared', { ...input, maxPsi: res.maxPsi, drifted: res.drifted });
      return res;
    },
  };
}
