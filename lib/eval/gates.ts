/**
 * Gates, in the spirit of TFX's blessing: a candidate is blessed when every configured gate passes. Two blessings,
 * kept apart: the model blessing ({@link blessModel}: absolute thresholds, no worse than the champion on the same
 * test split, a bounded fp32-to-int8 drop) and the infra blessing (lib/eval/serving-health.ts: it loads, answers,
 * within a latency budget). Each record lists every gate with what was observed, the threshold and why.
 */
import type { Precision } from '../bundle';
import type { EvaluationReport, Metrics } from './evaluate';

/** Metrics where lower is better; all others are higher-is-better. */
export const LOWER_IS_BETTER: ReadonlySet<string> = new Set(['logLoss']);

/** Gate configuration (all parts optional; an empty config blesses everything). */
export interface GateConfig {
  /**
   * Precision whose metrics the absolute and champion gates read: what serves. int8 that fails its `int8Drop` gates
   * falls back to fp32 (the gates then read fp32) unless `fp32Fallback` is false. @default 'int8'
   */
  precision?: Precision;
  /** int8 that fails its quality gates serves as fp32 instead of failing the run. @default true */
  fp32Fallback?: boolean;
  /** Absolute thresholds, e.g. `{ metric: 'ndcg@10', min: 0.05 }`, `{ metric: 'logLoss', max: 0.7 }`. */
  absolute?: Array<{ metric: string; min?: number; max?: number }>;
  /**
   * No worse than the champion (evaluated on the same test split). With `maxRelativeDrop` (and a metric the report
   * has per user: `ndcg@10`), the decision sees significance: a paired bootstrap over test users of candidate minus
   * champion, and "not worse" means the one-sided `confidence` lower bound of the difference is at least
   * `-maxRelativeDrop x champion` (the margin relative to the champion's value). With `maxDrop` alone, the point
   * estimates may differ by at most that much (absolute units; for lower-is-better metrics a rise counts as a drop).
   * Passes when there is no champion.
   */
  champion?: Array<{
    metric: string;
    maxDrop?: number;
    maxRelativeDrop?: number;
    confidence?: number;
    resamples?: number;
  }>;
  /**
   * Maximum fp32-to-int8 drop: `maxRelativeDrop` (of the fp32 value, e.g. 0.01 = 1 %) or `maxDrop` (absolute).
   * `variants`: the entry applies only when the int8 model is one of these variants (`models.int8.variant`: search
   * bundles, whose `int8` is the compressed variant the export chose, e.g. `int8-dynamic` or `student`).
   */
  int8Drop?: Array<{ metric: string; maxDrop?: number; maxRelativeDrop?: number; variants?: string[] }>;
  /** Metrics on which the model must beat the popularity baseline. */
  beatPopularity?: string[];
  /**
   * Metrics on which the model must beat the STRONGEST baseline of its report (popularity, recent popularity, ALS,
   * EASE^R: lib/eval/baselines.ts), gate `beats-baselines:<precision>:<metric>`. Fails when the report has no
   * strong baselines (evaluated with `baselines: false`).
   */
  beatBaselines?: string[];
  /**
   * The baselines `beatBaselines` compares with, by name (`popularity` and the report's `baselines` keys, e.g.
   * `bm25`); the others are reported, not gated. @default every baseline of the report
   */
  baselinesToBeat?: string[];
  /**
   * Baselines `beatBaselines` leaves out, by name: the candidate's own kind (an EASE^R candidate IS the EASE^R
   * baseline, refit on the same data; it cannot beat itself). The evaluation sets it from the bundle's kind.
   */
  notAgainst?: string[];
}

/** One gate's decision. */
export interface GateResult {
  name: string;
  passed: boolean;
  observed: number | null;
  threshold: number | null;
  reason: string;
}

/** A blessing record: blessed when every gate passed. */
export interface Blessing {
  kind: 'model' | 'infra';
  blessed: boolean;
  gates: GateResult[];
  decidedAt: string;
  /** Model blessings: the precision that serves (int8 when asked for and within its quality gates, else fp32). */
  precision?: Precision;
}

/**
 * The default gates: a useful ranking; no worse than the champion on NDCG@10 by more than 2 % of its value at 95 %
 * confidence (paired bootstrap over test users) nor on AUC by more than 0.01; int8 within 1 % of fp32 NDCG@10 and
 * 0.005 AUC; better than popularity, and better than the strongest simple baseline (recent popularity, ALS,
 * EASE^R) on NDCG@10: a model that does not beat them is not worth shipping.
 */
