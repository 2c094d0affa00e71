/**
 * Evaluate a model BUNDLE with onnxruntime-node on a dataset's test split: what is evaluated is what serves.
 *
 * - Pointwise: each test interaction is a positive, with `negativesPerPositive` items sampled (seeded) among the
 *   items the user never interacted with; the score graph scores them; AUC, log loss, accuracy / precision / recall /
 *   F1 at `threshold`.
 * - Ranking: for each test user, the recommend graph ranks the whole catalog with the user's training items excluded;
 *   relevant items are the user's test items not seen in training; HR@K, NDCG@K, Recall@K, coverage@K, MRR (over the
 *   top max(K) list).
 * - Segments: `users:new` (no training events), `users:returning`, and `category:<name>` for the most frequent
 *   test categories (pairs grouped by the positive's category; ranking relevance restricted to that category).
 * - The popularity baseline (training counts) gets the same metrics: it ranks by popularity, and its pointwise
 *   scores are popularity / max popularity.
 * - The strong baselines (lib/eval/baselines.ts: recent popularity, ALS, EASE^R, fitted on the same train split,
 *   hyperparameters chosen on its validation split) get the same metrics and segments, in `baselines`; one left
 *   out (EASE^R above its catalogue cap) is listed in `skippedBaselines` with the reason.
 * - History: what is known when the test period starts, as serving knows it: with `historyThrough: 'validation'`
 *   (the default) the train and validation events, else the train events only. A graph with a `history` input gets
 *   each user's known items (most recent last, at most `historyLength`, mapped to the bundle's vocab; items it does
 *   not know are dropped); known items are excluded from the ranking and are not relevant. Nothing after the test
 *   period starts is ever used. Models are still fitted on the train split only.
 * - New users on a time split: `users:new` are the test users with no event before the split's `trainEnd`: no
 *   model has trained on them. Those with validation-period events reach history-based models with that history
 *   (each kind's cold start), those without with an empty one (the recent-popularity prior). A user the bundle does
 *   not know (a champion fitted on another dataset) is sent as index 0 with their known items as history.
 *
 * A bundle made on another dataset (the champion) is evaluated through its own vocab.json: dataset ids are mapped to
 * the bundle's indices (unknown users and items to index 0), its recommended indices back to the dataset's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { hashInputs } from '../artifacts';
import type { Precision } from '../bundle';
import type { Interactions, LoadedDataset } from '../data/dataset';
import { loadBundle } from '../onnx/bundle-io';
import { userHistories } from '../recsys/interactions';
import { fitBaselines, type Baseline, type BaselineFitStore, type BaselineOptions } from './baselines';
import { auc, catalogCoverage, logLoss, rankingMetrics, thresholdMetrics, type RankedCase } from './metrics';
import { mulberry32 } from '../rng';
import { topK } from '../train/metrics';

/** Evaluation settings. */
export interface EvaluateOptions {
  /** Cut-offs of the ranking metrics. @default [10, 50] */
  ks?: number[];
  /** Sampled negatives per test positive for the pointwise metrics. @default 4 */
  negativesPerPositive?: number;
  /** Decision threshold of accuracy, precision, recall, F1. @default 0.5 */
  threshold?: number;
  /** Seed of the negative sampling. @default 42 */
  seed?: number;
  /** Evaluate at most this many test users (the first by index), for quick runs. @default all */
  maxUsers?: number;
  /** Precisions to evaluate. @default ['fp32', 'int8'] */
  precisions?: Precision[];
  /** Categories reported as segments (most frequent in the test split). @default 5 */
  topCategories?: number;
  /** Users per onnxruntime call. @default 256 */
  batchSize?: number;
  /** Most recent known items passed as `history` to graphs that take one. @default 200 */
  historyLength?: number;
  /**
   * What a user's history holds at test time (and what is excluded from, and not relevant in, their ranking): the
   * train split only, or the train and validation splits, all events before the test period, as serving has them.
   * @default 'validation'
   */
  historyThrough?: 'train' | 'validation';
  /** Strong baselines evaluated beside the candidate (`false`: none). @default all, default settings */
  baselines?: BaselineOptions | false;
}

/** Evaluation settings with their defaults filled in (what a report records). */
export type ResolvedEvaluateOptions = Required<Omit<EvaluateOptions, 'maxUsers' | 'baselines'>> & {
  maxUsers?: number;
  baselines: BaselineOptions | false;
};
type Resolved = ResolvedEvaluateOptions;

