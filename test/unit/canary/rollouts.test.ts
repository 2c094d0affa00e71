/**
 * Whole simulated rollouts (lib/canary/simulate.ts) at the demo's traffic: users as clusters (lognormal activity,
 * Beta click rates), a fresh salt per rollout, 10 → 25 → 50 → 100 % with a 5 % stable holdback, extensions on
 * inconclusive looks. Asserts the operating characteristics the product promises: identical models are rarely
 * rolled back (the false-rollback rate stays within alpha plus binomial slack), a 10 %-worse canary is caught, and
 * the per-window impression z-test this analysis replaces breaks the bound on the same simulator.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SEQUENTIAL_CRITERIA } from '../../../lib/canary/analyze';
import {
  DEMO_TRAFFIC,
  LEGACY_PLAN,
  legacyAnalyst,
  SEQUENTIAL_PLAN,
  sequentialAnalyst,
  simulateRollouts,
  type SimulatedPlan,
  type SimulatedPopulation,
} from '../../../lib/canary/simulate';
import { gauss, mulberry32 } from '../../../lib/rng';

const ROLLOUTS = 200;
const alpha = DEFAULT_SEQUENTIAL_CRITERIA.alpha;

/**
 * The smallest k with P(Binomial(n, p) >= k) <= 0.001: more false rollbacks than this out of n would be a 1-in-1000
 * accident for a method whose true rate is p.
 */
function binomialUpperBound(n: number, p: number, tail = 0.001): number {
  const pmf: number[] = [];
  let logC = 0;
  for (let k = 0; k <= n; k++) {
    if (k > 0) logC += Math.log((n - k + 1) / k);
    pmf.push(Math.exp(logC + k * Math.log(p) + (n - k) * Math.log(1 - p)));
  }
  let upper = 0;
  for (let k = n; k >= 0; k--) {
    upper += pmf[k] ?? 0;
    if (upper > tail) return k + 1;
  }
  return 0;
}
const bound = binomialUpperBound(ROLLOUTS, alpha);
const describeRuns = (s: ReturnType<typeof simulateRollouts>) =>
  `${s.promoted} promoted, ${s.rolledBack} rolled back ${JSON.stringify(s.rolledBackBy)}, ${s.inconclusive} inconclusive, ${s.meanLooks.toFixed(1)} looks`;

describe('simulated rollouts at the demo traffic', () => {
  it('the binomial slack is what it says', () => {
    // P(Bin(200, 0.05) >= 22) = 0.00048, P(>= 21) = 0.00116 (scipy.stats.binom.sf(21, 200, 0.05), sf(20, ...)).
    assert.equal(bound, 22);
  });

  it(`identical models: at most alpha + slack of ${ROLLOUTS} whole rollouts rolled back, and most promoted`, () => {
    const s = simulateRollouts(ROLLOUTS, 1, sequentialAnalyst(), DEMO_TRAFFIC, {}, SEQUENTIAL_PLAN);
    assert.ok(s.rolledBack < bound, `A/A: ${describeRuns(s)} (bound ${bound})`);
    assert.ok(s.promoted >= 0.9 * ROLLOUTS, `A/A should mostly pass: ${describeRuns(s)}`);
  });

  it('a canary 10 % worse in CTR is rolled back in at least 80 % of rollouts', () => {
    const s = simulateRollouts(ROLLOUTS, 100_001, sequentialAnalyst(), DEMO_TRAFFIC, { canaryCtrFactor: 0.9 });
    assert.ok(s.rolledBack >= 0.8 * ROLLOUTS, `A/B: ${describeRuns(s)}`);
    assert.ok(s.promoted <= 0.1 * ROLLOUTS, `A/B promoted too often: ${describeRuns(s)}`);
  });

  it('a canary with 2 % errors (stable 0.2 %) is rolled back on its error rate', () => {
    const s = simulateRollouts(100, 200_001, sequentialAnalyst(), DEMO_TRAFFIC, { canaryErrorRate: 0.02 });
    assert.ok((s.rolledBackBy['error-rate'] ?? 0) >= 95, describeRuns(s));
  });

  it('stays within the bound when CTR changes over the steps (strata) and without a pre-rollout window', () => {
    // Both variants' CTR dips 15 % in the last step and is 10 % higher before the rollout: pooling the steps would
    // blame the canary (it has most of its traffic late); the period strata do not.
    const drift = simulateRollouts(ROLLOUTS, 300_001, sequentialAnalyst(), DEMO_TRAFFIC, {
      stepCtrFactors: [1, 1.05, 0.95, 0.85],
      preCtrFactor: 1.1,
    });
    assert.ok(drift.rolledBack < bound, `A/A with drift: ${describeRuns(drift)}`);
    const noPre = simulateRollouts(
      ROLLOUTS,
      400_001,
      sequentialAnalyst(),
      DEMO_TRAFFIC,
      {},
      { ...SEQUENTIAL_PLAN, preBakes: 0 },
    );
    assert.ok(noPre.rolledBack < bound, `A/A without the pre-rollout window: ${describeRuns(noPre)}`);
  });

  it('the per-window impression z-test it replaces rolls back identical models far beyond the bound', () => {
    const s = simulateRollouts(ROLLOUTS, 1, legacyAnalyst(), DEMO_TRAFFIC, {}, LEGACY_PLAN);
    assert.ok(s.rolledBack >= bound, `legacy A/A: ${describeRuns(s)} should break the bound ${bound}`);
  });
});

