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
} from '../../../lib/canary/simulate';

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
