import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EvaluationReport, Metrics } from '../../../lib/eval/evaluate';
import { DEFAULT_GATES, blessModel } from '../../../lib/eval/gates';
import { percentile } from '../../../lib/eval/serving-health';

function report(
  fp32: Metrics,
  int8: Metrics,
  key = 'split-1',
  popularity: Metrics = { 'ndcg@10': 0.05 },
): EvaluationReport {
  return {
    datasetId: 'ds',
    testSplitKey: key,
    options: {} as EvaluationReport['options'],
    bundle: { dir: '/x', modelName: 'm', checkpointId: 'c', datasetId: 'ds' },
    models: { fp32: { overall: fp32, segments: {} }, int8: { overall: int8, segments: {} } },
    popularity: { overall: popularity, segments: {} },
    seconds: 0,
  };
}

void describe('model gates', () => {
  const cand = report({ auc: 0.8, logLoss: 0.5, 'ndcg@10': 0.2 }, { auc: 0.79, logLoss: 0.52, 'ndcg@10': 0.18 });

  void it('absolute thresholds read the serving precision, both bounds', () => {
    const b = blessModel(cand, undefined, {
      absolute: [
        { metric: 'auc', min: 0.795 },
        { metric: 'logLoss', max: 0.6 },
      ],
    });
    assert.equal(b.blessed, false);
    const [auc, ll] = b.gates;
    assert.deepEqual(
      [auc!.name, auc!.passed, auc!.observed, auc!.threshold],
      ['absolute:int8:auc>=', false, 0.79, 0.795],
    );
    assert.match(auc!.reason, /auc 0.79 < 0.795/);
    assert.equal(ll!.passed, true);
    assert.equal(
      blessModel(cand, undefined, { precision: 'fp32', absolute: [{ metric: 'auc', min: 0.795 }] }).blessed,
      true,
    );
  });

  void it('champion gate: drops beyond the allowance fail, log loss counts a rise as a drop, other splits are refused', () => {
    const champ = report({}, { auc: 0.81, logLoss: 0.49, 'ndcg@10': 0.185 });
    const b = blessModel(cand, champ, {
      champion: [
        { metric: 'auc', maxDrop: 0.01 },
        { metric: 'ndcg@10', maxDrop: 0.001 },
        { metric: 'logLoss', maxDrop: 0.02 },
      ],
    });
    const byName = Object.fromEntries(b.gates.map((g) => [g.name, g]));
    assert.equal(byName['champion:int8:auc']!.passed, false, 'auc dropped 0.02 > 0.01');
    assert.equal(byName['champion:int8:ndcg@10']!.passed, false);
    assert.equal(byName['champion:int8:logLoss']!.passed, false, 'log loss rose 0.03 > 0.02');
    assert.ok(Math.abs(byName['champion:int8:logLoss']!.threshold! - 0.51) < 1e-12);
    const other = blessModel(cand, report({}, { auc: 0.1 }, 'split-2'), { champion: [{ metric: 'auc', maxDrop: 1 }] });
    assert.equal(other.blessed, false);
    assert.match(other.gates[0]!.reason, /different test split/);
  });

  void it('int8 drop, popularity baseline, and a misspelt metric fails instead of blessing', () => {
    const b = blessModel(cand, undefined, {
      fp32Fallback: false,
      int8Drop: [
        { metric: 'auc', maxDrop: 0.02 },
        { metric: 'ndcg@10', maxDrop: 0.01 },
      ],
      beatPopularity: ['ndcg@10'],
      absolute: [{ metric: 'ndgc@10', min: 0 }],
    });
    const byName = Object.fromEntries(b.gates.map((g) => [g.name, g]));
    assert.equal(byName['int8-drop:auc']!.passed, true);
    assert.equal(byName['int8-drop:ndcg@10']!.passed, false);
    assert.ok(Math.abs(byName['int8-drop:ndcg@10']!.observed! - 0.02) < 1e-12);
    assert.equal(byName['beats-popularity:int8:ndcg@10']!.passed, true);
    assert.equal(byName['absolute:int8:ndgc@10']!.passed, false);
    assert.match(byName['absolute:int8:ndgc@10']!.reason, /not in the int8 candidate report/);
    assert.equal(b.blessed, false);
  });

  void it('beats-baselines compares with the strongest baseline (log loss: the lowest), names skipped ones', () => {
    const withBaselines = (m: Metrics): EvaluationReport => ({
      ...report({}, m, 'split-1', { 'ndcg@10': 0.05, logLoss: 0.7 }),
      baselines: {
        recentPopularity: { overall: { 'ndcg@10': 0.12, logLoss: 0.6 }, segments: {}, config: {}, fitSeconds: 0 },
        als: { overall: { 'ndcg@10': 0.19, logLoss: 0.45 }, segments: {}, config: {}, fitSeconds: 0 },
      },
      skippedBaselines: { ease: 'catalogue too large' },
    });
    const gates = { beatBaselines: ['ndcg@10', 'logLoss'], beatPopularity: ['ndcg@10'] };
    const b = blessModel(withBaselines({ 'ndcg@10': 0.18, logLoss: 0.5 }), undefined, gates);
    const byName = Object.fromEntries(b.gates.map((g) => [g.name, g]));
    const ndcg = byName['beats-baselines:int8:ndcg@10']!;
    assert.equal(ndcg.passed, false, 'ALS 0.19 beats the candidate 0.18');
    assert.equal(ndcg.threshold, 0.19);
    assert.match(ndcg.reason, /strongest baseline als 0.19 .*popularity 0.05.*; ease skipped: catalogue too large/);
    assert.equal(byName['beats-baselines:int8:logLoss']!.threshold, 0.45);
    assert.equal(byName['beats-baselines:int8:logLoss']!.passed, false);
    assert.equal(byName['beats-popularity:int8:ndcg@10']!.passed, true, 'beatPopularity still reads popularity only');
    assert.equal(blessModel(withBaselines({ 'ndcg@10': 0.2, logLoss: 0.4 }), undefined, gates).blessed, true);
    const none = blessModel(cand, undefined, { beatBaselines: ['ndcg@10'] });
    assert.equal(none.blessed, false);
    assert.match(none.gates[0]!.reason, /no strong baselines/);
  });

  void it('the default gates ask for the strongest baseline; a candidate of a baseline’s kind is not held against itself', () => {
    assert.deepEqual(DEFAULT_GATES.beatBaselines, ['ndcg@10']);
    const r: EvaluationReport = {
      ...report({}, { 'ndcg@10': 0.2 }, 'split-1', { 'ndcg@10': 0.05 }),
      baselines: {
        recentPopularity: { overall: { 'ndcg@10': 0.12 }, segments: {}, config: {}, fitSeconds: 0 },
        ease: { overall: { 'ndcg@10': 0.2 }, segments: {}, config: {}, fitSeconds: 0 },
      },
    };
    const gate = (notAgainst?: string[]) =>
      blessModel(r, undefined, { beatBaselines: ['ndcg@10'], ...(notAgainst ? { notAgainst } : {}) }).gates[0]!;
    // An EASE^R candidate ties the EASE^R baseline (the same fit): held against it, it could never pass.
    assert.equal(gate().passed, false);
    const own = gate(['ease']);
    assert.equal(own.passed, true, own.reason);
    assert.equal(own.threshold, 0.12);
    assert.match(own.reason, /strongest baseline recentPopularity 0.12.*reported, not gated: ease 0.2/);
  });

  void it('p99 is the nearest-rank percentile', () => {
    const xs = Array.from({ length: 200 }, (_, i) => 200 - i);
    assert.equal(percentile(xs, 0.99), 198);
    assert.equal(percentile([5], 0.99), 5);
  });
});

