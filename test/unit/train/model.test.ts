import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadDataset, type LoadedDataset } from '../../../lib/data/dataset';
import {
  DEFAULT_MODEL_CONFIG,
  WEIGHT_NAMES,
  catalogScores,
  itemSide,
  sizesOf,
  towerFeatures,
  weightShapes,
  type ModelExtras,
  type ModelWeights,
} from '../../../kinds/two-tower/spec';
import { selectBackend } from '../../../lib/train/backend';
import { TwoTowerModel } from '../../../kinds/two-tower/model';
import { batchContext, buildBatch, epochExamples, seededRandom } from '../../../kinds/two-tower/trainer';
import { FusedAdam } from '../../../lib/train/optimizer';
import { tempHome } from '../../helpers/temporal';
import { writeTinyDataset } from '../../helpers/tiny-dataset';

const CONFIG = {
  ...DEFAULT_MODEL_CONFIG,
  embeddingDim: 6,
  featureDim: 3,
  hiddenUnits: 10,
  outputDim: 5,
  historyLength: 4,
  batchSize: 64,
};

function randomWeights(ds: LoadedDataset, seed: number): ModelWeights {
  const shapes = weightShapes(CONFIG, sizesOf(ds));
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 2 - 1;
  };
  const w = {} as ModelWeights;
  for (const name of WEIGHT_NAMES) {
    const shape = shapes[name];
    w[name] = { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() * 0.5) };
  }
  return w;
}

for (const backend of ['wasm', 'cpu'] as const) {
  void describe(`TwoTowerModel on ${backend}`, () => {
    let ds: LoadedDataset;
    before(async () => {
      await selectBackend(backend);
      const dir = tempHome('recflow-model-');
      await writeTinyDataset(dir, { users: 30, items: 25 });
      ds = await loadDataset(dir);
    });

    void it('scores users by their histories like the reference forward (within 1e-5), ids gated', () => {
      const weights = randomWeights(ds, 11);
      // Some items without title tokens, and some without an id: the mean skips zeros, the gate drops the id.
      const f = towerFeatures(ds);
      f.itemTitleTokens.fill(0, 3 * 8, 4 * 8);
      const extras: ModelExtras = {
        itemHasId: Uint8Array.from({ length: ds.vocab.items.length }, (_, i) => (i > 0 && i % 4 !== 0 ? 1 : 0)),
        prior: new Float32Array(ds.vocab.items.length),
        priorConfig: null,
        priorWeight: 0,
        calibration: { model: { a: 1, b: 0 }, prior: { a: 1, b: 0 } },
      };
      const model = new TwoTowerModel(CONFIG, sizesOf(ds), f, weights);
      const noStored = { ...f, historyPtr: new Int32Array(f.historyPtr.length), historyItems: new Int32Array(0) };
      const side = itemSide(weights, f, extras);
      // Histories of 1 to 4 items (most recent first for the model; oldest first for the reference), users 1..9.
      const L = CONFIG.historyLength;
      const users = [1, 2, 3, 4, 5, 6, 7, 8, 9];
      const hist = users.map((u) => Array.from({ length: 1 + (u % L) }, (_, k) => 1 + ((u * 7 + k * 5) % 24)));
      const got = tf.tidy(() => {
        const cat = model.catalogue(extras.itemHasId);
        const h = new Int32Array(users.length * L);
        const v = new Float32Array(users.length * L);
        hist.forEach((row, b) =>
          row.forEach((i, k) => {
            h[b * L + k] = i;
            v[b * L + k] = 1;
          }),
        );
        const u = model.userVectors(
          cat.vecs,
          tf.tensor2d(h, [users.length, L], 'int32'),
          tf.tensor2d(v, [users.length, L]),
          tf.tensor1d(users, 'int32'),
        );
        return tf.add(tf.matMul(u, cat.vecs, false, true), cat.bias).dataSync();
      });
      const n = ds.vocab.items.length;
      let maxDiff = 0;
      let spread = 0;
      users.forEach((u, b) => {
        const want = catalogScores(weights, noStored, extras, side, u, [...hist[b]!].reverse()).scores;
        for (let i = 0; i < n; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(got[b * n + i]! - want[i]!));
          spread = Math.max(spread, Math.abs(want[i]!));
        }
      });
      assert.ok(maxDiff < 1e-5, `max |delta| ${maxDiff}`);
      assert.ok(spread > 0.1, 'random weights give scores away from 0');
      const back = model.toWeights();
      assert.deepEqual(back.token_embedding.shape, weights.token_embedding.shape);
      assert.deepEqual(Array.from(back['item_dense1/kernel'].data), Array.from(weights['item_dense1/kernel'].data));
      model.dispose();
    });

    void it('initialises unknown rows (index 0) of every table to zero', () => {
      const model = new TwoTowerModel(CONFIG, sizesOf(ds), towerFeatures(ds));
      const w = model.toWeights();
      for (const name of ['item_embedding', 'category_embedding', 'segment_embedding', 'token_embedding'] as const) {
        const d = w[name].shape[1]!;
        assert.ok(
          w[name].data.subarray(0, d).every((x) => x === 0),
          name,
        );
        assert.ok(
          w[name].data.subarray(d).some((x) => x !== 0),
          `${name} rows 1.. are random`,
        );
      }
      model.dispose();
    });

    void it('takes gradient steps that lower the loss of a batch (full catalogue and sampled)', () => {
      for (const sampledItems of [1000, 8]) {
        const config = { ...CONFIG, sampledItems };
        const model = new TwoTowerModel(config, sizesOf(ds), towerFeatures(ds));
        const ctx = batchContext(ds, config);
        assert.equal(ctx.full, sampledItems >= ds.vocab.items.length);
        const batch = buildBatch(ctx, epochExamples(ctx.seqs, config, 0), 0, 64, seededRandom(1), false);
        const opt = new FusedAdam(0.05);
        const vars = Object.values(model.vars);
        const first = tf.tidy(() => model.loss(batch).dataSync()[0]!);
        for (let k = 0; k < 30; k++) tf.tidy(() => void opt.minimize(() => model.loss(batch), false, vars));
        const last = tf.tidy(() => model.loss(batch).dataSync()[0]!);
        assert.ok(last < first * 0.5, `sampledItems ${sampledItems}: loss ${first} -> ${last}`);
        opt.dispose();
        model.dispose();
      }
    });
  });
}
