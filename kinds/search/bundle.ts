/**
 * The search bundle (layout in lib/bundle.ts): the checkpoint's fine-tuned encoder exported in every configured
 * precision with the item index inside (kinds/search/export.ts) in `teacher/`, the distilled student in `student/`,
 * the catalogue (`items.json`), the hybrid ranker's settings (`bm25.json`, its dense weight tuned on validation),
 * `vocab.json` and `bundle.json`. Every variant is measured here and the compressed one `int8` serves is chosen by
 * the rule of kinds/search/variants.ts; the measurements and the choice are in `bundle.json`'s `search` section.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleManifest, PrecisionChoice, SearchBundleInfo, SearchVariantInfo } from '../../lib/bundle';
import { ErrorType, RecflowError } from '../../lib/errors';
import type { ExportInput } from '../types';
import { loadBaseModel } from './base-model';
import { Bm25Index } from './bm25';
import { catalogueOf, judgedQueries, requireSearch, type Catalogue, type JudgedQuery } from './data';
import { exportSearchModel, loadSearchModel, type LoadedSearchModel, type SearchManifest } from './export';
import { tuneHybridWeight, type HybridTuning } from './hybrid';
import { searchMetrics } from './metrics';
import type { EncoderPrecision } from './onnx-encoder';
import { timeSearchGraphs } from './rank';
import { ServedRanker, bundleBm25, servedWeight } from './served';
import { SearchSession } from './session';
import type { SearchCheckpointMeta } from './spec';
import { SearchTokenizer } from './tokenizer';
import { DEFAULT_TOLERANCES, chooseVariant, toleranceOf, variantName } from './variants';

/** Bump when the bundle changes (part of the bundle id). */
export const SEARCH_EXPORTER_VERSION = 'search-bundle-2';

/** File names of a search bundle. */
export const SEARCH_BUNDLE_FILES = { items: 'items.json', hybrid: 'bm25.json', vocab: 'vocab.json' } as const;

/** `items.json`: the index's rows. */
export interface SearchItemsFile {
  ids: string[];
  texts: string[];
}

/** `bm25.json`: the hybrid ranker (lib kinds/search/hybrid.ts) over the bundle's item texts. */
export interface HybridFile {
  k1: number;
  b: number;
  /** Weight of the (normalised) dense score of the fp32 teacher; 1 - weight for BM25. */
  weight: number;
  /** Which encoder's scores `weight` and `grid` combine. */
  dense: 'fp32';
  /** Validation NDCG@10 of each weight tried (fp32). */
  grid: Array<{ weight: number; ndcg: number }>;
  /**
   * Each variant's own weight (tuned on validation with that variant's dense scores: what it serves with, 1 being
   * dense only), its validation NDCG@10 and grid. Absent in bundles before `search-bundle-2` (they serve dense only).
   */
  variants?: Record<
    string,
    { weight: number; validationNdcg10: number; grid: Array<{ weight: number; ndcg: number }> }
  >;
  documents: number;
  averageLength: number;
}

/** Options of {@link exportSearchBundle} (measurement effort). */
export interface SearchBundleOptions {
  /** Timed rounds per variant and batch size. @default 40 */
  latencyRounds?: number;
  /** Batch sizes timed. @default [1, 16] */
  latencyBatches?: number[];
  /** Validation queries the choice and the hybrid weight are measured on. @default 500 */
  validationQueries?: number;
}

const sha = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The validation cases of a catalogue: grades by catalogue row (items outside the catalogue dropped). */
function casesOf(queries: JudgedQuery[], cat: Catalogue): Array<{ text: string; grades: Map<number, number> }> {
  const row = new Map(cat.items.map((item, r) => [item, r]));
  return queries
    .map((q) => ({
      text: q.text,
      grades: new Map([...q.grades].flatMap(([item, g]) => (row.has(item) ? [[row.get(item)!, g] as const] : []))),
    }))
    .filter((c) => c.grades.size > 0);
}

/**
 * Each case's dense scores over every catalogue row (the search graph with k = the catalogue, as a hybrid serves
 * it): `top` the rows best first (the graph's order), `all` the scores in row order.
 */
async function denseRows(
  s: SearchSession,
  cases: ReadonlyArray<{ text: string }>,
  n: number,
  maxLength: number,
): Promise<Array<{ top: number[]; all: Float32Array }>> {
  const out: Array<{ top: number[]; all: Float32Array }> = [];
  for (let i = 0; i < cases.length; i += 64) {
    const hits = await s.search(
      cases.slice(i, i + 64).map((c) => c.text),
      n,
      { maxLength },
    );
    for (const h of hits) {
      const all = new Float32Array(n);
      h.indices.forEach((r, j) => (all[r] = h.scores[j] ?? 0));
      out.push({ top: h.indices, all });
    }
  }
  return out;
}

