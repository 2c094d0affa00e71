/**
 * Per-feature statistics and histograms stored in a dataset's manifest: the input of drift detection (PSI).
 * Numeric histograms use fixed bin edges so two datasets' histograms line up; categorical ones the top labels.
 */
import type { FeatureStats } from './dataset';

/** Numeric statistics with a histogram over `edges` (values below or above fall in the first or last bin). */
export function numericStats(values: ArrayLike<number>, edges: number[], total = values.length): FeatureStats {
  const counts = new Array<number>(Math.max(1, edges.length - 1)).fill(0);
  let n = 0;
  let sum = 0;
  let sq = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let k = 0; k < values.length; k++) {
    const v = values[k] ?? NaN;
    if (!Number.isFinite(v)) continue;
    n++;
    sum += v;
    sq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
    let lo = 0;
    let hi = edges.length - 1;
    // binary search for the last edge <= v
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if ((edges[mid] ?? 0) <= v) lo = mid;
      else hi = mid;
    }
    counts[Math.min(lo, counts.length - 1)] = (counts[Math.min(lo, counts.length - 1)] ?? 0) + 1;
  }
  const mean = n ? sum / n : 0;
  return {
    count: n,
    nullRate: total ? (total - n) / total : 0,
    mean,
    std: n ? Math.sqrt(Math.max(0, sq / n - mean * mean)) : 0,
    min: n ? min : 0,
    max: n ? max : 0,
    histogram: { edges, counts },
  };
}

/** Categorical statistics: counts of the `top` most frequent labels, the rest as `__other__`; '' counts as null. */
export function categoricalStats(values: Iterable<string>, top = 50): FeatureStats {
  const freq = new Map<string, number>();
  let total = 0;
  let nulls = 0;
  for (const v of values) {
    total++;
    if (v === '' || v === '<unk>') {
      nulls++;
      continue;
    }
    freq.set(v, (freq.get(v) ?? 0) + 1);
  }
  const sorted = [...freq.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const head = sorted.slice(0, top);
  const other = sorted.slice(top).reduce((s, [, c]) => s + c, 0);
  const labels = head.map(([l]) => l);
  const counts = head.map(([, c]) => c);
  if (other > 0) {
    labels.push('__other__');
    counts.push(other);
  }
  return { count: total - nulls, nullRate: total ? nulls / total : 0, histogram: { labels, counts } };
}

/** Bin edges used by the preprocessing (fixed, so datasets compare). */
export const EDGES = {
  price: [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 1e12],
  hour: [0, 3, 6, 9, 12, 15, 18, 21, 24],
  perEntity: [1, 2, 3, 5, 10, 20, 50, 100, 1000, 1e12],
  label: [0, 0.3, 0.6, 0.8, 1.01],
};

/** Categorical statistics from label counts (no nulls). */
export function categoricalFromCounts(labels: readonly string[], counts: readonly number[]): FeatureStats {
  const total = counts.reduce((s, c) => s + c, 0);
  return { count: total, nullRate: 0, histogram: { labels: [...labels], counts: [...counts] } };
}
