/**
 * The rollout-wide analysis, check by check, on counters built to pass, fail or say nothing: the practical floor,
 * the running minimum of the p-value across looks, decisive steps that need evidence, the error-rate test, the
 * latency rules (shared or one-off breaches are not the canary's), and incomplete data.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  analyzeRolloutLook,
  DEFAULT_SEQUENTIAL_CRITERIA,
  detectionPower,
  latencyCheck,
  type LatencySlice,
  type RolloutLookInput,
} from '../../../lib/canary/analyze';
import { emptyBuckets, type PeriodBuckets } from '../../../lib/canary/buckets';
import { RecflowError } from '../../../lib/errors';
import { mulberry32 } from '../../../lib/rng';

interface Arm {
  buckets: number;
  impressions: number;
  ctr: number;
  errorRate?: number;
}

/** A period: stable in buckets [0, s), canary in [s, s + c); binomial clicks per bucket (seeded). */
function period(weight: number, stable: Arm, canary: Arm, seed = 1): PeriodBuckets {
  const r = mulberry32(seed);
  const B = stable.buckets + canary.buckets;
  const p: PeriodBuckets = { canaryWeight: weight, stable: emptyBuckets(B), canary: emptyBuckets(B) };
  const fill = (arm: Arm, into: PeriodBuckets['stable'], from: number) => {
    for (let b = from; b < from + arm.buckets; b++) {
      const requests = arm.impressions / 10;
      let errors = 0;
      for (let i = 0; i < requests; i++) if (r() < (arm.errorRate ?? 0.001)) errors++;
      const imps = (requests - errors) * 10;
      // Users differ: the bucket's CTR varies ±20 % around the arm's.
      const p = arm.ctr * (0.8 + 0.4 * r());
      let clicks = 0;
      for (let i = 0; i < imps; i++) if (r() < p) clicks++;
      into.requests[b] = requests;
      into.errors[b] = errors;
      into.impressions[b] = imps;
      into.clicks[b] = clicks;
    }
  };
  fill(stable, p.stable, 0);
  fill(canary, p.canary, stable.buckets);
  return p;
}
const check = (r: ReturnType<typeof analyzeRolloutLook>, name: string) => {
  const c = r.analysis.checks.find((x) => x.name === name);
  assert.ok(c, `no ${name} check in ${r.analysis.summary}`);
  return c;
};
const arm = (buckets: number, ctr: number, impressions = 500, errorRate?: number): Arm => ({
  buckets,
  ctr,
  impressions,
  errorRate,
});
const look = (periods: PeriodBuckets[], extra: Partial<RolloutLookInput> = {}) =>
  analyzeRolloutLook({ periods, ...extra });

