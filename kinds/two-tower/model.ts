/**
 * The two-tower model of lib/model-spec.ts in TensorFlow.js ops: the same weight names and shapes, the title as the
 * mean of the non-zero tokens' embeddings, the price appended last in the item input, a relu hidden layer, a linear
 * output and `sigmoid(dot(user, item))`. Plain `tf.variable`s and ops (no layers), so the weights map one to one
 * onto {@link ModelWeights} and the forward pass matches `referenceScore`.
 *
 * Built from lib/train/ops.ts for training speed: each tower's input is one `embeddingConcat` (the id and feature
 * lookups and the title bag in one kernel, forward and gradient), its layers `dense` (fused bias and relu, explicit
 * transposes in the gradient), the loss `sigmoidCrossEntropyWithLogits` (closed-form gradient). The title mean is a
 * bag with per-item weights `1 / max(tokens, 1)` on the non-zero tokens, precomputed once.
 */
import * as tf from '@tensorflow/tfjs';
import { TITLE_LEN } from '../../lib/data/dataset';
import { dense, embeddingConcat, sigmoidCrossEntropyWithLogits } from '../../lib/train/ops';
import {
  WEIGHT_NAMES,
  weightShapes,
  type ModelConfig,
  type ModelSizes,
  type ModelWeights,
  type TowerFeatures,
  type WeightName,
} from './spec';

const EMBEDDINGS = new Set<WeightName>([
  'user_embedding',
  'segment_embedding',
  'region_embedding',
  'item_embedding',
  'category_embedding',
  'brand_embedding',
  'token_embedding',
]);

let modelCount = 0;

/** The two towers' variables plus the feature tables (constant tensors) they read. */
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
   * @param weights start from these (a checkpoint), else a seeded initialization: embeddings N(0, 0.05),
   *   kernels Glorot-uniform, biases 0.
   */
  constructor(
    readonly config: ModelConfig,
    readonly sizes: ModelSizes,
    features: TowerFeatures,
    weights?: ModelWeights,
  ) {
    const shapes = weightShapes(config, sizes);
    const vars = {} as Record<WeightName, tf.Variable>;
    WEIGHT_NAMES.forEach((name, i) => {
      const shape = shapes[name];
      const seed = config.seed * 1000 + i;
      const init = tf.tidy((): tf.Tensor => {
        if (weights) return tf.tensor(weights[name].data, shape, 'float32');
        if (EMBEDDINGS.has(name)) return tf.randomNormal(shape, 0, 0.05, 'float32', seed);
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
      itemTitle: tf.tensor2d(
        features.itemTitleTokens,
        [features.itemTitleTokens.length / TITLE_LEN, TITLE_LEN],
        'int32',
      ),
      itemTitleWeights: tf.tensor2d(titleWeights, [titles.length / TITLE_LEN, TITLE_LEN], 'float32'),
    };
  }

  private tower(x: tf.Tensor2D, side: 'user' | 'item'): tf.Tensor2D {
    const v = this.vars;
    const h = dense(x, v[`${side}_dense1/kernel`], v[`${side}_dense1/bias`], 'relu');
    return dense(h, v[`${side}_dense2/kernel`], v[`${side}_dense2/bias`]);
  }

  /** The user tower's input `[n, embeddingDim + 2 featureDim]`: user, segment and region embeddings. */
  private userInput(users: tf.Tensor1D): tf.Tensor2D {
    return embeddingConcat([
      { table: this.vars.user_embedding, ids: users },
      { table: this.vars.segment_embedding, ids: tf.gather(this.feats.userSegment, users) },
      { table: this.vars.region_embedding, ids: tf.gather(this.feats.userRegion, users) },
    ]);
  }

  /** The item tower's input: item, category, brand embeddings, the title's mean token embedding, the price. */
  private itemInput(items: tf.Tensor1D): tf.Tensor2D {
    return embeddingConcat(
      [
        { table: this.vars.item_embedding, ids: items },
        { table: this.vars.category_embedding, ids: tf.gather(this.feats.itemCategory, items) },
        { table: this.vars.brand_embedding, ids: tf.gather(this.feats.itemBrand, items) },
        {
          table: this.vars.token_embedding,
          ids: tf.gather(this.feats.itemTitle, items),
          weights: tf.gather(this.feats.itemTitleWeights, items),
        },
      ],
      tf.gather(this.feats.itemPrice, items),
    );
  }

  /** User vectors `[n, outputDim]` for user indices `[n]` (int32). */
  userTower(users: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => this.tower(this.userInput(users), 'user'));
  }

  /** Item vectors `[n, outputDim]` for item indices `[n]` (int32). */
  itemTower(items: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => this.tower(this.itemInput(items), 'item'));
  }

  /** Logits `dot(user, item)` `[n]` for pairs. */
  logits(users: tf.Tensor1D, items: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.sum(tf.mul(this.userTower(users), this.itemTower(items)), 1));
  }

  /** Scores `sigmoid(dot(user, item))` `[n]` for pairs. */
  score(users: tf.Tensor1D, items: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.sigmoid(this.logits(users, items)));
  }

  /**
   * Binary cross-entropy on logits (numerically stable form) plus `l2` times the mean squared norm of the
   * embedding rows the batch touched.
   */
  loss(users: tf.Tensor1D, items: tf.Tensor1D, labels: tf.Tensor1D): tf.Scalar {
    return tf.tidy(() => {
      const xu = this.userInput(users);
      const xi = this.itemInput(items);
      const z = tf.sum(tf.mul(this.tower(xu, 'user'), this.tower(xi, 'item')), 1);
      const bce = sigmoidCrossEntropyWithLogits(z, labels);
      if (this.config.l2 <= 0) return bce;
      // The user and item id embeddings are the first embeddingDim columns of the towers' inputs.
      const d = this.config.embeddingDim;
      const sq = (x: tf.Tensor2D): tf.Scalar => tf.mean(tf.sum(tf.square(tf.slice(x, [0, 0], [-1, d])), 1));
      return tf.add<tf.Scalar>(bce, tf.mul(tf.add(sq(xu), sq(xi)), this.config.l2));
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
