/**
 * The two-tower model of ./spec.ts in TensorFlow.js ops: the same weight names and shapes, plain `tf.variable`s and
 * ops (no layers), so the weights map one to one onto {@link ModelWeights} and the forward pass matches the
 * reference (`catalogScores`).
 *
 * A training step scores a set of candidate items `W` (the whole catalogue, or a sample for large catalogues):
 * the item tower runs once over `W` (`[|W|, outputDim + 1]`: vectors and biases), each example's history pools the
 * rows of `W` it names (every history item is in `W`), and the logits of every example against every candidate
 * feed a softmax cross-entropy on the example's next item. Built from lib/train/ops.ts for speed: the item input is
 * one `embeddingConcat` (the gated id, category, brand and the title bag in one kernel, forward and gradient), the
 * layers `dense` (fused bias and relu, explicit transposes in the gradient), the logits `matMul`, the loss
 * `softmaxCrossEntropy` (closed-form gradient).
 */
import * as tf from '@tensorflow/tfjs';
import { TITLE_LEN } from '../../lib/data/dataset';
import { dense, embeddingConcat, matMul, softmaxCrossEntropy, MASKED_SCORE } from '../../lib/train/ops';
import {
  POSITION_HALF_LIFE,
  WEIGHT_NAMES,
  weightShapes,
  type ModelConfig,
  type ModelSizes,
  type ModelWeights,
  type TowerFeatures,
  type WeightName,
} from './spec';

const EMBEDDINGS = new Set<WeightName>([
  'item_embedding',
  'category_embedding',
  'brand_embedding',
  'token_embedding',
  'segment_embedding',
  'region_embedding',
]);

let modelCount = 0;

/** One step's inputs (built in JS by the trainer; row-major typed arrays). */
export interface StepBatch {
  /** Candidate items (global indices), `[W]`. */
  candidates: Int32Array;
  /** Per candidate: 1 to use its id embedding this step, 0 for features only. */
  idGate: Float32Array;
  /** Per candidate: added to its logit (the sampling correction; zeros for the full catalogue). */
  logitOffset: Float32Array;
  /** Examples' users (global), `[B]`: their segment and region. */
  users: Int32Array;
  /** `[B, L]` positions into `candidates`, rank 0 (most recent) first; padding anywhere with `historyValid` 0. */
  history: Int32Array;
  /** `[B, L]` 1 for a pooled history item, 0 for padding (or an item dropped this step). */
  historyValid: Float32Array;
  /** `[B]` position into `candidates` of each example's next item. */
  targets: Int32Array;
  /** `[B, W]` 0 or {@link MASKED_SCORE} (the example's earlier items, item 0): added to the logits. */
  logitMask: Float32Array;
  /** `[B, outputDim + 2 featureDim]` dropout multipliers of the user tower's input (0 or 1 / keep), or none. */
  dropout?: Float32Array;
  /** `[B]` example weights of the loss, or none (all 1). */
  weights?: Float32Array;
}

/** The towers' variables plus the feature tables (constant tensors) they read. */
export class TwoTowerModel {
  readonly vars: Record<WeightName, tf.Variable>;
  private readonly feats: {
    userSegment: tf.Tensor1D;
    userRegion: tf.Tensor1D;
    itemCategory: tf.Tensor1D;
    itemBrand: tf.Tensor1D;
    itemPrice: tf.Tensor2D;
    itemTitle: tf.Tensor2D;
    /** Per item and title position: 1 / (non-zero tokens) where the token is non-zero, else 0. */
    itemTitleWeights: tf.Tensor2D;
  };

