/**
 * Canary-versus-stable contrasts of ratio metrics (CTR = clicks / impressions, error rate = errors / requests) from
 * per-user-bucket counters, with the bucket (a cluster of whole users) as the unit of variance.
 *
 * Periods are strata. The rollout's periods (steps: 10 %, 25 %, 50 %, ...) are compared within themselves and
 * combined with Cochran-Mantel-Haenszel weights w = n_canary·n_stable / (n_canary + n_stable). Pooling the periods'
 * counts instead would compare a canary that saw mostly the late periods with a stable that saw mostly the early
 * ones: a change of the metric over time (time of day, traffic mix) would look like a canary effect (Simpson's
 * paradox). Within a period both variants see the same time.
 *
 * Variance: the delete-one-bucket jackknife. The estimate is a smooth function of per-bucket sums; buckets are
 * independent (each holds whole users, and all of a user's data, both variants and all periods, lies in one
 * bucket), so the jackknife over buckets is the cluster-robust variance; it agrees with the delta method's
 * sandwich to first order and, unlike it, does not underestimate with few, unequal clusters (test/unit/canary/
 * has the comparison). A user who moved from stable to canary between steps is counted on both sides in the same
 * bucket, so the covariance that creates is in the variance too.
 *
 * Pure and sandbox-safe.
 */
import type { BucketField, PeriodBuckets, VariantBuckets } from './buckets';

/** One side's per-bucket counts of a period: a field of its {@link VariantBuckets}, or derived from them. */
export type BucketSeries = (period: PeriodBuckets, side: 'stable' | 'canary') => readonly number[];

/** The series of a counter field. */
export const field =
  (f: BucketField): BucketSeries =>
  (p, side) =>
    p[side][f];

/** A canary-versus-stable contrast and its cluster-robust variance. */
export interface ContrastEstimate {
  /** `log-ratio`: log(canary rate / stable rate). `difference`: canary rate − stable rate. */
  estimate: number;
  /** Jackknife variance of `estimate` over buckets; Infinity with fewer than two buckets. */
  variance: number;
  /** The period-weighted rates the estimate compares (the CTR or error rate people read). */
  stableRate: number;
  canaryRate: number;
  /** Buckets with data in the periods used (the clusters). */
  clusters: number;
  /** Buckets with data on each side. */
  stableBuckets: number;
  canaryBuckets: number;
  /**
   * Kish's effective number of buckets on each side, (Σ n_b)² / Σ n_b² over the denominator counts: how many equal
   * clusters the data is worth. With heavy-tailed activity a few heavy users dominate, and the Gaussian
   * approximation needs this, not the raw count, to be large enough.
   */
  stableEffectiveBuckets: number;
  canaryEffectiveBuckets: number;
  /** Periods with data on both sides (only they compare anything). */
  periodsUsed: number;
}

interface Sums {
  nS: number;
  nC: number;
  xS: number;
  xC: number;
}

/** The weighted rates of both sides and the estimate; undefined without a comparable period. */
function combine(sums: readonly Sums[], scale: 'log-ratio' | 'difference') {
  let W = 0;
  let A = 0;
  let D = 0;
  for (const p of sums) {
    if (!(p.nS > 0 && p.nC > 0)) continue;
    const w = (p.nS * p.nC) / (p.nS + p.nC);
    W += w;
    A += (w * p.xC) / p.nC;
    D += (w * p.xS) / p.nS;
  }
  if (!(W > 0)) return undefined;
  A /= W;
  D /= W;
  if (scale === 'log-ratio' && !(A > 0 && D > 0)) return undefined;
  return { canary: A, stable: D, estimate: scale === 'log-ratio' ? Math.log(A / D) : A - D };
}

/**
 * The period-stratified contrast of `numerator / denominator` between canary and stable, with its jackknife
 * variance over buckets. Undefined when no period has data on both sides, or (`log-ratio`) when either rate is 0.
 */