/** Fill in the defaults of evaluation settings. */
export function resolveEvaluateOptions(options: EvaluateOptions = {}): ResolvedEvaluateOptions {
  return {
    ks: options.ks ?? [10, 50],
    negativesPerPositive: options.negativesPerPositive ?? 4,
    threshold: options.threshold ?? 0.5,
    seed: options.seed ?? 42,
    precisions: options.precisions ?? (['fp32', 'int8'] as Precision[]),
    topCategories: options.topCategories ?? 5,
    batchSize: options.batchSize ?? 256,
    historyLength: options.historyLength ?? 200,
    historyThrough: options.historyThrough ?? 'validation',
    baselines: options.baselines ?? {},
    ...(options.maxUsers !== undefined ? { maxUsers: options.maxUsers } : {}),
  };
}

/**
 * Flat metrics: `auc`, `logLoss`, `accuracy`, `precision`, `recall`, `f1`, `mrr`, `hitRate@K`, `ndcg@K`,
 * `recall@K`, `coverage@K`, `users` (ranked users), `pairs` (scored pairs).
 */
export type Metrics = Record<string, number>;

export interface ModelEvaluation {
  overall: Metrics;
  segments: Record<string, Metrics>;
  /**
   * Per test user (in the plan's ranking order, the same for every model of one test split): the metrics the
   * significance gates resample (a paired bootstrap of candidate minus champion over users).
   */
  perUser?: { users: number; 'ndcg@10': number[] };
  /**
   * Search reports: the variant this precision's model is (`fp32`, `int8-dynamic`, `student`...; lib/bundle.ts
   * `SearchBundleInfo.serves`). The gates' `int8Drop` entries can apply to some variants only.
   */
  variant?: string;
}

/** A strong baseline's metrics, with the settings validation chose and its fit time. */
export interface BaselineEvaluation extends ModelEvaluation {
  config: Record<string, unknown>;
  fitSeconds: number;
}

export interface EvaluationReport {
  datasetId: string;
  /** Hash of the test split and the evaluation settings: two reports are comparable when it is equal. */
  testSplitKey: string;
  options: Resolved;
  bundle: { dir: string; modelName: string; checkpointId: string; datasetId: string };
  models: Partial<Record<Precision, ModelEvaluation>>;
  popularity: ModelEvaluation;
  /** Strong baselines by name (`recentPopularity`, `als`, `ease`); absent in reports made before they existed. */
  baselines?: Record<string, BaselineEvaluation>;
  /** Baselines left out, with the reason. */
  skippedBaselines?: Record<string, string>;
  /** Search reports (task `search`): every ranker side by side, the compression table and the choice. */
  search?: SearchEvaluation;
  seconds: number;
}

/** One ranker of a search evaluation (a servable variant, the hybrid, or a baseline) on the test queries. */
export interface SearchRanker {
  name: string;
  role: 'variant' | 'hybrid' | 'baseline';
  description: string;
  /** `ndcg@10`, `mrr@10`, `recall@100`, `queries`. */
  overall: Metrics;
  /** Variants: bytes of the search graph, median ms per search call by batch size (the export's measurement). */
  bytes?: number;
  latencyMs?: Record<string, number>;
  /** Variants: validation NDCG@10 (what the export's choice read) and the allowed relative drop from fp32. */
  validationNdcg10?: number;
  tolerance?: number;
  /** The precisions that serve this variant (`fp32`, `int8`). */
  serves?: Precision[];
}

/**
 * The search part of an evaluation: test queries (the split's queries with events, graded 3 purchase, 2 add to cart,
 * 1 click), every ranker's NDCG@10 / MRR@10 / Recall@100 (trec_eval definitions, kinds/search/metrics.ts), and the
 * export's compression choice. `perUser` of a search model holds per-QUERY values (the bootstrap's unit).
 */
export interface SearchEvaluation {
  queries: number;
  rankers: SearchRanker[];
  /** What `int8` serves, and the export's reason. */
  choice: { variant: string; preferred: Precision; reason: string };
  /** Dense weight of the hybrid (tuned on validation at export). */
  hybridWeight: number;
  /**
   * What each precision serves (kinds/search/served.ts), what `models` and the gates read: the ranker's name in
   * `rankers` (`hybrid`, `hybrid-<variant>` or the variant), the encoder variant and its dense weight (1: dense only;
   * below 1: the hybrid with BM25). Absent in reports made before it existed.
   */
  served?: Partial<Record<Precision, { ranker: string; variant: string; weight: number }>>;
}

