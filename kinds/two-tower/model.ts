/**
 * The two-tower model of lib/model-spec.ts in TensorFlow.js ops: the same weight names and shapes, the title as the
 * mean of the non-zero tokens' embeddings, the price appended last in the item input, a relu hidden layer, a linear
 * output and `sigmoid(dot(user, item))`. Plain `tf.variable`s and ops (no layers), so the weights map one to one
 * onto {@link ModelWeights} and the forward pass matches `referenceScore`.
 */
import * as tf from '@tensorflow/tfjs';
import { TITLE_LEN } from '../../lib/data/dataset';
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
    };
  }

  private dense(x: tf.Tensor2D, prefix: 'user_dense1' | 'user_dense2' | 'item_dense1' | 'item_dense2'): tf.Tensor2D {
    return tf.add(tf.matMul(x, this.vars[`${prefix}/kernel`]), this.vars[`${prefix}/bias`]);
  }

  /** User vectors `[n, outputDim]` for user indices `[n]` (int32). */
  userTower(users: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => {
      const x = tf.concat(
        [
          tf.gather(this.vars.user_embedding, users),
          tf.gather(this.vars.segment_embedding, tf.gather(this.feats.userSegment, users)),
          tf.gather(this.vars.region_embedding, tf.gather(this.feats.userRegion, users)),
        ],
        1,
      ) as tf.Tensor2D;
      return this.dense(tf.relu(this.dense(x, 'user_dense1')), 'user_dense2');
    });
  }

  /** Item vectors `[n, outputDim]` for item indices `[n]` (int32). */
  itemTower(items: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => {
      const tokens = tf.gather(this.feats.itemTitle, items); // [n, T]
      const mask = tf.cast(tf.notEqual(tokens, 0), 'float32'); // [n, T]
      const tokEmb = tf.gather(this.vars.token_embedding, tokens); // [n, T, d]
      const summed = tf.sum(tf.mul(tokEmb, tf.expandDims(mask, 2)), 1); // [n, d]
      const count = tf.maximum(tf.sum(mask, 1, true), 1); // [n, 1]
      const x = tf.concat(
        [
          tf.gather(this.vars.item_embedding, items),
          tf.gather(this.vars.category_embedding, tf.gather(this.feats.itemCategory, items)),
          tf.gather(this.vars.brand_embedding, tf.gather(this.feats.itemBrand, items)),
          tf.div(summed, count),
          tf.gather(this.feats.itemPrice, items),
        ],
        1,
      ) as tf.Tensor2D;
      return this.dense(tf.relu(this.dense(x, 'item_dense1')), 'item_dense2');
    });
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
      const z = this.logits(users, items);
      const bce = tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))));
      if (this.config.l2 <= 0) return bce as tf.Scalar;
      const reg = tf.add(
        tf.mean(tf.sum(tf.square(tf.gather(this.vars.user_embedding, users)), 1)),
        tf.mean(tf.sum(tf.square(tf.gather(this.vars.item_embedding, items)), 1)),
      );
      return tf.add<tf.Scalar>(bce, tf.mul(reg, this.config.l2));
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
