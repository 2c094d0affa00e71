/**
 * Evaluation of a search bundle on a dataset's held-out TEST queries (the test split's queries with events), what
 * serves being what is measured: each precision's model is the ranker it serves (kinds/search/served.ts, the code
 * `/v1/search` runs): the hybrid of BM25 and the served variant's dense scores at that variant's tuned weight, or
 * the variant's dense ranking at weight 1 and for bundles without per-variant weights (onnxruntime, one thread,
 * top 100 of the bundle's catalogue). Beside them, on the same queries:
 * - every variant's dense ranking (fp32, the int8 encoders, the student);
 * - the hybrid of the fp32 encoder (`hybrid`, the export's fp32 weight) and of each other variant that serves one
 *   (`hybrid-<variant>`);
 * - BM25 (kinds/search/bm25.ts, Lucene-like, k1 1.2, b 0.75) over the bundle's item texts: the lexical baseline;
 * - zero-shot: the pretrained base encoder (the lineage's weights, checked by sha256) without fine-tuning;
 * - popularity (training interactions; the same list for every query), as every report has it.
 *
 * Relevance is the dataset's observed grades (3 purchase, 2 add to cart, 1 click) by dataset item; a judged item a
 * bundle does not have cannot be retrieved (it still counts as relevant), so reports of bundles with different
 * catalogues (the champion's) are comparable query by query: the per-query NDCG@10 of `perUser` (one value per
 * test query, same order in every report of the dataset) is what the champion gate's paired bootstrap resamples.
 *
 * The report (lib/eval/evaluate.ts `EvaluationReport`): `models.fp32` is what fp32 serves (the fine-tuned fp32
 * encoder, hybrid or dense) and `models.int8` what int8 serves (the compressed variant the export chose, hybrid at
 * its own weight or dense; `variant` names the encoder variant): the gates (champion, int8 drop, beats BM25) read
 * them. `baselines` hold `bm25` and `zeroShot`; `search` has every ranker side by side with the export's size and
 * latency per variant, and `served` says which ranker each precision serves. */
import { hashInputs } from '../../lib/artifacts';
import type { Precision } from '../../lib/bundle';
import type { LoadedDataset } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import {
  resolveEvaluateOptions,
  type BaselineEvaluation,
  type EvaluateOptions,
  type EvaluationReport,
  type Metrics,
  type ModelEvaluation,
  type SearchEvaluation,
  type SearchRanker,
} from '../../lib/eval/evaluate';
import { loadBaseModel, resolveBaseModelDir } from './base-model';
import { judgedQueries, requireSearch, type JudgedQuery } from './data';
import { searchMetrics, type GradedCase } from './metrics';
import { buildEncoderGraph } from './onnx-encoder';
import { denseScores, perQueryNdcg, topRows } from './rank';
import { readSearchBundle, loadSearchVariant, type SearchBundle } from './bundle';
import { ServedRanker, bundleBm25, servedWeight } from './served';
import { SearchSession } from './session';
import { SearchTokenizer } from './tokenizer';

/** Bump when search evaluation changes (part of the test split key). */
export const SEARCH_EVAL_VERSION = 'search-eval-2';

/** Depth of every ranking (Recall@100). */
const DEPTH = 100;

