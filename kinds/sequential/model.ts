/**
 * The sequential recommender of ./spec.ts in TensorFlow.js: plain `tf.variable`s named as in the checkpoint, the
 * forward pass over `[B, L]` histories (training mode with seeded dropout, or inference), catalogue scoring from the
 * last step, and the next-item loss (sampled softmax with negatives shared by the batch, or the full softmax).
 * Dense layers use lib/train/ops.ts `dense`, the attention and output products ./ops.ts `matMul` (explicit-transpose
 * gradients), LayerNorm ./ops.ts `layerNorm`; the embedding gradient is an `UnsortedSegmentSum` (lib/train/kernels.ts
 * on wasm and cpu).
 */
import * as tf from '@tensorflow/tfjs';
import { dense } from '../../lib/train/ops';
import { layerNorm, matMul, softmaxCrossEntropy } from './ops';
import {
  blockNames,
  checkItemFeatures,
  type ItemFeatures,
  weightOf,
  weightShapes,
  type SequentialConfig,
  type SequentialSizes,
  type SequentialWeights,
} from './spec';

/** Added to the attention scores of masked (future or padding) keys, and to logits of items never to be ranked. */
export const MASK_VALUE = -1e9;

/** Standard deviation of the normal initialization of embeddings and kernels (BERT / RecBole). */
export const INIT_STD = 0.02;

let modelCount = 0;

/** Seeds of the random draws of one training step (dropout masks), derived from one number. */
function seeder(base: number): () => number {
  let k = 0;
  return () => (base * 7919 + ++k * 104729) % 2147483647;
}

/** The tfjs model: variables named as in the checkpoint, forward, scoring and loss. Call `dispose` when done. */
export class SequentialModel {
  /** The variables in checkpoint order ({@link weightShapes}). */
  readonly vars: Map<string, tf.Variable>;
  private readonly causal: tf.Tensor3D;
  private readonly features: { category: tf.Tensor1D; brand: tf.Tensor1D } | undefined;

  /**
   * @param weights start from these (a checkpoint), else a seeded initialization: embeddings and kernels
   *   N(0, {@link INIT_STD}), biases and LayerNorm betas 0, LayerNorm gammas 1.
   */
  constructor(
    readonly config: SequentialConfig,
    readonly sizes: SequentialSizes,
    features: ItemFeatures | undefined,
    weights?: SequentialWeights,
  ) {
    if (config.itemFeatures) {
      if (!features) throw new Error('sequential model with itemFeatures: item features missing');
      checkItemFeatures(sizes, features);
      this.features = {
        category: tf.tensor1d(features.category, 'int32'),
        brand: tf.tensor1d(features.brand, 'int32'),
      };
    }
    const vars = new Map<string, tf.Variable>();
    const id = ++modelCount;
    weightShapes(config, sizes).forEach(([name, shape], i) => {
      const init = tf.tidy((): tf.Tensor => {
        if (weights) return tf.tensor(weightOf(weights, name).data, shape, 'float32');
        if (name.endsWith('/gamma')) return tf.ones(shape);
        if (name.endsWith('/bias') || name.endsWith('/beta')) return tf.zeros(shape);
        return tf.randomNormal(shape, 0, INIT_STD, 'float32', config.seed * 1000 + i);
      });
      vars.set(name, tf.variable(init, true, `seq${id}_${name}`));
      init.dispose();
    });
    this.vars = vars;
    const L = config.maxLength;
    this.causal = tf.tidy(() => tf.reshape<tf.Rank.R3>(tf.linalg.bandPart(tf.ones([L, L]), -1, 0), [1, L, L]));
  }

  private v(name: string): tf.Variable {
    const x = this.vars.get(name);
    if (!x) throw new Error(`sequential model: no variable ${name}`);
    return x;
  }

