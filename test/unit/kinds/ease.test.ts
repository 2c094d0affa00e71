import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LoadedDataset } from '../../../lib/data/dataset';
import { userItemMatrix } from '../../../lib/recsys/interactions';
import { popularityScorer, rankSplit } from '../../../lib/train/metrics';
import { exportEaseBundle, storedTable } from '../../../kinds/ease/export';
import { easeWeights, fitEase, gramOf } from '../../../kinds/ease/fit';
import {
  assertEaseFits,
  easeCatalogScores,
  easeItemSet,
  easeScoresOf,
  readEaseCheckpoint,
  writeEaseCheckpoint,
  type EaseModel,
} from '../../../kinds/ease/spec';
import {
  assertCalibrated,
  assertCheckpointRoundTrip,
  fitLinearFixture,
  int8TopOverlap,
  loadReference,
  referenceSplit,
  refTop,
  runCases,
} from '../../helpers/linear-kinds';

void describe('EASE^R kind', () => {
  let root: string;
  let ds: LoadedDataset;
  let model: EaseModel;
  let bundle: string;
  before(async () => {
    ({ root, ds, model, bundle } = await fitLinearFixture(
      'ease',
      5,
      (d) => fitEase(d, { lambdaGrid: [2, 20, 200], maxStoredHistory: 8 }),
      exportEaseBundle,
    ));
  });
  after(() => rm(root, { recursive: true, force: true }));

  void it('weights and scores equal a numpy EASE^R (float64) with the same λ to 1e-6', () => {
    const ref = loadReference();
    const x = userItemMatrix(referenceSplit(ref), ref.users, ref.items, () => 1);
    const w = easeWeights(gramOf(x), ref.items, ref.ease.lambda);
    let maxW = 0;
    ref.ease.weights.forEach((v, k) => (maxW = Math.max(maxW, Math.abs(v - w[k]!))));
    assert.ok(maxW < 1e-6, `weights differ by ${maxW}`);
    let maxS = 0;
    for (let u = 0; u < ref.users; u++) {
      const items = x.indices.subarray(x.indptr[u], x.indptr[u + 1]);
      const s = easeScoresOf(w, ref.items, items);
      for (let j = 1; j < ref.items; j++) maxS = Math.max(maxS, Math.abs(s[j]! - ref.ease.scores[u * ref.items + j]!));
    }
    assert.ok(maxS < 1e-6, `scores differ by ${maxS}`);
  });

  void it('refuses a catalogue above maxItems, saying why and what to do', async () => {
    assert.throws(
      () => assertEaseFits(6001, 5000),
      /6001 items .* more than maxItems = 5000 .* Use ALS, or raise maxItems/,
    );
    await assert.rejects(fitEase(ds, { maxItems: 100 }), /151 items/);
    await assert.rejects(fitEase(ds, { lambdaGrid: [0] }), /lambda 0 must be > 0/);
  });

  void it('beats popularity on planted data; λ is the best validation grid point', async () => {
    const test = await rankSplit(ds, ds.splits.test, (us) => {
      const out = new Float32Array(us.length * model.items);
      us.forEach((u, j) => out.set(easeCatalogScores(model, u, []), j * model.items));
      return out;
    });
    const pop = await rankSplit(ds, ds.splits.test, popularityScorer(ds));
    assert.ok(test.ndcg > pop.ndcg * 1.5, `EASE ${test.ndcg} vs popularity ${pop.ndcg}`);
    const best = model.validation.grid.reduce((a, b) => (b.validationNdcg10 > a.validationNdcg10 ? b : a));
    assert.equal(model.config.lambda, best.lambda);
    // Stored histories are capped at the most recent 8 items.
    assert.ok(storedTable(model).width <= 8);
  });

  void it('checkpoint round trip keeps every array and setting', async () => {
    await assertCheckpointRoundTrip(join(root, 'ck'), model, writeEaseCheckpoint, readEaseCheckpoint, [
      'config',
      'weights',
      'historyPtr',
      'historyItems',
      'calibration',
    ]);
  });

  void it('ONNX fp32 equals the reference: stored items, stored + history, history only, the prior', async () => {
    const cases: Array<[number, number[]]> = [
      [4, []],
      [4, [9, 9, 33]],
      [0, [12]],
      [0, [12, 40, 12, 77]],
      [0, []],
    ];
    const items = [1, 5, 33, 60, 120, 150];
    const { scores, recs } = await runCases(bundle, cases, items, [5]);
    cases.forEach(([u, h], b) => {
      const ref = easeCatalogScores(model, u, h);
      const empty = easeItemSet(model, u, h).size === 0;
      const cal = empty ? model.calibration.prior : model.calibration.model;
      assertCalibrated(scores[b]!, items, ref, cal, `case ${b}`);
      const top = refTop(ref, 10, new Set([5]));
      recs[b]!.items.forEach((i, j) => {
        assert.notEqual(i, 5);
        assert.ok(Math.abs(ref[i]! - ref[top[j]!]!) < 1e-5, `case ${b} rank ${j}: item ${i} vs ${top[j]}`);
      });
    });
  });

  void it('ONNX int8 keeps most of the fp32 top 10', async () => {
    const overlap = await int8TopOverlap(bundle);
    assert.ok(overlap > 0.8, `int8 top-10 overlap ${overlap}`);
  });
});