/** The metrics of a set of rankings in dataset item indices (-1: an item the dataset does not know). */
function evaluateRankings(queries: JudgedQuery[], rankings: ArrayLike<number>[], variant?: string): ModelEvaluation {
  const cases: GradedCase[] = queries.map((q, i) => ({ ranking: rankings[i] ?? [], grades: q.grades }));
  const m = searchMetrics(cases, { ndcg: 10, mrr: 10, recall: DEPTH });
  const overall: Metrics = { 'ndcg@10': m.ndcg, 'mrr@10': m.mrr, 'recall@100': m.recall, queries: m.queries };
  // Segments by query length: one word (often an attribute or a type alone), two or three, four and more.
  const segments: Record<string, Metrics> = {};
  const words = (t: string) => t.trim().split(/\s+/).length;
  for (const [name, keep] of [
    ['words:1', (n: number) => n === 1],
    ['words:2-3', (n: number) => n >= 2 && n <= 3],
    ['words:4+', (n: number) => n >= 4],
  ] as const) {
    const sub = cases.filter((_, i) => keep(words(queries[i]!.text)));
    if (!sub.length) continue;
    const s = searchMetrics(sub, { ndcg: 10, mrr: 10, recall: DEPTH });
    segments[name] = { 'ndcg@10': s.ndcg, 'mrr@10': s.mrr, 'recall@100': s.recall, queries: s.queries };
  }
  const per = perQueryNdcg(cases);
  return { overall, segments, perUser: { users: per.length, 'ndcg@10': per }, ...(variant ? { variant } : {}) };
}

/** Rows of the bundle's catalogue -> dataset item indices. */
function rowToItem(b: SearchBundle, ds: LoadedDataset): Int32Array {
  const index = new Map(ds.vocab.items.map((id, i) => [id, i]));
  return Int32Array.from(b.items.ids, (id) => index.get(id) ?? -1);
}

/** Zero-shot rankings: the base encoder named by the bundle's lineage, over the bundle's catalogue. */
async function zeroShotRankings(
  b: SearchBundle,
  queries: JudgedQuery[],
  onProgress: (what: string) => void,
): Promise<{ rankings: number[][]; description: string; config: Record<string, unknown> } | string> {
  const lineage = b.manifest.search.baseModel as { dir?: string; name?: string; weightsSha256?: string };
  const dir = resolveBaseModelDir(lineage.dir);
  let base;
  try {
    base = await loadBaseModel(dir);
  } catch (err) {
    return `the base model is not on this worker (${(err as Error).message})`;
  }
  if (lineage.weightsSha256 && base.source.weightsSha256 !== lineage.weightsSha256)
    return `the base model in ${dir} (sha256 ${base.source.weightsSha256.slice(0, 12)}) is not the bundle's (${lineage.weightsSha256.slice(0, 12)})`;
  const s = b.manifest.search;
  const tok = SearchTokenizer.load(base.dir, Math.max(s.queryMaxLength, s.itemMaxLength));
  const session = await SearchSession.create(buildEncoderGraph(base.weights, base.config), tok);
  try {
    onProgress('zero-shot: encoding the catalogue');
    const docs = await session.encode(b.items.texts, { maxLength: s.itemMaxLength });
    const q = await session.encode(
      queries.map((x) => x.text),
      { maxLength: s.queryMaxLength },
    );
    const rankings = queries.map((_, i) => topRows(denseScores(q, docs, session.dim, i), DEPTH));
    return {
      rankings,
      description: `${base.source.name} as pretrained (no fine-tuning)`,
      config: { baseModel: base.source.name, weightsSha256: base.source.weightsSha256 },
    };
  } finally {
    await session.release();
  }
}

/**
 * Evaluate a search bundle folder on a dataset's test queries (see the module comment). `options.maxUsers` caps
 * the test queries (the first ones); `options.baselines: false` leaves BM25, zero-shot and popularity out.
 * @throws {RecflowError} `InvalidData` when the dataset has no search log or no judged test query.
 */