  /**
   * Hidden states after the final LayerNorm for histories `[B, w]` (int32 item indices, 0 = padding, right-aligned:
   * `w <= maxLength` columns are the last `w` steps of the model's window, so a batch of short histories can be
   * trimmed to its longest one; padding never changes a result).
   * @param dropoutSeed training mode (dropout on) with masks drawn from this seed; undefined: inference.
   * @param lastOnly compute the last block for the last step only and return `[B, 1, d]` (what serving needs);
   *   else every step, `[B, w, d]`.
   */
  forward(histories: tf.Tensor2D, dropoutSeed?: number, lastOnly = false, table = this.itemVectors()): tf.Tensor3D {
    return tf.tidy(() => {
      const c = this.config;
      const [B = 0, w = 0] = histories.shape;
      if (w < 1 || w > c.maxLength)
        throw new Error(`sequential model: histories of width ${w}, expected 1..${c.maxLength}`);
      const L = c.maxLength;
      const d = c.hiddenDim;
      const H = c.heads;
      const dh = d / H;
      const nextSeed = dropoutSeed === undefined ? undefined : seeder(dropoutSeed);
      const drop = <T extends tf.Tensor>(x: T): T =>
        nextSeed && c.dropout > 0 ? (tf.dropout(x, c.dropout, undefined, nextSeed()) as T) : x;
      const mask = tf.cast(tf.notEqual(histories, 0), 'float32'); // [B, w]
      const mask3 = tf.expandDims(mask, 2); // [B, w, 1]
      const emb = tf.reshape(tf.gather(table, tf.reshape(histories, [-1])), [B, w, d]);
      const positions = w === L ? this.v('position_embedding') : tf.slice(this.v('position_embedding'), [L - w, 0]);
      let x = tf.mul<tf.Tensor3D>(drop(tf.add(emb, positions)), mask3);
      // Query i may attend to key j when j <= i and j is not padding.
      const causal = w === L ? this.causal : tf.slice(this.causal, [0, L - w, L - w]);
      const allowed = tf.mul(causal, tf.expandDims(mask, 1)); // [B, w, w]
      const additive = tf.reshape(tf.mul(tf.sub(1, allowed), MASK_VALUE), [B, 1, w, w]);
      const scale = 1 / Math.sqrt(dh);
      const heads = (t: tf.Tensor, steps: number, perm: number[], shape: number[]) =>
        tf.reshape(tf.transpose(tf.reshape(t, [B, steps, H, dh]), perm), shape);
      for (let b = 0; b < c.blocks; b++) {
        const n = blockNames(b);
        const lastStep = lastOnly && b === c.blocks - 1;
        const q1 = lastStep ? 1 : w; // query steps
        const h = layerNorm(x, this.v(n.ln1Gamma), this.v(n.ln1Beta));
        const kernel = this.v(n.qkvKernel);
        const bias = this.v(n.qkvBias);
        // Three products on slices of the fused kernel (tf.split of the [B, w, 3d] product is slow on wasm).
        const proj = (t: tf.Tensor, i: number) =>
          dense(t, tf.slice(kernel, [0, i * d], [d, d]), tf.slice(bias, [i * d], [d]));
        const hq = lastStep ? tf.slice(h, [0, w - 1, 0], [B, 1, d]) : h;
        const qh = heads(proj(hq, 0), q1, [0, 2, 1, 3], [B * H, q1, dh]);
        const kT = heads(proj(h, 1), w, [0, 2, 3, 1], [B * H, dh, w]);
        const vh = heads(proj(h, 2), w, [0, 2, 1, 3], [B * H, w, dh]);
        const maskQ = lastStep ? tf.slice(additive, [0, 0, w - 1, 0], [B, 1, 1, w]) : additive;
        const scores = tf.add(tf.reshape(tf.mul(matMul(qh, kT), scale), [B, H, q1, w]), maskQ);
        const probs = tf.reshape(tf.softmax(scores), [B * H, q1, w]);
        const ctx = tf.reshape(tf.transpose(tf.reshape(matMul(probs, vh), [B, H, q1, dh]), [0, 2, 1, 3]), [B, q1, d]);
        if (lastStep) x = tf.slice(x, [0, w - 1, 0], [B, 1, d]);
        x = tf.add(x, drop(dense(ctx, this.v(n.outKernel), this.v(n.outBias))));
        const h2 = layerNorm(x, this.v(n.ln2Gamma), this.v(n.ln2Beta));
        const f = drop(tf.relu(dense(h2, this.v(n.ffn1Kernel), this.v(n.ffn1Bias))));
        const m = lastStep ? tf.slice(mask3, [0, w - 1, 0], [B, 1, 1]) : mask3;
        x = tf.mul<tf.Tensor3D>(tf.add(x, drop(dense(f, this.v(n.ffn2Kernel), this.v(n.ffn2Bias)))), m);
      }
      return layerNorm(x, this.v('final_ln/gamma'), this.v('final_ln/beta'));
    });
  }

  /**
   * The items' vectors `[items, d]`: the item embedding, plus the category and brand embeddings with
   * `itemFeatures` (differentiable; the export folds them with `itemTable`).
   */
  itemVectors(): tf.Tensor2D {
    const E = this.v('item_embedding') as tf.Tensor2D;
    if (!this.features) return E;
    return tf.tidy(() =>
      tf.add(
        tf.add(E, tf.gather(this.v('category_embedding'), this.features!.category)),
        tf.gather(this.v('brand_embedding'), this.features!.brand),
      ),
    );
  }