describe('sequential canary analysis: CTR', () => {
  it('a clear drop fails at the first step', () => {
    const r = look([period(10, arm(300, 0.3), arm(300, 0.24))]);
    assert.equal(r.analysis.verdict, 'fail', r.analysis.summary);
    const c = check(r, 'ctr');
    assert.equal(c.verdict, 'fail');
    assert.ok((c.pValue ?? 1) < 0.04 && (c.estimate ?? 0) < -0.15 && (c.upper ?? 0) < 0);
    assert.match(r.analysis.summary, /ctr: canary CTR .* a significant drop \(p < 0\.04\) of at least 5%/);
    assert.equal(r.state.looks, 1);
  });

  it('a significant drop below the practical floor passes; a better canary never fails', () => {
    const small = look([period(50, arm(400, 0.3, 20_000), arm(400, 0.3 * 0.97, 20_000))]);
    const c = check(small, 'ctr');
    assert.ok((c.pValue ?? 1) < 0.04, `p ${c.pValue}: the test should see the 3 % drop`);
    assert.equal(c.verdict, 'pass', c.reason);
    const better = look([period(50, arm(300, 0.3), arm(300, 0.36))]);
    assert.equal(check(better, 'ctr').verdict, 'pass');
    assert.equal(check(better, 'ctr').pValue, 1);
  });

  it('a decisive step needs evidence: little data is inconclusive, enough passes', () => {
    const little = look([period(50, arm(40, 0.3, 50), arm(40, 0.3, 50))]);
    assert.equal(check(little, 'ctr').verdict, 'inconclusive');
    assert.match(check(little, 'ctr').reason, /not enough evidence yet.*needs the lower bound above -10%/);
    // The same at a light step passes: light steps only stop a canary that fails.
    assert.equal(check(look([period(10, arm(40, 0.3, 50), arm(40, 0.3, 50))]), 'ctr').verdict, 'pass');
    const plenty = look([period(50, arm(400, 0.3, 2000), arm(400, 0.3, 2000))]);
    assert.equal(check(plenty, 'ctr').verdict, 'pass', check(plenty, 'ctr').reason);
    assert.ok((check(plenty, 'ctr').lower ?? -1) > -0.1);
  });

  it('a powered look passes only when its estimate is under the practical floor', () => {
    // 6 % worse, 60 buckets a side: 93 % power for a 10 % drop, estimate -5.7 %, not yet significant (p 0.19), and
    // the 80 % lower bound (-10.7 %) does not exclude 10 %: evidence of a drop, not of none, so the step waits.
    const p = [period(50, arm(60, 0.3), arm(60, 0.3 * 0.94), 1)];
    const c = check(look(p), 'ctr');
    assert.match(c.reason, /power for a 10% drop (8\d|9\d|100)%/, c.reason);
    assert.ok((c.estimate ?? 0) <= -0.05 && (c.lower ?? 0) < -0.1 && (c.pValue ?? 0) > 0.04, c.reason);
    assert.equal(c.verdict, 'inconclusive', c.reason);
    assert.match(c.reason, /or 80% power with an estimate above -5%/);
    // With a floor below that estimate the same look passes on power.
    const lax = check(look(p, { criteria: { minCtrDropToFail: 0.06 } }), 'ctr');
    assert.equal(lax.verdict, 'pass', lax.reason);
    assert.match(lax.reason, /powered, no drop found/);
  });

  it('too few users: no test; light steps pass, decisive ones wait', () => {
    const few = [period(10, arm(10, 0.3, 5000), arm(10, 0.3, 5000))];
    assert.equal(check(look(few), 'ctr').verdict, 'pass');
    assert.match(check(look(few), 'ctr').reason, /too few users for a CTR test.*decided at the decisive steps/);
    const fewDecisive = [period(50, arm(10, 0.3, 5000), arm(10, 0.3, 5000))];
    assert.equal(check(look(fewDecisive), 'ctr').verdict, 'inconclusive');
  });

  it('the p-value carries across looks: strong evidence once is evidence, a drop must still show', () => {
    const weak = [period(25, arm(60, 0.3, 300), arm(60, 0.27, 300), 5)];
    const alone = look(weak);
    assert.notEqual(check(alone, 'ctr').verdict, 'fail', 'weak evidence alone does not fail');
    const after = look(weak, { state: { looks: 3, ctrPValue: 0.001, errorPValue: 1 } });
    assert.equal(check(after, 'ctr').pValue, 0.001);
    assert.equal(after.state.looks, 4);
    assert.ok((check(after, 'ctr').estimate ?? 0) <= -0.05, `estimate ${check(after, 'ctr').estimate}`);
    assert.equal(check(after, 'ctr').verdict, 'fail', "the earlier looks' evidence and this drop");
    // With the estimate now showing no drop, the old evidence alone does not fail it.
    const recovered = look([period(25, arm(300, 0.3), arm(300, 0.3))], {
      state: { looks: 3, ctrPValue: 0.001, errorPValue: 1 },
    });
    assert.equal(check(recovered, 'ctr').verdict, 'pass', check(recovered, 'ctr').reason);
  });

  it('power to detect the design drop grows with information', () => {
    const tau = -Math.log(0.9);
    const low = detectionPower(tau, 0.01, tau * tau, 0.04);
    const high = detectionPower(tau, 0.0003, tau * tau, 0.04);
    assert.ok(low < 0.2 && high > 0.9, `${low} ${high}`);
    assert.equal(detectionPower(tau, 0, tau * tau, 0.04), 0);
  });
});

