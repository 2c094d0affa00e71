/**
 * The mixture sequential probability ratio test (mSPRT) with a normal mixture, on an approximately Gaussian
 * estimate: always-valid p-values and confidence sequences (Johari, Koomen, Pekelis and Walsh, "Always valid
 * inference: continuous monitoring of A/B tests", Operations Research 70(3), 2022; Robbins, "Statistical methods
 * related to the law of the iterated logarithm", Ann. Math. Statist. 41(5), 1970). docs/canary-statistics.md
 * explains the use.
 *
 * Notation: the estimate θ̂ of an effect θ has variance V; its information is I = 1/V and its score Z = (θ̂ − θ0)·I.
 * Under H0 (θ = θ0) Z is approximately a Brownian motion in information time, so for any mixing density π
 *
 *   Λ = ∫ exp(θ·Z − θ²·I/2) π(θ) dθ
 *
 * is a nonnegative martingale with mean 1, and by Ville's inequality P(sup over all looks of Λ ≥ 1/α) ≤ α. With π =
 * N(0, τ²) restricted to one side (a half-normal, doubled), Λ has the closed form of {@link mixtureLogLikelihoodRatio}.
 * The one-sided versions stay valid for the composite null (θ ≥ θ0 for `less`): each exp(θZ − θ²I/2) with θ < θ0 is
 * a supermartingale when the true effect is above θ0.
 *
 * No imports beyond the normal distribution: the rollout workflow may run this code.
 */
import { logNormalCdf } from './normal';

/**
 * Which effects the test looks for: `less` (θ < θ0: a drop), `greater` (θ > θ0: a rise) or `two-sided`.
 */
export type Alternative = 'less' | 'greater' | 'two-sided';

/**
 * log Λ in standardized form: `s` = (θ̂ − θ0)/√V, `r` = τ²/V (the mixture's variance in units of the estimate's).
 */
function logLambdaStd(s: number, r: number, alternative: Alternative): number {
  const c = r / (1 + r);
  const base = -0.5 * Math.log1p(r) + (s * s * c) / 2;
  if (alternative === 'two-sided') return base;
  const side = alternative === 'less' ? -s : s;
  return Math.LN2 + base + logNormalCdf(side * Math.sqrt(c));
}

function checkArgs(variance: number, tau2: number): void {
  if (!(tau2 > 0) || !Number.isFinite(tau2))
    throw new RangeError(`mSPRT: mixture variance tau² must be > 0, got ${tau2}`);
  if (!(variance >= 0)) throw new RangeError(`mSPRT: variance must be >= 0, got ${variance}`);
}

/**
 * log of the mixture likelihood ratio Λ of H0: θ = θ0 against the `alternative`, for an estimate with `variance`,
 * mixing over N(0, `tau2`) (half of it, doubled, when one-sided). 0 (Λ = 1: no evidence) when the variance is 0 or
 * not finite: a look without information.
 */
export function mixtureLogLikelihoodRatio(
  estimate: number,
  variance: number,
  tau2: number,
  alternative: Alternative,
  null0 = 0,
): number {
  checkArgs(variance, tau2);
  if (!(variance > 0) || !Number.isFinite(variance) || !Number.isFinite(estimate)) return 0;
  return logLambdaStd((estimate - null0) / Math.sqrt(variance), tau2 / variance, alternative);
}

/**
 * The always-valid p-value after this look: min(previous, 1/Λ), at most 1. Pass the previous look's value (1 at the
 * first look): the running minimum is what makes rejecting at any look, however many, keep the error at alpha.
 */
export function alwaysValidPValue(
  estimate: number,
  variance: number,
  tau2: number,
  alternative: Alternative,
  previous = 1,
  null0 = 0,
): number {
  const logLambda = mixtureLogLikelihoodRatio(estimate, variance, tau2, alternative, null0);
  return Math.min(previous, 1, Math.exp(-logLambda));
}

/**
 * The always-valid p-value of a mixture over several scales τ (weights `w`, summing to 1): Λ = Σ w_k Λ(τ_k). A
 * weighted sum of the mixture martingales is one too, so the guarantee holds; one small τ alone (the smallest effect
 * that matters) has little power against a large effect seen early (30 % errors on 200 requests gave p = 0.02 with
 * τ = 1 point), a larger one covers it. Pass the previous look's value (1 at the first look).
 */
export function alwaysValidPValueMix(
  estimate: number,
  variance: number,
  tau2s: readonly number[],
  alternative: Alternative,
  previous = 1,
  weights: readonly number[] = tau2s.map(() => 1 / tau2s.length),
): number {
  const logs = tau2s.map(
    (t2, k) => Math.log(weights[k] ?? 0) + mixtureLogLikelihoodRatio(estimate, variance, t2, alternative),
  );
  const m = Math.max(...logs);
  const logLambda = Number.isFinite(m) ? m + Math.log(logs.reduce((a, l) => a + Math.exp(l - m), 0)) : m;
  return Math.min(previous, 1, Math.exp(-logLambda));
}

/**
 * The boundary in standard errors: |θ̂ − θ0|/√V at which Λ reaches 1/alpha for an estimate with `variance` (the
 * one-sided boundary for `less`/`greater`, the same on both sides). Larger than the fixed-sample z (1.645 at
 * alpha = 0.05 one-sided): 2.86–2.93 at alpha = 0.04 for τ² between 3 and 20 times V, more when τ² is far from V.
 */
export function mixtureBoundary(variance: number, tau2: number, alpha: number, alternative: Alternative): number {
  checkArgs(variance, tau2);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`mSPRT: alpha must be in (0, 1), got ${alpha}`);
  if (!(variance > 0) || !Number.isFinite(variance)) return Infinity;
  const r = tau2 / variance;
  const target = -Math.log(alpha);
  // Two-sided: closed form. One-sided: log Φ(s·√c) >= log(1/2) for s >= 0, so the root lies below the
  // two-sided boundary; bisect on [0, that].
  const twoSided = Math.sqrt(((1 + r) / r) * (2 * target + Math.log1p(r)));
  if (alternative === 'two-sided') return twoSided;
  const side = alternative === 'less' ? -1 : 1;
  let lo = 0;
  let hi = twoSided;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (logLambdaStd(side * mid, r, alternative) >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * One side of the always-valid confidence sequence at level 1 − alpha: `lower` is the θ0 below which "θ ≤ θ0" is
 * rejected by the one-sided mSPRT (θ > θ0 then holds with confidence 1 − alpha, at every look simultaneously),
 * `upper` the mirror. ±Infinity without information.
 */
export function confidenceBound(
  estimate: number,
  variance: number,
  tau2: number,
  alpha: number,
  side: 'lower' | 'upper',
): number {
  const s = mixtureBoundary(variance, tau2, alpha, side === 'lower' ? 'greater' : 'less');
  if (!Number.isFinite(s)) return side === 'lower' ? -Infinity : Infinity;
  return side === 'lower' ? estimate - s * Math.sqrt(variance) : estimate + s * Math.sqrt(variance);
}