export const DEFAULT_GATES: GateConfig = {
  precision: 'int8',
  absolute: [{ metric: 'auc', min: 0.55 }],
  champion: [
    { metric: 'ndcg@10', maxRelativeDrop: 0.02, confidence: 0.95 },
    { metric: 'auc', maxDrop: 0.01 },
  ],
  int8Drop: [
    { metric: 'ndcg@10', maxRelativeDrop: 0.01 },
    { metric: 'auc', maxDrop: 0.005 },
  ],
  beatPopularity: ['ndcg@10'],
  beatBaselines: ['ndcg@10'],
};

/**
 * The default gates of search models (task `search`, kinds/search/evaluate.ts): no worse than the champion on
 * NDCG@10 by more than 2 % of its value at 95 % confidence (paired bootstrap over test QUERIES); the compressed
 * variant that `int8` serves within 1 % of fp32 NDCG@10 for int8 encoders of the fine-tuned model and 3 % for the
 * distilled student (the export chose it on validation with the same tolerances; this is the test-split backstop,
 * and int8 that fails it serves as fp32); better than BM25 on NDCG@10 (the zero-shot encoder is reported beside it,
 * not gated: a zero-shot champion is a legitimate first model).
 */
export const SEARCH_GATES: GateConfig = {
  precision: 'int8',
  champion: [{ metric: 'ndcg@10', maxRelativeDrop: 0.02, confidence: 0.95 }],
  int8Drop: [
    { metric: 'ndcg@10', maxRelativeDrop: 0.01, variants: ['int8-dynamic', 'int8-weight-only', 'int8-static'] },
    {
      metric: 'ndcg@10',
      maxRelativeDrop: 0.03,
      variants: ['student', 'student-int8-dynamic', 'student-int8-weight-only', 'student-int8-static'],
    },
  ],
  beatBaselines: ['ndcg@10'],
  baselinesToBeat: ['bm25'],
};

/** The default gates of a task. */
export function defaultGatesFor(task: 'recommend' | 'search' | undefined): GateConfig {
  return task === 'search' ? SEARCH_GATES : DEFAULT_GATES;
}

/**
 * Paired bootstrap of mean(a - b) over the same units (test users): the mean difference and its one-sided lower
 * and upper bounds at `confidence` (percentile method, `resamples` draws, seeded: the same inputs give the same
 * bounds).
 */
export function pairedBootstrap(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  confidence = 0.95,
  resamples = 2000,
  seed = 7,
): { mean: number; lower: number; upper: number; n: number } {
  const n = Math.min(a.length, b.length);
  if (n === 0) return { mean: NaN, lower: NaN, upper: NaN, n };
  const d = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += d[i] = (a[i] ?? 0) - (b[i] ?? 0);
  const draws = new Float64Array(resamples);
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[Math.floor(next() * n)] ?? 0;
    draws[r] = s / n;
  }
  draws.sort();
  const q = (p: number) => draws[Math.min(resamples - 1, Math.max(0, Math.floor(p * resamples)))] ?? NaN;
  return { mean: total / n, lower: q(1 - confidence), upper: q(confidence), n };
}

const fmt = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(6)).toString() : String(x));

function read(m: Metrics | undefined, metric: string): number | undefined {
  const v = m?.[metric];
  return typeof v === 'number' && !Number.isNaN(v) ? v : undefined;
}

/** How much worse `b` is than `a` on a metric (positive = worse). */
function drop(metric: string, a: number, b: number): number {
  return LOWER_IS_BETTER.has(metric) ? b - a : a - b;
}

/**
 * Decide the model blessing of a candidate evaluation, against the champion's evaluation on the same split.
 * A metric missing from the report fails its gate (a typo must not bless a model).
 */
