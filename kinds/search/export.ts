/**
 * Export a search model into a folder the serving side loads: for each precision an encoder graph
 * (`encoder.<precision>.onnx`: texts -> embeddings) and a search graph with the item index inside
 * (`search.<precision>.onnx`: query -> top-k rows), the tokenizer files, and `search.json` (dims, lengths, item ids in
 * index order, lineage, file checksums).
 *
 * The catalogue's embeddings are computed here once, with the fp32 encoder of the same weights: items are encoded
 * offline, so an int8 query encoder searches fp32 item vectors (bench/search.ts measures that this keeps more
 * quality than an int8 index). A model with other weights (the distilled student) gets its own index.
 */
import { createHash } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../../lib/errors';
import type { BaseModelSource, BertConfig, BertWeights } from './base-model';
import { calibrateStaticScales } from './calibrate';
import { buildEncoderGraph, buildSearchGraph, SEARCH_OPSET, type EncoderPrecision } from './onnx-encoder';
import { SearchSession } from './session';
import { SearchTokenizer } from './tokenizer';

/** One catalogue row of the index. */
export interface IndexItem {
  id: string;
  text: string;
}

/** What {@link exportSearchModel} needs. */
export interface SearchExportInput {
  weights: BertWeights;
  config: BertConfig;
  /** Folder of the tokenizer files (the base model's). */
  tokenizerDir: string;
  items: IndexItem[];
  /** @default ['fp32', 'int8-dynamic'] */
  precisions?: EncoderPrecision[];
  /** Texts to calibrate `int8-static` on (training queries and titles). */
  calibrationTexts?: string[];
  /** @default 32 */
  queryMaxLength?: number;
  /** @default 64 */
  itemMaxLength?: number;
  /** Lineage written into search.json and the graphs' metadata. */
  lineage?: { modelName?: string; version?: string; base?: BaseModelSource; [key: string]: unknown };
}

/** The contents of `search.json`. */
export interface SearchManifest {
  format: 'recflow-search/1';
  opset: number;
  dim: number;
  layers: number;
  queryMaxLength: number;
  itemMaxLength: number;
  precisions: EncoderPrecision[];
  files: Record<string, { encoder: string; search: string }>;
  tokenizer: string[];
  items: number;
  /** Item ids in index order: row r of the search graph's `indices` is `itemIds[r]`. */
  itemIds: string[];
  sha256: Record<string, string>;
  lineage: Record<string, unknown>;
}

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/**
 * Write the graphs, tokenizer and `search.json` into `dir` (an existing, empty folder). Returns the manifest.
 * @throws {RecflowError} `InvalidInput` for an empty catalogue, duplicate item ids or `int8-static` without texts.
 */
