/**
 * tfjs ops of the sequential recommender with fast gradients on the wasm and cpu backends.
 *
 * The stock gradient of MatMul uses `transposeA`/`transposeB`, which tfjs wasm runs 6-8x slower than an explicit
 * `tf.transpose` followed by a plain MatMul (docs/training.md, "Speed"); lib/train/ops.ts `dense` fixes that for
 * dense layers, these do the same for the bias-free and batched products of attention and the output layer.
 * `layerNorm` has a closed-form gradient (three reductions) instead of the autodiff graph of its ~10 ops.
 */
import * as tf from '@tensorflow/tfjs';

type Grad = Parameters<typeof tf.customGrad>[0];

const perm3 = [0, 2, 1];

/** `a [m, k] @ b [k, n]` or batched `a [B, m, k] @ b [B, k, n]`, gradients by explicit transposes. */
export const matMul: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = tf.customGrad<tf.Tensor>(((
  a: tf.Tensor,
  b: tf.Tensor,
  save: tf.GradSaveFunc,
) => {
  save([a, b]);
  const t = (x: tf.Tensor) => (x.rank === 2 ? tf.transpose(x) : tf.transpose(x, perm3));
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const g = dy as tf.Tensor3D;
      const [as, bs] = saved as [tf.Tensor3D, tf.Tensor3D];
      return [tf.matMul(g, t(bs)), tf.matMul(t(as), g)];
    },
  };
}) as unknown as Grad);

/** Epsilon of every LayerNorm (in the ONNX export too). */
export const LAYER_NORM_EPS = 1e-6;

const layerNorm2d: (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor = tf.customGrad<tf.Tensor>(((
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  save: tf.GradSaveFunc,
) => {
  const mean = tf.mean(x, 1, true);
  const xc = tf.sub(x, mean);
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), 1, true), LAYER_NORM_EPS));
  const xhat = tf.mul(xc, rstd);
  save([xhat, rstd, gamma]);
  return {
    value: tf.add(tf.mul(xhat, gamma), beta),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const g = dy as tf.Tensor2D;
      const [xh, rs, gm] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
      const dxhat = tf.mul(g, gm);
      // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
      const dx = tf.mul(
        rs,
        tf.sub(tf.sub(dxhat, tf.mean(dxhat, 1, true)), tf.mul(xh, tf.mean(tf.mul(dxhat, xh), 1, true))),
      );
      return [dx, tf.sum(tf.mul(g, xh), 0), tf.sum(g, 0)];
    },
  };
}) as unknown as Grad);

/** LayerNorm over the last axis of `x [..., d]` with `gamma`, `beta` `[d]` and {@link LAYER_NORM_EPS}. */
export function layerNorm<R extends tf.Rank>(x: tf.Tensor<R>, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor<R> {
  const d = x.shape[x.shape.length - 1] ?? 1;
  if (x.rank === 2) return layerNorm2d(x, gamma, beta) as tf.Tensor<R>;
  return tf.tidy(() => tf.reshape<R>(layerNorm2d(tf.reshape(x, [-1, d]), gamma, beta), x.shape));
}

const softmaxCe: (logits: tf.Tensor, labels: tf.Tensor) => tf.Tensor = tf.customGrad<tf.Tensor>(((
  logits: tf.Tensor,
  labels: tf.Tensor,
  save: tf.GradSaveFunc,
) => {
  const lse = tf.logSumExp(logits, 1, true); // [P, 1]
  const [rows = 0, cols = 0] = logits.shape;
  // logits[p, labels[p]] by a flat gather (tfjs wasm 4.22 computes a batched `gather(..., batchDims = 1)` wrong).
  const flat = tf.add(tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(cols, 'int32')), labels);
  const picked = tf.reshape(tf.gather(tf.reshape(logits, [-1]), flat), [rows, 1]);
  save([logits, lse, labels]);
  return {
    value: tf.reshape(tf.sub(lse, picked), [-1]),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [x, l, y] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
      const g = tf.expandDims(dy as tf.Tensor1D, 1);
      const p = tf.exp(tf.sub(x, l));
      // oneHot as int32 then cast: tfjs wasm 4.22 writes int32 bits into a float32 oneHot.
      return [tf.mul(tf.sub(p, tf.cast(tf.oneHot(y, x.shape[1] ?? 1, 1, 0, 'int32'), 'float32')), g), tf.zerosLike(y)];
    },
  };
}) as unknown as Grad);

/**
 * Softmax cross-entropy per row: `logsumexp(logits[p]) - logits[p, labels[p]]` for `logits [P, C]`, `labels [P]`
 * (int32), with the closed-form gradient `softmax - onehot` (the autodiff gradient of `logSumExp` goes through a
 * broadcast `Equal` of its max, slow on wasm).
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return softmaxCe(logits, labels) as tf.Tensor1D;
}
