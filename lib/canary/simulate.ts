/**
 * A simulator of whole canary rollouts with users as clusters, for the analysis's operating characteristics (false
 * rollbacks of identical models, detection of a worse one) without a fleet: users with lognormal activity and
 * Beta-distributed base CTR, sticky routing by a per-rollout salted position, steps with extensions on
 * inconclusive looks, per-user-bucket counters as replicas export them. The fleet benchmark (bench/canary.ts)
 * measures the same on real replicas; this runs hundreds of rollouts in seconds (test/unit/canary/).
 *
 * Pure and deterministic for a seed.
 */
import { analyzeWindow, type CanaryCriteria, type VariantWindowStats, type Verdict } from './analysis';
import { analyzeRolloutLook, type RolloutTestState, type SequentialCriteria } from './analyze';
import { emptyBuckets, hash32, userBucket, type PeriodBuckets, type VariantBuckets } from './buckets';
import { gauss, mulberry32, weightedSampleIndices } from '../rng';

/** The traffic and the population of a simulated rollout. Every field has a default ({@link DEMO_TRAFFIC}). */
export interface SimulatedTraffic {
  /** Known users. */
  users: number;
  /** Requests per second over the whole fleet. */
  rps: number;
  /** Length of a bake (and of an extension), seconds. */
  bakeSeconds: number;
  /** Items per response (impressions per successful request). */
  itemsPerRequest: number;
  /** σ of log(activity): users' request rates are lognormal (1: the top 10 % of users make ~40 % of requests). */
  activitySigma: number;
  /** Mean per-impression click probability over users (Beta distributed). */
  ctrMean: number;
  /** Beta concentration a + b of users' click probabilities (CV = sqrt((1 − m) / (m (κ + 1)))). */
  ctrConcentration: number;
  /** Share of requests from one-off new users (each a fresh id). */
  newUserShare: number;
  /** Per-request error probability of stable. */
  errorRate: number;
  /** Number of user buckets B. */
  buckets: number;
  /**
   * A measured population instead of the lognormal and Beta draws (e.g. a shop's users with their ground-truth CTR
   * under both models: bench/canary.ts `--dump-population`). Each rollout samples `users` of them by activity
   * without replacement (as the fleet's traffic simulator draws its panel), their activity is their request rate
   * and their CTR is exact; new users click with `freshCtr`.
   */
  population?: SimulatedPopulation;
}

/** Users measured elsewhere: activity weights and click probabilities per user, parallel arrays. */
export interface SimulatedPopulation {
  /** Activity weight per user (request rate, relative). */
  weights: ArrayLike<number>;
  /** Stable's click probability per impression, per user. */
  ctr: ArrayLike<number>;
  /** The canary's, per user (a per-user effect; `canaryCtrFactor` multiplies it when set). @default `ctr` */
  canaryCtr?: ArrayLike<number>;
  /** Click probability of a one-off new user (the same on both models). */
  freshCtr: number;
}

/**
 * "The demo's traffic": a few hundred users, 30 requests/s, 10 items per response, 5-minute bakes; CTR 30 % (what
 * the synthetic shop's ground truth gives a popularity ranking: 0.34 mean, CV 0.19 over users) with CV 0.2.
 */
export const DEMO_TRAFFIC: SimulatedTraffic = {
  users: 400,
  rps: 30,
  bakeSeconds: 300,
  itemsPerRequest: 10,
  activitySigma: 1,
  ctrMean: 0.3,
  ctrConcentration: 57,
  newUserShare: 0.05,
  errorRate: 0.002,
  buckets: 512,
};

/** What the canary does differently, and what changes over time for both variants. */
export interface SimulatedEffect {
  /** Canary click probability = stable's × this (0.9: 10 % worse). @default 1 */
  canaryCtrFactor?: number;
  /** Canary per-request error probability. @default the stable's */
  canaryErrorRate?: number;
  /** Both variants' click probabilities × this, per step (a time effect: time of day, traffic mix). @default none */
  stepCtrFactors?: number[];
  /** The same before the rollout (the pre-rollout bakes). @default 1 */
  preCtrFactor?: number;
}