  /** Hidden state of the last step `[B, d]` (the representation of each history `[B, w]`). */
  lastHidden(histories: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.reshape<tf.Rank.R2>(this.forward(histories, undefined, true), [-1, this.config.hiddenDim]));
  }

  /** Next-item logits over the catalogue `[B, items]` for histories `[B, L]` (inference; item 0 included). */
  catalogueLogits(histories: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const table = this.itemVectors();
      const h = tf.reshape(this.forward(histories, undefined, true, table), [-1, this.config.hiddenDim]);
      return tf.matMul(h, table, false, true);
    });
  }

  /**
   * Weighted mean next-item cross-entropy over the steps with a target, plus `l2` times the mean squared norm of
   * the item embedding rows the batch touched.
   * @param histories `[B, w]` inputs; `positions` `[P]` the flat indices (`row * w + step`) of the steps with a
   *   target, `targets` `[P]` their next items, `weights` `[P]` their weights.
   * @param negatives sampled softmax: the shared negatives `[S]`, `hits` `[P, S]` (1 where a negative equals the
   *   step's target: that logit is masked) and, for a non-uniform proposal, the log sampling probabilities of the
   *   targets `[P]` and negatives `[S]` (subtracted from their logits); undefined: the full softmax over items
   *   1..items-1.
   * @param dropoutSeed seed of this step's dropout masks.
   */
  loss(
    histories: tf.Tensor2D,
    positions: tf.Tensor1D,
    targets: tf.Tensor1D,
    weights: tf.Tensor1D,
    negatives: { items: tf.Tensor1D; hits: tf.Tensor2D; logQTargets?: tf.Tensor1D; logQ?: tf.Tensor1D } | undefined,
    dropoutSeed: number,
  ): tf.Scalar {
    return tf.tidy(() => {
      const d = this.config.hiddenDim;
      const E = this.itemVectors();
      const hidden = tf.gather(tf.reshape(this.forward(histories, dropoutSeed, false, E), [-1, d]), positions); // [P, d]
      const posEmb = tf.gather(E, targets); // [P, d]
      const pos = tf.sum(tf.mul(hidden, posEmb), 1); // [P]
      let ce: tf.Tensor1D;
      let negEmb: tf.Tensor;
      if (negatives) {
        // Logits [P, 1 + S]: the target first, then the shared negatives (hits masked).
        negEmb = tf.gather(E, negatives.items); // [S, d]
        let neg = tf.sub(matMul(hidden, tf.transpose(negEmb)), tf.mul(negatives.hits, -MASK_VALUE));
        let first: tf.Tensor = pos;
        if (negatives.logQ && negatives.logQTargets) {
          neg = tf.sub(neg, negatives.logQ);
          first = tf.sub(pos, negatives.logQTargets);
        }
        const logits = tf.concat([tf.expandDims(first, 1), neg], 1) as tf.Tensor2D;
        ce = softmaxCrossEntropy(logits, tf.zeros([logits.shape[0] ?? 0], 'int32'));
      } else {
        negEmb = E;
        const all = tf.add<tf.Tensor2D>(matMul(hidden, tf.transpose(E)), this.item0Mask()); // [P, items]
        ce = softmaxCrossEntropy(all, targets);
      }
      const loss = tf.div<tf.Scalar>(tf.sum(tf.mul(ce, weights)), tf.maximum(tf.sum(weights), 1e-12));
      if (this.config.l2 <= 0) return loss;
      const reg = tf.add(tf.mean(tf.sum(tf.square(posEmb), 1)), tf.mean(tf.sum(tf.square(negEmb), 1)));
      return tf.add<tf.Scalar>(loss, tf.mul(reg, this.config.l2));
    });
  }

  private mask0: tf.Tensor | undefined;
  /** `[1, items]`: MASK_VALUE at index 0, else 0. */
  private item0Mask(): tf.Tensor {
    if (!this.mask0) {
      const m = new Float32Array(this.sizes.items);
      m[0] = MASK_VALUE;
      this.mask0 = tf.keep(tf.tensor2d(m, [1, this.sizes.items]));
    }
    return this.mask0;
  }

  /** The weights as plain arrays, in the checkpoint's names and shapes. */
  toWeights(): SequentialWeights {
    const out: SequentialWeights = {};
    for (const [name, v] of this.vars)
      out[name] = { shape: [...v.shape], data: Float32Array.from(v.dataSync() as Float32Array) };
    return out;
  }

  /** Replace the weights in place (restore the best epoch). */
  setWeights(weights: SequentialWeights): void {
    for (const [name, v] of this.vars) {
      const w = weightOf(weights, name);
      const t = tf.tensor(w.data, w.shape, 'float32');
      v.assign(t);
      t.dispose();
    }
  }

  /** Free the variables. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.causal.dispose();
    this.mask0?.dispose();
    this.features?.category.dispose();
    this.features?.brand.dispose();
  }
}