void describe('gates that see significance', () => {
  /** A report whose int8 model has these per-user NDCG@10 values (their mean is the overall metric). */
  const perUserReport = (values: number[], key = 'split-1'): EvaluationReport => {
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const r = report({ 'ndcg@10': mean }, { 'ndcg@10': mean }, key);
    r.models.int8!.perUser = { users: values.length, 'ndcg@10': values };
    return r;
  };
  // 2000 users; a user's NDCG is 0 or ~0.5 (sparse hits), so small differences are noise.
  const rnd = (() => {
    let s = 12345;
    return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  })();
  const champValues = Array.from({ length: 2000 }, () => (rnd() < 0.1 ? 0.3 + 0.4 * rnd() : 0));
  const gate = { champion: [{ metric: 'ndcg@10', maxRelativeDrop: 0.02, confidence: 0.95 }] };

  void it('identical or better passes; clearly worse fails; the reason gives the bound', () => {
    const ok = blessModel(perUserReport(champValues), perUserReport(champValues), gate).gates[0]!;
    assert.equal(ok.passed, true, ok.reason);
    assert.match(ok.reason, /95% lower bound .* over 2000 users >= the margin/);
    const better = perUserReport(champValues.map((v, i) => (v === 0 && i % 60 === 0 ? 0.5 : v)));
    assert.equal(blessModel(better, perUserReport(champValues), gate).gates[0]!.passed, true);
    // 15 % of the hits lost: worse beyond noise and beyond the 2 % margin.
    const worse = perUserReport(champValues.map((v, i) => (i % 7 === 0 ? 0 : v)));
    const bad = blessModel(worse, perUserReport(champValues), gate).gates[0]!;
    assert.equal(bad.passed, false, bad.reason);
    assert.ok(bad.threshold! < 0 && bad.observed! < bad.threshold!, bad.reason);
  });

  void it('"not worse" needs evidence: 1 % worse passes on many users, fails on few (the bound is too wide)', () => {
    const many = Array.from({ length: 25 }, () => champValues).flat();
    const lose = (vs: number[]) => vs.map((v, i) => (i % 100 === 3 && v > 0 ? 0 : v));
    const big = blessModel(perUserReport(lose(many)), perUserReport(many), gate).gates[0]!;
    assert.equal(big.passed, true, big.reason);
    const small = blessModel(perUserReport(lose(champValues)), perUserReport(champValues), gate).gates[0]!;
    assert.equal(small.passed, false, small.reason);
  });

  void it('the int8 gate is relative to fp32', () => {
    const r = report({ 'ndcg@10': 0.025 }, { 'ndcg@10': 0.0245 });
    const g = blessModel(r, undefined, {
      fp32Fallback: false,
      int8Drop: [{ metric: 'ndcg@10', maxRelativeDrop: 0.01 }],
    }).gates[0]!;
    assert.equal(g.passed, false, g.reason); // 2 % of 0.025, above 1 %
    assert.match(g.reason, /\(2%\) > 0.00025 \(1% of fp32\)/);
    const ok = report({ 'ndcg@10': 0.025 }, { 'ndcg@10': 0.02499 });
    assert.equal(blessModel(ok, undefined, { int8Drop: [{ metric: 'ndcg@10', maxRelativeDrop: 0.01 }] }).blessed, true);
  });
});

