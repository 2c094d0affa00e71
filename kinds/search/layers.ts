/**
 * Transformer building blocks for tfjs with gradients written for the wasm backend, where a MatMul with a transposed
 * operand is about 8x slower than an explicit `tf.transpose` followed by a plain MatMul (FACTS, "TensorFlow.js
 * training"), and where every kernel launch costs: each op here has a hand-written gradient that uses plain MatMuls
 * and few kernels.
 *
 * - {@link mm}: `a @ b` for matrices, gradient `dy @ b^T`, `a^T @ dy` with explicit transposes (the contrastive
 *   loss's similarity matrix): lib/train/ops.ts `matMul`. Per-head attention products use the stock MatMul: for
 *   batches of short products its transposed form is as fast as the plain one on wasm.
 * - {@link layerNorm}: LayerNorm over the last axis with the analytic gradient.
 * - `gelu`: GELU in the erf form BERT uses, `0.5 x (1 + erf(x / sqrt 2))`, with its analytic gradient
 *   (lib/train/ops.ts `gelu`, re-exported).
 * Dense layers use lib/train/ops.ts `dense`.
 */
import * as tf from '@tensorflow/tfjs';
import { matMul } from '../../lib/train/ops';

export { gelu } from '../../lib/train/ops';

type GradFn = Parameters<typeof tf.customGrad>[0];

/** Matrix product `a [M, K] @ b [K, P]` with an explicit-transpose gradient (no bias: see lib/train/ops.ts `dense`). */
export function mm(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return matMul(a, b) as tf.Tensor2D;
}

function makeLayerNorm(eps: number) {
  return tf.customGrad(((x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const { mean, variance } = tf.moments(x, -1, true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(tf.sub(x, mean), rstd);
    save([xhat, rstd, gamma]);
    return {
      value: tf.add(tf.mul(xhat, gamma), beta),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const g = dy as tf.Tensor2D;
        const [xh, rs, ga] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const dxhat = tf.mul(g, ga);
        const m1 = tf.mean(dxhat, -1, true);
        const m2 = tf.mean(tf.mul(dxhat, xh), -1, true);
        const dx = tf.mul(rs, tf.sub(tf.sub(dxhat, m1), tf.mul(xh, m2)));
        return [dx, tf.sum(tf.mul(g, xh), 0), tf.sum(g, 0)];
      },
    };
  }) as unknown as GradFn);
}

const layerNorms = new Map<number, ReturnType<typeof makeLayerNorm>>();

/** LayerNorm over the last axis of `x` (any rank), `gamma`/`beta` of the last axis' size, BERT's `eps`. */
export function layerNorm<R extends tf.Rank>(
  x: tf.Tensor<R>,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
): tf.Tensor<R> {
  let f = layerNorms.get(eps);
  if (!f) layerNorms.set(eps, (f = makeLayerNorm(eps)));
  const h = x.shape[x.shape.length - 1] ?? 0;
  if (x.rank === 2) return f(x, gamma, beta) as tf.Tensor<R>;
  return tf.tidy(() => tf.reshape<R>(f(tf.reshape(x, [-1, h]), gamma, beta), x.shape));
}
