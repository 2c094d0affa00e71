import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadDataset, type LoadedDataset } from '../../../lib/data/dataset';
import {
  DEFAULT_MODEL_CONFIG,
  WEIGHT_NAMES,
  referenceScore,
  sizesOf,
  towerFeatures,
  weightShapes,
  type ModelWeights,
} from '../../../kinds/two-tower/spec';
import { selectBackend } from '../../../lib/train/backend';
import { TwoTowerModel } from '../../../kinds/two-tower/model';
import { tempHome } from '../../helpers/temporal';
import { writeTinyDataset } from '../../helpers/tiny-dataset';

function randomWeights(ds: LoadedDataset, seed: number): ModelWeights {
  const config = { ...DEFAULT_MODEL_CONFIG, embeddingDim: 6, featureDim: 3, hiddenUnits: 10, outputDim: 5 };
  const shapes = weightShapes(config, sizesOf(ds));
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
  describe(`TwoTowerModel on ${backend}`, () => {
    let ds: LoadedDataset;
    before(async () => {
      await selectBackend(backend);
      const dir = tempHome('recflow-model-');
      await writeTinyDataset(dir, { users: 30, items: 25 });
      ds = await loadDataset(dir);
    });
    after(() => undefined);

    it('scores every (user, item) pair like lib/model-spec referenceScore (within 1e-5)', () => {
      const weights = randomWeights(ds, 11);
      const config = { ...DEFAULT_MODEL_CONFIG, embeddingDim: 6, featureDim: 3, hiddenUnits: 10, outputDim: 5 };
      // Some items without title tokens and one with all padding: the mean must skip zeros and give 0 when empty.
      const f = towerFeatures(ds);
      f.itemTitleTokens.fill(0, 3 * 8, 4 * 8);
      const model = new TwoTowerModel(config, sizesOf(ds), f, weights);
      const users: number[] = [];
      const items: number[] = [];
      for (let u = 0; u < ds.vocab.users.length; u += 3)
        for (let i = 0; i < ds.vocab.items.length; i++) {
          users.push(u);
          items.push(i);
        }
      const got = tf.tidy(() => model.score(tf.tensor1d(users, 'int32'), tf.tensor1d(items, 'int32')).dataSync());
      let maxDiff = 0;
      let spread = 0;
      for (let k = 0; k < users.length; k++) {
        const want = referenceScore(weights, f, users[k] ?? 0, items[k] ?? 0);
        maxDiff = Math.max(maxDiff, Math.abs((got[k] ?? NaN) - want));
        spread = Math.max(spread, Math.abs(want - 0.5));
      }
      assert.ok(maxDiff < 1e-5, `max |delta| ${maxDiff}`);
      assert.ok(spread > 0.05, 'random weights give scores away from 0.5');
      // toWeights round-trips what went in.
      const back = model.toWeights();
      assert.deepEqual(back.token_embedding.shape, weights.token_embedding.shape);
      assert.deepEqual(Array.from(back['item_dense1/kernel'].data), Array.from(weights['item_dense1/kernel'].data));
      model.dispose();
    });

    it('takes gradient steps that lower the loss of a batch', () => {
      const config = { ...DEFAULT_MODEL_CONFIG, embeddingDim: 6, featureDim: 3, hiddenUnits: 10, outputDim: 5 };
      const model = new TwoTowerModel(config, sizesOf(ds), towerFeatures(ds));
      const users = tf.tensor1d([1, 2, 3, 1, 2, 3], 'int32');
      const items = tf.tensor1d([1, 2, 3, 4, 5, 6], 'int32');
      const labels = tf.tensor1d([1, 1, 1, 0, 0, 0]);
      const opt = tf.train.adam(0.05);
      const first = model.loss(users, items, labels).dataSync()[0] ?? NaN;
      for (let k = 0; k < 20; k++) opt.minimize(() => model.loss(users, items, labels));
      const last = model.loss(users, items, labels).dataSync()[0] ?? NaN;
      assert.ok(last < first * 0.5, `loss ${first} -> ${last}`);
      model.dispose();
    });
  });
}
