import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../../lib/train/backend';
import { mulberry32 } from '../../../../lib/rng';
import { SequentialModel } from '../../../../kinds/sequential/model';
import { resolveSequentialConfig, type ItemFeatures } from '../../../../kinds/sequential/spec';

const config = resolveSequentialConfig({
  maxLength: 6,
  hiddenDim: 16,
  heads: 4,
  innerDim: 24,
  blocks: 2,
  dropout: 0.3,
});
const sizes = { items: 20, categories: 4, brands: 3 };
const features: ItemFeatures = {
  category: Int32Array.from({ length: 20 }, (_, i) => i % 4),
  brand: Int32Array.from({ length: 20 }, (_, i) => i % 3),
};

/** A model with weights far from the initialization (so LayerNorm parameters and biases matter). */
function randomModel(): SequentialModel {
  const m = new SequentialModel(config, sizes, features);
  const w = m.toWeights();
  const r = mulberry32(9);
  for (const x of Object.values(w)) for (let i = 0; i < x.data.length; i++) x.data[i]! += (r() - 0.5) * 0.8;
  m.setWeights(w);
  return m;
}

const rows = (t: tf.Tensor): number[][][] => t.arraySync() as number[][][];
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - (b[i] ?? NaN))));

describe('SequentialModel', () => {
  let m: SequentialModel;
  before(async () => {
    await selectBackend('wasm');
    m = randomModel();
  });

  it('has the shapes of the spec', () => {
    const h = tf.tensor2d([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [2, 6], 'int32');
    assert.deepEqual(m.forward(h).shape, [2, 6, 16]);
    assert.deepEqual(m.forward(h, 1).shape, [2, 6, 16]);
    assert.deepEqual(m.forward(h, undefined, true).shape, [2, 1, 16]);
    assert.deepEqual(m.catalogueLogits(h).shape, [2, 20]);
    assert.deepEqual(m.forward(tf.tensor2d([3, 4], [1, 2], 'int32')).shape, [1, 2, 16]);
    assert.throws(() => m.forward(tf.zeros<tf.Rank.R2>([1, 7], 'int32')), /width 7/);
  });

  it('is causal: a step never sees a later one, and always sees the earlier ones', () => {
    const a = [3, 5, 7, 9, 11, 13];
    for (let t = 0; t < 6; t++) {
      const b = [...a];
      b[t] = 2;
      const out = rows(m.forward(tf.tensor2d([a, b], [2, 6], 'int32')));
      for (let s = 0; s < 6; s++) {
        const d = maxDiff(out[0]![s]!, out[1]![s]!);
        if (s < t) assert.equal(d, 0, `step ${s} changed when step ${t} did`);
        else assert.ok(d > 1e-4, `step ${s} ignored a change at step ${t}`);
      }
    }
  });

  it('ignores padding: a short history trimmed or padded, alone or beside others, gives the same last state', () => {
    const padded = tf.tensor2d([0, 0, 0, 4, 8, 12, 1, 2, 3, 4, 5, 6], [2, 6], 'int32');
    const trimmed = tf.tensor2d([4, 8, 12], [1, 3], 'int32');
    const p = rows(m.forward(padded))[0]![5]!;
    const q = rows(m.forward(trimmed))[0]![2]!;
    const last = rows(m.forward(padded, undefined, true))[0]![0]!;
    assert.ok(maxDiff(p, q) < 1e-5, `padded vs trimmed ${maxDiff(p, q)}`);
    assert.ok(maxDiff(p, last) < 1e-5, `full vs last-step-only ${maxDiff(p, last)}`);
  });

  it('draws dropout from the seed: same seed same output, another seed or inference differ', () => {
    const h = tf.tensor2d([1, 2, 3, 4, 5, 6], [1, 6], 'int32');
    const a = rows(m.forward(h, 11))[0]!.flat();
    const b = rows(m.forward(h, 11))[0]!.flat();
    const c = rows(m.forward(h, 12))[0]!.flat();
    const inf = rows(m.forward(h))[0]!.flat();
    assert.deepEqual(a, b);
    assert.ok(maxDiff(a, c) > 1e-3);
    assert.ok(maxDiff(a, inf) > 1e-3);
  });

  it('scores items through the shared item vectors (category and brand included)', () => {
    const h = tf.tensor2d([0, 0, 1, 2, 3, 4], [1, 6], 'int32');
    const hidden = rows(m.forward(h, undefined, true))[0]![0]!;
    const table = m.itemVectors().arraySync();
    const logits = m.catalogueLogits(h).arraySync()[0]!;
    const w = m.toWeights();
    const at = (name: string, r: number, j: number) => w[name]!.data[r * 16 + j]!;
    assert.ok(
      Math.abs(
        table[7]![2]! - (at('item_embedding', 7, 2) + at('category_embedding', 3, 2) + at('brand_embedding', 1, 2)),
      ) < 1e-5,
    );
    for (const i of [0, 5, 19]) {
      const dot = hidden.reduce((s, x, j) => s + x * table[i]![j]!, 0);
      assert.ok(Math.abs(dot - logits[i]!) < 1e-4);
    }
  });

  it('computes the sampled-softmax loss with hits masked, and the full softmax', () => {
    const h = tf.tensor2d([0, 0, 1, 2, 3, 4], [1, 6], 'int32');
    const positions = tf.tensor1d([2, 3, 4], 'int32');
    const targets = tf.tensor1d([2, 3, 4], 'int32');
    const weights = tf.tensor1d([1, 1, 1]);
    const negs = tf.tensor1d([3, 9, 15], 'int32');
    const noHits = tf.zeros<tf.Rank.R2>([3, 3]);
    // Step 3 has target 3, which is also negative 0: with the hit masked, the loss is lower.
    const hits = tf.tensor2d([0, 0, 0, 1, 0, 0, 0, 0, 0], [3, 3]);
    const unmasked = m.loss(h, positions, targets, weights, { items: negs, hits: noHits }, 1).dataSync()[0]!;
    const masked = m.loss(h, positions, targets, weights, { items: negs, hits }, 1).dataSync()[0]!;
    const full = m.loss(h, positions, targets, weights, undefined, 1).dataSync()[0]!;
    assert.ok(masked < unmasked, `${masked} < ${unmasked}`);
    assert.ok(full > masked, 'the full softmax has more competitors');
    assert.ok(Number.isFinite(full));
  });
});
