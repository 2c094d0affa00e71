/**
 * Canary analysis: compares the canary variant with the stable one over one bake window, in the spirit of Argo
 * Rollouts' AnalysisTemplates and Kayenta: each check passes, fails or is inconclusive, and the verdict is the worst
 * of them (fail > inconclusive > pass). Pure functions, unit-tested; the `analyzeCanary` activity wraps them so the
 * inputs and the verdict are in the workflow history.
 *
 * Superseded by the rollout-wide sequential analysis of `./analyze.ts` (users as the unit, repeated looks
 * controlled); kept, with its types, until every caller has moved (docs/canary-statistics.md says why the per-window
 * impression z-test here rolls back identical models far more often than its alpha).
 */
import { normalCdf } from './normal';

export { normalCdf };

/** One variant's figures over the analysis window. */
export interface VariantWindowStats {
  version: string | null;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** Recommendations shown (items returned). */
  impressions: number;
  /** Feedback clicks (click, add_to_cart, purchase). */
  clicks: number;
}

/** Which replicas a window's figures come from. */
export interface WindowCoverage {
  /** Replicas live at the window's start. */
  expected: number;
  /** Those read at both ends without a restart between. */
  covered: number;
  /** Replica ids missing from the window (died, restarted or unreachable). */
  missing: string[];
}

/** Thresholds of the analysis. Every field has a default ({@link DEFAULT_CANARY_CRITERIA}). */
export interface CanaryCriteria {
  /** Below this many requests on either variant the window says nothing: inconclusive. */
  minRequests: number;
  /** Below this many impressions on either variant the CTR check is inconclusive. */
  minImpressions: number;
  /** Canary error rate may exceed stable's by at most this (absolute, 0.01 = one point). */
  maxErrorRateIncrease: number;
  /** Canary p99 may be at most this multiple of stable's ... */
  maxP99Ratio: number;
  /** ... and, to ignore noise on fast servers, at most this many ms above it before the ratio counts. */
  p99SlackMs: number;
  /**
   * Absolute latency SLO: canary p99 above it fails in any window. It is the only latency check when stable was
   * measured in an earlier window (the 100 % step), since latency depends on load and the loads then differ.
   */
  maxP99Ms: number;
  /** One-sided significance level of the CTR test (canary worse than stable). */
  alpha: number;
  /** Relative CTR drop that matters: a significant drop smaller than this passes. 0.05 = 5 %. */
  minCtrDropToFail: number;
}

export const DEFAULT_CANARY_CRITERIA: CanaryCriteria = {
  minRequests: 100,
  minImpressions: 500,
  maxErrorRateIncrease: 0.01,
  maxP99Ratio: 1.5,
  p99SlackMs: 20,
  maxP99Ms: 500,
  alpha: 0.05,
  minCtrDropToFail: 0.05,
};

export type Verdict = 'pass' | 'fail' | 'inconclusive';

export interface CheckResult {
  name: 'coverage' | 'traffic' | 'error-rate' | 'latency-p99' | 'ctr';
  verdict: Verdict;
  stable: number | null;
  canary: number | null;
  /** p-value of the test, when the check is a statistical test (always-valid in the sequential analysis). */
  pValue?: number;
  /** The effect estimated, canary against stable (relative CTR change, error-rate difference), when there is one. */
  estimate?: number;
  /** The always-valid confidence bounds of `estimate` (sequential analysis). */
  lower?: number;
  upper?: number;
  reason: string;
}

/** How much one variant's figures rest on (the run report shows them beside the verdict). */
export interface WindowSample {
  requests: number;
  errors: number;
  impressions: number;
  clicks: number;
  /** Distinct users (or user buckets) seen, where the analysis counts them. */
  users?: number;
}