describe('sequential canary analysis: errors, traffic, coverage', () => {
  it('a real error increase fails; a small one passes', () => {
    const bad = look([period(10, arm(200, 0.3), arm(200, 0.3, 500, 0.05))]);
    assert.equal(check(bad, 'error-rate').verdict, 'fail');
    assert.match(
      bad.analysis.summary,
      /error-rate: canary error rate .* exceeds stable .* more than the 1 allowed \(always-valid/,
    );
    const slight = look([period(10, arm(200, 0.3), arm(200, 0.3, 500, 0.004))]);
    assert.equal(check(slight, 'error-rate').verdict, 'pass');
  });

  it('a broken canary fails at its first look, on a few hundred requests (the mixture covers large effects)', () => {
    // 30 % of the canary's requests fail, about 220 requests over 22 buckets: seen on a real fleet at p = 0.02 with
    // one small mixture scale, which did not fail.
    const broken = look([period(50, arm(26, 0.2, 100), arm(22, 0.2, 100, 0.3), 3)], { criteria: { minRequests: 40 } });
    assert.equal(check(broken, 'error-rate').verdict, 'fail', broken.analysis.summary);
    assert.ok((check(broken, 'error-rate').pValue ?? 1) < 0.001);
  });

  it('missing replicas, dropped requests and impossible counts are inconclusive; a failure still wins', () => {
    const ok = [period(25, arm(300, 0.3), arm(300, 0.3))];
    const lost = { expected: 2, covered: 1, missing: ['r2'] };
    assert.equal(look(ok, { coverage: lost }).analysis.verdict, 'inconclusive');
    assert.match(look(ok, { coverage: lost }).analysis.summary, /coverage: replicas missing .*r2/);
    assert.equal(look([period(25, arm(300, 0.3), arm(300, 0.2))], { coverage: lost }).analysis.verdict, 'fail');
    const dropped = look(ok, { droppedRequests: 12 });
    assert.equal(check(dropped, 'traffic').verdict, 'inconclusive');
    assert.match(check(dropped, 'traffic').reason, /12 requests dropped/);
    const broken = period(25, arm(300, 0.3), arm(300, 0.3));
    broken.canary.clicks[400] = (broken.canary.impressions[400] ?? 0) + 1;
    const b = look([broken]);
    assert.equal(check(b, 'traffic').verdict, 'inconclusive');
    assert.match(check(b, 'traffic').reason, /canary: a bucket has more clicks than impressions/);
    assert.equal(check(b, 'ctr').stable, null, 'inconsistent counters are not analysed');
  });

  it('too little traffic this step is inconclusive; at 100 % without holdback only the canary needs it', () => {
    const quiet = look([period(10, arm(300, 0.3), arm(5, 0.3, 100))]);
    assert.equal(check(quiet, 'traffic').verdict, 'inconclusive');
    const full = period(100, arm(300, 0.3), arm(300, 0.3));
    full.stable = emptyBuckets(600);
    const r = look([period(50, arm(300, 0.3, 2000), arm(300, 0.3, 2000)), full]);
    assert.equal(check(r, 'traffic').verdict, 'pass');
    assert.match(check(r, 'traffic').reason, /no stable holdback/);
    assert.equal(check(r, 'ctr').verdict, 'pass', check(r, 'ctr').reason);
  });

  it('criteria out of range are refused by name; a look needs a period', () => {
    assert.throws(
      () => look([period(10, arm(10, 0.3), arm(10, 0.3))], { criteria: { alpha: 1.5 } }),
      (e: unknown) => e instanceof RecflowError && e.type === 'InvalidInput' && /alpha = 1.5/.test(e.message),
    );
    assert.throws(() => analyzeRolloutLook({ periods: [] }), /no period/);
    assert.throws(
      () => look([period(10, arm(10, 0.3), arm(10, 0.3))], { pre: emptyBuckets(512) }),
      /pre has 512 buckets, the periods 20: not the same bucketing/,
    );
  });
});

describe('sequential canary analysis: latency', () => {
  const c = DEFAULT_SEQUENTIAL_CRITERIA;
  const slices = (pairs: Array<[number, number]>, n = 200): LatencySlice[] =>
    pairs.map(([s, k]) => ({ stable: { requests: n, p99Ms: s }, canary: { requests: n, p99Ms: k } }));

  it('a regression over most slices fails; one slow slice does not', () => {
    const slow = latencyCheck(
      slices([
        [10, 40],
        [12, 45],
        [9, 50],
        [11, 12],
      ]),
      c,
      true,
    );
    assert.equal(slow.verdict, 'fail', slow.reason);
    assert.match(slow.reason, /3\/4 slices above 1.5x/);
    const spike = latencyCheck(
      slices([
        [10, 11],
        [12, 300],
        [9, 10],
        [11, 12],
      ]),
      c,
      true,
    );
    assert.equal(spike.verdict, 'pass', spike.reason);
  });

  it('a breach stable shares is inconclusive, and so is an SLO breach that is no regression', () => {
    const overloaded = latencyCheck(
      slices([
        [600, 1600],
        [700, 1200],
        [800, 1500],
      ]),
      c,
      true,
    );
    assert.equal(overloaded.verdict, 'inconclusive');
    assert.match(overloaded.reason, /stable breaches the SLO 500 ms too/);
    const busyHost = latencyCheck(
      slices([
        [450, 520],
        [480, 530],
        [470, 510],
      ]),
      c,
      true,
    );
    assert.equal(busyHost.verdict, 'inconclusive');
    assert.match(busyHost.reason, /not a regression against the concurrent stable/);
  });

  it('too few comparable slices: no comparison; the SLO alone cannot fail the canary', () => {
    const thin = latencyCheck(slices([[10, 40]], 20), c, true);
    assert.equal(thin.verdict, 'pass');
    assert.match(thin.reason, /0 slice\(s\) with >= 50 requests/);
    const noHoldback = latencyCheck(
      slices([
        [0, 700],
        [0, 650],
        [0, 800],
      ]),
      c,
      false,
    );
    assert.equal(noHoldback.verdict, 'inconclusive');
    assert.match(noHoldback.reason, /above the SLO 500 ms, not attributable/);
  });

  it('is part of the look', () => {
    const r = look([period(25, arm(300, 0.3), arm(300, 0.3))], {
      latency: slices([
        [10, 40],
        [12, 45],
        [9, 50],
      ]),
    });
    assert.equal(r.analysis.verdict, 'fail');
    assert.match(r.analysis.summary, /latency-p99: latency regression/);
  });
});
