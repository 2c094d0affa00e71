/**
 * Reading `bundle` artifact folders (the contract is lib/bundle.ts), and helpers every kind's bundle writer shares.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleManifest, Precision } from '../bundle';
import type { Vocabularies } from '../data/dataset';
import { ErrorType, RecflowError } from '../errors';

/** How many item ids popular.json holds (serving's fallback needs the head only). */
export const POPULAR_LIMIT = 1000;

/** File names of the graphs inside a bundle. */
export const BUNDLE_FILES: BundleManifest['files'] = {
  fp32: { score: 'score.fp32.onnx', recommend: 'recommend.fp32.onnx' },
  int8: { score: 'score.int8.onnx', recommend: 'recommend.int8.onnx' },
};

/** Item ids by descending popularity (ties by index), index 0 and never-seen items left out. */
export function popularItems(
  vocab: Pick<Vocabularies, 'items'>,
  popularity: Float32Array,
  limit = POPULAR_LIMIT,
): string[] {
  const idx: number[] = [];
  for (let i = 1; i < popularity.length; i++) if ((popularity[i] ?? 0) > 0) idx.push(i);
  idx.sort((a, b) => (popularity[b] ?? 0) - (popularity[a] ?? 0) || a - b);
  return idx.slice(0, limit).map((i) => vocab.items[i] ?? String(i));
}

/** A bundle folder read back: manifest, paths of its graphs, and the vocabulary sizes. */
export interface LoadedBundle {
  dir: string;
  manifest: BundleManifest;
  paths: Record<Precision, { score: string; recommend: string }>;
}

/**
 * Read a bundle folder's manifest and check that its files are there with the recorded sizes.
 * @throws {RecflowError} `ArtifactMissing` naming the missing or truncated file.
 */
export async function loadBundle(dir: string): Promise<LoadedBundle> {
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8')) as BundleManifest;
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `bundle ${dir}: bundle.json: ${(err as Error).message}`);
  }
  const paths = { fp32: { score: '', recommend: '' }, int8: { score: '', recommend: '' } };
  for (const p of ['fp32', 'int8'] as const)
    for (const k of ['score', 'recommend'] as const) {
      const file = join(dir, manifest.files[p][k]);
      const size = await stat(file).then(
        (s) => s.size,
        () => -1,
      );
      if (size !== manifest.sizes[p][k])
        throw new RecflowError(
          ErrorType.ArtifactMissing,
          `bundle ${dir}: ${manifest.files[p][k]} is ${size < 0 ? 'missing' : `${size} bytes, expected ${manifest.sizes[p][k]}`}`,
        );
      paths[p][k] = file;
    }
  return { dir, manifest, paths };
}