  /**
   * @param weights start from these (a checkpoint), else a seeded initialization: embeddings N(0, 0.05) with row 0
   *   (unknown) zero, kernels Glorot-uniform, biases 0, the recency weighting a half-life of
   *   {@link POSITION_HALF_LIFE} positions.
   */
  constructor(
    readonly config: ModelConfig,
    readonly sizes: ModelSizes,
    features: Pick<
      TowerFeatures,
      'userSegment' | 'userRegion' | 'itemCategory' | 'itemBrand' | 'itemPrice' | 'itemTitleTokens'
    >,
    weights?: ModelWeights,
  ) {
    const shapes = weightShapes(config, sizes);
    const vars = {} as Record<WeightName, tf.Variable>;
    WEIGHT_NAMES.forEach((name, i) => {
      const shape = shapes[name];
      const seed = config.seed * 1000 + i;
      const init = tf.tidy((): tf.Tensor => {
        if (weights) return tf.tensor(weights[name].data, shape, 'float32');
        if (name === 'history_position')
          return tf.tensor1d(Array.from({ length: shape[0] ?? 0 }, (_, k) => (-k * Math.LN2) / POSITION_HALF_LIFE));
        if (EMBEDDINGS.has(name)) {
          const [rows = 1, cols = 1] = shape;
          const rowMask = tf.concat([tf.zeros([1, 1]), tf.ones([rows - 1, 1])]);
          return tf.mul(tf.randomNormal([rows, cols], 0, 0.05, 'float32', seed), rowMask);
        }
        if (name.endsWith('/bias')) return tf.zeros(shape);
        const [fanIn = 1, fanOut = 1] = shape;
        const limit = Math.sqrt(6 / (fanIn + fanOut));
        return tf.randomUniform(shape, -limit, limit, 'float32', seed);
      });
      vars[name] = tf.variable(init, true, `${name}_${++modelCount}`);
      init.dispose();
    });
    this.vars = vars;
    const titles = features.itemTitleTokens;
    const titleWeights = new Float32Array(titles.length);
    for (let r = 0; r < titles.length; r += TITLE_LEN) {
      let count = 0;
      for (let t = 0; t < TITLE_LEN; t++) if (titles[r + t] !== 0) count++;
      for (let t = 0; t < TITLE_LEN; t++) titleWeights[r + t] = titles[r + t] !== 0 ? 1 / count : 0;
    }
    this.feats = {
      userSegment: tf.tensor1d(features.userSegment, 'int32'),
      userRegion: tf.tensor1d(features.userRegion, 'int32'),
      itemCategory: tf.tensor1d(features.itemCategory, 'int32'),
      itemBrand: tf.tensor1d(features.itemBrand, 'int32'),
      itemPrice: tf.tensor2d(features.itemPrice, [features.itemPrice.length, 1], 'float32'),
      itemTitle: tf.tensor2d(titles, [titles.length / TITLE_LEN, TITLE_LEN], 'int32'),
      itemTitleWeights: tf.tensor2d(titleWeights, [titles.length / TITLE_LEN, TITLE_LEN], 'float32'),
    };
  }

