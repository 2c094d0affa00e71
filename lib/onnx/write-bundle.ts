/**
 * Write a bundle folder (the layout of lib/bundle.ts) from already-built graphs, for any recommender kind:
 * vocab.json, popular.json, history.bin (when given the training interactions), the four ONNX files and bundle.json
 * (with `kind` and the graphs' input names).
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleManifest, Precision } from '../bundle';
import type { Interactions, Vocabularies } from '../data/dataset';
import type { KindName } from '../kinds';
import { OPSET } from './builder';
import { BUNDLE_FILES, buildHistories, popularItems, writeHistories } from './bundle-io';

/** What {@link writeGraphBundle} needs. */
export interface GraphBundleInput {
  /** The model kind (`als`, `ease`, ...), recorded in bundle.json. */
  kind: KindName;
  modelName: string;
  version?: string;
  datasetId: string;
  checkpointId: string;
  vocab: Pick<Vocabularies, 'users' | 'items'>;
  /** Item scores whose order popular.json lists (serving's fallback for an unknown user). */
  popularity: Float32Array;
  /** The training interactions (time-ordered): each known user's history goes to history.bin (lib/onnx/bundle-io.ts). */
  history?: Pick<Interactions, 'user' | 'item' | 'timestamp'>;
  /** The encoded graphs, given the sha256 of vocab.json (the graphs record it). */
  graphs: (vocabHash: string) => Record<Precision, { score: Uint8Array; recommend: Uint8Array }>;
}

/** A bundle manifest with the kind and the graphs' inputs. */
export type KindBundleManifest = BundleManifest & { kind: KindName; inputs: { score: string[]; recommend: string[] } };

/** Write the bundle into `dir` (a fresh folder); returns the manifest. */
export async function writeGraphBundle(dir: string, input: GraphBundleInput): Promise<KindBundleManifest> {
  const vocabJson = `${JSON.stringify({ users: input.vocab.users, items: input.vocab.items })}\n`;
  const vocabHash = createHash('sha256').update(vocabJson).digest('hex');
  await writeFile(join(dir, 'vocab.json'), vocabJson);
  await writeFile(join(dir, 'popular.json'), `${JSON.stringify(popularItems(input.vocab, input.popularity))}\n`);
  const history = input.history
    ? await writeHistories(dir, buildHistories(input.vocab.users.length, input.history))
    : undefined;
  const graphs = input.graphs(vocabHash);
  const sizes = { fp32: { score: 0, recommend: 0 }, int8: { score: 0, recommend: 0 } };
  for (const p of ['fp32', 'int8'] as const)
    for (const k of ['score', 'recommend'] as const) {
      await writeFile(join(dir, BUNDLE_FILES[p][k]), graphs[p][k]);
      sizes[p][k] = graphs[p][k].byteLength;
    }
  const manifest: KindBundleManifest = {
    kind: input.kind,
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
    inputs: { score: ['user', 'items', 'history'], recommend: ['user', 'k', 'exclude', 'history'] },
    createdAt: new Date().toISOString(),
  };
  await writeFile(join(dir, 'bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
