/**
 * The rollout-wide canary analysis: one sequential test over every look of every step (extensions included), with
 * users (hash buckets of users) as the unit of variance. Each look gets the rollout's per-bucket counters so far,
 * period by period, and the state the previous look returned; it answers pass, fail or inconclusive per check, as
 * {@link analyzeWindow} does, and the state for the next look.
 *
 * - `ctr`: log of canary CTR / stable CTR, period-stratified, jackknife variance over buckets (./estimators.ts);
 *   always-valid one-sided p-value of the normal-mixture SPRT (./sequential.ts). Fails when p < alpha_ctr and the
 *   estimated drop is at least `minCtrDropToFail`. At steps of `decisiveWeight` % and more it passes only once the
 *   evidence suffices: the confidence sequence excludes a drop of `ctrDropToDetect`, or the test has had the power to
 *   detect one (`power`) without failing and the estimated drop is under `minCtrDropToFail`.
 * - `error-rate`: the absolute error-rate difference, the same way (its own share of alpha).
 * - `latency-p99`: sub-window p99s compared slice by slice with the concurrent stable: a regression must persist
 *   over most slices to fail; an SLO breach that stable shares, or that is not a regression against it, is
 *   inconclusive.
 *
 * The false-rollback rate of a whole rollout (both statistical checks) is at most `alpha` under the assumptions in
 * docs/canary-statistics.md. Pure and sandbox-safe: the rollout workflow may call it directly.
 */
import type { CanaryAnalysis, CheckResult, Verdict, WindowCoverage } from './analysis';
import { bucketTotals, type PeriodBuckets, type VariantBuckets } from './buckets';
import { ctrChange, errorRateDifference } from './estimators';
import { normalCdf } from './normal';
import { alwaysValidPValueMix, confidenceBound, mixtureBoundary } from './sequential';
import { ErrorType, RecflowError } from '../errors';

/** Thresholds of the sequential analysis. Every field has a default ({@link DEFAULT_SEQUENTIAL_CRITERIA}). */
export interface SequentialCriteria {
  /**
   * Highest probability that a whole rollout of a canary no worse than stable is rolled back by the statistical
   * checks (CTR and error rate together), over all its looks. @default 0.05
   */
  alpha: number;
  /** Share of `alpha` spent on the error-rate test; the CTR test gets the rest. @default 0.2 */
  errorAlphaShare: number;
  /**
   * The relative CTR drop the rollout must be able to catch (0.1 = 10 %): the mixture's standard deviation τ of the
   * CTR test, and the margin a decisive step must exclude (or have had the power to detect) before it passes.
   * @default 0.1
   */
  ctrDropToDetect: number;
  /**
   * Practical floor: a significant CTR drop smaller than this (relative) does not fail, and a decisive step does not
   * pass on power alone while the estimated drop is this large or larger. @default 0.05
   */
  minCtrDropToFail: number;
  /**
   * Probability of detecting a drop of `ctrDropToDetect` that a decisive step must have reached before it passes on
   * power, with an estimated drop under `minCtrDropToFail` (and the confidence level, 1 − power, of the
   * non-inferiority bound). @default 0.8
   */
  power: number;
  /**
   * Steps with at least this canary weight (%) are decisive: their CTR check needs the evidence above to pass.
   * Lighter steps pass unless a check fails. Put it at the step where information grows fastest (50 %: traffic
   * split evenly); a 95/5 holdback step adds little. @default 50
   */
  decisiveWeight: number;
  /** The canary's error rate may exceed stable's by this much (absolute; 0.01 = one point): floor and τ. @default 0.01 */
  maxErrorRateIncrease: number;
  /** Fewer requests than this on either variant in the current step: the step is inconclusive. @default 100 */
  minRequests: number;
  /** Fewer impressions than this on either variant in the current step: the CTR check is inconclusive. @default 500 */
  minImpressions: number;
  /**
   * Fewer effective user buckets than this on either variant (Kish's (Σn)²/Σn² over impressions, all steps): no
   * CTR test, since the Gaussian approximation of bucket sums needs enough comparable clusters. @default 30
   */
  minEffectiveBuckets: number;
  /** Canary p99 may be at most this multiple of the concurrent stable p99 ... @default 1.5 */
  maxP99Ratio: number;
  /** ... and, to ignore noise on fast servers, this many ms above it, before a slice counts as a breach. @default 20 */
  p99SlackMs: number;
  /** Latency SLO (ms): a canary median p99 above it is inconclusive unless the canary also regressed. @default 500 */
  maxP99Ms: number;
  /** A latency slice counts when both variants served at least this many requests in it. @default 50 */
  minSliceRequests: number;
  /** Fewer usable slices than this: the latency comparison is not made. @default 3 */
  minSlices: number;
  /** The canary fails on latency when more than this share of usable slices breach. @default 0.5 */
  latencyBreachShare: number;
  /** Dropped or timed-out requests (load generator, proxy) above this share of requests: inconclusive. @default 0 */
  maxDroppedShare: number;
}