const rng = mulberry32;

interface Plan {
  /** Pointwise rows: user, then 1 positive and `neg` negatives. */
  rowUser: Int32Array;
  rowItems: Int32Array;
  rowSegments: string[][];
  /** Ranking users, their excluded (train) items and relevant (test, unseen) items. */
  rankUsers: number[];
  rankExclude: number[][];
  rankRelevant: Array<Set<number>>;
  userSegment: Map<number, string>;
  categoryName: Map<number, string>;
  itemCategory: Int32Array;
  /** Training items of each user, most recent last (at most `historyLength`). */
  histories: Map<number, number[]>;
}

function plan(ds: LoadedDataset, o: Resolved): Plan {
  const nItems = ds.vocab.items.length;
  const train = ds.splits.train;
  const test = ds.splits.test;
  // What is known when the test period starts: the train split, and with `historyThrough: 'validation'` (what
  // serving has) the validation period too. Known items are excluded and are not relevant; they form the history.
  const known = o.historyThrough === 'validation' ? concatInteractions(train, ds.splits.validation) : train;
  const trained = new Set<number>(train.user);
  const seen = new Map<number, Set<number>>();
  for (let i = 0; i < known.user.length; i++) {
    const u = known.user[i] ?? 0;
    let s = seen.get(u);
    if (!s) seen.set(u, (s = new Set()));
    s.add(known.item[i] ?? 0);
  }
  const testItems = new Map<number, Set<number>>();
  for (let i = 0; i < test.user.length; i++) {
    const u = test.user[i] ?? 0;
    let s = testItems.get(u);
    if (!s) testItems.set(u, (s = new Set()));
    s.add(test.item[i] ?? 0);
  }
  let users = [...testItems.keys()].sort((a, b) => a - b);
  if (o.maxUsers !== undefined) users = users.slice(0, o.maxUsers);
  const keep = new Set(users);
  const userSegment = new Map(users.map((u) => [u, trained.has(u) ? 'users:returning' : 'users:new']));
  const catCount = new Map<number, number>();
  for (let i = 0; i < test.item.length; i++) {
    if (!keep.has(test.user[i] ?? -1)) continue;
    const c = ds.items.category[test.item[i] ?? 0] ?? 0;
    catCount.set(c, (catCount.get(c) ?? 0) + 1);
  }
  const topCats = [...catCount.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, o.topCategories)
    .map(([c]) => c);
  const categoryName = new Map(topCats.map((c) => [c, `category:${ds.vocab.categories[c] ?? c}`]));

  const r = rng(o.seed);
  const rowsUser: number[] = [];
  const rowsItems: number[] = [];
  const rowSegments: string[][] = [];
  for (let i = 0; i < test.user.length; i++) {
    const u = test.user[i] ?? 0;
    if (!keep.has(u)) continue;
    const pos = test.item[i] ?? 0;
    const avoid = (x: number) => x === 0 || seen.get(u)?.has(x) || testItems.get(u)?.has(x);
    rowsUser.push(u);
    rowsItems.push(pos);
    for (let k = 0; k < o.negativesPerPositive; k++) {
      let x = 0;
      for (let tries = 0; tries < 100 && avoid(x); tries++) x = 1 + Math.floor(r() * (nItems - 1));
      rowsItems.push(x);
    }
    const segs = [userSegment.get(u) ?? 'users:new'];
    const cat = categoryName.get(ds.items.category[pos] ?? 0);
    if (cat) segs.push(cat);
    rowSegments.push(segs);
  }
  const rankUsers: number[] = [];
  const rankExclude: number[][] = [];
  const rankRelevant: Array<Set<number>> = [];
  for (const u of users) {
    const s = seen.get(u) ?? new Set<number>();
    const rel = new Set([...(testItems.get(u) ?? [])].filter((x) => !s.has(x)));
    if (rel.size === 0) continue;
    rankUsers.push(u);
    rankExclude.push([...s]);
    rankRelevant.push(rel);
  }
  return {
    rowUser: Int32Array.from(rowsUser),
    rowItems: Int32Array.from(rowsItems),
    rowSegments,
    rankUsers,
    rankExclude,
    rankRelevant,
    userSegment,
    categoryName,
    itemCategory: ds.items.category,
    histories: userHistories(known, o.historyLength),
  };
}

