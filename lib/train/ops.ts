/**
 * Training ops shared by every tfjs model kind, with hand-written gradients that are faster than the stock ones on
 * the wasm and cpu backends (and no slower elsewhere: they are plain tfjs ops, so they run on every backend).
 *
 * Why: the stock gradient of MatMul uses `transposeA`/`transposeB`, which tfjs wasm runs 6-10x slower than an
 * explicit transpose followed by a plain MatMul (docs/training.md, "Speed"); the stock gradient of a composite
 * (LayerNorm, GELU, a loss) is one kernel per primitive, several times the kernels of its closed form; a column sum
 * (`tf.sum(x, 0)`) is a transpose plus a row sum on wasm, slower than `ones @ x`.
 *
 * - {@link dense}: `act(x W + b)`, forward one fused kernel, gradient with explicit transposes.
 * - {@link matMul}: a (batched) MatMul whose forward and gradient transpose explicitly where that is faster.
 * - {@link attention}: scaled dot-product attention with key-padding and causal masks, one custom gradient.
 * - {@link layerNorm}, {@link gelu}: closed-form gradients.
 * - {@link sigmoidCrossEntropyWithLogits}, {@link softmaxCrossEntropy}: mean losses with closed-form gradients.
 * - {@link embeddingConcat}: several embedding lookups (and bags) concatenated, in one kernel on cpu/wasm.
 *
 * Every op equals its stock composite within float32 rounding, value and gradient (test/unit/train/ops.test.ts).
 * Signatures are stable: other kinds import them.
 */
import * as tf from '@tensorflow/tfjs';
import { EMBEDDING_CONCAT, EMBEDDING_CONCAT_GRAD, hasFastKernel } from './kernels';

type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
type Forward = (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: GradFunc };

/** Run `forward` on `inputs` as one op whose gradient is the returned `gradFunc` (one gradient per input). */
function withGrad(inputs: tf.Tensor[], forward: Forward): tf.Tensor {
  const f = tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const { value, gradFunc } = forward(args.slice(0, -1) as tf.Tensor[], save);
    return { value, gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => gradFunc(dy as tf.Tensor, saved) };
  });
  return f(...inputs);
}

/** Swap the last two axes (an explicit transpose: a copy, fast on every backend). */
function swapLast(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  if (r === 2) return tf.transpose(x);
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

/**
 * Contraction length from which a transposed operand of a batched MatMul is transposed explicitly. tfjs wasm's
 * MatMul with `transposeA`/`transposeB` is 6-10x slower than a transpose plus a plain MatMul on a single (unbatched)
 * product, as in a dense layer's gradients, and about as fast on a batch of short products (attention over a head's
 * depth or a sequence, 16 to 64 long): bench/train.ts `ops`.
 */
const EXPLICIT_TRANSPOSE_FROM = 128;

/** `op(a) @ op(b)`: explicit transposes for single or long products, the MatMul's own flags for batched short ones. */
function mm(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): tf.Tensor {
  const k = a.shape[ta ? a.rank - 2 : a.rank - 1] ?? 0;
  const batch = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  if ((ta || tb) && batch > 1 && k < EXPLICIT_TRANSPOSE_FROM) return tf.matMul(a, b, ta, tb);
  return tf.matMul(ta ? swapLast(a) : a, tb ? swapLast(b) : b);
}

/** Column sums of a 2-D tensor, `[n, m] -> [m]`, as `ones[1, n] @ x` (a row reduction over axis 0 is slow on wasm). */
export function columnSum(x: tf.Tensor2D): tf.Tensor1D {
  const [n = 0, m = 0] = x.shape;
  return tf.reshape(tf.matMul(tf.ones([1, n]), x), [m]);
}

/** Sum over every axis but the last, `[..., m] -> [m]`. */
function sumToLast(x: tf.Tensor): tf.Tensor1D {
  const m = x.shape[x.rank - 1] ?? 0;
  return columnSum(tf.reshape<tf.Rank.R2>(x, [-1, m]));
}

/** `x W + b` with an optional fused activation, as one `_FusedMatMul` kernel (wasm needs rank-3 operands). */
function fusedLinear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, activation: 'linear' | 'relu'): tf.Tensor2D {
  const [n = 0, k = 0] = x.shape;
  const m = w.shape[1] ?? 0;
  const out = tf
    .engine()
    .runKernel<tf.Tensor>(
      '_FusedMatMul',
      { a: tf.reshape(x, [1, n, k]), b: tf.reshape(w, [1, k, m]), bias: b },
      { transposeA: false, transposeB: false, activation, leakyreluAlpha: 0 },
    );
  return tf.reshape(out, [n, m]);
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Phi(x) = 0.5 (1 + erf(x / sqrt 2)), the standard normal CDF. */
function normalCdf(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1), 0.5);
}