export const DEFAULT_SEQUENTIAL_CRITERIA: SequentialCriteria = {
  alpha: 0.05,
  errorAlphaShare: 0.2,
  ctrDropToDetect: 0.1,
  minCtrDropToFail: 0.05,
  power: 0.8,
  decisiveWeight: 50,
  maxErrorRateIncrease: 0.01,
  minRequests: 100,
  minImpressions: 500,
  minEffectiveBuckets: 30,
  maxP99Ratio: 1.5,
  p99SlackMs: 20,
  maxP99Ms: 500,
  minSliceRequests: 50,
  minSlices: 3,
  latencyBreachShare: 0.5,
  maxDroppedShare: 0,
};

/** What a look passes to the next: the running minima of the always-valid p-values. Plain JSON. */
export interface RolloutTestState {
  /** Looks analysed so far (this one included, in a returned state). */
  looks: number;
  ctrPValue: number;
  errorPValue: number;
}

/** The start of a rollout's test. */
export const INITIAL_ROLLOUT_TEST_STATE: RolloutTestState = { looks: 0, ctrPValue: 1, errorPValue: 1 };

/** One sub-window's p99 latency of each variant, measured concurrently (the same time slice). */
export interface LatencySlice {
  stable: { requests: number; p99Ms: number };
  canary: { requests: number; p99Ms: number };
}

/** One look of the rollout (the end of a bake or an extension). */
export interface RolloutLookInput {
  /**
   * The rollout's counters so far, one entry per step that ran (the last is the current one), each the step's own
   * counts (not cumulative across steps): a bucket-by-bucket sum over replicas ({@link mergeBuckets}).
   */
  periods: PeriodBuckets[];
  /**
   * Stable's bucket counters over a window before the first step (everyone on stable, the same buckets): adjusts
   * the CTR for which users landed on which side (./estimators.ts `ctrChange`). Optional; it buys power when users
   * are few and differ. Pass it at every look of a rollout or at none (the running p-value is of one estimator).
   */
  pre?: VariantBuckets;
  /** The previous look's `state`; absent at the rollout's first look. */
  state?: RolloutTestState;
  /** This look's latency, sub-window by sub-window (e.g. 30 s slices of the bake). */
  latency?: LatencySlice[];
  /** Which replicas the figures come from: a look that misses one is inconclusive. */
  coverage?: WindowCoverage;
  /** Requests the load generator or a proxy dropped or timed out in this look's window. */
  droppedRequests?: number;
  criteria?: Partial<SequentialCriteria>;
}

/** The verdict of a look, and the state the next look needs. */
export interface RolloutLookResult {
  analysis: CanaryAnalysis;
  state: RolloutTestState;
}

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
const pct = (x: number, digits = 1) => `${x >= 0 ? '+' : ''}${fmt(x * 100, digits)}%`;
const points = (x: number) => `${x >= 0 ? '+' : ''}${fmt(x * 100, 2)} points`;