/** Scores and rankings of one model, in dataset indices. */
interface Predictions {
  scores: Float32Array;
  rankings: Int32Array[];
}

function metricsOf(p: Plan, pred: Predictions, o: Resolved, nItems: number): ModelEvaluation {
  const n = 1 + o.negativesPerPositive;
  const pointwise = (rows: number[]): Metrics => {
    const labels: number[] = [];
    const scores: number[] = [];
    for (const r of rows)
      for (let j = 0; j < n; j++) {
        labels.push(j === 0 ? 1 : 0);
        scores.push(pred.scores[r * n + j] ?? 0);
      }
    const t = thresholdMetrics(labels, scores, o.threshold);
    return {
      pairs: labels.length,
      auc: auc(labels, scores),
      logLoss: logLoss(labels, scores),
      accuracy: t.accuracy,
      precision: t.precision,
      recall: t.recall,
      f1: t.f1,
    };
  };
  const ranking = (idx: number[], filter?: (item: number) => boolean): Metrics => {
    const cases: RankedCase[] = [];
    for (const i of idx) {
      const rel = filter ? new Set([...p.rankRelevant[i]!].filter(filter)) : p.rankRelevant[i]!;
      if (rel.size) cases.push({ ranking: pred.rankings[i]!, relevant: rel });
    }
    const out: Metrics = {};
    for (const k of o.ks) {
      const m = rankingMetrics(cases, k);
      out.users = m.users;
      out.mrr = m.mrr;
      out[`hitRate@${k}`] = m.hitRate;
      out[`ndcg@${k}`] = m.ndcg;
      out[`recall@${k}`] = m.recall;
      out[`coverage@${k}`] = catalogCoverage(
        cases.map((c) => c.ranking),
        k,
        nItems - 1,
      );
    }
    return out;
  };
  const allRows = p.rowSegments.map((_, i) => i);
  const allUsers = p.rankUsers.map((_, i) => i);
  const overall = { ...pointwise(allRows), ...ranking(allUsers) };
  const perUserNdcg = allUsers.map((i) => {
    const m = rankingMetrics([{ ranking: pred.rankings[i]!, relevant: p.rankRelevant[i]! }], 10);
    return Number.isFinite(m.ndcg) ? Math.round(m.ndcg * 1e6) / 1e6 : 0;
  });
  const segments: Record<string, Metrics> = {};
  for (const seg of ['users:new', 'users:returning']) {
    const rows = allRows.filter((r) => p.rowSegments[r]![0] === seg);
    const users = allUsers.filter((i) => p.userSegment.get(p.rankUsers[i]!) === seg);
    if (rows.length) segments[seg] = { ...pointwise(rows), ...ranking(users) };
  }
  for (const [cat, name] of p.categoryName) {
    const rows = allRows.filter((r) => p.rowSegments[r]!.includes(name));
    segments[name] = { ...pointwise(rows), ...ranking(allUsers, (item) => p.itemCategory[item] === cat) };
  }
  return { overall, segments, perUser: { users: perUserNdcg.length, 'ndcg@10': perUserNdcg } };
}

/** Maps between dataset indices and a bundle's indices (identity when the vocabularies agree). */
async function indexMaps(bundleDir: string, ds: LoadedDataset) {
  const v = JSON.parse(await readFile(join(bundleDir, 'vocab.json'), 'utf8')) as { users: string[]; items: string[] };
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  const toBundle = (mine: string[], theirs: string[]): Int32Array => {
    if (same(mine, theirs)) return Int32Array.from(mine, (_, i) => i);
    const pos = new Map(theirs.map((id, i) => [id, i]));
    return Int32Array.from(mine, (id, i) => (i === 0 ? 0 : (pos.get(id) ?? 0)));
  };
  const fromBundle = (mine: string[], theirs: string[]): Int32Array => {
    const pos = new Map(mine.map((id, i) => [id, i]));
    return Int32Array.from(theirs, (id, i) => (i === 0 ? -1 : (pos.get(id) ?? -1)));
  };
  return {
    user: toBundle(ds.vocab.users, v.users),
    item: toBundle(ds.vocab.items, v.items),
    itemBack: fromBundle(ds.vocab.items, v.items),
    bundleItems: v.items.length,
  };
}

const i64 = (xs: ArrayLike<number>, dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(Array.from(xs, (x) => BigInt(x))), dims);

