/**
 * The two-tower kind's bundle writer: vocab.json, popular.json, the users' histories (history.bin), the four ONNX
 * graphs (lib/bundle.ts contract) and bundle.json.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleManifest } from '../../lib/bundle';
import type { Interactions, Vocabularies } from '../../lib/data/dataset';
import { OPSET } from '../../lib/onnx/builder';
import { BUNDLE_FILES, buildHistories, popularItems, writeHistories } from '../../lib/onnx/bundle-io';
import { exportGraphs, type ExportMeta } from './export';
import type { ModelWeights, TowerFeatures } from './spec';

export interface WriteBundleInput {
  modelName: string;
  version?: string;
  datasetId: string;
  checkpointId: string;
  weights: ModelWeights;
  features: TowerFeatures;
  meta: Pick<ExportMeta, 'config' | 'sizes'>;
  vocab: Pick<Vocabularies, 'users' | 'items'>;
  /** Training interaction count by item index. */
  popularity: Float32Array;
  /**
   * The training interactions (time-ordered): each known user's history is stored in the bundle so serving leaves
   * out what the user already has. Without it the bundle has no history and nothing is excluded.
   */
  history?: Pick<Interactions, 'user' | 'item' | 'timestamp'>;
}

/**
 * Write a complete bundle into `dir` (a fresh folder, e.g. the temp folder of `ArtifactStore.put`): vocab.json,
 * popular.json, history.bin (with `history`), the four ONNX graphs and bundle.json. Returns the manifest.
 */
export async function writeBundle(dir: string, input: WriteBundleInput): Promise<BundleManifest> {
  const vocabJson = `${JSON.stringify({ users: input.vocab.users, items: input.vocab.items })}\n`;
  const vocabHash = createHash('sha256').update(vocabJson).digest('hex');
  await writeFile(join(dir, 'vocab.json'), vocabJson);
  await writeFile(join(dir, 'popular.json'), `${JSON.stringify(popularItems(input.vocab, input.popularity))}\n`);
  const history = input.history
    ? await writeHistories(dir, buildHistories(input.vocab.users.length, input.history))
    : undefined;
  const graphs = exportGraphs(input.weights, input.features, {
    modelName: input.modelName,
    version: input.version,
    datasetId: input.datasetId,
    checkpointId: input.checkpointId,
    vocabHash,
    config: input.meta.config,
    sizes: input.meta.sizes,
  });
  const sizes = { fp32: { score: 0, recommend: 0 }, int8: { score: 0, recommend: 0 } };
  for (const p of ['fp32', 'int8'] as const)
    for (const k of ['score', 'recommend'] as const) {
      await writeFile(join(dir, BUNDLE_FILES[p][k]), graphs[p][k]);
      sizes[p][k] = graphs[p][k].byteLength;
    }
  const manifest: BundleManifest = {
    kind: 'two-tower',
    task: 'recommend',
    modelName: input.modelName,
    ...(input.version ? { version: input.version } : {}),
    datasetId: input.datasetId,
    checkpointId: input.checkpointId,
    opset: OPSET,
    files: BUNDLE_FILES,
    sizes,
    vocabHash,
    ...(history ? { history } : {}),
    createdAt: new Date().toISOString(),
  };
  await writeFile(join(dir, 'bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