function validateCriteria(c: SequentialCriteria): void {
  const bad = (field: keyof SequentialCriteria, why: string) => {
    throw new RecflowError(ErrorType.InvalidInput, `canary criteria: ${field} = ${c[field]} ${why}`, { field });
  };
  if (!(c.alpha > 0 && c.alpha < 1)) bad('alpha', 'must be in (0, 1)');
  if (!(c.errorAlphaShare > 0 && c.errorAlphaShare < 1)) bad('errorAlphaShare', 'must be in (0, 1)');
  if (!(c.ctrDropToDetect > 0 && c.ctrDropToDetect < 1)) bad('ctrDropToDetect', 'must be in (0, 1)');
  if (!(c.minCtrDropToFail >= 0 && c.minCtrDropToFail < 1)) bad('minCtrDropToFail', 'must be in [0, 1)');
  if (!(c.power > 0.5 && c.power < 1)) bad('power', 'must be in (0.5, 1)');
  if (!(c.maxErrorRateIncrease > 0 && c.maxErrorRateIncrease < 1)) bad('maxErrorRateIncrease', 'must be in (0, 1)');
  if (!(c.latencyBreachShare >= 0 && c.latencyBreachShare < 1)) bad('latencyBreachShare', 'must be in [0, 1)');
  if (!(c.maxP99Ratio >= 1)) bad('maxP99Ratio', 'must be >= 1');
}

/**
 * Probability that the one-sided mSPRT at level `alpha` rejects at a look with this `variance` when the true effect
 * is −`drop` (the look alone; earlier looks only add to it).
 */
export function detectionPower(drop: number, variance: number, tau2: number, alpha: number): number {
  const s = mixtureBoundary(variance, tau2, alpha, 'less');
  if (!Number.isFinite(s)) return 0;
  return normalCdf(drop / Math.sqrt(variance) - s);
}

/**
 * Analyse one look of a rollout: every check's verdict from the rollout's data so far and the previous look's
 * state. Feed the returned `state` to the next look, across steps and extensions, until the rollout ends.
 * @throws {RecflowError} `InvalidInput` for criteria out of range or no period; `InvalidData` when the arrays of
 * the periods (or `pre`) differ in length.
 */