/** The `history` tensor of some users: their training items in the bundle's indices, left-padded with 0. */
function historyTensor(p: Plan, maps: Awaited<ReturnType<typeof indexMaps>>, users: ArrayLike<number>): ort.Tensor {
  const rows = Array.from(users, (u) => (p.histories.get(u) ?? []).map((i) => maps.item[i] ?? 0).filter((i) => i > 0));
  const width = Math.max(0, ...rows.map((r) => r.length));
  const data = new Array<number>(rows.length * width).fill(0);
  rows.forEach((r, b) => r.forEach((i, j) => (data[b * width + width - r.length + j] = i)));
  return i64(data, [rows.length, width]);
}

async function predictOnnx(
  paths: { score: string; recommend: string },
  maps: Awaited<ReturnType<typeof indexMaps>>,
  p: Plan,
  o: Resolved,
  onProgress: (what: string) => void,
): Promise<Predictions> {
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const n = 1 + o.negativesPerPositive;
  const scores = new Float32Array(p.rowUser.length * n);
  const score = await ort.InferenceSession.create(paths.score, opts);
  const scoreHistory = score.inputNames.includes('history');
  try {
    for (let b = 0; b < p.rowUser.length; b += o.batchSize * 4) {
      const e = Math.min(p.rowUser.length, b + o.batchSize * 4);
      const users = Array.from(p.rowUser.subarray(b, e), (u) => maps.user[u] ?? 0);
      const items = Array.from(p.rowItems.subarray(b * n, e * n), (i) => maps.item[i] ?? 0);
      const feeds: Record<string, ort.Tensor> = { user: i64(users, [e - b]), items: i64(items, [e - b, n]) };
      if (scoreHistory) feeds.history = historyTensor(p, maps, p.rowUser.subarray(b, e));
      const out = await score.run(feeds);
      scores.set(out.scores!.data as Float32Array, b * n);
    }
  } finally {
    await score.release();
  }
  onProgress('scored');
  const kMax = Math.max(...o.ks);
  const rankings: Int32Array[] = [];
  const rec = await ort.InferenceSession.create(paths.recommend, opts);
  const recHistory = rec.inputNames.includes('history');
  try {
    for (let b = 0; b < p.rankUsers.length; b += o.batchSize) {
      const e = Math.min(p.rankUsers.length, b + o.batchSize);
      const width = Math.max(0, ...p.rankExclude.slice(b, e).map((x) => x.length));
      const excl = new Array<number>((e - b) * width).fill(0);
      for (let i = b; i < e; i++) p.rankExclude[i]!.forEach((x, j) => (excl[(i - b) * width + j] = maps.item[x] ?? 0));
      const users = p.rankUsers.slice(b, e).map((u) => maps.user[u] ?? 0);
      const k = Math.min(kMax, maps.bundleItems - 1);
      const feeds: Record<string, ort.Tensor> = {
        user: i64(users, [e - b]),
        k: i64([k], [1]),
        exclude: i64(excl, [e - b, width]),
      };
      if (recHistory) feeds.history = historyTensor(p, maps, p.rankUsers.slice(b, e));
      const out = await rec.run(feeds);
      const top = out.items!.data as BigInt64Array;
      const kk = out.items!.dims[1] ?? 0;
      for (let i = 0; i < e - b; i++)
        rankings.push(Int32Array.from(top.subarray(i * kk, (i + 1) * kk), (x) => maps.itemBack[Number(x)] ?? -1));
      onProgress(`ranked ${e}/${p.rankUsers.length}`);
    }
  } finally {
    await rec.release();
  }
  return { scores, rankings };
}

function predictPopularity(ds: LoadedDataset, p: Plan, o: Resolved): Predictions {
  const pop = ds.items.popularity;
  let max = 0;
  for (const x of pop) max = Math.max(max, x);
  const scores = Float32Array.from(p.rowItems, (i) => (max ? (pop[i] ?? 0) / max : 0));
  const order = Array.from({ length: pop.length - 1 }, (_, i) => i + 1).sort(
    (a, b) => (pop[b] ?? 0) - (pop[a] ?? 0) || a - b,
  );
  const kMax = Math.max(...o.ks);
  const rankings = p.rankExclude.map((ex) => {
    const skip = new Set(ex);
    const out: number[] = [];
    for (const i of order) {
      if (out.length >= kMax) break;
      if (!skip.has(i)) out.push(i);
    }
    return Int32Array.from(out);
  });
  return { scores, rankings };
}