export async function exportSearchModel(dir: string, input: SearchExportInput): Promise<SearchManifest> {
  const precisions = input.precisions ?? ['fp32', 'int8-dynamic'];
  if (!input.items.length) throw new RecflowError(ErrorType.InvalidInput, 'search export: the catalogue is empty');
  const ids = new Set<string>();
  input.items.forEach((it, row) => {
    if (ids.has(it.id))
      throw new RecflowError(ErrorType.InvalidInput, `search export: item id '${it.id}' repeats at row ${row}`);
    ids.add(it.id);
  });
  const qLen = input.queryMaxLength ?? 32;
  const dLen = input.itemMaxLength ?? 64;
  const tok = SearchTokenizer.load(input.tokenizerDir, Math.max(qLen, dLen));
  const meta: Record<string, string> = {
    queryMaxLength: String(qLen),
    ...(input.lineage?.modelName ? { modelName: input.lineage.modelName } : {}),
    ...(input.lineage?.version ? { version: input.lineage.version } : {}),
  };
  const fp32 = buildEncoderGraph(input.weights, input.config, { metadata: meta });
  const session = await SearchSession.create(fp32, tok);
  let index: Float32Array;
  try {
    index = await session.encode(
      input.items.map((i) => i.text),
      { maxLength: dLen },
    );
  } finally {
    await session.release();
  }
  let scales: Record<string, number> | undefined;
  if (precisions.includes('int8-static')) {
    if (!input.calibrationTexts?.length) {
      throw new RecflowError(ErrorType.InvalidInput, 'search export: int8-static needs calibrationTexts');
    }
    scales = await calibrateStaticScales(input.weights, input.config, tok, input.calibrationTexts, { maxLength: qLen });
  }
  const files: SearchManifest['files'] = {};
  const hashes: Record<string, string> = {};
  for (const p of precisions) {
    const opts = { precision: p, staticScales: scales, metadata: { ...meta, precision: p } };
    const enc = p === 'fp32' ? fp32 : buildEncoderGraph(input.weights, input.config, opts);
    const search = buildSearchGraph(input.weights, input.config, index, opts);
    files[p] = { encoder: `encoder.${p}.onnx`, search: `search.${p}.onnx` };
    await writeFile(join(dir, files[p].encoder), enc);
    await writeFile(join(dir, files[p].search), search);
    hashes[files[p].encoder] = sha(enc);
    hashes[files[p].search] = sha(search);
  }
  const tokenizer = ['tokenizer.json', 'tokenizer_config.json'].filter((f) => existsSync(join(input.tokenizerDir, f)));
  for (const f of tokenizer) await copyFile(join(input.tokenizerDir, f), join(dir, f));
  const manifest: SearchManifest = {
    format: 'recflow-search/1',
    opset: SEARCH_OPSET,
    dim: input.config.hiddenSize,
    layers: input.config.numLayers,
    queryMaxLength: qLen,
    itemMaxLength: dLen,
    precisions,
    files,
    tokenizer,
    items: input.items.length,
    itemIds: input.items.map((i) => i.id),
    sha256: hashes,
    lineage: input.lineage ?? {},
  };
  await writeFile(join(dir, 'search.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** A loaded search folder: the manifest, the tokenizer and one search session. */
export interface LoadedSearchModel {
  manifest: SearchManifest;
  session: SearchSession;
  /** Top-k item ids and scores for one query. */
  search(query: string, k: number): Promise<Array<{ id: string; score: number }>>;
  /**
   * Top-k for several queries in one onnxruntime call (a serving micro-batch). A query's results do not depend on
   * the others in the batch (per-row int8 scales, batched pooling: kinds/search/onnx-encoder.ts).
   */
  searchBatch(queries: readonly string[], k: number): Promise<Array<Array<{ id: string; score: number }>>>;
}

/**
 * Load `search.<precision>.onnx` from an exported folder with one intra-op thread (serving).
 * @throws {RecflowError} `ArtifactMissing` when the folder lacks the precision or a file's checksum differs.
 */
export async function loadSearchModel(
  dir: string,
  precision: EncoderPrecision = 'fp32',
  threads = 1,
): Promise<LoadedSearchModel> {
  let manifest: SearchManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'search.json'), 'utf8')) as SearchManifest;
  } catch (err) {
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `${join(dir, 'search.json')}: cannot read (${(err as Error).message})`,
    );
  }
  const f = manifest.files[precision];
  if (!f)
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `${dir}: no ${precision} graphs (has ${manifest.precisions.join(', ')})`,
    );
  const bytes = await readFile(join(dir, f.search));
  if (sha(bytes) !== manifest.sha256[f.search]) {
    throw new RecflowError(ErrorType.ArtifactMissing, `${join(dir, f.search)}: sha256 does not match search.json`);
  }
  const tok = SearchTokenizer.load(dir, manifest.queryMaxLength);
  const session = await SearchSession.create(bytes, tok, { intraOpThreads: threads });
  const searchBatch = async (queries: readonly string[], k: number) => {
    const hits = await session.search(queries, k, { maxLength: manifest.queryMaxLength });
    return hits.map((h) =>
      h.indices.map((row, i) => ({ id: manifest.itemIds[row] ?? String(row), score: h.scores[i] ?? 0 })),
    );
  };
  return {
    manifest,
    session,
    searchBatch,
    search: async (query: string, k: number) => (await searchBatch([query], k))[0] ?? [],
  };
}
