/**
 * Evaluation of a search bundle on a dataset's held-out TEST queries (the test split's queries with events), what
 * serves being what is measured: each variant's search graph (onnxruntime, one thread) ranks the bundle's catalogue,
 * top 100. Beside them, on the same queries:
 * - BM25 (kinds/search/bm25.ts, Lucene-like, k1 1.2, b 0.75) over the bundle's item texts: the lexical baseline;
 * - zero-shot: the pretrained base encoder (the lineage's weights, checked by sha256) without fine-tuning;
 * - the hybrid (BM25 + the fp32 encoder, the weight tuned on validation at export);
 * - popularity (training interactions; the same list for every query), as every report has it.
 *
 * Relevance is the dataset's observed grades (3 purchase, 2 add to cart, 1 click) by dataset item; a judged item a
 * bundle does not have cannot be retrieved (it still counts as relevant), so reports of bundles with different
 * catalogues (the champion's) are comparable query by query: the per-query NDCG@10 of `perUser` (one value per
 * test query, same order in every report of the dataset) is what the champion gate's paired bootstrap resamples.
 *
 * The report (lib/eval/evaluate.ts `EvaluationReport`): `models.fp32` is the fine-tuned fp32 encoder and
 * `models.int8` the compressed variant the export chose (its `variant` says which); `baselines` hold `bm25` and
 * `zeroShot`; `search` has every ranker side by side with the export's size and latency per variant.
 */
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
  type SearchRanker,
} from '../../lib/eval/evaluate';
import { loadBaseModel, resolveBaseModelDir } from './base-model';
import { Bm25Index } from './bm25';
import { judgedQueries, requireSearch, type JudgedQuery } from './data';
import { hybridRank } from './hybrid';
import { searchMetrics, type GradedCase } from './metrics';
import { buildEncoderGraph } from './onnx-encoder';
import { denseScores, perQueryNdcg, rankRows, topRows } from './rank';
import { readSearchBundle, loadSearchVariant, type SearchBundle } from './bundle';
import { SearchSession } from './session';
import { SearchTokenizer } from './tokenizer';

/** Bump when search evaluation changes (part of the test split key). */
export const SEARCH_EVAL_VERSION = 'search-eval-1';

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

  // Every variant of the bundle.
  const byVariant: Record<string, ModelEvaluation> = {};
  const denseRows: Record<string, number[][]> = {};
  for (const name of Object.keys(s.variants)) {
    const { model } = await loadSearchVariant(b, name);
    try {
      const rows = await rankRows(model.session, texts, DEPTH, s.queryMaxLength);
      denseRows[name] = rows;
      byVariant[name] = evaluateRankings(queries, rows.map(toItems), name);
      onProgress(`${name}: ranked ${queries.length} queries`);
    } finally {
      await model.session.release();
    }
  }
  const models: EvaluationReport['models'] = {};
  for (const p of ['fp32', 'int8'] as Precision[]) {
    const v = byVariant[s.serves[p]];
    if (v && o.precisions.includes(p)) models[p] = v;
  }

  // BM25 and the hybrid over the bundle's own catalogue.
  const tb = Date.now();
  const bm25 = new Bm25Index(b.items.texts, { k1: s.hybrid.k1, b: s.hybrid.b });
  const bm25Scores = texts.map((t) => bm25.scores(t));
  const bm25Eval = evaluateRankings(
    queries,
    bm25Scores.map((sc) => toItems(topRows(sc, DEPTH).filter((r) => (sc[r] ?? 0) > 0))),
  );
  const bm25Seconds = (Date.now() - tb) / 1000;
  const fp32 = await loadSearchVariant(b, 'fp32');
  let hybridEval: ModelEvaluation;
  try {
    const all = await rankRowsScores(fp32.model.session, texts, b.items.ids.length, s.queryMaxLength);
    hybridEval = evaluateRankings(
      queries,
      all.map((dense, i) => toItems(hybridRank(bm25Scores[i]!, dense, s.hybrid.weight, DEPTH))),
    );
  } finally {
    await fp32.model.session.release();
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
  for (const [name, v] of Object.entries(s.variants)) {
    const serves = (['fp32', 'int8'] as Precision[]).filter((p) => s.serves[p] === name);
    rankers.push({
      name,
      role: 'variant',
      description: `${v.model === 'student' ? `distilled student (${v.layers} layers)` : `fine-tuned encoder (${v.layers} layers)`}, ${v.encoder}`,
      overall: byVariant[name]!.overall,
      bytes: v.bytes,
      latencyMs: v.latencyMs,
      validationNdcg10: v.validation['ndcg@10'],
      tolerance: v.tolerance,
      serves,
    });
  }
  rankers.push({
    name: 'hybrid',
    role: 'hybrid',
    description: `BM25 + fp32 encoder, dense weight ${s.hybrid.weight} (tuned on validation)`,
    overall: hybridEval.overall,
  });
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
    search: { queries: queries.length, rankers, choice: s.choice, hybridWeight: s.hybrid.weight },
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Every catalogue row's score for each query, in row order (the search graph with k = the catalogue). */
async function rankRowsScores(
  session: SearchSession,
  queries: readonly string[],
  n: number,
  maxLength: number,
): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let s = 0; s < queries.length; s += 32) {
    const hits = await session.search(queries.slice(s, s + 32), n, { maxLength });
    for (const h of hits) {
      const row = new Float32Array(n);
      h.indices.forEach((r, j) => (row[r] = h.scores[j] ?? 0));
      out.push(row);
    }
  }
  return out;
}
