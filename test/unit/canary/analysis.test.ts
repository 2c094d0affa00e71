/**
 * The canary analysis: the statistics against reference values computed independently (Python's math.erf, the
 * values stored here), and the verdict of each check on windows built to pass, fail or say nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  analyzeWindow,
  normalCdf,
  pValueLower,
  type VariantWindowStats,
  type WindowCoverage,
} from '../../../lib/canary/analysis';

// python3 -c "from math import erf,sqrt; print(0.5*(1+erf(z/sqrt(2))))"
const CDF: Array<[number, number]> = [
  [-3, 0.0013498980316301035],
  [-1.96, 0.024997895148220428],
  [-1, 0.15865525393145707],
  [0, 0.5],
  [0.5, 0.6914624612740131],
  [1.645, 0.9500150944608786],
  [2.5, 0.9937903346742238],
];
// The pooled two-proportion z-test, one-sided (B lower), in Python with math.erf.
const P_LOWER: Array<[[number, number, number, number], number]> = [
  [[100, 1000, 70, 1000], 0.00807751603687018],
  [[100, 1000, 95, 1000], 0.35312300748115033],
  [[50, 1000, 60, 1000], 0.8366583743793972],
];

const base: VariantWindowStats = {
  version: 'm@v1',
  requests: 2000,
  errors: 2,
  p50Ms: 3,
  p99Ms: 9,
  impressions: 20_000,
  clicks: 1000,
};
const canaryOf = (patch: Partial<VariantWindowStats>): VariantWindowStats => ({ ...base, version: 'm@v2', ...patch });
const check = (a: ReturnType<typeof analyzeWindow>, name: string) => a.checks.find((c) => c.name === name);

describe('canary analysis', () => {
  it('normalCdf within 1.5e-7 of the reference', () => {
    for (const [z, want] of CDF) assert.ok(Math.abs(normalCdf(z) - want) < 1.5e-7, `z=${z}: ${normalCdf(z)}`);
  });

  it('pValueLower equals the reference z-test; no evidence without trials', () => {
    for (const [[a, ta, b, tb], want] of P_LOWER)
      assert.ok(Math.abs(pValueLower(a, ta, b, tb) - want) < 1e-6, `${a}/${ta} vs ${b}/${tb}`);
    assert.equal(pValueLower(0, 0, 5, 10), 1);
    assert.equal(pValueLower(0, 10, 0, 10), 1);
    assert.ok(pValueLower(10, 10, 0, 10) < 1e-4);
  });

  it('a canary like stable passes every check', () => {
    const a = analyzeWindow(base, canaryOf({}));
    assert.equal(a.verdict, 'pass', a.summary);
    assert.deepEqual(
      a.checks.map((c) => [c.name, c.verdict]),
      [
        ['traffic', 'pass'],
        ['error-rate', 'pass'],
        ['latency-p99', 'pass'],
        ['ctr', 'pass'],
      ],
    );
    // The sample sizes the verdict rests on travel with it (the run report shows them).
    const c = canaryOf({});
    assert.deepEqual(a.samples, {
      stable: { requests: base.requests, errors: base.errors, impressions: base.impressions, clicks: base.clicks },
      canary: { requests: c.requests, errors: c.errors, impressions: c.impressions, clicks: c.clicks },
    });
  });

  it('more errors fail the error-rate check, a few more do not', () => {
    const bad = analyzeWindow(base, canaryOf({ errors: 100 }));
    assert.equal(bad.verdict, 'fail');
    assert.equal(check(bad, 'error-rate')?.verdict, 'fail');
    assert.match(bad.summary, /error-rate: canary error rate 5% exceeds stable 0.1%/);
    // +0.15 points: under the 1-point allowance.
    assert.equal(check(analyzeWindow(base, canaryOf({ errors: 5 })), 'error-rate')?.verdict, 'pass');
  });

  it('latency fails beyond both the ratio and the slack', () => {
    // limit = max(9 * 1.5, 9 + 20) = 29 ms
    assert.equal(check(analyzeWindow(base, canaryOf({ p99Ms: 28 })), 'latency-p99')?.verdict, 'pass');
    const slow = analyzeWindow(base, canaryOf({ p99Ms: 30 }));
    assert.equal(check(slow, 'latency-p99')?.verdict, 'fail');
    assert.equal(slow.verdict, 'fail');
    // The absolute SLO caps the limit, whatever stable does.
    const slowStable = { ...base, p99Ms: 400 };
    assert.equal(check(analyzeWindow(slowStable, canaryOf({ p99Ms: 550 })), 'latency-p99')?.verdict, 'fail');
    assert.equal(
      check(analyzeWindow(slowStable, canaryOf({ p99Ms: 550 }), { maxP99Ms: 1000 }), 'latency-p99')?.verdict,
      'pass',
    );
    // A breach stable shares (a slow host): inconclusive, not a canary failure.
    const busy = analyzeWindow({ ...base, p99Ms: 1833 }, canaryOf({ p99Ms: 1600 }));
    assert.equal(check(busy, 'latency-p99')?.verdict, 'inconclusive');
    assert.match(check(busy, 'latency-p99')?.reason ?? '', /the host is slow/);
    // ... unless the canary is also clearly slower than stable.
    assert.equal(
      check(analyzeWindow({ ...base, p99Ms: 600 }, canaryOf({ p99Ms: 1600 })), 'latency-p99')?.verdict,
      'fail',
    );
  });

  it('against stable from an earlier window (the 100 % step) latency is held to the SLO only', () => {
    // Stable at 9 ms was measured at half the load; the canary now takes it all: 141 ms is load, not a regression.
    const later = analyzeWindow(base, canaryOf({ p99Ms: 141 }), {}, { stableFromEarlierWindow: true });
    assert.equal(check(later, 'latency-p99')?.verdict, 'pass', later.summary);
    assert.match(check(later, 'latency-p99')?.reason ?? '', /within 500 ms \(the SLO/);
    const tooSlow = analyzeWindow(base, canaryOf({ p99Ms: 620 }), {}, { stableFromEarlierWindow: true });
    assert.equal(check(tooSlow, 'latency-p99')?.verdict, 'fail');
    // The same 141 ms against a concurrent stable fails.
    assert.equal(check(analyzeWindow(base, canaryOf({ p99Ms: 141 })), 'latency-p99')?.verdict, 'fail');
  });

  it('a significant CTR drop fails; a small or insignificant one passes', () => {
    const worse = analyzeWindow(base, canaryOf({ clicks: 800 }));
    assert.equal(check(worse, 'ctr')?.verdict, 'fail');
    assert.ok((check(worse, 'ctr')?.pValue ?? 1) < 0.05);
    // 2 % lower: below the 5 % that matters, even if it were significant.
    assert.equal(check(analyzeWindow(base, canaryOf({ clicks: 980 })), 'ctr')?.verdict, 'pass');
    // Better CTR never fails.
    assert.equal(check(analyzeWindow(base, canaryOf({ clicks: 1400 })), 'ctr')?.verdict, 'pass');
  });

  it('too little traffic is inconclusive, and a failing check still wins over it', () => {
    const quiet = analyzeWindow(base, canaryOf({ requests: 20, impressions: 200, clicks: 10 }));
    assert.equal(quiet.verdict, 'inconclusive');
    assert.equal(check(quiet, 'error-rate'), undefined, 'no error test on too few requests');
    const quietButBad = analyzeWindow(base, canaryOf({ impressions: 200, clicks: 10, errors: 300 }));
    assert.equal(quietButBad.verdict, 'fail');
  });

  it('a window that misses a replica is inconclusive, however good its figures', () => {
    const all: WindowCoverage = { expected: 2, covered: 2, missing: [] };
    assert.equal(analyzeWindow(base, canaryOf({}), {}, { coverage: all }).verdict, 'pass');
    const lost: WindowCoverage = { expected: 2, covered: 1, missing: ['r2'] };
    const a = analyzeWindow(base, canaryOf({}), {}, { coverage: lost });
    assert.equal(a.verdict, 'inconclusive');
    assert.match(a.summary, /coverage: replicas missing from the window .*r2/);
    const none = analyzeWindow(base, canaryOf({}), {}, { coverage: { expected: 0, covered: 0, missing: [] } });
    assert.equal(none.verdict, 'inconclusive', 'no replica read: nothing to promote on');
    // Missing data never hides a failure.
    assert.equal(analyzeWindow(base, canaryOf({ errors: 300 }), {}, { coverage: lost }).verdict, 'fail');
  });
});