  /**
   * The item tower `[n, outputDim + 1]` (vectors, then the bias) of items `[n]` (int32); `gate` `[n]` float (1: use
   * the id embedding).
   */
  itemOutputs(items: tf.Tensor1D, gate: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => {
      const v = this.vars;
      const x = embeddingConcat(
        [
          { table: v.item_embedding, ids: tf.reshape(items, [-1, 1]), weights: tf.reshape(gate, [-1, 1]) },
          { table: v.category_embedding, ids: tf.gather(this.feats.itemCategory, items) },
          { table: v.brand_embedding, ids: tf.gather(this.feats.itemBrand, items) },
          {
            table: v.token_embedding,
            ids: tf.gather(this.feats.itemTitle, items),
            weights: tf.gather(this.feats.itemTitleWeights, items),
          },
        ],
        tf.gather(this.feats.itemPrice, items),
      );
      const h = dense(x, v['item_dense1/kernel'], v['item_dense1/bias'], 'relu');
      return dense(h, v['item_dense2/kernel'], v['item_dense2/bias']);
    });
  }

  /**
   * User vectors `[B, outputDim]` from item vectors `vecs` `[W, outputDim]`, histories `[B, L]` (positions into
   * `vecs`, rank 0 first) with their validity `[B, L]`, users `[B]`, and an optional dropout multiplier of the
   * tower's input.
   */
  userVectors(
    vecs: tf.Tensor2D,
    history: tf.Tensor2D,
    valid: tf.Tensor2D,
    users: tf.Tensor1D,
    dropout?: tf.Tensor2D,
  ): tf.Tensor2D {
    return tf.tidy(() => {
      const v = this.vars;
      const [b = 0, l = 0] = history.shape;
      const d = vecs.shape[1] ?? 0;
      // Softmax over the valid positions of the learned position logits.
      const logits = tf.add(
        tf.reshape(tf.slice(v.history_position, [0], [l]), [1, l]),
        tf.mul(tf.sub(1, valid), MASKED_SCORE),
      );
      const w = tf.softmax(logits); // [B, L]
      const rows = tf.reshape(tf.gather(vecs, tf.reshape(history, [-1])), [b, l, d]);
      const pooled = tf.reshape<tf.Rank.R2>(matMul(tf.reshape(w, [b, 1, l]), rows), [b, d]);
      const side = embeddingConcat([
        { table: v.segment_embedding, ids: tf.gather(this.feats.userSegment, users) },
        { table: v.region_embedding, ids: tf.gather(this.feats.userRegion, users) },
      ]);
      let x = tf.concat([pooled, side], 1);
      if (dropout) x = tf.mul(x, dropout);
      const h = dense(x, v['user_dense1/kernel'], v['user_dense1/bias'], 'relu');
      return tf.add(dense(h, v['user_dense2/kernel'], v['user_dense2/bias']), pooled);
    });
  }

  /** Split the item tower's output into vectors `[W, d]` and biases `[W]`. */
  private split(out: tf.Tensor2D): { vecs: tf.Tensor2D; bias: tf.Tensor1D } {
    const d = this.config.outputDim;
    return { vecs: tf.slice(out, [0, 0], [-1, d]), bias: tf.reshape(tf.slice(out, [0, d], [-1, 1]), [-1]) };
  }

  /** Logits `[B, W]` of a step's examples against its candidates (masks and offsets added). */
  stepLogits(b: StepBatch): tf.Tensor2D {
    return tf.tidy(() => {
      const W = b.candidates.length;
      const B = b.users.length;
      const L = b.history.length / Math.max(1, B);
      const { vecs, bias } = this.split(
        this.itemOutputs(tf.tensor1d(b.candidates, 'int32'), tf.tensor1d(b.idGate, 'float32')),
      );
      const u = this.userVectors(
        vecs,
        tf.tensor2d(b.history, [B, L], 'int32'),
        tf.tensor2d(b.historyValid, [B, L], 'float32'),
        tf.tensor1d(b.users, 'int32'),
        b.dropout ? tf.tensor2d(b.dropout, [B, b.dropout.length / B], 'float32') : undefined,
      );
      const offset = tf.add(bias, tf.tensor1d(b.logitOffset, 'float32'));
      const z = tf.add(matMul(u, vecs, false, true), tf.reshape(offset, [1, W]));
      return tf.add<tf.Tensor2D>(z, tf.tensor2d(b.logitMask, [B, W], 'float32'));
    });
  }

  /** The step's loss: softmax cross-entropy of each example's next item among the candidates. */
  loss(b: StepBatch): tf.Scalar {
    return tf.tidy(() =>
      softmaxCrossEntropy(
        this.stepLogits(b),
        tf.tensor1d(b.targets, 'int32'),
        b.weights ? tf.tensor1d(b.weights, 'float32') : undefined,
      ),
    );
  }

  /**
   * The whole catalogue's item side, `itemHasId` gating the ids: vectors `[items, outputDim]` and biases `[items]`
   * (caller disposes).
   */
  catalogue(itemHasId: Uint8Array): { vecs: tf.Tensor2D; bias: tf.Tensor1D } {
    return tf.tidy(() => {
      const n = itemHasId.length;
      return this.split(this.itemOutputs(tf.range(0, n, 1, 'int32'), tf.tensor1d(Float32Array.from(itemHasId))));
    });
  }

  /** The weights as plain arrays, in the checkpoint's names and shapes. */
  toWeights(): ModelWeights {
    const out = {} as ModelWeights;
    for (const name of WEIGHT_NAMES) {
      const v = this.vars[name];
      out[name] = { shape: [...v.shape], data: Float32Array.from(v.dataSync() as Float32Array) };
    }
    return out;
  }

  /** Replace the weights in place (restore the best epoch). */
  setWeights(weights: ModelWeights): void {
    for (const name of WEIGHT_NAMES) {
      const t = tf.tensor(weights[name].data, weights[name].shape, 'float32');
      this.vars[name].assign(t);
      t.dispose();
    }
  }

  /** Free the variables and feature tensors. */
  dispose(): void {
    for (const v of Object.values(this.vars)) v.dispose();
    for (const t of Object.values(this.feats)) t.dispose();
  }
}
