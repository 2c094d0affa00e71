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
  /** Precision whose metrics the absolute and champion gates read: what serves. @default 'int8' */
  precision?: Precision;
  /** Absolute thresholds, e.g. `{ metric: 'ndcg@10', min: 0.05 }`, `{ metric: 'logLoss', max: 0.7 }`. */
  absolute?: Array<{ metric: string; min?: number; max?: number }>;
  /**
   * No worse than the champion (evaluated on the same test split) by more than `maxDrop` (absolute units of the
   * metric; for lower-is-better metrics a rise counts as a drop). Passes when there is no champion.
   */
  champion?: Array<{ metric: string; maxDrop: number }>;
  /** Maximum fp32-to-int8 drop, e.g. `{ metric: 'auc', maxDrop: 0.01 }`. */
  int8Drop?: Array<{ metric: string; maxDrop: number }>;
  /** Metrics on which the model must beat the popularity baseline. */
  beatPopularity?: string[];
  /**
   * Metrics on which the model must beat the STRONGEST baseline of its report (popularity, recent popularity, ALS,
   * EASE^R: lib/eval/baselines.ts), gate `beats-baselines:<precision>:<metric>`. Fails when the report has no
   * strong baselines (evaluated with `baselines: false`).
   */
  beatBaselines?: string[];
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
}

/** A sensible default: useful ranking, no regression beyond 0.01 NDCG@10 / AUC, int8 within 0.02 of fp32. */
export const DEFAULT_GATES: GateConfig = {
  precision: 'int8',
  absolute: [{ metric: 'auc', min: 0.55 }],
  champion: [
    { metric: 'ndcg@10', maxDrop: 0.01 },
    { metric: 'auc', maxDrop: 0.01 },
  ],
  int8Drop: [
    { metric: 'ndcg@10', maxDrop: 0.02 },
    { metric: 'auc', maxDrop: 0.02 },
  ],
  beatPopularity: ['ndcg@10'],
};

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
  const p = config.precision ?? 'int8';
  const cand = candidate.models[p]?.overall;
  const gates: GateResult[] = [];
  const missing = (name: string, metric: string, where: string): GateResult => ({
    name,
    passed: false,
    observed: null,
    threshold: null,
    reason: `metric '${metric}' not in the ${where} report`,
  });
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
    if (!champion) {
      gates.push({
        name,
        passed: true,
        observed: null,
        threshold: g.maxDrop,
        reason: 'no champion yet: nothing to regress from',
      });
      continue;
    }
    if (champion.testSplitKey !== candidate.testSplitKey) {
      gates.push({
        name,
        passed: false,
        observed: null,
        threshold: g.maxDrop,
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
    const d = drop(g.metric, c, v);
    const ok = d <= g.maxDrop;
    gates.push({
      name,
      passed: ok,
      observed: v,
      threshold: LOWER_IS_BETTER.has(g.metric) ? c + g.maxDrop : c - g.maxDrop,
      reason: `${g.metric} ${fmt(v)} vs champion ${fmt(c)}: ${d > 0 ? `worse by ${fmt(d)}` : `better by ${fmt(-d)}`}, allowed ${fmt(g.maxDrop)}`,
    });
  }
  for (const g of config.int8Drop ?? []) {
    const name = `int8-drop:${g.metric}`;
    const a = read(candidate.models.fp32?.overall, g.metric);
    const b = read(candidate.models.int8?.overall, g.metric);
    if (a === undefined || b === undefined) {
      gates.push(missing(name, g.metric, a === undefined ? 'fp32' : 'int8'));
      continue;
    }
    const d = drop(g.metric, a, b);
    const ok = d <= g.maxDrop;
    gates.push({
      name,
      passed: ok,
      observed: d,
      threshold: g.maxDrop,
      reason: `${g.metric} fp32 ${fmt(a)} -> int8 ${fmt(b)}: drop ${fmt(d)} ${ok ? '<=' : '>'} ${fmt(g.maxDrop)}`,
    });
  }
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
    const all: Array<[string, number | undefined]> = [
      ['popularity', read(candidate.popularity.overall, metric)],
      ...Object.entries(candidate.baselines).map(([n, b]): [string, number | undefined] => [
        n,
        read(b.overall, metric),
      ]),
    ];
    const absent = all.filter(([, x]) => x === undefined).map(([n]) => n);
    if (absent.length) {
      gates.push(missing(name, metric, absent.join(', ')));
      continue;
    }
    const [bestName, best] = all.reduce((a, b) => (drop(metric, a[1]!, b[1]!) < 0 ? b : a)) as [string, number];
    const ok = drop(metric, best, v) < 0;
    const skipped = Object.entries(candidate.skippedBaselines ?? {}).map(([n, why]) => `${n} skipped: ${why}`);
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
  return { kind: 'model', blessed: gates.every((g) => g.passed), gates, decidedAt: now.toISOString() };
}