export function blessModel(
  candidate: EvaluationReport,
  champion: EvaluationReport | undefined,
  config: GateConfig,
  now = new Date(),
): Blessing {
  const missing = (name: string, metric: string, where: string): GateResult => ({
    name,
    passed: false,
    observed: null,
    threshold: null,
    reason: `metric '${metric}' not in the ${where} report`,
  });
  // int8 first: it decides which precision serves, and so what the other gates read.
  const int8Gates: GateResult[] = [];
  {
    const gates = int8Gates;
    const variant = candidate.models.int8?.variant;
    for (const g of config.int8Drop ?? []) {
      if (g.variants && !(variant !== undefined && g.variants.includes(variant))) continue;
      const name = `int8-drop:${g.metric}${g.variants && variant ? `:${variant}` : ''}`;
      const a = read(candidate.models.fp32?.overall, g.metric);
      const b = read(candidate.models.int8?.overall, g.metric);
      if (a === undefined || b === undefined) {
        gates.push(missing(name, g.metric, a === undefined ? 'fp32' : 'int8'));
        continue;
      }
      const d = drop(g.metric, a, b);
      const allowed = g.maxRelativeDrop !== undefined ? g.maxRelativeDrop * Math.abs(a) : (g.maxDrop ?? 0);
      const ok = d <= allowed;
      gates.push({
        name,
        passed: ok,
        observed: d,
        threshold: allowed,
        reason: `${g.metric} fp32 ${fmt(a)} -> int8 ${fmt(b)}: drop ${fmt(d)}${a ? ` (${fmt((100 * d) / Math.abs(a))}%)` : ''} ${ok ? '<=' : '>'} ${fmt(allowed)}${g.maxRelativeDrop !== undefined ? ` (${fmt(g.maxRelativeDrop * 100)}% of fp32)` : ''}`,
      });
    }
  }
  let p: Precision = config.precision ?? 'int8';
  const int8Failed = int8Gates.some((g) => !g.passed);
  if (p === 'int8' && int8Failed && config.fp32Fallback !== false) {
    // int8 would be faster but loses too much: fp32 serves instead, and the run goes on.
    p = 'fp32';
    for (const g of int8Gates)
      if (!g.passed) Object.assign(g, { passed: true, reason: `${g.reason}: fp32 serves instead` });
  } else if (p === 'fp32') {
    for (const g of int8Gates)
      if (!g.passed) Object.assign(g, { passed: true, reason: `${g.reason} (fp32 serves: not used)` });
  }
  const cand = candidate.models[p]?.overall;
  const gates: GateResult[] = [];
  for (const g of config.absolute ?? []) {
    const name = `absolute:${p}:${g.metric}`;
    const v = read(cand, g.metric);
    if (v === undefined) {
      gates.push(missing(name, g.metric, `${p} candidate`));
      continue;
    }
    if (g.min !== undefined) {
      const ok = v >= g.min;
      gates.push({
        name: `${name}>=`,
        passed: ok,
        observed: v,
        threshold: g.min,
        reason: `${g.metric} ${fmt(v)} ${ok ? '>=' : '<'} ${fmt(g.min)}`,
      });
    }
    if (g.max !== undefined) {
      const ok = v <= g.max;
      gates.push({
        name: `${name}<=`,
        passed: ok,
        observed: v,
        threshold: g.max,
        reason: `${g.metric} ${fmt(v)} ${ok ? '<=' : '>'} ${fmt(g.max)}`,
      });
    }
  }
  for (const g of config.champion ?? []) {
    const name = `champion:${p}:${g.metric}`;
    const threshold = g.maxRelativeDrop ?? g.maxDrop ?? 0;
    if (!champion) {
      gates.push({ name, passed: true, observed: null, threshold, reason: 'no champion yet: nothing to regress from' });
      continue;
    }
    if (champion.testSplitKey !== candidate.testSplitKey) {
      gates.push({
        name,
        passed: false,
        observed: null,
        threshold,
        reason: 'champion was evaluated on a different test split or settings: not comparable',
      });
      continue;
    }
    const v = read(cand, g.metric);
    const c = read(champion.models[p]?.overall, g.metric);
    if (v === undefined || c === undefined) {
      gates.push(missing(name, g.metric, v === undefined ? `${p} candidate` : `${p} champion`));
      continue;
    }
    const perA = (candidate.models[p]?.perUser as Record<string, number[]> | undefined)?.[g.metric];
    const perB = (champion.models[p]?.perUser as Record<string, number[]> | undefined)?.[g.metric];
    if (
      g.maxRelativeDrop !== undefined &&
      perA &&
      perB &&
      perA.length === perB.length &&
      !LOWER_IS_BETTER.has(g.metric)
    ) {
      const conf = g.confidence ?? 0.95;
      const bs = pairedBootstrap(perA, perB, conf, g.resamples ?? 2000);
      const margin = -g.maxRelativeDrop * c;
      const ok = bs.lower >= margin;
      const pct = (x: number) => `${x >= 0 ? '+' : ''}${fmt(c ? (100 * x) / c : NaN)}%`;
      gates.push({
        name,
        passed: ok,
        observed: bs.mean,
        threshold: margin,
        reason: `${g.metric} ${fmt(v)} vs champion ${fmt(c)}: difference ${fmt(bs.mean)} (${pct(bs.mean)}), ${Math.round(conf * 100)}% lower bound ${fmt(bs.lower)} (${pct(bs.lower)}) over ${bs.n} users ${ok ? '>=' : '<'} the margin ${fmt(margin)} (-${fmt(g.maxRelativeDrop * 100)}% of the champion)`,
      });
      continue;
    }
    const d = drop(g.metric, c, v);
    const allowed = g.maxRelativeDrop !== undefined ? g.maxRelativeDrop * Math.abs(c) : (g.maxDrop ?? 0);
    const ok = d <= allowed;
    gates.push({
      name,
      passed: ok,
      observed: v,
      threshold: LOWER_IS_BETTER.has(g.metric) ? c + allowed : c - allowed,
      reason: `${g.metric} ${fmt(v)} vs champion ${fmt(c)}: ${d > 0 ? `worse by ${fmt(d)}` : `better by ${fmt(-d)}`}, allowed ${fmt(allowed)}${g.maxRelativeDrop !== undefined ? ' (no per-user metric: point estimates)' : ''}`,
    });
  }
  gates.push(...int8Gates);
  for (const metric of config.beatPopularity ?? []) {
    const name = `beats-popularity:${p}:${metric}`;
    const v = read(cand, metric);
    const b = read(candidate.popularity.overall, metric);
    if (v === undefined || b === undefined) {
      gates.push(missing(name, metric, v === undefined ? `${p} candidate` : 'popularity'));
      continue;
    }
    const ok = drop(metric, b, v) < 0;
    gates.push({
      name,
      passed: ok,
      observed: v,
      threshold: b,
      reason: `${metric} ${fmt(v)} vs popularity baseline ${fmt(b)}`,
    });
  }
  for (const metric of config.beatBaselines ?? []) {
    const name = `beats-baselines:${p}:${metric}`;
    const v = read(cand, metric);
    if (v === undefined) {
      gates.push(missing(name, metric, `${p} candidate`));
      continue;
    }
    if (!candidate.baselines) {
      gates.push({
        name,
        passed: false,
        observed: v,
        threshold: null,
        reason: 'the report has no strong baselines (evaluated with baselines: false): nothing to compare with',
      });
      continue;
    }
    const gated = (n: string) =>
      (!config.baselinesToBeat || config.baselinesToBeat.includes(n)) && !(config.notAgainst ?? []).includes(n);
    const all: Array<[string, number | undefined]> = [
      ['popularity', read(candidate.popularity.overall, metric)] as [string, number | undefined],
      ...Object.entries(candidate.baselines).map(([n, b]): [string, number | undefined] => [
        n,
        read(b.overall, metric),
      ]),
    ].filter(([n]) => gated(n));
    const missingNamed = (config.baselinesToBeat ?? []).filter((n) => !all.some(([m]) => m === n));
    if (missingNamed.length || !all.length) {
      gates.push({
        name,
        passed: false,
        observed: v,
        threshold: null,
        reason: `baseline${missingNamed.length === 1 ? '' : 's'} ${missingNamed.join(', ') || '(none)'} not in the report${
          Object.keys(candidate.skippedBaselines ?? {}).length
            ? ` (skipped: ${Object.entries(candidate.skippedBaselines ?? {})
                .map(([n, w]) => `${n}: ${w}`)
                .join('; ')})`
            : ''
        }`,
      });
      continue;
    }
    const absent = all.filter(([, x]) => x === undefined).map(([n]) => n);
    if (absent.length) {
      gates.push(missing(name, metric, absent.join(', ')));
      continue;
    }
    const [bestName, best] = all.reduce((a, b) => (drop(metric, a[1]!, b[1]!) < 0 ? b : a)) as [string, number];
    const ok = drop(metric, best, v) < 0;
    const skipped = Object.entries(candidate.skippedBaselines ?? {}).map(([n, why]) => `${n} skipped: ${why}`);
    const reported = Object.entries(candidate.baselines)
      .filter(([n]) => !gated(n))
      .map(([n, b]) => `${n} ${fmt(read(b.overall, metric) ?? NaN)}`);
    if (reported.length) skipped.unshift(`reported, not gated: ${reported.join(', ')}`);
    gates.push({
      name,
      passed: ok,
      observed: v,
      threshold: best,
      reason: `${metric} ${fmt(v)} vs strongest baseline ${bestName} ${fmt(best)} (${all
        .map(([n, x]) => `${n} ${fmt(x!)}`)
        .join(', ')})${skipped.length ? `; ${skipped.join('; ')}` : ''}`,
    });
  }
  return { kind: 'model', blessed: gates.every((g) => g.passed), gates, decidedAt: now.toISOString(), precision: p };
}