export async function evaluateSearchBundle(
  bundleDir: string,
  ds: LoadedDataset,
  options: EvaluateOptions = {},
  onProgress: (what: string) => void = () => {},
): Promise<EvaluationReport> {
  const t0 = Date.now();
  requireSearch(ds);
  const o = resolveEvaluateOptions(options);
  const b = await readSearchBundle(bundleDir);
  const s = b.manifest.search;
  const queries = judgedQueries(ds, 'test', o.maxUsers);
  if (!queries.length)
    throw new RecflowError(
      ErrorType.InvalidData,
      `dataset ${ds.manifest.id}: no test query has an event to judge it by`,
    );
  const items = rowToItem(b, ds);
  const toItems = (rows: number[]) => Int32Array.from(rows, (r) => items[r] ?? -1);
  const texts = queries.map((q) => q.text);

  // Every variant's dense ranking; for the variants a precision serves, the ranking it serves (kinds/search/served.ts:
  // the hybrid at the variant's own weight, or dense), through the same ranker serving runs; and the hybrid row
  // (BM25 + the fp32 encoder at the export's fp32 weight).
  const tb = Date.now();
  const bm25 = bundleBm25(s, b.items.texts);
  const bm25Scores = texts.map((t) => bm25.scores(t));
  const bm25Eval = evaluateRankings(
    queries,
    bm25Scores.map((sc) => toItems(topRows(sc, DEPTH).filter((r) => (sc[r] ?? 0) > 0))),
  );
  const bm25Seconds = (Date.now() - tb) / 1000;
  const servedNames = new Set((['fp32', 'int8'] as Precision[]).map((p) => s.serves[p]));
  const byVariant: Record<string, ModelEvaluation> = {};
  const servedEval: Record<string, ModelEvaluation> = {};
  let hybridEval: ModelEvaluation | undefined;
  for (const name of Object.keys(s.variants)) {
    const { model } = await loadSearchVariant(b, name);
    const ranked = (weight: number) =>
      rankQueries(
        new ServedRanker({
          session: model.session,
          items: b.items.ids.length,
          weight,
          bm25,
          queryMaxLength: s.queryMaxLength,
        }),
        texts,
      );
    try {
      const dense = await ranked(1);
      byVariant[name] = evaluateRankings(queries, dense.map(toItems), name);
      const w = servedWeight(s, name);
      const served = servedNames.has(name) && w < 1 ? await ranked(w) : undefined;
      if (servedNames.has(name))
        servedEval[name] = served ? evaluateRankings(queries, served.map(toItems), name) : byVariant[name];
      if (name === 'fp32')
        hybridEval =
          served && w === s.hybrid.weight
            ? servedEval[name]
            : evaluateRankings(queries, (await ranked(s.hybrid.weight)).map(toItems));
      onProgress(`${name}: ranked ${queries.length} queries${served ? ` (dense, and hybrid at weight ${w})` : ''}`);
    } finally {
      await model.session.release();
    }
  }
  const models: EvaluationReport['models'] = {};
  const servedBy: NonNullable<SearchEvaluation['served']> = {};
  for (const p of ['fp32', 'int8'] as Precision[]) {
    const name = s.serves[p];
    const v = servedEval[name];
    const w = servedWeight(s, name);
    servedBy[p] = { ranker: w < 1 ? hybridRankerName(name) : name, variant: name, weight: w };
    if (v && o.precisions.includes(p)) models[p] = v;
  }

  // Popularity: the same list for every query.
  const pop = ds.items.popularity;
  const popRows = b.items.ids
    .map((_, r) => r)
    .sort((x, y) => (pop[items[y] ?? 0] ?? 0) - (pop[items[x] ?? 0] ?? 0) || x - y)
    .slice(0, DEPTH);
  const popularity = evaluateRankings(
    queries,
    queries.map(() => toItems(popRows)),
  );

  const baselines: Record<string, BaselineEvaluation> = {};
  const skippedBaselines: Record<string, string> = {};
  let zeroShotDescription = 'the pretrained encoder';
  if (o.baselines !== false) {
    baselines.bm25 = { ...bm25Eval, config: { k1: bm25.k1, b: bm25.b }, fitSeconds: bm25Seconds };
    const tz = Date.now();
    const zs = await zeroShotRankings(b, queries, onProgress);
    if (typeof zs === 'string') skippedBaselines.zeroShot = zs;
    else {
      zeroShotDescription = zs.description;
      baselines.zeroShot = {
        ...evaluateRankings(queries, zs.rankings.map(toItems)),
        config: zs.config,
        fitSeconds: (Date.now() - tz) / 1000,
      };
    }
  }

  const rankers: SearchRanker[] = [];
  const servesOf = (name: string, hybrid: boolean) =>
    (['fp32', 'int8'] as Precision[]).filter((p) => s.serves[p] === name && servedWeight(s, name) < 1 === hybrid);
  const encoderOf = (name: string) => {
    const v = s.variants[name]!;
    return `${v.model === 'student' ? `distilled student (${v.layers} layers)` : `fine-tuned encoder (${v.layers} layers)`}, ${v.encoder}`;
  };
  for (const [name, v] of Object.entries(s.variants)) {
    rankers.push({
      name,
      role: 'variant',
      description: `${encoderOf(name)}, dense`,
      overall: byVariant[name]!.overall,
      bytes: v.bytes,
      latencyMs: v.latencyMs,
      validationNdcg10: v.validation['ndcg@10'],
      tolerance: v.tolerance,
      serves: servesOf(name, false),
    });
  }
  // The hybrid rows: fp32's (`hybrid`, in every report) and each other variant that serves as a hybrid.
  const fp32Serves = servedWeight(s, 'fp32') === s.hybrid.weight ? servesOf('fp32', true) : [];
  rankers.push({
    name: 'hybrid',
    role: 'hybrid',
    description: `BM25 + ${encoderOf('fp32')}, dense weight ${s.hybrid.weight} (tuned on validation)`,
    overall: hybridEval!.overall,
    ...(fp32Serves.length ? { serves: fp32Serves } : {}),
  });
  for (const name of servedNames) {
    const w = servedWeight(s, name);
    if (name === 'fp32' || w >= 1) continue;
    rankers.push({
      name: hybridRankerName(name),
      role: 'hybrid',
      description: `BM25 + ${encoderOf(name)}, dense weight ${w} (tuned on validation)`,
      overall: servedEval[name]!.overall,
      serves: servesOf(name, true),
    });
  }
  if (baselines.bm25)
    rankers.push({
      name: 'bm25',
      role: 'baseline',
      description: 'BM25 (k1 1.2, b 0.75)',
      overall: baselines.bm25.overall,
    });
  if (baselines.zeroShot)
    rankers.push({
      name: 'zeroShot',
      role: 'baseline',
      description: zeroShotDescription,
      overall: baselines.zeroShot.overall,
    });
  rankers.push({
    name: 'popularity',
    role: 'baseline',
    description: 'most interacted items, whatever the query',
    overall: popularity.overall,
  });

  return {
    datasetId: ds.manifest.id,
    testSplitKey: hashInputs({
      task: 'search',
      version: SEARCH_EVAL_VERSION,
      datasetId: ds.manifest.id,
      queries: queries.length,
      maxUsers: o.maxUsers ?? null,
    }),
    options: o,
    bundle: {
      dir: bundleDir,
      modelName: b.manifest.modelName,
      checkpointId: b.manifest.checkpointId,
      datasetId: b.manifest.datasetId,
    },
    models,
    popularity,
    ...(o.baselines !== false ? { baselines, skippedBaselines } : {}),
    search: { queries: queries.length, rankers, choice: s.choice, hybridWeight: s.hybrid.weight, served: servedBy },
    seconds: (Date.now() - t0) / 1000,
  };
}

/** The name of a variant's hybrid in the rankers table (`hybrid` for fp32, as reports always had it). */
export const hybridRankerName = (variant: string): string => (variant === 'fp32' ? 'hybrid' : `hybrid-${variant}`);

/**
 * The top {@link DEPTH} catalogue rows of every query with a served ranker, 32 queries per call (a query's answer
 * does not depend on its batch, as in serving's micro-batches).
 */
export async function rankQueries(
  ranker: ServedRanker,
  queries: readonly string[],
  depth = DEPTH,
): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < queries.length; i += 32)
    for (const r of await ranker.rank(queries.slice(i, i + 32), depth)) out.push(r.rows);
  return out;
}
