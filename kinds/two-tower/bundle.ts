/**
 * The two-tower kind's bundle writer: vocab.json, popular.json (the recent-popularity prior's order: serving's
 * fallback for an unknown user), the four ONNX graphs (lib/bundle.ts contract plus the optional `history` input) and
 * bundle.json (with the kind and the graphs' inputs).
 */
import type { BundleManifest } from '../../lib/bundle';
import type { Interactions, Vocabularies } from '../../lib/data/dataset';
import { writeGraphBundle } from '../../lib/onnx/write-bundle';
import { exportGraphs, type ExportMeta } from './export';
import { defaultExtras, type ModelWeights, type TowerFeatures } from './spec';

export interface WriteBundleInput {
  modelName: string;
  version?: string;
  datasetId: string;
  checkpointId: string;
  weights: ModelWeights;
  /** The dataset's tower features, stored histories included (`towerFeatures(ds)`). */
  features: TowerFeatures;
  /** The checkpoint's config, sizes and extras; without extras, {@link defaultExtras} of `popularity`. */
  meta: Pick<ExportMeta, 'config' | 'sizes'> & Partial<Pick<ExportMeta, 'extras'>>;
  vocab: Pick<Vocabularies, 'users' | 'items'>;
  /** Training interaction count by item index (popular.json when the model has no fitted prior). */
  popularity: Float32Array;
  /**
   * The training interactions (time-ordered): each known user's history is stored in the bundle (history.bin), which
   * serving feeds to the graphs' `history` input and leaves out of recommendations. Without it the bundle has none.
   */
  history?: Pick<Interactions, 'user' | 'item' | 'timestamp'>;
}

/**
 * Write a complete bundle into `dir` (a fresh folder, e.g. the temp folder of `ArtifactStore.put`): vocab.json,
 * popular.json, history.bin (with `history`), the four ONNX graphs and bundle.json. Returns the manifest.
 */
export async function writeBundle(dir: string, input: WriteBundleInput): Promise<BundleManifest> {
  const extras = input.meta.extras ?? defaultExtras(input.popularity);
  return writeGraphBundle(dir, {
    kind: 'two-tower',
    modelName: input.modelName,
    ...(input.version ? { version: input.version } : {}),
    datasetId: input.datasetId,
    checkpointId: input.checkpointId,
    vocab: input.vocab,
    popularity: extras.priorConfig ? extras.prior : input.popularity,
    ...(input.history ? { history: input.history } : {}),
    graphs: (vocabHash) =>
      exportGraphs(input.weights, input.features, {
        modelName: input.modelName,
        version: input.version,
        datasetId: input.datasetId,
        checkpointId: input.checkpointId,
        vocabHash,
        config: input.meta.config,
        sizes: input.meta.sizes,
        extras,
      }),
  });
}