export interface CanaryAnalysis {
  verdict: Verdict;
  checks: CheckResult[];
  /** One line for humans: the verdict and the checks that decided it. */
  summary: string;
  /** The sample sizes the verdict rests on, per variant (absent in analyses recorded before it existed). */
  samples?: { stable: WindowSample; canary: WindowSample };
}

/**
 * One-sided two-proportion z-test that proportion B is lower than proportion A (pooled variance).
 * Returns the p-value; 1 when there is no evidence at all (no trials, or B >= A with zero variance).
 */
export function pValueLower(successA: number, trialsA: number, successB: number, trialsB: number): number {
  if (trialsA <= 0 || trialsB <= 0) return 1;
  const pA = successA / trialsA;
  const pB = successB / trialsB;
  const pooled = (successA + successB) / (trialsA + trialsB);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / trialsA + 1 / trialsB));
  if (se === 0) return pB < pA ? 0 : 1;
  return normalCdf((pB - pA) / se);
}

const rate = (n: number, d: number) => (d > 0 ? n / d : 0);
const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/** What else the analysis of a window should know. */
export interface WindowContext {
  /** Which replicas the figures come from: a window that misses one is inconclusive. */
  coverage?: WindowCoverage;
  /**
   * Stable's figures come from an earlier window (at 100 % no user sees stable), not from the same one: the
   * relative latency check is skipped (latency depends on load), the absolute SLO still applies.
   */
  stableFromEarlierWindow?: boolean;
}

/**
 * Analyse one window: the canary against the stable variant. With `coverage`, a window that misses a replica (it
 * died or restarted meanwhile) is inconclusive whatever its figures say: no promotion on missing data.
 */