/**
 * A shop-like population (the fleet benchmark's shape, bench/canary.ts): 3000 users with capped lognormal activity
 * and click rates around 0.24 (CV 0.26, as the synthetic shop's ground truth gives the champion), and a canary with a
 * per-user effect: 40 % of users get another user's recommendations at three quarters of that user's CTR, the rest
 * are unchanged (about 10 % worse over all traffic, but unrelated to a user's own baseline for the users it hits).
 */
function shopLikePopulation(
  seed: number,
  users = 3000,
): SimulatedPopulation & { canaryCtr: number[]; weights: number[] } {
  const r = mulberry32(seed);
  const weights: number[] = [];
  const ctr: number[] = [];
  for (let u = 0; u < users; u++) {
    weights.push(Math.min(200, Math.ceil(Math.exp(2.5 + gauss(r)))));
    ctr.push(Math.min(0.9, Math.max(0.01, 0.24 * (1 + 0.26 * gauss(r)))));
  }
  const canaryCtr = ctr.map((c) => (r() < 0.4 ? 0.75 * (ctr[Math.floor(r() * users)] ?? c) : c));
  return { weights, ctr, canaryCtr, freshCtr: 0.08 };
}

describe('simulated rollouts of a measured population with a per-user effect (the fleet benchmark)', () => {
  const pop = shopLikePopulation(7);
  /** The demo's rollout: 80 requests/s, 20-second windows, 10 → 50 → 95 % with one extension. */
  const plan: SimulatedPlan = { steps: [10, 50, 95], maxExtensions: 1, preBakes: 1 };
  const demo = (users: number) => ({ users, rps: 80, bakeSeconds: 20 });
  const aa = { ...pop, canaryCtr: undefined };

  it('the fixture is a 10 %-worse canary over the traffic', () => {
    let stable = 0;
    let canary = 0;
    pop.weights.forEach((w, u) => {
      stable += w * (pop.ctr[u] ?? 0);
      canary += w * (pop.canaryCtr[u] ?? 0);
    });
    const ratio = canary / stable;
    assert.ok(ratio > 0.87 && ratio < 0.93, `true CTR ratio ${ratio.toFixed(4)}`);
  });

  it('requests from the whole user base: identical models stay within the bound, the worse one is caught', () => {
    const a = simulateRollouts(ROLLOUTS, 1, sequentialAnalyst(), { ...demo(3000), population: aa }, {}, plan);
    assert.ok(a.rolledBack < bound, `A/A: ${describeRuns(a)} (bound ${bound})`);
    assert.ok(a.promoted >= 0.95 * ROLLOUTS, `A/A should pass: ${describeRuns(a)}`);
    const b = simulateRollouts(ROLLOUTS, 100_001, sequentialAnalyst(), { ...demo(3000), population: pop }, {}, plan);
    assert.ok(b.rolledBack >= 0.8 * ROLLOUTS, `A/B: ${describeRuns(b)}`);
  });

  it('a panel of 400 heavy users per rollout cannot decide: which of them the canary got is most of the noise', () => {
    // The demo's traffic before issue 14's last stop; on the fleet 5 of 10 rolled back, the rest inconclusive.
    const panel = simulateRollouts(ROLLOUTS, 100_001, sequentialAnalyst(), { ...demo(400), population: pop }, {}, plan);
    const whole = simulateRollouts(
      ROLLOUTS,
      100_001,
      sequentialAnalyst(),
      { ...demo(3000), population: pop },
      {},
      plan,
    );
    assert.ok(
      panel.rolledBack < whole.rolledBack - 0.2 * ROLLOUTS,
      `panel ${describeRuns(panel)}; whole ${describeRuns(whole)}`,
    );
    assert.ok(panel.promoted <= 0.05 * ROLLOUTS, `the panel's worse canary is not promoted: ${describeRuns(panel)}`);
    const panelAa = simulateRollouts(ROLLOUTS, 1, sequentialAnalyst(), { ...demo(400), population: aa }, {}, plan);
    assert.ok(panelAa.rolledBack < bound, `A/A on the panel: ${describeRuns(panelAa)}`);
  });
});