/** d GELU / dx = Phi(x) + x phi(x), given Phi(x). */
function geluDerivative(x: tf.Tensor, cdf: tf.Tensor): tf.Tensor {
  const pdf = tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), INV_SQRT_2PI);
  return tf.add(cdf, tf.mul(x, pdf));
}

/** Activations {@link dense} can fuse. `gelu` is the exact (erf) form of BERT. */
export type DenseActivation = 'linear' | 'relu' | 'gelu';

function dense2d(x: tf.Tensor2D, kernel: tf.Tensor, bias: tf.Tensor, activation: DenseActivation): tf.Tensor2D {
  return withGrad([x, kernel, bias], ([xs, ws, bs], save) => {
    const pre = fusedLinear(xs!, ws!, bs!, activation === 'relu' ? 'relu' : 'linear');
    const cdf = activation === 'gelu' ? normalCdf(pre) : null;
    const value = cdf ? tf.mul(pre, cdf) : pre;
    // relu: the output's sign is the mask; gelu: the pre-activation and its CDF give the derivative.
    save(cdf ? [xs!, ws!, pre, cdf] : [xs!, ws!, value]);
    return {
      value,
      gradFunc: (dy, [sx, sw, s, scdf]) => {
        const g = activation === 'relu' ? tf.mul(dy, tf.step(s!)) : scdf ? tf.mul(dy, geluDerivative(s!, scdf)) : dy;
        return [mm(g, sw!, false, true), mm(sx!, g, true, false), columnSum(g as tf.Tensor2D)];
      },
    };
  }) as tf.Tensor2D;
}

/**
 * A dense layer `activation(x @ kernel + bias)` with a fast gradient (explicit transposes, column sums as MatMuls)
 * and the forward pass as one fused kernel. `x` is `[..., in]`, `kernel` `[in, out]`, `bias` `[out]`; the result is
 * `[..., out]`. Inputs of rank > 2 are flattened to 2-D and reshaped back.
 * @param activation @default 'linear'
 */
export function dense<R extends tf.Rank>(
  x: tf.Tensor<R>,
  kernel: tf.Tensor,
  bias: tf.Tensor,
  activation: DenseActivation = 'linear',
): tf.Tensor<R> {
  const inDim = x.shape[x.shape.length - 1] ?? 0;
  const outDim = kernel.shape[1] ?? 0;
  if (x.rank === 2) return dense2d(x as tf.Tensor2D, kernel, bias, activation) as tf.Tensor<R>;
  return tf.tidy((): tf.Tensor => {
    const flat = tf.reshape<tf.Rank.R2>(x, [-1, inDim]);
    return tf.reshape(dense2d(flat, kernel, bias, activation), [...x.shape.slice(0, -1), outDim]);
  }) as tf.Tensor<R>;
}

/**
 * `op(a) @ op(b)` over the last two axes, `op` a transpose when its flag is set; leading (batch) axes must be equal.
 * Forward and gradient transpose explicitly for single products and long contractions (the stock gradient uses the
 * transposed MatMul, slow on wasm there) and use the MatMul's flags for batches of short ones.
 * @throws {Error} when the ranks or batch axes differ, or the inner dimensions do not match.
 */
