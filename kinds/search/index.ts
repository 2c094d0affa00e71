/**
 * Product search as a model kind: a pretrained BERT bi-encoder (kinds/search/base-model.ts, all-MiniLM-L6-v2 by
 * default) fine-tuned on the shop's search log (./train-kind.ts), distilled into a student, exported in several
 * variants with the item index inside and the compressed one chosen by measured quality and latency
 * (./bundle.ts, ./variants.ts), evaluated on held-out queries beside BM25, the zero-shot encoder and the hybrid
 * (./evaluate.ts), and checked for serving (./health.ts). The machinery is described in docs/search-model.md.
 */
import type { CheckpointSummary, ModelKind } from '../types';
import { checkpointSummary } from '../summary';
import { ErrorType, RecflowError } from '../../lib/errors';
import { SEARCH_EXPORTER_VERSION, exportSearchBundle } from './bundle';
import { evaluateSearchBundle } from './evaluate';
import { checkSearchBundleHealth } from './health';
import {
  readSearchCheckpointMeta,
  resolveSearchConfig,
  type SearchCheckpointMeta,
  type SearchKindConfig,
} from './spec';
import { trainSearch } from './train-kind';

const summary = (meta: SearchCheckpointMeta): CheckpointSummary => checkpointSummary('search', meta);

export const searchKind: ModelKind<SearchKindConfig> = {
  name: 'search',
  task: 'search',
  trainerVersion: 'search-1',
  exporterVersion: SEARCH_EXPORTER_VERSION,

  resolveConfig: (partial, seed) => resolveSearchConfig(partial ?? {}, seed),

  train: (ds, config, ctx) => trainSearch(ds, config, ctx),

  readCheckpoint: async (dir) => summary(await readSearchCheckpointMeta(dir)),

  async exportBundle(input) {
    const meta = await readSearchCheckpointMeta(input.checkpointDir);
    if (meta.datasetId !== input.datasetId)
      throw new RecflowError(
        ErrorType.InvalidInput,
        `checkpoint ${input.checkpointId} was trained on dataset ${meta.datasetId}, not ${input.datasetId}`,
      );
    return exportSearchBundle(input, meta);
  },

  evaluate: (bundleDir, ds, options, onProgress) => evaluateSearchBundle(bundleDir, ds, options, onProgress),

  checkHealth: (bundleDir, options) => checkSearchBundleHealth(bundleDir, options),
};