/** Short queries to time: the validation queries of at most three words (the typical search), else a stand-in. */
function timingQueries(queries: JudgedQuery[]): string[] {
  const short = queries.map((q) => q.text).filter((t) => t.trim().split(/\s+/).length <= 3);
  return short.length ? short.slice(0, 32) : ['red running shoes'];
}

/**
 * Write the bundle of a search checkpoint into `input.dir` and return its manifest.
 * @throws {RecflowError} `InvalidInput` for a checkpoint of another dataset; `InvalidData` without a search log.
 */
export async function exportSearchBundle(
  input: ExportInput,
  meta: SearchCheckpointMeta,
  opts: SearchBundleOptions = {},
): Promise<BundleManifest> {
  const { ds, dir } = input;
  requireSearch(ds);
  if (meta.contents !== 'final')
    throw new RecflowError(
      ErrorType.InvalidInput,
      `checkpoint ${input.checkpointId} is an epoch checkpoint, not a final one`,
    );
  const config = meta.config;
  const cat = catalogueOf(ds);
  const items = cat.ids.map((id, r) => ({ id, text: cat.texts[r]! }));
  const teacher = await loadBaseModel(join(input.checkpointDir, 'model'));
  const lineage = {
    modelName: input.modelName,
    datasetId: input.datasetId,
    checkpointId: input.checkpointId,
    base: meta.base,
  };
  const lengths = { queryMaxLength: config.queryMaxLength, itemMaxLength: config.itemMaxLength };
  const train = requireSearch(ds).splits.train.text;
  const calibrationTexts = [...train.slice(0, 256), ...cat.texts.slice(0, 256)];
  const manifests: Partial<Record<'teacher' | 'student', SearchManifest>> = {};
  manifests.teacher = await mkdirAndExport(join(dir, 'teacher'), {
    weights: teacher.weights,
    config: teacher.config,
    tokenizerDir: teacher.dir,
    items,
    precisions: config.precisions,
    calibrationTexts,
    ...lengths,
    lineage: { ...lineage, model: 'teacher' },
  });
  if (meta.student) {
    const student = await loadBaseModel(join(input.checkpointDir, 'student'));
    manifests.student = await mkdirAndExport(join(dir, 'student'), {
      weights: student.weights,
      config: student.config,
      tokenizerDir: student.dir,
      items,
      precisions: config.studentPrecisions,
      calibrationTexts,
      ...lengths,
      lineage: { ...lineage, model: 'student', distilledFromLayers: meta.student.layers },
    });
  }

  // Measure every variant: size, latency (interleaved), validation quality.
  const validation = judgedQueries(ds, 'validation', opts.validationQueries ?? 500);
  const cases = casesOf(validation, cat);
  const sessions: Record<string, SearchSession> = {};
  const info: Record<string, SearchVariantInfo> = {};
  const tok = SearchTokenizer.load(join(dir, 'teacher'), Math.max(config.queryMaxLength, config.itemMaxLength));
  // The hybrid's BM25 side (the same for every variant); each variant's dense weight is tuned on its own scores.
  const bm25 = new Bm25Index(cat.texts);
  const bm25Scores = cases.map((c) => bm25.scores(c.text));
  const tuned: Record<string, HybridTuning | undefined> = {};
  try {
    for (const model of ['teacher', 'student'] as const) {
      const m = manifests[model];
      if (!m) continue;
      for (const p of m.precisions) {
        const name = variantName(model, p);
        const files = {
          encoder: `${model}/${m.files[p]!.encoder}`,
          search: `${model}/${m.files[p]!.search}`,
        };
        const s = await SearchSession.create(join(dir, files.search), tok, { intraOpThreads: 1 });
        sessions[name] = s;
        // Every row's dense score (k = the catalogue): its top 100 for the variant's own quality, all of them for
        // the variant's hybrid weight.
        const dense = await denseRows(s, cases, cat.texts.length, config.queryMaxLength);
        const q = searchMetrics(dense.map((d, i) => ({ ranking: d.top.slice(0, 100), grades: cases[i]!.grades })));
        tuned[name] = cases.length
          ? tuneHybridWeight(cases.map((c, i) => ({ bm25: bm25Scores[i]!, dense: dense[i]!.all, grades: c.grades })))
          : undefined;
        info[name] = {
          model,
          encoder: p,
          layers: m.layers,
          files,
          bytes: (await stat(join(dir, files.search))).size,
          latencyMs: {},
          validation: {
            'ndcg@10': round(q.ndcg),
            'mrr@10': round(q.mrr),
            'recall@100': round(q.recall),
            queries: q.queries,
          },
          tolerance: toleranceOf({ model }),
          qualifies: false,
        };
      }
    }
    const latency = await timeSearchGraphs(
      sessions,
      timingQueries(validation),
      opts.latencyBatches ?? [1, 16],
      opts.latencyRounds ?? 40,
      config.queryMaxLength,
    );
    for (const [name, l] of Object.entries(latency)) info[name]!.latencyMs = l;

    const lengthsOf = cat.texts.map((t) => t.split(/\s+/).length);
    const fp32Tuning = tuned.fp32;
    const hybrid: HybridFile = {
      k1: bm25.k1,
      b: bm25.b,
      weight: fp32Tuning?.weight ?? 1,
      dense: 'fp32',
      grid: fp32Tuning?.grid ?? [],
      variants: Object.fromEntries(
        Object.entries(tuned).map(([name, t]) => [
          name,
          { weight: t?.weight ?? 1, validationNdcg10: round(t?.metrics.ndcg ?? NaN), grid: t?.grid ?? [] },
        ]),
      ),
      documents: cat.texts.length,
      averageLength: lengthsOf.reduce((a, x) => a + x, 0) / Math.max(1, lengthsOf.length),
    };

    const choice = chooseVariant(info, DEFAULT_TOLERANCES);
    const itemsFile: SearchItemsFile = { ids: cat.ids, texts: cat.texts };
    await writeFile(join(dir, SEARCH_BUNDLE_FILES.items), `${JSON.stringify(itemsFile)}\n`);
    await writeFile(join(dir, SEARCH_BUNDLE_FILES.hybrid), `${JSON.stringify(hybrid, null, 2)}\n`);
    const vocabText = `${JSON.stringify({ users: ds.vocab.users, items: ds.vocab.items })}\n`;
    await writeFile(join(dir, SEARCH_BUNDLE_FILES.vocab), vocabText);

    const chosen = choice.variants[choice.serves.int8]!;
    const fp32Info = choice.variants.fp32!;
    const servingPrecision: PrecisionChoice = {
      preferred: choice.preferred,
      fp32: fp32Info.latencyMs,
      int8: chosen.latencyMs,
      sizes: { fp32: fp32Info.bytes, int8: chosen.bytes },
      reason: choice.reason,
    };
    const size = async (f: string) => (await stat(join(dir, f))).size;
    const search: SearchBundleInfo = {
      serves: choice.serves,
      variants: choice.variants,
      choice: { variant: choice.serves.int8, preferred: choice.preferred, reason: choice.reason },
      baseModel: { ...meta.base, ...(config.baseModel ? { dir: config.baseModel } : {}) },
      items: cat.ids.length,
      queryMaxLength: config.queryMaxLength,
      itemMaxLength: config.itemMaxLength,
      itemsFile: SEARCH_BUNDLE_FILES.items,
      hybrid: {
        file: SEARCH_BUNDLE_FILES.hybrid,
        weight: hybrid.weight,
        k1: hybrid.k1,
        b: hybrid.b,
        validationNdcg10: round(fp32Tuning?.metrics.ndcg ?? NaN),
        variants: Object.fromEntries(
          Object.entries(hybrid.variants ?? {}).map(([name, v]) => [
            name,
            { weight: v.weight, validationNdcg10: v.validationNdcg10 },
          ]),
        ),
      },
    };
    const manifest: BundleManifest = {
      kind: 'search',
      task: 'search',
      modelName: input.modelName,
      datasetId: input.datasetId,
      checkpointId: input.checkpointId,
      opset: manifests.teacher.opset,
      files: {
        fp32: { score: fp32Info.files.encoder, recommend: fp32Info.files.search },
        int8: { score: chosen.files.encoder, recommend: chosen.files.search },
      },
      sizes: {
        fp32: { score: await size(fp32Info.files.encoder), recommend: await size(fp32Info.files.search) },
        int8: { score: await size(chosen.files.encoder), recommend: await size(chosen.files.search) },
      },
      servingPrecision,
      vocabHash: sha(vocabText),
      search,
      createdAt: new Date().toISOString(),
    };
    await writeFile(join(dir, 'bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } finally {
    await Promise.all(Object.values(sessions).map((s) => s.release()));
  }
}

const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : 0);

async function mkdirAndExport(
  dir: string,
  input: Parameters<typeof exportSearchModel>[1] & { precisions: EncoderPrecision[] },
): Promise<SearchManifest> {
  await mkdir(dir, { recursive: true });
  return exportSearchModel(dir, input);
}

/** A search bundle folder read back: its manifest (with the `search` section) and catalogue. */
export interface SearchBundle {
  dir: string;
  manifest: BundleManifest & { search: SearchBundleInfo };
  items: SearchItemsFile;
}

/**
 * Read a search bundle's `bundle.json` and `items.json`.
 * @throws {RecflowError} `ArtifactMissing` when a file is missing, `InvalidInput` when the bundle is not a search one.
 */
export async function readSearchBundle(dir: string): Promise<SearchBundle> {
  const read = async <T>(f: string): Promise<T> => {
    try {
      return JSON.parse(await readFile(join(dir, f), 'utf8')) as T;
    } catch (err) {
      throw new RecflowError(ErrorType.ArtifactMissing, `search bundle ${dir}: ${f}: ${(err as Error).message}`);
    }
  };
  const manifest = await read<BundleManifest>('bundle.json');
  if (manifest.task !== 'search' || !manifest.search)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `bundle ${dir} is a ${manifest.task ?? 'recommend'} bundle (kind ${manifest.kind ?? 'two-tower'}), not a search one`,
    );
  const items = await read<SearchItemsFile>(manifest.search.itemsFile);
  if (items.ids.length !== manifest.search.items)
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `search bundle ${dir}: ${manifest.search.itemsFile} has ${items.ids.length} items, bundle.json ${manifest.search.items}`,
    );
  return { dir, manifest: manifest as SearchBundle['manifest'], items };
}

