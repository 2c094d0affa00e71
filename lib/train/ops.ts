/**
 * Training ops shared by every tfjs model kind, faster than the stock ones on the wasm and cpu backends.
 *
 * `dense`: `x W + b` whose gradient uses explicit transposes and plain MatMuls. The stock gradient of MatMul uses
 * `transposeA`/`transposeB`, which tfjs wasm runs about 6-8x slower than an explicit `tf.transpose` followed by a
 * plain MatMul (docs/training.md, "Speed"). Inputs of rank > 2 are flattened to 2-D and reshaped back.
 */
import * as tf from '@tensorflow/tfjs';

const dense2d = tf.customGrad(((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const g = dy as tf.Tensor2D;
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(g, tf.transpose(ws)), tf.matMul(tf.transpose(xs), g), tf.sum(g, 0)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/**
 * A dense layer `x @ kernel + bias` with a fast gradient. `x` is `[..., in]`, `kernel` `[in, out]`, `bias` `[out]`;
 * the result is `[..., out]`.
 */
export function dense<R extends tf.Rank>(x: tf.Tensor<R>, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor<R> {
  const inDim = x.shape[x.shape.length - 1] ?? 0;
  const outDim = kernel.shape[1] ?? 0;
  if (x.rank === 2) return dense2d(x, kernel, bias) as tf.Tensor<R>;
  return tf.tidy(() => {
    const flat = tf.reshape(x, [-1, inDim]);
    return tf.reshape(dense2d(flat, kernel, bias), [...x.shape.slice(0, -1), outDim]) as unknown as tf.Tensor<R>;
  });
}