export function matMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (a.rank !== b.rank || a.rank < 2 || a.shape.slice(0, -2).join() !== b.shape.slice(0, -2).join())
    throw new Error(`matMul: batch axes must be equal, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  const ka = a.shape[transposeA ? a.rank - 2 : a.rank - 1];
  const kb = b.shape[transposeB ? b.rank - 1 : b.rank - 2];
  if (ka !== kb) throw new Error(`matMul: inner dimensions ${ka} and ${kb} differ`);
  return withGrad([a, b], ([as, bs], save) => {
    save([as!, bs!]);
    return {
      value: mm(as!, bs!, transposeA, transposeB),
      gradFunc: (dc, [sa, sb]) => {
        const A = sa!;
        const B = sb!;
        if (!transposeA && !transposeB) return [mm(dc, B, false, true), mm(A, dc, true, false)];
        if (!transposeA && transposeB) return [mm(dc, B, false, false), mm(dc, A, true, false)];
        if (transposeA && !transposeB) return [mm(B, dc, false, true), mm(A, dc, false, false)];
        return [mm(B, dc, true, true), mm(dc, A, true, true)];
      },
    };
  });
}

/** Masks for {@link attention}. */
export interface AttentionOptions {
  /** `[batch, keys]`: 1 where a key may be attended, 0 where it is padding. @default all keys */
  keyMask?: tf.Tensor;
  /** Query t attends to keys <= t only (queries and keys the same sequence). @default false */
  causal?: boolean;
  /** Multiplies the scores. @default 1 / sqrt(depth) */
  scale?: number;
}

/** A large negative added to masked scores: exp(-1e9) is 0 in float32, and a fully masked row stays finite. */
export const MASKED_SCORE = -1e9;

/** The additive score bias of the masks, broadcastable to `[batch, (heads,) queries, keys]`, or null. */
function maskBias(rank: number, tq: number, tk: number, opts: AttentionOptions): tf.Tensor | null {
  let bias: tf.Tensor | null = null;
  if (opts.keyMask) {
    const [batch = 0] = opts.keyMask.shape;
    const shape = rank === 4 ? [batch, 1, 1, tk] : [batch, 1, tk];
    bias = tf.reshape(tf.mul(tf.sub(1, tf.cast(opts.keyMask, 'float32')), MASKED_SCORE), shape);
  }
  if (opts.causal) {
    // 1 on and below the diagonal.
    const lower = tf.linalg.bandPart(tf.ones([tq, tk]), -1, 0);
    const c = tf.mul(tf.sub(1, lower), MASKED_SCORE);
    bias = bias ? tf.add(bias, c) : c;
  }
  return bias;
}

/**
 * Scaled dot-product attention `softmax(q k^T * scale + masks) v`, as one op with a hand-written gradient (explicit
 * transposes, the softmax gradient in closed form).
 *
 * `q` `[batch, heads, queries, depth]` (or `[batch, queries, depth]`), `k` `[..., keys, depth]`, `v`
 * `[..., keys, depthV]`; the result is `[..., queries, depthV]`. Masked keys get {@link MASKED_SCORE}: a row with
 * every key masked attends uniformly (finite, never NaN); mask such rows out of the loss.
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, opts: AttentionOptions = {}): tf.Tensor {
  const r = q.rank;
  if ((r !== 3 && r !== 4) || k.rank !== r || v.rank !== r)
    throw new Error(`attention: q, k, v must all be rank 3 or 4, got ${q.rank}, ${k.rank}, ${v.rank}`);
  const tq = q.shape[r - 2] ?? 0;
  const tk = k.shape[r - 2] ?? 0;
  const depth = q.shape[r - 1] ?? 1;
  const scale = opts.scale ?? 1 / Math.sqrt(depth);
  return tf.tidy(() => {
    const bias = maskBias(r, tq, tk, opts);
    return withGrad([q, k, v], ([qs, ks, vs], save) => {
      let scores = tf.mul(mm(qs!, ks!, false, true), scale);
      if (bias) scores = tf.add(scores, bias);
      const p = tf.softmax(scores);
      save([qs!, ks!, vs!, p]);
      return {
        value: tf.matMul(p, vs!),
        gradFunc: (dout, [sq, sk, sv, sp]) => {
          const P = sp!;
          const dp = mm(dout, sv!, false, true);
          const dv = mm(P, dout, true, false);
          const ds = tf.mul(tf.mul(P, tf.sub(dp, tf.sum(tf.mul(dp, P), -1, true))), scale);
          return [tf.matMul(ds, sk!), mm(ds, sq!, true, false), dv];
        },
      };
    });
  });
}

/**
 * Layer normalization over the last axis, `(x - mean) / sqrt(var + epsilon) * gamma + beta` (biased variance, as
 * BERT and PyTorch), with its gradient in closed form. `x` `[..., d]`, `gamma` and `beta` `[d]`.
 * @param epsilon @default 1e-12 (BERT's)
 */
export function layerNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, epsilon = 1e-12): T {
  return withGrad([x, gamma, beta], ([xs, gs, bs], save) => {
    const xc = tf.sub(xs!, tf.mean(xs!, -1, true));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), epsilon));
    const xhat = tf.mul(xc, rstd);
    save([xhat, rstd, gs!]);
    return {
      value: tf.add(tf.mul(xhat, gs!), bs!),
      gradFunc: (dy, [sxhat, srstd, sg]) => {
        const xh = sxhat!;
        const g = tf.mul(dy, sg!);
        const dx = tf.mul(
          tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))),
          srstd!,
        );
        return [dx, sumToLast(tf.mul(dy, xh)), sumToLast(dy)];
      },
    };
  }) as T;
}

/** Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (BERT's `gelu`), with its gradient in closed form. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return withGrad([x], ([xs], save) => {
    const cdf = normalCdf(xs!);
    save([xs!, cdf]);
    return { value: tf.mul(xs!, cdf), gradFunc: (dy, [sx, scdf]) => [tf.mul(dy, geluDerivative(sx!, scdf!))] };
  }) as T;
}

/**
 * Mean binary cross-entropy on logits, `mean(max(z, 0) - z y + log(1 + exp(-|z|)))` (the numerically stable form),
 * with the gradient `(sigmoid(z) - y) / n`. `labels` (same shape as `logits`) get no gradient.
 */
export function sigmoidCrossEntropyWithLogits(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return withGrad([logits], ([z], save) => {
    save([z!, labels]);
    const value = tf.mean(tf.add(tf.sub(tf.relu(z!), tf.mul(z!, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(z!))))));
    return {
      value,
      gradFunc: (dy, [sz, sy]) => [tf.mul(tf.sub(tf.sigmoid(sz!), sy!), tf.div(dy, sz!.size))],
    };
  }) as tf.Scalar;
}

/**
 * Mean softmax cross-entropy of `logits` `[n, classes]` against integer `labels` `[n]`, optionally weighted per
 * row (`weights` `[n]`, e.g. 0 for padding positions: the mean is then over the weight sum). Gradient in closed
 * form, `(softmax(z) - onehot(y)) * w / sum(w)`. Labels and weights get no gradient.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar {
  const classes = logits.shape[1] ?? 0;
  return tf.tidy(() => {
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), classes);
    const w = weights ? tf.cast(weights, 'float32') : tf.ones([logits.shape[0] ?? 0]);
    const scale = tf.reshape(tf.div(w, tf.maximum(tf.sum(w), 1e-12)), [-1, 1]); // [n, 1]: w / sum(w)
    return withGrad([logits], ([z], save) => {
      const logp = tf.logSoftmax(z!);
      // Saved (kept past this tidy) for the gradient.
      save([logp, onehot, scale]);
      return {
        value: tf.neg(tf.sum(tf.mul(tf.mul(logp, onehot), scale))),
        gradFunc: (dy, [slogp, soh, ss]) => [tf.mul(tf.sub(tf.exp(slogp!), soh!), tf.mul(ss!, dy))],
      };
    }) as tf.Scalar;
  });
}

/** One block of {@link embeddingConcat}. */
export interface EmbeddingLookup {
  /** `[rows, dim]`: a variable (gets a gradient) or a constant. */
  table: tf.Tensor;
  /** int32 row ids: `[n]` (one row each), or `[n, k]` with `weights` (a bag). Ids must be in `[0, rows)`. */
  ids: tf.Tensor;
  /** `[n, k]` float32: the block is `sum_j weights[i, j] * table[ids[i, j]]` (e.g. a masked mean). */
  weights?: tf.Tensor;
}

function stockLookup(l: EmbeddingLookup): tf.Tensor {
  if (!l.weights) return tf.gather(l.table, l.ids);
  const rows = tf.gather(l.table, l.ids); // [n, k, d]
  return tf.sum(tf.mul(rows, tf.expandDims(l.weights, 2)), 1);
}

/**
 * `concat([lookup_0, ..., lookup_m, dense], 1)`: embedding rows (or weighted bags of rows) of several tables side by
 * side, then an optional constant dense block `[n, e]`. The gradient goes to the tables only (dense `[rows, dim]`,
 * zero for rows not looked up), never to ids, weights or `dense`.
 *
 * On cpu and wasm (recflow kernels registered by lib/train/backend.ts) forward and gradient are one kernel each
 * instead of a gather, reshape, multiply and sum per block, a concat, and a split plus a scatter-add per table; on
 * other backends the stock ops.
 */
export function embeddingConcat(lookups: EmbeddingLookup[], dense?: tf.Tensor): tf.Tensor2D {
  if (!lookups.length) throw new Error('embeddingConcat: no lookups');
  const backend = tf.getBackend();
  if (!hasFastKernel(EMBEDDING_CONCAT, backend)) {
    return tf.tidy(() => tf.concat([...lookups.map(stockLookup), ...(dense ? [dense] : [])], 1) as tf.Tensor2D);
  }
  const blocks = lookups.map((l) => ({ rows: l.table.shape[0] ?? 0, dim: l.table.shape[1] ?? 0, bag: !!l.weights }));
  const names: string[] = [];
  const consts: tf.Tensor[] = [];
  lookups.forEach((l, j) => {
    names.push(`ids${j}`);
    consts.push(l.ids);
    if (l.weights) {
      names.push(`weights${j}`);
      consts.push(l.weights);
    }
  });
  if (dense) {
    names.push('dense');
    consts.push(dense);
  }
  const named = (ts: tf.Tensor[]): Record<string, tf.Tensor> => Object.fromEntries(names.map((n, i) => [n, ts[i]!]));
  return withGrad(
    lookups.map((l) => l.table),
    (tables, save) => {
      const inputs = named(consts);
      tables.forEach((t, j) => (inputs[`table${j}`] = t));
      const attrs = { blocks, denseDim: dense?.shape[1] ?? 0 } as unknown as tf.NamedAttrMap;
      const value = tf.engine().runKernel<tf.Tensor>(EMBEDDING_CONCAT, inputs, attrs);
      // The ids and weights outlive the forward pass (a loss function's intermediates are disposed before backprop).
      save(consts);
      return {
        value,
        gradFunc: (dy, saved) =>
          tf.engine().runKernel(
            EMBEDDING_CONCAT_GRAD,
            { ...named(saved), dy },
            {
              blocks,
            },
          ) as unknown as tf.Tensor[],
      };
    },
  ) as tf.Tensor2D;
}
