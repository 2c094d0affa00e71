/**
 * The mSPRT: the closed forms against the mixture integrated numerically in Python (scipy.integrate.quad, stored
 * here), the normal quantile against scipy, and the property the rollout relies on: monitored at every look, a true
 * null crosses the boundary with probability at most alpha.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logNormalCdf, normalQuantile } from '../../../lib/canary/normal';
import {
  alwaysValidPValue,
  confidenceBound,
  mixtureBoundary,
  mixtureLogLikelihoodRatio,
} from '../../../lib/canary/sequential';
import { gauss, mulberry32 } from '../../../lib/rng';

// log Λ by quad over the N(0, τ²) mixture (two-sided) or twice its half (less / greater).
const LOG_LAMBDA: Array<[[number, number, number], [number, number, number]]> = [
  [
    [-0.05, 0.0004, 0.01],
    [1.3757594232969514, 2.0617671140214697, -2.8767749740195603],
  ],
  [
    [-0.1, 0.001, 0.01],
    [3.34650690905536, 4.038368848282875, -2.617797233154298],
  ],
  [
    [0.03, 0.0009, 0.0111],
    [-0.8326335827229133, -1.9227851110567287, -0.32350873520204465],
  ],
  [
    [-0.02, 0.0001, 0.0025],
    [0.29402865406618217, 0.9619297144532785, -2.7045034602483327],
  ],
  [
    [0.0, 0.002, 0.01],
    [-0.8958797346140275, -0.8958797346140275, -0.8958797346140275],
  ],
];
// brentq on the integrated mixture: |θ̂|/√V where the one-sided ('less') Λ reaches 1/alpha.
const BOUNDARY: Array<[[number, number, number], number]> = [
  [[0.001, 0.0111, 0.04], 2.868956451177034],
  [[0.0001, 0.0111, 0.04], 3.140025907239087],
  [[0.01, 0.0111, 0.2], 2.258484305370095],
];
// scipy.stats.norm.ppf
const QUANTILE: Array<[number, number]> = [
  [1e-6, -4.753424308822899],
  [0.001, -3.090232306167813],
  [0.05, -1.6448536269514729],
  [0.2, -0.8416212335729142],
  [0.5, 0],
  [0.8, 0.8416212335729143],
  [0.975, 1.959963984540054],
];

describe('normal distribution', () => {
  it('quantile matches scipy and inverts the CDF', () => {
    for (const [p, want] of QUANTILE)
      assert.ok(Math.abs(normalQuantile(p) - want) < 1e-8, `p=${p}: ${normalQuantile(p)}`);
    assert.throws(() => normalQuantile(0), RangeError);
    assert.throws(() => normalQuantile(1), RangeError);
  });

  it('log CDF is finite, monotone and continuous deep in the lower tail', () => {
    // scipy.stats.norm.logcdf(-10) and logcdf(-6)
    assert.ok(Math.abs(logNormalCdf(-10) - -53.23128515051248) < 1e-6);
    assert.ok(Math.abs(logNormalCdf(-6) - -20.73676894997471) < 1e-6);
    assert.ok(
      Math.abs(logNormalCdf(-30.0001) - logNormalCdf(-29.9999)) < 0.01,
      'continuous where the series takes over',
    );
    let prev = -Infinity;
    for (let z = -40; z <= 5; z += 0.25) {
      const v = logNormalCdf(z);
      assert.ok(Number.isFinite(v) && v > prev, `z=${z}`);
      prev = v;
    }
  });
});

describe('mixture SPRT', () => {
  it('log Λ equals the numerically integrated mixture on both sides', () => {
    for (const [[est, v, tau2], [two, less, greater]] of LOG_LAMBDA) {
      const got = (['two-sided', 'less', 'greater'] as const).map((a) => mixtureLogLikelihoodRatio(est, v, tau2, a));
      [two, less, greater].forEach((want, i) =>
        assert.ok(Math.abs((got[i] ?? NaN) - want) < 2e-6, `${est},${v},${tau2} side ${i}: ${got[i]} vs ${want}`),
      );
    }
  });

  it('no information is no evidence; bad arguments are refused', () => {
    assert.equal(mixtureLogLikelihoodRatio(-0.5, 0, 0.01, 'less'), 0);
    assert.equal(mixtureLogLikelihoodRatio(-0.5, Infinity, 0.01, 'less'), 0);
    assert.equal(alwaysValidPValue(-0.5, 0, 0.01, 'less', 0.3), 0.3);
    assert.throws(() => mixtureLogLikelihoodRatio(0, 1, 0, 'less'), /tau/);
    assert.throws(() => mixtureLogLikelihoodRatio(0, -1, 0.01, 'less'), /variance/);
  });

  it('boundaries match the integrated mixture and exceed the fixed-sample z', () => {
    for (const [[v, tau2, alpha], want] of BOUNDARY) {
      const got = mixtureBoundary(v, tau2, alpha, 'less');
      assert.ok(Math.abs(got - want) < 1e-6, `${v},${tau2},${alpha}: ${got}`);
      assert.equal(mixtureBoundary(v, tau2, alpha, 'greater'), got, 'symmetric');
      assert.ok(got > -normalQuantile(alpha));
    }
    // At the boundary the p-value is alpha.
    const s = mixtureBoundary(0.001, 0.0111, 0.04, 'less');
    assert.ok(Math.abs(alwaysValidPValue(-s * Math.sqrt(0.001), 0.001, 0.0111, 'less') - 0.04) < 1e-9);
    // Two-sided: the closed form.
    const r = 0.0111 / 0.001;
    const two = Math.sqrt(((1 + r) / r) * (2 * Math.log(1 / 0.04) + Math.log1p(r)));
    assert.ok(Math.abs(mixtureBoundary(0.001, 0.0111, 0.04, 'two-sided') - two) < 1e-12);
  });

  it('the p-value is a running minimum; evidence the other way does not count', () => {
    const p1 = alwaysValidPValue(-0.1, 0.001, 0.01, 'less');
    assert.ok(p1 < 0.05);
    assert.equal(alwaysValidPValue(0.1, 0.001, 0.01, 'less', p1), p1, 'a later good look does not raise it');
    assert.equal(alwaysValidPValue(0.1, 0.001, 0.01, 'less'), 1, 'a rise is no evidence of a drop');
  });

  it('confidence bounds are where the one-sided test stops rejecting', () => {
    const est = -0.03;
    const v = 0.0004;
    const tau2 = 0.0111;
    const lo = confidenceBound(est, v, tau2, 0.2, 'lower');
    const hi = confidenceBound(est, v, tau2, 0.04, 'upper');
    assert.ok(lo < est && est < hi);
    // θ0 = lo is exactly at the boundary of "θ > θ0"; a bit above is not rejected, a bit below is.
    assert.ok(Math.abs(alwaysValidPValue(est, v, tau2, 'greater', 1, lo) - 0.2) < 1e-9);
    assert.ok(Math.abs(alwaysValidPValue(est, v, tau2, 'less', 1, hi) - 0.04) < 1e-9);
    assert.equal(confidenceBound(est, 0, tau2, 0.2, 'lower'), -Infinity);
  });

  it('monitored at every one of 100 looks, a null crosses at most alpha of the time; a real drop mostly crosses', () => {
    // Gaussian increments with unequal information per look (allocation changes), the estimate the cumulative mean.
    const r = mulberry32(7);
    const paths = 2000;
    const alpha = 0.05;
    const tau2 = 0.01;
    let nullCross = 0;
    let altCross = 0;
    for (let i = 0; i < paths; i++) {
      for (const [effect, count] of [
        [0, () => nullCross++],
        [-0.1, () => altCross++],
      ] as const) {
        let info = 0;
        let score = 0;
        let p = 1;
        for (let look = 0; look < 100; look++) {
          const dI = look % 3 === 0 ? 40 : 10; // information per look, in 1/variance units
          info += dI;
          score += effect * dI + Math.sqrt(dI) * gauss(r);
          p = alwaysValidPValue(score / info, 1 / info, tau2, 'less', p);
        }
        if (p < alpha) count();
      }
    }
    // Binomial(2000, 0.05): mean 100, sd 9.7. The mSPRT is conservative at a finite number of looks.
    assert.ok(nullCross / paths <= alpha + 0.015, `null crossed ${nullCross}/${paths}`);
    assert.ok(altCross / paths > 0.95, `a 10% drop crossed only ${altCross}/${paths}`);
  });
});