/**
 * The variant a precision (or a variant name) names in a search bundle.
 * @throws {RecflowError} `ArtifactMissing` when the bundle has no such variant.
 */
export function variantOf(b: SearchBundle, what: string): { name: string; info: SearchVariantInfo } {
  const name = what === 'fp32' || what === 'int8' ? b.manifest.search.serves[what] : what;
  const info = b.manifest.search.variants[name];
  if (!info)
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `search bundle ${b.dir}: no variant '${name}' (has ${Object.keys(b.manifest.search.variants).join(', ')})`,
    );
  return { name, info };
}

/**
 * Load one variant of a search bundle for serving (one intra-op thread by default): `fp32`, `int8` (what the
 * export chose) or a variant name.
 */
export async function loadSearchVariant(
  b: SearchBundle,
  what: string,
  threads = 1,
): Promise<{ name: string; info: SearchVariantInfo; model: LoadedSearchModel }> {
  const { name, info } = variantOf(b, what);
  const model = await loadSearchModel(join(b.dir, info.model), info.encoder as EncoderPrecision, threads);
  return { name, info, model };
}

/**
 * Load one variant of a search bundle with the ranker it serves (kinds/search/served.ts): the hybrid with the
 * variant's tuned dense weight (BM25 built over the bundle's item texts, or `bm25` when given), dense only at weight
 * 1 and for bundles without per-variant weights. What serving, its infra check and the evaluation all rank with.
 */
export async function loadServedSearch(
  b: SearchBundle,
  what: string,
  threads = 1,
  bm25?: Bm25Index,
): Promise<{ name: string; info: SearchVariantInfo; model: LoadedSearchModel; ranker: ServedRanker }> {
  const v = await loadSearchVariant(b, what, threads);
  const s = b.manifest.search;
  const weight = servedWeight(s, v.name);
  // BM25 scores rows of items.json, the graph rows of its own index: they must be the same items in the same order.
  const graphIds = v.model.manifest.itemIds;
  if (weight < 1 && (graphIds.length !== b.items.ids.length || graphIds.some((id, i) => id !== b.items.ids[i]))) {
    await v.model.session.release();
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `search bundle ${b.dir}: the ${v.name} index's items differ from ${s.itemsFile} (the hybrid needs the same rows)`,
    );
  }
  const ranker = new ServedRanker({
    session: v.model.session,
    items: b.items.ids.length,
    weight,
    ...(weight < 1 ? { bm25: bm25 ?? bundleBm25(s, b.items.texts) } : {}),
    queryMaxLength: s.queryMaxLength,
  });
  return { ...v, ranker };
}
