import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LoadedDataset } from '../../../lib/data/dataset';
import { transposeCsr, userItemMatrix } from '../../../lib/recsys/interactions';
import { popularityScorer, rankSplit } from '../../../lib/train/metrics';
import { exportAlsBundle } from '../../../kinds/als/export';
import { alternate, factorScorer, fitAls, solveRows } from '../../../kinds/als/fit';
import {
  alsCatalogScores,
  gramPlusReg,
  readAlsCheckpoint,
  usesPrior,
  writeAlsCheckpoint,
  type AlsModel,
} from '../../../kinds/als/spec';
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

void describe('ALS kind', () => {
  let root: string;
  let ds: LoadedDataset;
  let model: AlsModel;
  let bundle: string;
  before(async () => {
    ({ root, ds, model, bundle } = await fitLinearFixture(
      'als',
      3,
      (d) =>
        fitAls(d, {
          factors: 16,
          iterations: 8,
          grid: [
            { regularization: 1, alpha: 1 },
            { regularization: 10, alpha: 10 },
          ],
        }),
      exportAlsBundle,
    ));
  });
  after(() => rm(root, { recursive: true, force: true }));

  void it('conjugate-gradient sweeps equal implicit (native CG) from the same initial factors', async () => {
    const ref = loadReference();
    const a = ref.als;
    const cui = userItemMatrix(referenceSplit(ref), ref.users, ref.items, (l) => 1 + a.alpha * l);
    const X = Float32Array.from(a.userFactors0);
    const Y = Float32Array.from(a.itemFactors0);
    await alternate(cui, transposeCsr(cui), X, Y, a);
    const maxDiff = (got: Float32Array, want: number[]) =>
      want.reduce((m, w, k) => Math.max(m, Math.abs(w - got[k]!)), 0);
    const scale = Math.max(...a.itemFactors.map(Math.abs));
    assert.ok(maxDiff(Y, a.itemFactors) < 1e-4 * scale, `item factors differ by ${maxDiff(Y, a.itemFactors)}`);
    assert.ok(maxDiff(X, a.userFactors) < 1e-4 * scale, `user factors differ by ${maxDiff(X, a.userFactors)}`);
  });

  void it('exact solves satisfy the normal equations of each user', () => {
    const ref = loadReference();
    const d = 4;
    const cui = userItemMatrix(referenceSplit(ref), ref.users, ref.items, (l) => 1 + 3 * l);
    const X = new Float32Array(ref.users * d);
    const Y = Float32Array.from(ref.als.itemFactors);
    solveRows(cui, X, Y, d, 0.5, 0);
    const gram = gramPlusReg(Y, ref.items, d, 0.5);
    for (const u of [1, 7, 20]) {
      const items = Array.from(cui.indices.subarray(cui.indptr[u], cui.indptr[u + 1]));
      const conf = Array.from(cui.data.subarray(cui.indptr[u], cui.indptr[u + 1]));
      // Residual of (YᵀY + λI + Σ (c-1) y yᵀ) x - Σ c y.
      for (let p = 0; p < d; p++) {
        let r = 0;
        for (let q = 0; q < d; q++) r += gram[p * d + q]! * X[u * d + q]!;
        items.forEach((i, k) => {
          let yx = 0;
          for (let q = 0; q < d; q++) yx += Y[i * d + q]! * X[u * d + q]!;
          r += (conf[k]! - 1) * Y[i * d + p]! * yx - conf[k]! * Y[i * d + p]!;
        });
        assert.ok(Math.abs(r) < 1e-5, `user ${u} residual ${r}`);
      }
    }
  });

  void it('fits planted data better than popularity and keeps the best validation grid point', async () => {
    const test = await rankSplit(
      ds,
      ds.splits.test,
      factorScorer(model.userFactors, model.itemFactors, model.config.factors, model.trained, model.prior),
    );
    const pop = await rankSplit(ds, ds.splits.test, popularityScorer(ds));
    assert.ok(test.ndcg > pop.ndcg * 1.5, `ALS ${test.ndcg} vs popularity ${pop.ndcg}`);
    const bestGrid = Math.max(...model.validation.grid.map((g) => g.validationNdcg10));
    assert.equal(model.validation.ndcg10, bestGrid);
    assert.equal(model.validation.grid.length, 2);
    assert.ok(model.calibration.model.a > 0);
  });

  void it('the fold-in of a user’s own training items scores close to the fitted user vector', () => {
    const gram = gramPlusReg(model.itemFactors, model.items, model.config.factors, model.config.regularization);
    const u = 5;
    const hist = Array.from(ds.splits.train.user.keys())
      .filter((r) => ds.splits.train.user[r] === u)
      .map((r) => ds.splits.train.item[r]!);
    const fitted = alsCatalogScores(model, u, []);
    const folded = alsCatalogScores(model, 0, hist, gram);
    const a = refTop(fitted, 10);
    const b = refTop(folded, 10);
    assert.ok(a.filter((i) => b.includes(i)).length >= 6, `top-10 overlap ${a.filter((i) => b.includes(i)).length}`);
    assert.equal(usesPrior(model, 0, []), true);
    assert.equal(usesPrior(model, 0, [0, 0]), true);
    assert.equal(usesPrior(model, u, []), false);
  });

  void it('checkpoint round trip keeps every array and setting', async () => {
    await assertCheckpointRoundTrip(join(root, 'ck'), model, writeAlsCheckpoint, readAlsCheckpoint, [
      'config',
      'itemFactors',
      'userFactors',
      'trained',
      'prior',
      'historyConfidence',
    ]);
    await assert.rejects(readAlsCheckpoint(join(root, 'nope')), /checkpoint .*nope/);
  });

  void it('ONNX fp32 equals the reference: trained users, folded-in histories (padding, repeats), the prior', async () => {
    const gram = gramPlusReg(model.itemFactors, model.items, model.config.factors, model.config.regularization);
    const cases: Array<[number, number[]]> = [
      [3, []],
      [3, [9, 10]], // a trained user: the history is ignored
      [0, [12]],
      [0, [12, 40, 12, 77]], // repeat counted once
      [0, Array.from({ length: 60 }, (_, k) => 1 + ((k * 7) % 149))],
      [0, []], // the prior
    ];
    const items = [1, 2, 30, 60, 90, 149];
    const { scores, recs } = await runCases(bundle, cases, items, [1, 2]);
    cases.forEach(([u, h], b) => {
      const ref = alsCatalogScores(model, u, h, gram);
      const cal = usesPrior(model, u, h) ? model.calibration.prior : model.calibration.model;
      assertCalibrated(scores[b]!, items, ref, cal, `case ${b}`);
      const top = refTop(ref, 10, new Set([1, 2]));
      const got = recs[b]!.items;
      assert.ok(!got.includes(1) && !got.includes(2) && !got.includes(0), `case ${b}: excluded items returned`);
      // Same scores in the same order (ties may swap items of equal score).
      got.forEach((i, j) =>
        assert.ok(
          Math.abs(ref[i]! - ref[top[j]!]!) < 1e-5 * Math.max(1, Math.abs(ref[top[0]!]!)),
          `case ${b} rank ${j}`,
        ),
      );
    });
  });

  void it('ONNX int8 keeps the top 10 of fp32 and the manifest records the kind and inputs', async () => {
    const overlap = await int8TopOverlap(bundle);
    assert.ok(overlap > 0.8, `int8 top-10 overlap ${overlap}`);
    const manifest = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8')) as {
      kind: string;
      inputs: { recommend: string[] };
      sizes: { fp32: { recommend: number }; int8: { recommend: number } };
    };
    assert.equal(manifest.kind, 'als');
    assert.deepEqual(manifest.inputs.recommend, ['user', 'k', 'exclude', 'history']);
    assert.ok(manifest.sizes.int8.recommend < manifest.sizes.fp32.recommend * 0.7, JSON.stringify(manifest.sizes));
  });

  void it('refuses a bad setting with the field named', async () => {
    await assert.rejects(fitAls(ds, { grid: [], factors: 0 }), /ALS config: factors = 0/);
    await assert.rejects(fitAls(ds, { grid: [{ regularization: -1 }] }), /regularization = -1/);
  });
});