void describe('the serving precision', () => {
  const r = report({ 'ndcg@10': 0.025, auc: 0.7 }, { 'ndcg@10': 0.024, auc: 0.7 });
  const gates = {
    precision: 'int8' as const,
    int8Drop: [{ metric: 'ndcg@10', maxRelativeDrop: 0.01 }],
    absolute: [{ metric: 'ndcg@10', min: 0.0245 }],
  };

  void it('int8 that loses too much serves as fp32, and the other gates read fp32', () => {
    const b = blessModel(r, undefined, gates);
    assert.equal(b.precision, 'fp32');
    assert.equal(b.blessed, true, JSON.stringify(b.gates));
    assert.match(b.gates.find((g) => g.name === 'int8-drop:ndcg@10')!.reason, /fp32 serves instead/);
    assert.equal(b.gates.find((g) => g.name.startsWith('absolute:'))!.name, 'absolute:fp32:ndcg@10>=');
  });

  void it('a precision the run named is kept: then the int8 gate fails the run', () => {
    const b = blessModel(r, undefined, { ...gates, fp32Fallback: false });
    assert.equal(b.precision, 'int8');
    assert.equal(b.blessed, false);
  });

  void it('when fp32 serves anyway, the int8 gate does not block', () => {
    const b = blessModel(r, undefined, { ...gates, precision: 'fp32' });
    assert.equal(b.blessed, true);
    assert.match(b.gates.find((g) => g.name === 'int8-drop:ndcg@10')!.reason, /fp32 serves: not used/);
  });
});
