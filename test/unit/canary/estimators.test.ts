/**
 * The contrasts: hand-computed estimates and jackknife variances, the period stratification against pooling, the
 * jackknife against the delta method's sandwich computed here independently, and the pre-rollout adjustment (it
 * must cut the variance without moving the estimate).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyBuckets, mergeBuckets, type PeriodBuckets, type VariantBuckets } from '../../../lib/canary/buckets';
import { ctrChange, errorRateDifference, preRolloutRates } from '../../../lib/canary/estimators';
import { simulateRollout, SEQUENTIAL_PLAN } from '../../../lib/canary/simulate';
import { mulberry32 } from '../../../lib/rng';

const side = (impressions: number[], clicks: number[], requests = impressions, errors = impressions.map(() => 0)) =>
  ({ requests, errors, impressions, clicks }) satisfies VariantBuckets;
const period = (stable: VariantBuckets, canary: VariantBuckets, canaryWeight = 50): PeriodBuckets => ({
  canaryWeight,
  stable,
  canary,
});
const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

describe('stratified contrasts', () => {
  it('log CTR ratio and its delete-one-bucket jackknife, by hand', () => {
    const p = period(side([100, 200, 0, 0], [10, 30, 0, 0]), side([0, 0, 100, 100], [0, 0, 5, 15]));
    const e = ctrChange([p]);
    assert.ok(e);
    close(e.estimate, Math.log(0.1 / (40 / 300)), 1e-12, 'estimate');
    const loo = [Math.log(0.1 / 0.15), Math.log(0.1 / 0.1), Math.log(0.15 / (40 / 300)), Math.log(0.05 / (40 / 300))];
    const mean = loo.reduce((s, x) => s + x, 0) / 4;
    close(e.variance, (3 / 4) * loo.reduce((s, x) => s + (x - mean) ** 2, 0), 1e-12, 'variance');
    assert.deepEqual([e.clusters, e.stableBuckets, e.canaryBuckets, e.periodsUsed], [4, 2, 2, 1]);
    close(e.stableEffectiveBuckets, 300 ** 2 / (100 ** 2 + 200 ** 2), 1e-12, 'Kish');
    close(e.canaryRate, 0.1, 1e-12, 'canary rate');
  });

  it('periods are strata: a rate that changes over time is no canary effect, where pooling sees one', () => {
    // Both sides click 20 % in period 1 and 10 % in period 2; the canary's traffic is mostly in period 2.
    const p1 = period(side([900], [180]), side([100], [20]), 10);
    const p2 = period(side([100], [10]), side([900], [90]), 90);
    const e = ctrChange([p1, p2]);
    assert.ok(e);
    close(e.estimate, 0, 1e-12, 'stratified');
    assert.equal(e.periodsUsed, 2);
    const pooled = ctrChange([period(mergeBuckets([p1.stable, p2.stable]), mergeBuckets([p1.canary, p2.canary]))]);
    close(pooled?.estimate ?? NaN, Math.log(0.11 / 0.19), 1e-12, 'pooled (biased)');
    // CMH weights n_s·n_c/(n_s+n_c) = 90 for both periods: the rates are equal averages of the periods'.
    close(e.stableRate, 0.15, 1e-12, 'weighted stable rate');
  });

  it('a period with one side only carries no comparison; no comparable period, no estimate', () => {
    const both = period(side([100, 100], [10, 12]), side([100, 100], [9, 11]));
    const canaryOnly = period(side([0, 0], [0, 0]), side([500, 500], [10, 10]), 100);
    const e = ctrChange([both, canaryOnly]);
    assert.equal(e?.periodsUsed, 1);
    close(e?.estimate ?? NaN, ctrChange([both])?.estimate ?? NaN, 1e-12, 'unchanged by the one-sided period');
    assert.equal(ctrChange([canaryOnly]), undefined);
    assert.equal(ctrChange([period(side([100], [0]), side([100], [5]))]), undefined, 'stable CTR 0: no ratio');
  });

  it('error-rate difference is absolute, and zero errors give zero variance', () => {
    const s = side([0], [0], [1000, 1000], [2, 0]);
    const c = side([0], [0], [1000, 1000], [30, 10]);
    const e = errorRateDifference([period(s, c)]);
    close(e?.estimate ?? NaN, 40 / 2000 - 2 / 2000, 1e-12, 'difference');
    const none = errorRateDifference([period(side([0], [0], [50, 50], [0, 0]), side([0], [0], [50, 50], [0, 0]))]);
    assert.equal(none?.estimate, 0);
    assert.equal(none?.variance, 0);
  });

  it('the jackknife agrees with the delta-method sandwich on many equal buckets', () => {
    const r = mulberry32(3);
    const B = 512;
    const s = emptyBuckets(B);
    const c = emptyBuckets(B);
    for (let b = 0; b < B; b++) {
      const v = b % 2 ? c : s;
      const n = 200 + Math.floor(100 * r());
      const p = 0.05 + 0.1 * r();
      v.impressions[b] = n;
      v.requests[b] = n / 10;
      let k = 0;
      for (let i = 0; i < n; i++) if (r() < p) k++;
      v.clicks[b] = k;
    }
    const e = ctrChange([period(s, c)]);
    assert.ok(e);
    const tot = (v: VariantBuckets) => [v.impressions.reduce((x, y) => x + y), v.clicks.reduce((x, y) => x + y)];
    const [nS = 0, xS = 0] = tot(s);
    const [nC = 0, xC = 0] = tot(c);
    let ss = 0;
    for (let b = 0; b < B; b++) {
      const inf =
        ((c.clicks[b] ?? 0) - (xC / nC) * (c.impressions[b] ?? 0)) / xC -
        ((s.clicks[b] ?? 0) - (xS / nS) * (s.impressions[b] ?? 0)) / xS;
      ss += inf * inf;
    }
    const sandwich = (B / (B - 1)) * ss;
    assert.ok(Math.abs(e.variance / sandwich - 1) < 0.02, `jackknife ${e.variance} vs sandwich ${sandwich}`);
  });
});

describe('pre-rollout adjustment', () => {
  it('shrinks each bucket towards the overall rate, all the way when buckets do not differ', () => {
    const flat = side([100, 100, 100, 0], [10, 10, 10, 0]);
    const q = preRolloutRates(flat);
    assert.ok(q);
    assert.equal(q.kappa, Infinity);
    assert.deepEqual(q.rates, [0.1, 0.1, 0.1, 0.1]);
    const het = side([1000, 1000, 1000, 0], [50, 100, 300, 0]);
    const h = preRolloutRates(het);
    assert.ok(h && Number.isFinite(h.kappa) && h.kappa > 0);
    close(h.mean, 0.15, 1e-12, 'mean');
    const [r0 = 0, r1 = 0, r2 = 0, r3 = 0] = h.rates;
    assert.ok(r0 > 0.05 && r0 < 0.15 && r2 < 0.3 && r2 > 0.15 && r1 > 0.1 && r1 < 0.15, h.rates.join(', '));
    assert.equal(r3, 0.15, 'no pre-rollout data: the overall rate');
    assert.equal(preRolloutRates(side([100], [0])), undefined);
  });

  it('on simulated A/A rollouts it halves the standard error and leaves the estimate centred', () => {
    const plain: number[] = [];
    const adjusted: number[] = [];
    const z: number[] = [];
    for (let seed = 1; seed <= 150; seed++)
      simulateRollout(
        seed,
        () => (look) => {
          if (look.step === 2) {
            const a = ctrChange(look.periods);
            const b = ctrChange(look.periods, look.pre);
            if (a && b) {
              plain.push(a.estimate);
              adjusted.push(b.estimate);
              z.push(b.estimate / Math.sqrt(b.variance));
            }
          }
          return { verdict: 'pass', deciding: [] };
        },
        {},
        {},
        SEQUENTIAL_PLAN,
      );
    const sd = (x: number[]) => {
      const m = x.reduce((s, v) => s + v, 0) / x.length;
      return { m, sd: Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / (x.length - 1)) };
    };
    const a = sd(plain);
    const b = sd(adjusted);
    assert.ok(b.sd < 0.65 * a.sd, `adjusted sd ${b.sd} vs plain ${a.sd}`);
    assert.ok(Math.abs(b.m) < 3 * (b.sd / Math.sqrt(adjusted.length)), `adjusted mean ${b.m}`);
    // The variance estimate is honest: z has sd near 1 (150 draws: ±0.12 is two standard errors).
    const zs = sd(z);
    assert.ok(zs.sd > 0.85 && zs.sd < 1.2, `z sd ${zs.sd}`);
  });
});