export function stratifiedContrast(
  periods: readonly PeriodBuckets[],
  numerator: BucketSeries,
  denominator: BucketSeries,
  scale: 'log-ratio' | 'difference',
): ContrastEstimate | undefined {
  const sum = (a: readonly number[]) => a.reduce((s, x) => s + x, 0);
  const series = periods.map((p) => ({
    nS: denominator(p, 'stable'),
    nC: denominator(p, 'canary'),
    xS: numerator(p, 'stable'),
    xC: numerator(p, 'canary'),
  }));
  const sums: Sums[] = series.map((x) => ({ nS: sum(x.nS), nC: sum(x.nC), xS: sum(x.xS), xC: sum(x.xC) }));
  const full = combine(sums, scale);
  if (!full) return undefined;
  const used = series.filter((_, k) => (sums[k]?.nS ?? 0) > 0 && (sums[k]?.nC ?? 0) > 0);
  const usedSums = sums.filter((s) => s.nS > 0 && s.nC > 0);
  const B = Math.max(0, ...used.map((p) => Math.max(p.nS.length, p.nC.length)));

  const perBucketS = new Float64Array(B);
  const perBucketC = new Float64Array(B);
  const leaveOut: number[] = [];
  let gS = 0;
  let gC = 0;
  for (let b = 0; b < B; b++) {
    let any = false;
    const rest = used.map((p, k) => {
      const s = usedSums[k] as Sums;
      const dS = p.nS[b] ?? 0;
      const dC = p.nC[b] ?? 0;
      const xS = p.xS[b] ?? 0;
      const xC = p.xC[b] ?? 0;
      perBucketS[b] = (perBucketS[b] ?? 0) + dS;
      perBucketC[b] = (perBucketC[b] ?? 0) + dC;
      if (dS || dC || xS || xC) any = true;
      return { nS: s.nS - dS, nC: s.nC - dC, xS: s.xS - xS, xC: s.xC - xC };
    });
    if (!any) continue;
    if ((perBucketS[b] ?? 0) > 0) gS++;
    if ((perBucketC[b] ?? 0) > 0) gC++;
    // Removing a bucket can empty a side (a single-bucket canary): no estimate to jackknife, the variance is
    // infinite in effect.
    leaveOut.push(combine(rest, scale)?.estimate ?? NaN);
  }
  const G = leaveOut.length;
  let variance = Infinity;
  if (G >= 2 && leaveOut.every(Number.isFinite)) {
    const mean = sum(leaveOut) / G;
    variance = ((G - 1) / G) * leaveOut.reduce((s, x) => s + (x - mean) ** 2, 0);
  }
  const kish = (a: Float64Array) => {
    let s = 0;
    let s2 = 0;
    for (const x of a) {
      s += x;
      s2 += x * x;
    }
    return s2 > 0 ? (s * s) / s2 : 0;
  };
  return {
    estimate: full.estimate,
    variance,
    stableRate: full.stable,
    canaryRate: full.canary,
    clusters: G,
    stableBuckets: gS,
    canaryBuckets: gC,
    stableEffectiveBuckets: kish(perBucketS),
    canaryEffectiveBuckets: kish(perBucketC),
    periodsUsed: used.length,
  };
}

/**
 * Each bucket's click rate before the rollout (empirical-Bayes shrunk towards the overall rate), from stable's
 * counters over a window before the first step: the covariate of {@link ctrChange}'s adjustment.
 *
 * Beta-binomial moments: m = Σc/Σn; the between-bucket variance of rates is the impression-weighted variance of
 * c_b/n_b less its binomial part m(1−m)·G/Σn; with κ = m(1−m)/variance − 1 the bucket's rate is
 * (c_b + κ·m)/(n_b + κ). No heterogeneity left over the binomial noise (or no data): every bucket gets m.
 * Undefined when the window has no clicks.
 */
export function preRolloutRates(pre: VariantBuckets): { rates: number[]; mean: number; kappa: number } | undefined {
  const n = pre.impressions;
  const c = pre.clicks;
  let N = 0;
  let C = 0;
  let G = 0;
  for (let b = 0; b < n.length; b++) {
    N += n[b] ?? 0;
    C += c[b] ?? 0;
    if ((n[b] ?? 0) > 0) G++;
  }
  if (!(N > 0 && C > 0)) return undefined;
  const m = C / N;
  let s2 = 0;
  for (let b = 0; b < n.length; b++) {
    const nb = n[b] ?? 0;
    if (nb > 0) s2 += nb * ((c[b] ?? 0) / nb - m) ** 2;
  }
  s2 /= N;
  const between = s2 - (m * (1 - m) * G) / N;
  const kappa = between > 0 ? Math.max(0, (m * (1 - m)) / between - 1) : Infinity;
  const rates = Array.from(n, (nb, b) =>
    Number.isFinite(kappa) ? ((c[b] ?? 0) + kappa * m) / ((nb ?? 0) + kappa) : m,
  );
  return { rates, mean: m, kappa };
}

/**
 * CTR of the canary against stable: log(canary CTR / stable CTR), stratified by period.
 *
 * With `pre` (stable's bucket counters over a window before the rollout) the CTR is adjusted for who the users
 * are (indirect standardisation): each side's clicks are divided by its expected clicks Σ_b n_b·q_b, q_b the
 * bucket's pre-rollout rate ({@link preRolloutRates}), instead of by its impressions. The estimand is the same
 * (the canary's CTR relative to stable's on the same users), and q is fixed before the rollout's randomisation,
 * so the estimate stays unbiased; the chance that heavy clickers land on one side, the main noise with a few
 * hundred users, is removed as far as q predicts them. Rates read `stableRate`/`canaryRate` are then clicks per
 * expected click.
 */
export function ctrChange(periods: readonly PeriodBuckets[], pre?: VariantBuckets): ContrastEstimate | undefined {
  const q = pre ? preRolloutRates(pre) : undefined;
  if (!q) return stratifiedContrast(periods, field('clicks'), field('impressions'), 'log-ratio');
  const expected: BucketSeries = (p, side) => p[side].impressions.map((n, b) => n * (q.rates[b] ?? q.mean));
  return stratifiedContrast(periods, field('clicks'), expected, 'log-ratio');
}

/** Error rate of the canary against stable: canary − stable (errors per request, absolute), stratified by period. */
export function errorRateDifference(periods: readonly PeriodBuckets[]): ContrastEstimate | undefined {
  return stratifiedContrast(periods, field('errors'), field('requests'), 'difference');
}