export function analyzeRolloutLook(input: RolloutLookInput): RolloutLookResult {
  const c: SequentialCriteria = { ...DEFAULT_SEQUENTIAL_CRITERIA, ...input.criteria };
  validateCriteria(c);
  const current = input.periods[input.periods.length - 1];
  if (!current) throw new RecflowError(ErrorType.InvalidInput, 'analyzeRolloutLook: no period given');
  input.periods.forEach((p, i) => {
    for (const side of ['stable', 'canary'] as const)
      for (const f of ['errors', 'impressions', 'clicks'] as const)
        if (p[side][f].length !== p.stable.requests.length)
          throw new RecflowError(
            ErrorType.InvalidData,
            `analyzeRolloutLook: period ${i} ${side}.${f} has ${p[side][f].length} buckets, stable.requests ${p.stable.requests.length}`,
            { period: i, field: `${side}.${f}` },
          );
  });
  const B = current.stable.requests.length;
  if (input.periods.some((p) => p.stable.requests.length !== B))
    throw new RecflowError(ErrorType.InvalidData, `analyzeRolloutLook: the periods disagree on the number of buckets`, {
      field: 'periods',
    });
  if (input.pre && (input.pre.impressions.length !== B || input.pre.clicks.length !== B))
    throw new RecflowError(
      ErrorType.InvalidData,
      `analyzeRolloutLook: pre has ${input.pre.impressions.length} buckets, the periods ${B}: not the same bucketing`,
      { field: 'pre' },
    );
  const prev = input.state ?? INITIAL_ROLLOUT_TEST_STATE;
  const alphaErr = c.alpha * c.errorAlphaShare;
  const alphaCtr = c.alpha - alphaErr;
  const checks: CheckResult[] = [];
  const holdback = current.canaryWeight < 100;

  if (input.coverage) {
    const cov = input.coverage;
    const complete = cov.missing.length === 0 && cov.covered > 0;
    checks.push({
      name: 'coverage',
      verdict: complete ? 'pass' : 'inconclusive',
      stable: cov.expected,
      canary: cov.covered,
      reason: complete
        ? `all ${cov.expected} live replicas read`
        : cov.covered === 0
          ? 'no replica could be read'
          : `replicas missing (died, restarted or unreachable): ${cov.missing.join(', ')}; ${cov.covered}/${cov.expected} read`,
    });
  }

  // Traffic of the current step.
  const ts = bucketTotals(current.stable);
  const tc = bucketTotals(current.canary);
  const dropped = input.droppedRequests ?? 0;
  const tooFew = tc.requests < c.minRequests || (holdback && ts.requests < c.minRequests);
  const tooManyDropped = dropped > c.maxDroppedShare * (ts.requests + tc.requests);
  const badCounts = ['stable', 'canary'].flatMap((side) => {
    const v = side === 'stable' ? current.stable : current.canary;
    const t = side === 'stable' ? ts : tc;
    const out: string[] = [];
    if (t.errors > t.requests) out.push(`${side}: ${t.errors} errors > ${t.requests} requests`);
    if (v.clicks.some((x, b) => x > (v.impressions[b] ?? 0)))
      out.push(`${side}: a bucket has more clicks than impressions`);
    return out;
  });
  checks.push({
    name: 'traffic',
    verdict: tooFew || tooManyDropped || badCounts.length ? 'inconclusive' : 'pass',
    stable: ts.requests,
    canary: tc.requests,
    reason: badCounts.length
      ? `inconsistent counters (${badCounts.join('; ')}): not analysed`
      : tooManyDropped
        ? `${dropped} requests dropped or timed out in the window: the counts are incomplete`
        : tooFew
          ? `too little traffic this step: stable ${ts.requests}, canary ${tc.requests} requests (need ${c.minRequests}${holdback ? ' each' : ' on the canary'})`
          : `this step: stable ${ts.requests}, canary ${tc.requests} requests${holdback ? '' : ' (no stable holdback: comparisons use the earlier steps)'}`,
  });
  const usable = !badCounts.length;

  // Error rate: always-valid test of canary − stable > 0.
  let errorPValue = prev.errorPValue;
  const err = usable ? errorRateDifference(input.periods) : undefined;
  if (err && Number.isFinite(err.variance)) {
    const tau2 = c.maxErrorRateIncrease ** 2;
    // Two scales: the smallest increase that matters, and ten times it (a broken canary is seen at once).
    errorPValue = alwaysValidPValueMix(err.estimate, err.variance, [tau2, 100 * tau2], 'greater', prev.errorPValue);
    const upper = confidenceBound(err.estimate, err.variance, tau2, alphaErr, 'upper');
    const fail = errorPValue < alphaErr && err.estimate > c.maxErrorRateIncrease;
    checks.push({
      name: 'error-rate',
      verdict: fail ? 'fail' : 'pass',
      stable: fmt(err.stableRate, 6),
      canary: fmt(err.canaryRate, 6),
      pValue: fmt(errorPValue, 6),
      estimate: fmt(err.estimate, 6),
      ...(Number.isFinite(upper) ? { upper: fmt(upper, 6) } : {}),
      reason: fail
        ? `canary error rate ${fmt(err.canaryRate * 100, 2)}% exceeds stable ${fmt(err.stableRate * 100, 2)}% by ${fmt(err.estimate * 100, 2)} points, more than the ${fmt(c.maxErrorRateIncrease * 100, 2)} allowed (always-valid p=${fmt(errorPValue, 4)} < ${fmt(alphaErr, 4)})`
        : `error rate ${fmt(err.canaryRate * 100, 2)}% vs stable ${fmt(err.stableRate * 100, 2)}% (${points(err.estimate)}${Number.isFinite(upper) ? `, upper bound ${points(upper)}` : ''}; p=${fmt(errorPValue, 4)})`,
    });
  } else {
    checks.push({
      name: 'error-rate',
      verdict: 'inconclusive',
      stable: null,
      canary: null,
      pValue: fmt(errorPValue, 6),
      reason: usable ? 'no step with requests on both variants yet' : 'counters inconsistent: not analysed',
    });
  }

  checks.push(latencyCheck(input.latency ?? [], c, holdback));

  // CTR: always-valid test of a drop, on the log scale (log of canary CTR / stable CTR).
  let ctrPValue = prev.ctrPValue;
  const ctr = usable ? ctrChange(input.periods, input.pre) : undefined;
  const raw = input.pre && ctr ? ctrChange(input.periods) : ctr;
  const decisive = current.canaryWeight >= c.decisiveWeight;
  const enoughImpressions = tc.impressions >= c.minImpressions && (!holdback || ts.impressions >= c.minImpressions);
  const effective = ctr ? Math.min(ctr.stableEffectiveBuckets, ctr.canaryEffectiveBuckets) : 0;
  if (!ctr || !Number.isFinite(ctr.variance) || effective < c.minEffectiveBuckets) {
    const buckets = ctr
      ? `effective user buckets: stable ${fmt(ctr.stableEffectiveBuckets, 1)}, canary ${fmt(ctr.canaryEffectiveBuckets, 1)}`
      : 'no clicks on one side';
    checks.push({
      name: 'ctr',
      verdict: decisive ? 'inconclusive' : 'pass',
      stable: raw ? fmt(raw.stableRate) : null,
      canary: raw ? fmt(raw.canaryRate) : null,
      pValue: fmt(ctrPValue, 6),
      reason: `too few users for a CTR test (${buckets}; need ${c.minEffectiveBuckets} each)${decisive ? '' : ': decided at the decisive steps'}`,
    });
  } else {
    const tau = -Math.log(1 - c.ctrDropToDetect);
    const tau2 = tau * tau;
    // Two scales: the drop to detect, and three times it (a much worse canary is rolled back early).
    ctrPValue = alwaysValidPValueMix(ctr.estimate, ctr.variance, [tau2, 9 * tau2], 'less', prev.ctrPValue);
    const lower = Math.expm1(confidenceBound(ctr.estimate, ctr.variance, tau2, 1 - c.power, 'lower'));
    const upper = Math.expm1(confidenceBound(ctr.estimate, ctr.variance, tau2, alphaCtr, 'upper'));
    const change = Math.expm1(ctr.estimate);
    const power = detectionPower(tau, ctr.variance, tau2, alphaCtr);
    const fail = ctrPValue < alphaCtr && change <= -c.minCtrDropToFail;
    const notWorse = lower > -c.ctrDropToDetect;
    // Passing on power alone ("a 10 % drop would have been seen") needs the estimate itself to be under the practical
    // floor: a powered look estimating a drop of 5 % or more is evidence of a drop not yet significant, not of none.
    const powered = power >= c.power && change > -c.minCtrDropToFail;
    const verdict: Verdict = fail
      ? 'fail'
      : !enoughImpressions
        ? 'inconclusive'
        : !decisive || notWorse || powered
          ? 'pass'
          : 'inconclusive';
    const rates = raw ?? ctr;
    const figures = `CTR ${fmt(rates.canaryRate * 100, 2)}% vs stable ${fmt(rates.stableRate * 100, 2)}% (${input.pre ? 'adjusted for users ' : ''}${pct(change)}, ${fmt(c.power * 100, 0)}% lower bound ${pct(lower)}, ${fmt((1 - alphaCtr) * 100, 0)}% upper bound ${pct(upper)}, always-valid p=${fmt(ctrPValue, 4)}, power for a ${fmt(c.ctrDropToDetect * 100, 1)}% drop ${fmt(power * 100, 0)}%)`;
    checks.push({
      name: 'ctr',
      verdict,
      stable: fmt(rates.stableRate),
      canary: fmt(rates.canaryRate),
      pValue: fmt(ctrPValue, 6),
      estimate: fmt(change, 6),
      lower: fmt(lower, 6),
      upper: fmt(upper, 6),
      reason:
        verdict === 'fail'
          ? `canary ${figures}: a significant drop (p < ${fmt(alphaCtr, 4)}) of at least ${fmt(c.minCtrDropToFail * 100, 1)}%`
          : verdict === 'inconclusive'
            ? !enoughImpressions
              ? `too few impressions this step: stable ${ts.impressions}, canary ${tc.impressions} (need ${c.minImpressions}); ${figures}`
              : `not enough evidence yet: ${figures}; needs the lower bound above -${fmt(c.ctrDropToDetect * 100, 1)}%, or ${fmt(c.power * 100, 0)}% power with an estimate above -${fmt(c.minCtrDropToFail * 100, 1)}%`
            : `${figures}${decisive ? (notWorse ? ': not worse by the margin' : ': powered, no drop found') : ''}`,
    });
  }

  const verdict: Verdict = checks.some((x) => x.verdict === 'fail')
    ? 'fail'
    : checks.some((x) => x.verdict === 'inconclusive')
      ? 'inconclusive'
      : 'pass';
  const deciding = checks.filter((x) => x.verdict === verdict);
  return {
    analysis: { verdict, checks, summary: `${verdict}: ${deciding.map((x) => `${x.name}: ${x.reason}`).join('; ')}` },
    state: { looks: prev.looks + 1, ctrPValue, errorPValue },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

/**
 * Latency: slice by slice against the concurrent stable. A slice breaches when the canary's p99 is above both
 * `maxP99Ratio` × and `p99SlackMs` + stable's. Fail when more than `latencyBreachShare` of at least `minSlices`
 * usable slices breach and stable kept its SLO in most of them; an SLO breach otherwise is inconclusive (the host,
 * not the canary, or not attributable).
 */
export function latencyCheck(slices: LatencySlice[], c: SequentialCriteria, concurrentStable: boolean): CheckResult {
  const withCanary = slices.filter((s) => s.canary.requests >= c.minSliceRequests);
  const paired = concurrentStable ? withCanary.filter((s) => s.stable.requests >= c.minSliceRequests) : [];
  const canaryMedian = withCanary.length ? median(withCanary.map((s) => s.canary.p99Ms)) : NaN;
  if (paired.length < c.minSlices) {
    const overSlo = canaryMedian > c.maxP99Ms;
    return {
      name: 'latency-p99',
      verdict: overSlo ? 'inconclusive' : 'pass',
      stable: null,
      canary: Number.isFinite(canaryMedian) ? fmt(canaryMedian, 2) : null,
      reason: `${paired.length} slice(s) with >= ${c.minSliceRequests} requests on both variants (need ${c.minSlices}): no comparison with stable; ${
        Number.isFinite(canaryMedian)
          ? `canary median p99 ${fmt(canaryMedian, 1)} ms ${overSlo ? `above the SLO ${c.maxP99Ms} ms, not attributable` : `within the SLO ${c.maxP99Ms} ms`}`
          : 'no canary slice measured'
      }`,
    };
  }
  const breaches = paired.filter(
    (s) => s.canary.p99Ms > Math.max(s.stable.p99Ms * c.maxP99Ratio, s.stable.p99Ms + c.p99SlackMs),
  );
  const stableMedian = median(paired.map((s) => s.stable.p99Ms));
  const pairedCanaryMedian = median(paired.map((s) => s.canary.p99Ms));
  const regression = breaches.length > c.latencyBreachShare * paired.length;
  const stableOverSlo = breaches.filter((s) => s.stable.p99Ms > c.maxP99Ms).length > breaches.length / 2;
  const canaryOverSlo = pairedCanaryMedian > c.maxP99Ms;
  const figures = `canary median p99 ${fmt(pairedCanaryMedian, 1)} ms vs stable ${fmt(stableMedian, 1)} ms; ${breaches.length}/${paired.length} slices above ${c.maxP99Ratio}x and +${c.p99SlackMs} ms of stable`;
  const verdict: Verdict =
    regression && !stableOverSlo ? 'fail' : regression || canaryOverSlo ? 'inconclusive' : 'pass';
  return {
    name: 'latency-p99',
    verdict,
    stable: fmt(stableMedian, 2),
    canary: fmt(pairedCanaryMedian, 2),
    reason:
      verdict === 'fail'
        ? `latency regression: ${figures}`
        : verdict === 'inconclusive'
          ? regression
            ? `stable breaches the SLO ${c.maxP99Ms} ms too (the host is overloaded; not attributable): ${figures}`
            : `SLO ${c.maxP99Ms} ms breached, but not a regression against the concurrent stable: ${figures}`
          : figures,
  };
}
