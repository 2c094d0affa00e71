import { Context, log } from '@temporalio/activity';
import { hashInputs, type ArtifactRef } from '../lib/artifacts';
import type { BundleManifest } from '../lib/bundle';
import { loadDataset } from '../lib/data/dataset';
import { ErrorType, RecflowError } from '../lib/errors';
import { readCheckpoint, towerFeatures } from '../kinds/two-tower/spec';
import { loadBundle, writeBundle } from '../lib/onnx/bundle-io';
import { EXPORTER_VERSION } from '../kinds/two-tower/export';
import type { ActivityDeps } from './deps';
import { withFailures } from './failures';

export interface ExportModelInput {
  checkpointId: string;
  datasetId: string;
  /** @default 'two-tower' */
  modelName?: string;
}

export interface ExportModelResult {
  bundle: ArtifactRef;
  /** True when a bundle for the same inputs already existed. */
  reused: boolean;
  sizes: BundleManifest['sizes'];
}

/** Export activities: checkpoint + dataset to a `bundle` artifact (fp32 and int8 ONNX graphs). */
export function createExportActivities(deps: ActivityDeps) {
  return {
    /**
     * Export a checkpoint to a bundle (lib/bundle.ts). Idempotent: the bundle id is the hash of
     * `{checkpointId, datasetId, exporterVersion, modelName}`, an existing bundle is returned as is.
     */
    async exportModel(input: ExportModelInput): Promise<ExportModelResult> {
      return withFailures(async () => {
        const modelName = input.modelName ?? 'two-tower';
        const id = hashInputs({
          checkpointId: input.checkpointId,
          datasetId: input.datasetId,
          exporterVersion: EXPORTER_VERSION,
          modelName,
        });
        const checkpointRef = await deps.store.get('checkpoint', input.checkpointId);
        const datasetRef = await deps.store.get('dataset', input.datasetId);
        const ref = await deps.store.put('bundle', id, async (dir) => {
          const { meta, weights } = await readCheckpoint(checkpointRef.path);
          if (meta.datasetId !== input.datasetId) {
            throw new RecflowError(
              ErrorType.InvalidInput,
              `checkpoint ${input.checkpointId} was trained on dataset ${meta.datasetId}, not ${input.datasetId}`,
            );
          }
          const ds = await loadDataset(datasetRef.path);
          Context.current().heartbeat({ step: 'export', checkpointId: input.checkpointId });
          const manifest = await writeBundle(dir, {
            modelName,
            datasetId: input.datasetId,
            checkpointId: input.checkpointId,
            weights,
            features: towerFeatures(ds),
            meta,
            vocab: ds.vocab,
            popularity: ds.items.popularity,
          });
          log.info('exported bundle', { bundleId: id, checkpointId: input.checkpointId, sizes: manifest.sizes });
        });
        const bundle = await loadBundle(ref.path);
        const { reused, ...artifact } = ref;
        return { bundle: artifact, reused, sizes: bundle.manifest.sizes };
      });
    },
  };
}