/** The rollout plan. */
export interface SimulatedPlan {
  /** Canary weights of the steps, e.g. [10, 25, 50, 95] (95: a 5 % stable holdback at the last step). */
  steps: number[];
  /** Extra bakes of a step whose look is inconclusive, before the rollout ends inconclusive. */
  maxExtensions: number;
  /** Bakes before the first step, everyone on stable, whose bucket counters adjust the CTR (0: none). */
  preBakes?: number;
}

/** The plan recflow recommends: 10 → 25 → 50 → 100 % with a 5 % stable holdback, two extensions per step. */
export const SEQUENTIAL_PLAN: SimulatedPlan = { steps: [10, 25, 50, 95], maxExtensions: 2, preBakes: 1 };
/** The plan of the per-window analysis (no holdback: the 100 % step uses stable's last window). */
export const LEGACY_PLAN: SimulatedPlan = { steps: [10, 25, 50, 100], maxExtensions: 2 };

/** How a rollout ended. */
export interface SimulatedRollout {
  outcome: 'promoted' | 'rolled_back' | 'inconclusive';
  /** Looks analysed (bakes and extensions). */
  looks: number;
  /** Step index of the last look. */
  step: number;
  /** The checks that failed (rolled back) or were inconclusive at the last look. */
  deciding: string[];
}

/** One look's data handed to an analyst. */
export interface SimulatedLook {
  /** The rollout's periods so far (the last is the current step), as replicas would export them. */
  periods: PeriodBuckets[];
  /** The current window alone (this bake or extension), as per-variant totals. */
  window: { stable: VariantWindowStats; canary: VariantWindowStats };
  /** The last window in which stable served users (for an analysis that compares with it at 100 %). */
  lastStableWindow?: VariantWindowStats;
  /** Stable's bucket counters before the first step (when the plan has `preBakes`). */
  pre?: VariantBuckets;
  step: number;
  weight: number;
}

/** An analysis under test: a verdict per look, with the checks that decided it. */
export type Analyst = () => (look: SimulatedLook) => { verdict: Verdict; deciding: string[] };

/** The sequential analysis of ./analyze.ts. */
export function sequentialAnalyst(criteria: Partial<SequentialCriteria> = {}): Analyst {
  return () => {
    let state: RolloutTestState | undefined;
    return (look) => {
      const r = analyzeRolloutLook({ periods: look.periods, pre: look.pre, state, criteria });
      state = r.state;
      return { verdict: r.analysis.verdict, deciding: decidingChecks(r.analysis) };
    };
  };
}

/**
 * The per-window analysis of ./analysis.ts as the rollout used it: each window alone, impressions as independent
 * trials, stable's last window at 100 %.
 */
export function legacyAnalyst(criteria: Partial<CanaryCriteria> = {}): Analyst {
  return () => (look) => {
    const noStable = look.window.stable.requests === 0 && look.lastStableWindow !== undefined;
    const stable = noStable && look.lastStableWindow ? look.lastStableWindow : look.window.stable;
    const a = analyzeWindow(stable, look.window.canary, criteria, { stableFromEarlierWindow: noStable });
    return { verdict: a.verdict, deciding: decidingChecks(a) };
  };
}

function decidingChecks(a: { verdict: Verdict; checks: Array<{ name: string; verdict: Verdict }> }): string[] {
  return a.checks.filter((c) => c.verdict === a.verdict).map((c) => c.name);
}

function poisson(r: () => number, mean: number): number {
  if (mean <= 0) return 0;
  if (mean > 40) return Math.max(0, Math.round(mean + Math.sqrt(mean) * gauss(r)));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = r();
  while (p > limit) {
    k++;
    p *= r();
  }
  return k;
}

function binomial(r: () => number, n: number, p: number): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  const mean = n * p;
  if (mean > 40 && n * (1 - p) > 40)
    return Math.min(n, Math.max(0, Math.round(mean + Math.sqrt(mean * (1 - p)) * gauss(r))));
  if (p > 0.5) return n - binomial(r, n, 1 - p);
  // Inversion: walk the pmf from 0.
  const q = 1 - p;
  let pk = Math.pow(q, n);
  let cdf = pk;
  const u = r();
  let k = 0;
  while (u > cdf && k < n) {
    pk *= ((n - k) / (k + 1)) * (p / q);
    cdf += pk;
    k++;
  }
  return k;
}

