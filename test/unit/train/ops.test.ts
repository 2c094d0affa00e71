/**
 * lib/train/ops.ts against the stock tfjs ops: every op's value and gradients (of a random projection of its output)
 * equal those of the same formula written with stock ops and differentiated by tfjs, within a relative error of
 * 1e-4 (float32 rounding; the closed forms sum in another order), on wasm and cpu.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../lib/train/backend';
import { useFastKernels } from '../../../lib/train/kernels';
import {
  MASKED_SCORE,
  attention,
  columnSum,
  dense,
  embeddingConcat,
  gelu,
  layerNorm,
  matMul,
  sigmoidCrossEntropyWithLogits,
  softmaxCrossEntropy,
} from '../../../lib/train/ops';

const BOUND = 1e-4;

/** ||a - b|| / ||b||. */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const av = a.dataSync();
  const bv = b.dataSync();
  let num = 0;
  let den = 0;
  for (let i = 0; i < bv.length; i++) {
    num += ((av[i] ?? NaN) - (bv[i] ?? 0)) ** 2;
    den += (bv[i] ?? 0) ** 2;
  }
  assert.ok(den > 0, 'reference is not all zeros');
  return Math.sqrt(num / den);
}

let seed = 1;
const rand = (shape: number[], scale = 1): tf.Tensor => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed++), scale);

/**
 * Compare `ours` with `stock` on `inputs`: the value, and the gradient of `sum(f(x) * R)` for a fixed random R with
 * respect to every input.
 */
function check(
  name: string,
  ours: (...x: tf.Tensor[]) => tf.Tensor,
  stock: (...x: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
): void {
  tf.tidy(() => {
    const want = stock(...inputs);
    const got = ours(...inputs);
    const e = relErr(got, want);
    assert.ok(e < BOUND, `${name}: value rel err ${e}`);
    const r = rand(want.shape);
    const gOurs = tf.grads((...x: tf.Tensor[]) => tf.sum(tf.mul(ours(...x), r)))(inputs);
    const gStock = tf.grads((...x: tf.Tensor[]) => tf.sum(tf.mul(stock(...x), r)))(inputs);
    gStock.forEach((g, i) => {
      const ge = relErr(gOurs[i]!, g);
      assert.ok(ge < BOUND, `${name}: gradient ${i} rel err ${ge}`);
    });
  });
}

const stockGelu = (x: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));

function stockLayerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), g), b);
}

function stockAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor | null): tf.Tensor {
  let s = tf.div(tf.matMul(q, k, false, true), Math.sqrt(q.shape[q.rank - 1] ?? 1));
  if (bias) s = tf.add(s, bias);
  return tf.matMul(tf.softmax(s), v);
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`lib/train/ops on ${backend}`, () => {
    it('dense (linear, relu, gelu; rank 2 and 3) equals matMul + add + activation', async () => {
      await selectBackend(backend);
      const w = rand([7, 5]);
      const b = rand([5]);
      for (const act of ['linear', 'relu', 'gelu'] as const) {
        const stock = (x: tf.Tensor, k: tf.Tensor, c: tf.Tensor): tf.Tensor => {
          const y = tf.add(tf.matMul(tf.reshape(x, [-1, 7]), k), c);
          const a = act === 'relu' ? tf.relu(y) : act === 'gelu' ? stockGelu(y) : y;
          return tf.reshape(a, [...x.shape.slice(0, -1), 5]);
        };
        check(`dense ${act} 2-D`, (x, k, c) => dense(x, k, c, act), stock, [rand([11, 7]), w, b]);
        check(`dense ${act} 3-D`, (x, k, c) => dense(x, k, c, act), stock, [rand([3, 4, 7]), w, b]);
      }
    });

    it('matMul with every transpose flag and rank 2-4 equals tf.matMul', async () => {
      await selectBackend(backend);
      for (const batch of [[], [3], [2, 3]]) {
        for (const [ta, tb] of [
          [false, false],
          [false, true],
          [true, false],
          [true, true],
        ] as const) {
          const a = rand([...batch, ...(ta ? [6, 4] : [4, 6])]);
          const b = rand([...batch, ...(tb ? [5, 6] : [6, 5])]);
          check(
            `matMul ${batch.length + 2}-D ${ta} ${tb}`,
            (x, y) => matMul(x, y, ta, tb),
            (x, y) => tf.matMul(x, y, ta, tb),
            [a, b],
          );
        }
      }
      assert.throws(() => matMul(tf.zeros([2, 3]), tf.zeros([4, 5])), /inner dimensions 3 and 4 differ/);
    });

    it('attention (rank 4 with key mask and causal mask, rank 3 without) equals the stock composite', async () => {
      await selectBackend(backend);
      const [B, H, T, D] = [2, 3, 5, 4];
      const keyMask = tf.tensor2d([1, 1, 1, 0, 0, 1, 1, 1, 1, 1], [B, T]);
      const lower = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
      const bias = tf.add(
        tf.reshape(tf.mul(tf.sub(1, keyMask), MASKED_SCORE), [B, 1, 1, T]),
        tf.mul(tf.sub(1, lower), MASKED_SCORE),
      );
      check(
        'attention 4-D masked',
        (q, k, v) => attention(q, k, v, { keyMask, causal: true }),
        (q, k, v) => stockAttention(q, k, v, bias),
        [rand([B, H, T, D]), rand([B, H, T, D]), rand([B, H, T, 6])],
      );
      check(
        'attention 3-D',
        (q, k, v) => attention(q, k, v),
        (q, k, v) => stockAttention(q, k, v, null),
        [rand([B, T, D]), rand([B, 7, D]), rand([B, 7, D])],
      );
      // A masked key gets no weight: changing its value does not change the output.
      tf.tidy(() => {
        const q = rand([1, 1, 3, D]);
        const k = rand([1, 1, 3, D]);
        const v = rand([1, 1, 3, D]);
        const m = tf.tensor2d([[1, 1, 0]]);
        const v2 = tf.concat([tf.slice(v, [0, 0, 0, 0], [1, 1, 2, D]), tf.fill([1, 1, 1, D], 100)], 2);
        assert.ok(relErr(attention(q, k, v2, { keyMask: m }), attention(q, k, v, { keyMask: m })) < 1e-6);
      });
    });

    it('layerNorm equals the stock composite (moments), gelu the stock erf formula', async () => {
      await selectBackend(backend);
      for (const eps of [1e-12, 1e-5]) {
        check(
          `layerNorm eps ${eps}`,
          (x, g, b) => layerNorm(x, g, b, eps),
          (x, g, b) => stockLayerNorm(x, g, b, eps),
          [tf.add(rand([2, 3, 16], 2), 0.5), tf.add(rand([16], 0.2), 1), rand([16], 0.1)],
        );
      }
      check(
        'gelu',
        (x) => gelu(x),
        (x) => stockGelu(x),
        [rand([4, 9], 2)],
      );
    });

    it('the losses equal their stock formulas', async () => {
      await selectBackend(backend);
      const labels = tf.tensor1d([1, 0, 0, 0.5, 1, 0, 0, 1, 0, 0]);
      check(
        'sigmoidCrossEntropyWithLogits',
        (z) => sigmoidCrossEntropyWithLogits(z, labels),
        (z) => tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))))),
        [rand([10], 3)],
      );
      const y = tf.tensor1d([0, 3, 2, 2, 1, 4], 'int32');
      const w = tf.tensor1d([1, 1, 0, 1, 0.5, 1]);
      const stockSce = (z: tf.Tensor, weights: tf.Tensor): tf.Tensor =>
        tf.div(tf.sum(tf.mul(tf.neg(tf.sum(tf.mul(tf.logSoftmax(z), tf.oneHot(y, 5)), 1)), weights)), tf.sum(weights));
      check(
        'softmaxCrossEntropy',
        (z) => softmaxCrossEntropy(z as tf.Tensor2D, y),
        (z) => stockSce(z, tf.ones([6])),
        [rand([6, 5], 2)],
      );
      check(
        'softmaxCrossEntropy weighted',
        (z) => softmaxCrossEntropy(z as tf.Tensor2D, y, w),
        (z) => stockSce(z, w),
        [rand([6, 5], 2)],
      );
      check(
        'columnSum',
        (x) => columnSum(x as tf.Tensor2D),
        (x) => tf.sum(x, 0),
        [rand([9, 4])],
      );
    });

    for (const fast of [true, false]) {
      it(`embeddingConcat (ids, a weighted bag, a dense block) equals gather + concat (${fast ? 'recflow kernels' : 'stock ops'})`, async () => {
        await selectBackend(backend);
        useFastKernels(backend, fast);
        try {
          const ids = tf.tensor1d([3, 0, 3, 7, 1], 'int32');
          const ids2 = tf.tensor1d([1, 1, 0, 2, 2], 'int32');
          const bag = tf.tensor2d([2, 0, 5, 5, 1, 1, 0, 0, 4, 3, 2, 1, 9, 9, 9, 9, 0, 0, 0, 0], [5, 4], 'int32');
          const bw = tf.tensor2d(
            [0.5, 0, 0.25, 0.25, 0.5, 0.5, 0, 0, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0, 0, 0, 0],
            [5, 4],
          );
          const extra = rand([5, 2]);
          const stock = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor): tf.Tensor =>
            tf.concat(
              [
                tf.gather(a, ids),
                tf.gather(b, ids2),
                tf.sum(tf.mul(tf.gather(c, bag), tf.expandDims(bw, 2)), 1),
                extra,
              ],
              1,
            );
          check(
            'embeddingConcat',
            (a, b, c) =>
              embeddingConcat(
                [
                  { table: a, ids },
                  { table: b, ids: ids2 },
                  { table: c, ids: bag, weights: bw },
                ],
                extra,
              ),
            stock,
            [rand([8, 4]), rand([3, 2]), rand([10, 3])],
          );
        } finally {
          useFastKernels(backend, true);
        }
      });
    }
  });
}