/** Scores and rankings of a strong baseline (catalogue scores per user, training items excluded). */
async function predictBaseline(
  b: Baseline,
  p: Plan,
  o: Resolved,
  onProgress: (what: string) => void,
): Promise<Predictions> {
  const n = 1 + o.negativesPerPositive;
  const scores = new Float32Array(p.rowUser.length * n);
  const rowsOf = new Map<number, number[]>();
  p.rowUser.forEach((u, r) => {
    let rs = rowsOf.get(u);
    if (!rs) rowsOf.set(u, (rs = []));
    rs.push(r);
  });
  let done = 0;
  for (const [u, rows] of rowsOf) {
    const row = b.catalog(u);
    for (const r of rows)
      for (let j = 0; j < n; j++) {
        const item = p.rowItems[r * n + j] ?? 0;
        scores[r * n + j] = b.probability(u, item, row);
      }
    if (++done % 500 === 0) await new Promise((res) => setImmediate(res));
  }
  onProgress('scored');
  const kMax = Math.max(...o.ks);
  const rankings: Int32Array[] = [];
  for (let k = 0; k < p.rankUsers.length; k++) {
    const row = b.catalog(p.rankUsers[k]!);
    rankings.push(Int32Array.from(topK(Float32Array.from(row), kMax, new Set(p.rankExclude[k]))));
    if (k % 500 === 499) {
      onProgress(`ranked ${k + 1}/${p.rankUsers.length}`);
      await new Promise((res) => setImmediate(res));
    }
  }
  return { scores, rankings };
}

/**
 * Evaluate a bundle folder on a loaded dataset's test split (fp32 and int8 by default, plus the popularity
 * baseline and the strong baselines). `onProgress` is called between batches (activities heartbeat there).
 */
export async function evaluateBundle(
  bundleDir: string,
  ds: LoadedDataset,
  options: EvaluateOptions = {},
  onProgress: (what: string) => void = () => {},
  fits?: BaselineFitStore,
): Promise<EvaluationReport> {
  const t0 = Date.now();
  const o = resolveEvaluateOptions(options);
  const bundle = await loadBundle(bundleDir);
  const maps = await indexMaps(bundleDir, ds);
  const p = plan(ds, o);
  const nItems = ds.vocab.items.length;
  const models: EvaluationReport['models'] = {};
  for (const prec of o.precisions) {
    const pred = await predictOnnx(bundle.paths[prec], maps, p, o, (w) => onProgress(`${prec}: ${w}`));
    models[prec] = metricsOf(p, pred, o, nItems);
  }
  const popularity = metricsOf(p, predictPopularity(ds, p, o), o, nItems);
  let baselines: Record<string, BaselineEvaluation> | undefined;
  let skippedBaselines: Record<string, string> | undefined;
  if (o.baselines !== false) {
    const fitted = await fitBaselines(ds, o.baselines, onProgress, fits);
    baselines = {};
    skippedBaselines = fitted.skipped;
    for (const b of fitted.baselines) {
      const pred = await predictBaseline(b, p, o, (w) => onProgress(`${b.name}: ${w}`));
      baselines[b.name] = { ...metricsOf(p, pred, o, nItems), config: b.config, fitSeconds: b.fitSeconds };
    }
  }
  const { precisions: _p, batchSize: _b, baselines: _bl, ...keyed } = o;
  return {
    datasetId: ds.manifest.id,
    testSplitKey: hashInputs({
      datasetId: ds.manifest.id,
      test: ds.manifest.counts.test,
      options: keyed,
    }),
    options: o,
    bundle: {
      dir: bundleDir,
      modelName: bundle.manifest.modelName,
      checkpointId: bundle.manifest.checkpointId,
      datasetId: bundle.manifest.datasetId,
    },
    models,
    popularity,
    ...(baselines ? { baselines, skippedBaselines } : {}),
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Two time-ordered splits, the second after the first, as one. */
function concatInteractions(a: Interactions, b: Interactions): Interactions {
  const cat = <T extends Int32Array | Float32Array | Float64Array>(x: T, y: T): T => {
    const out = new (x.constructor as new (n: number) => T)(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  return {
    user: cat(a.user, b.user),
    item: cat(a.item, b.item),
    label: cat(a.label, b.label),
    timestamp: cat(a.timestamp, b.timestamp),
  };
}