/** Beta(a, b) draw through two gamma draws (Marsaglia-Tsang; a, b > 0). */
function beta(r: () => number, a: number, b: number): number {
  const x = gamma(r, a);
  const y = gamma(r, b);
  return x / (x + y);
}

function gamma(r: () => number, shape: number): number {
  if (shape < 1) return gamma(r, shape + 1) * Math.pow(r() + 1e-300, 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = gauss(r);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = r();
    if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

function windowStats(version: string): VariantWindowStats {
  return { version, requests: 0, errors: 0, p50Ms: 5, p99Ms: 10, impressions: 0, clicks: 0 };
}

/**
 * Simulate one rollout: a population and a per-rollout salt drawn from `seed`, then step by step, bake by bake,
 * counts drawn per user and handed to the analyst as bucket counters (sequential) and window totals (legacy).
 * Impressions of failed requests are not counted; clicks are drawn per impression from the user's probability.
 */
export function simulateRollout(
  seed: number,
  analyst: Analyst,
  traffic: Partial<SimulatedTraffic> = {},
  effect: SimulatedEffect = {},
  plan: SimulatedPlan = SEQUENTIAL_PLAN,
): SimulatedRollout {
  const t: SimulatedTraffic = { ...DEMO_TRAFFIC, ...traffic };
  const r = mulberry32(hash32(`simulateRollout:${seed}`));
  const salt = `rollout-${seed}`;
  const pop = t.population;
  const panel = pop ? weightedSampleIndices(pop.weights, t.users, hash32(`panel:${seed}`)) : undefined;
  const n = panel ? panel.length : t.users;
  const position = new Float64Array(n);
  const bucket = new Int32Array(n);
  const rate = new Float64Array(n);
  const ctr = new Float64Array(n);
  /** The canary's click probability per user when the population gives one (else stable's × the factor). */
  const canaryCtr = pop?.canaryCtr ? new Float64Array(n) : undefined;
  const a = t.ctrMean * t.ctrConcentration;
  const b = (1 - t.ctrMean) * t.ctrConcentration;
  let totalActivity = 0;
  for (let u = 0; u < n; u++) {
    position[u] = r();
    const id = panel ? (panel[u] ?? 0) : u;
    bucket[u] = userBucket(`u${id + 1}`, t.buckets, salt);
    rate[u] = pop ? (pop.weights[id] ?? 0) : Math.exp(t.activitySigma * gauss(r));
    totalActivity += rate[u] ?? 0;
    ctr[u] = pop ? (pop.ctr[id] ?? 0) : beta(r, a, b);
    if (canaryCtr && pop?.canaryCtr) canaryCtr[u] = pop.canaryCtr[id] ?? 0;
  }
  const freshCtr = () => (pop ? pop.freshCtr : beta(r, a, b));
  const knownRequests = t.rps * t.bakeSeconds * (1 - t.newUserShare);
  const newRequests = t.rps * t.bakeSeconds * t.newUserShare;
  const ctrFactor = effect.canaryCtrFactor ?? 1;
  const canaryErrors = effect.canaryErrorRate ?? t.errorRate;
  const decide = analyst();
  const periods: PeriodBuckets[] = [];
  let lastStableWindow: VariantWindowStats | undefined;
  let looks = 0;
  let newUsers = 0;

  const serve = (
    into: VariantBuckets,
    win: VariantWindowStats,
    bk: number,
    requests: number,
    errRate: number,
    p: number,
  ): void => {
    if (requests === 0) return;
    const errors = binomial(r, requests, errRate);
    const impressions = (requests - errors) * t.itemsPerRequest;
    const clicks = binomial(r, impressions, Math.min(1, p));
    into.requests[bk] = (into.requests[bk] ?? 0) + requests;
    into.errors[bk] = (into.errors[bk] ?? 0) + errors;
    into.impressions[bk] = (into.impressions[bk] ?? 0) + impressions;
    into.clicks[bk] = (into.clicks[bk] ?? 0) + clicks;
    win.requests += requests;
    win.errors += errors;
    win.impressions += impressions;
    win.clicks += clicks;
  };

  /** One bake at `weight`, `timeFactor` on every click probability: counts into `period` and the window. */
  const bake = (period: PeriodBuckets, weight: number, timeFactor: number) => {
    const win = { stable: windowStats('v1'), canary: windowStats('v2') };
    for (let u = 0; u < n; u++) {
      const req = poisson(r, (knownRequests * (rate[u] ?? 0)) / totalActivity);
      const onCanary = (position[u] ?? 1) * 100 < weight;
      const base = onCanary && canaryCtr ? (canaryCtr[u] ?? 0) : (ctr[u] ?? 0);
      const p = base * timeFactor * (onCanary ? ctrFactor : 1);
      if (onCanary) serve(period.canary, win.canary, bucket[u] ?? 0, req, canaryErrors, p);
      else serve(period.stable, win.stable, bucket[u] ?? 0, req, t.errorRate, p);
    }
    const fresh = poisson(r, newRequests);
    for (let i = 0; i < fresh; i++) {
      const bk = userBucket(`new-${newUsers++}`, t.buckets, salt);
      const onCanary = r() * 100 < weight;
      const p = freshCtr() * timeFactor * (onCanary ? ctrFactor : 1);
      if (onCanary) serve(period.canary, win.canary, bk, 1, canaryErrors, p);
      else serve(period.stable, win.stable, bk, 1, t.errorRate, p);
    }
    return win;
  };
  const newPeriod = (weight: number): PeriodBuckets => ({
    canaryWeight: weight,
    stable: emptyBuckets(t.buckets),
    canary: emptyBuckets(t.buckets),
  });

  let pre: VariantBuckets | undefined;
  if (plan.preBakes) {
    const p0 = newPeriod(0);
    for (let i = 0; i < plan.preBakes; i++) bake(p0, 0, effect.preCtrFactor ?? 1);
    pre = p0.stable;
  }
  for (let step = 0; step < plan.steps.length; step++) {
    const weight = plan.steps[step] ?? 100;
    const period = newPeriod(weight);
    periods.push(period);
    const timeFactor = effect.stepCtrFactors?.[step] ?? 1;
    for (let ext = 0; ; ext++) {
      const win = bake(period, weight, timeFactor);
      looks++;
      const v = decide({ periods, window: win, lastStableWindow, step, weight, pre });
      if (win.stable.requests > 0) lastStableWindow = win.stable;
      if (v.verdict === 'fail') return { outcome: 'rolled_back', looks, step, deciding: v.deciding };
      if (v.verdict === 'pass') break;
      if (ext >= plan.maxExtensions) return { outcome: 'inconclusive', looks, step, deciding: v.deciding };
    }
  }
  return { outcome: 'promoted', looks, step: plan.steps.length - 1, deciding: [] };
}

/** Outcome counts of `rollouts` simulated rollouts with seeds `firstSeed`, `firstSeed + 1`, ... */
export interface SimulationSummary {
  rollouts: number;
  promoted: number;
  rolledBack: number;
  inconclusive: number;
  /** Mean looks per rollout. */
  meanLooks: number;
  /** Rollbacks by the check that failed. */
  rolledBackBy: Record<string, number>;
}

/** Run many rollouts and count their outcomes. */
export function simulateRollouts(
  rollouts: number,
  firstSeed: number,
  analyst: Analyst,
  traffic: Partial<SimulatedTraffic> = {},
  effect: SimulatedEffect = {},
  plan: SimulatedPlan = SEQUENTIAL_PLAN,
): SimulationSummary {
  const s: SimulationSummary = {
    rollouts,
    promoted: 0,
    rolledBack: 0,
    inconclusive: 0,
    meanLooks: 0,
    rolledBackBy: {},
  };
  for (let i = 0; i < rollouts; i++) {
    const o = simulateRollout(firstSeed + i, analyst, traffic, effect, plan);
    s.meanLooks += o.looks / rollouts;
    if (o.outcome === 'promoted') s.promoted++;
    else if (o.outcome === 'inconclusive') s.inconclusive++;
    else {
      s.rolledBack++;
      for (const c of o.deciding) s.rolledBackBy[c] = (s.rolledBackBy[c] ?? 0) + 1;
    }
  }
  return s;
}