export function analyzeWindow(
  stable: VariantWindowStats,
  canary: VariantWindowStats,
  criteria: Partial<CanaryCriteria> = {},
  context: WindowContext = {},
): CanaryAnalysis {
  const { coverage } = context;
  const c = { ...DEFAULT_CANARY_CRITERIA, ...criteria };
  const checks: CheckResult[] = [];

  if (coverage) {
    const complete = coverage.missing.length === 0 && coverage.covered > 0;
    checks.push({
      name: 'coverage',
      verdict: complete ? 'pass' : 'inconclusive',
      stable: coverage.expected,
      canary: coverage.covered,
      reason: complete
        ? `all ${coverage.expected} live replicas read at both ends of the window`
        : coverage.covered === 0
          ? 'no replica could be read'
          : `replicas missing from the window (died, restarted or unreachable): ${coverage.missing.join(', ')}; ${coverage.covered}/${coverage.expected} read`,
    });
  }

  const enoughTraffic = stable.requests >= c.minRequests && canary.requests >= c.minRequests;
  checks.push({
    name: 'traffic',
    verdict: enoughTraffic ? 'pass' : 'inconclusive',
    stable: stable.requests,
    canary: canary.requests,
    reason: enoughTraffic
      ? `both variants served >= ${c.minRequests} requests`
      : `too little traffic: stable ${stable.requests}, canary ${canary.requests} requests (need ${c.minRequests} each)`,
  });

  if (enoughTraffic) {
    const es = rate(stable.errors, stable.requests);
    const ec = rate(canary.errors, canary.requests);
    const pErr = pValueLower(
      stable.requests - stable.errors,
      stable.requests,
      canary.requests - canary.errors,
      canary.requests,
    );
    const errFail = ec - es > c.maxErrorRateIncrease && pErr < c.alpha;
    checks.push({
      name: 'error-rate',
      verdict: errFail ? 'fail' : 'pass',
      stable: fmt(es),
      canary: fmt(ec),
      pValue: fmt(pErr, 6),
      reason: errFail
        ? `canary error rate ${fmt(ec * 100, 2)}% exceeds stable ${fmt(es * 100, 2)}% by more than ${c.maxErrorRateIncrease * 100} points (p=${fmt(pErr, 4)})`
        : `error rate ${fmt(ec * 100, 2)}% vs stable ${fmt(es * 100, 2)}%`,
    });

    const relative = !context.stableFromEarlierWindow;
    const limit = relative
      ? Math.min(c.maxP99Ms, Math.max(stable.p99Ms * c.maxP99Ratio, stable.p99Ms + c.p99SlackMs))
      : c.maxP99Ms;
    const against = relative ? `stable ${fmt(stable.p99Ms, 1)} ms` : 'the SLO; stable measured in an earlier window';
    // A breach of the SLO that the concurrent stable shares says the host is slow, not the canary: inconclusive.
    const worseThanStable =
      relative && canary.p99Ms > Math.max(stable.p99Ms * c.maxP99Ratio, stable.p99Ms + c.p99SlackMs);
    const shared = relative && !worseThanStable && canary.p99Ms > c.maxP99Ms && stable.p99Ms > c.maxP99Ms;
    const latFail = canary.p99Ms > limit && !shared;
    checks.push({
      name: 'latency-p99',
      verdict: latFail ? 'fail' : shared ? 'inconclusive' : 'pass',
      stable: fmt(stable.p99Ms, 2),
      canary: fmt(canary.p99Ms, 2),
      reason: latFail
        ? `canary p99 ${fmt(canary.p99Ms, 1)} ms above the limit ${fmt(limit, 1)} ms (${against})`
        : shared
          ? `both variants breach the ${c.maxP99Ms} ms SLO (canary ${fmt(canary.p99Ms, 1)} ms, stable ${fmt(stable.p99Ms, 1)} ms): the host is slow, not the canary`
          : `p99 ${fmt(canary.p99Ms, 1)} ms within ${fmt(limit, 1)} ms (${against})`,
    });
  }

  const enoughImpressions = stable.impressions >= c.minImpressions && canary.impressions >= c.minImpressions;
  const ctrS = rate(stable.clicks, stable.impressions);
  const ctrC = rate(canary.clicks, canary.impressions);
  if (!enoughImpressions) {
    checks.push({
      name: 'ctr',
      verdict: 'inconclusive',
      stable: fmt(ctrS),
      canary: fmt(ctrC),
      reason: `too few impressions for a CTR test: stable ${stable.impressions}, canary ${canary.impressions} (need ${c.minImpressions} each)`,
    });
  } else {
    const p = pValueLower(stable.clicks, stable.impressions, canary.clicks, canary.impressions);
    const relDrop = ctrS > 0 ? (ctrS - ctrC) / ctrS : 0;
    const ctrFail = p < c.alpha && relDrop >= c.minCtrDropToFail;
    checks.push({
      name: 'ctr',
      verdict: ctrFail ? 'fail' : 'pass',
      stable: fmt(ctrS),
      canary: fmt(ctrC),
      pValue: fmt(p, 6),
      reason: ctrFail
        ? `canary CTR ${fmt(ctrC * 100, 2)}% is significantly below stable ${fmt(ctrS * 100, 2)}% (-${fmt(relDrop * 100, 1)}%, p=${fmt(p, 4)} < ${c.alpha})`
        : `CTR ${fmt(ctrC * 100, 2)}% vs stable ${fmt(ctrS * 100, 2)}% (p=${fmt(p, 4)} for a drop)`,
    });
  }

  const verdict: Verdict = checks.some((x) => x.verdict === 'fail')
    ? 'fail'
    : checks.some((x) => x.verdict === 'inconclusive')
      ? 'inconclusive'
      : 'pass';
  const deciding = checks.filter((x) => x.verdict === verdict);
  const summary = `${verdict}: ${deciding.map((x) => `${x.name}: ${x.reason}`).join('; ')}`;
  const sample = (v: VariantWindowStats): WindowSample => ({
    requests: v.requests,
    errors: v.errors,
    impressions: v.impressions,
    clicks: v.clicks,
  });
  return { verdict, checks, summary, samples: { stable: sample(stable), canary: sample(canary) } };
}
