/**
 * The BERT encoder in TensorFlow.js, from Hugging Face weights: token + position + type(0) embeddings and LayerNorm;
 * N layers of multi-head self-attention (fused QKV projection, padding masked) and a GELU feed-forward block, each
 * followed by a residual LayerNorm (post-LN, as BERT); then mean pooling over the attention mask and L2
 * normalisation, as sentence-transformers' `Pooling(mean)` and `Normalize` do. No dropout (fine-tuning runs are
 * short; the PyTorch twin in bench/ runs without dropout too).
 *
 * Hidden states flow as `[batch * seq, hidden]` matrices so every projection is one `dense` (lib/train/ops.ts,
 * explicit-transpose gradient); heads are split and merged with 4-D transposes.
 *
 * Parity: within 1e-4 (max |delta|) of a float64 numpy forward of the same weights (test/fixtures/search).
 */
import * as tf from '@tensorflow/tfjs';
import { dense } from '../../lib/train/ops';
import { ErrorType, RecflowError } from '../../lib/errors';
import type { BertConfig, BertWeights } from './base-model';
import { gelu, layerNorm } from './layers';
import type { SearchTokenizer, TokenBatch } from './tokenizer';

/** The tfjs variables of one Transformer layer (kernels `[in, out]`). */
export interface LayerParams {
  qKernel: tf.Variable;
  qBias: tf.Variable;
  kKernel: tf.Variable;
  kBias: tf.Variable;
  vKernel: tf.Variable;
  vBias: tf.Variable;
  outKernel: tf.Variable;
  outBias: tf.Variable;
  ln1Gamma: tf.Variable;
  ln1Beta: tf.Variable;
  ffnInKernel: tf.Variable;
  ffnInBias: tf.Variable;
  ffnOutKernel: tf.Variable;
  ffnOutBias: tf.Variable;
  ln2Gamma: tf.Variable;
  ln2Beta: tf.Variable;
}

/** How to build an encoder from weights. */
export interface EncoderOptions {
  /**
   * Which layers of the weights to keep, in order (a distilled student: `[0, 2, 4]`). @default every layer
   */
  layers?: number[];
  /** Train only the top N layers (the others and the embeddings are frozen). @default all layers */
  trainableLayers?: number;
  /** Train the embedding tables too (only when every layer trains). @default false */
  trainEmbeddings?: boolean;
}

/** Transpose a row-major `rows x cols` matrix. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[o + c] ?? 0;
  }
  return out;
}

/** The mask as an additive attention bias `[batch, 1, 1, seq]`: 0 for tokens, a large negative for padding. */
export function maskBias(mask: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, t] = mask.shape;
    return tf.reshape(tf.mul(tf.sub(1, tf.cast(mask, 'float32')), -1e9), [b, 1, 1, t]);
  });
}

let variableCounter = 0;

/** A BERT sentence encoder in tfjs. Dispose it when done. */
export class BertEncoder {
  readonly numLayers: number;
  readonly headDim: number;
  /** Index of the first trainable layer (`numLayers` when none train). */
  readonly firstTrainable: number;

  private constructor(
    readonly config: BertConfig,
    readonly wordEmb: tf.Variable,
    readonly posEmb: tf.Variable,
    readonly typeEmb: tf.Variable,
    readonly embLnGamma: tf.Variable,
    readonly embLnBeta: tf.Variable,
    readonly layers: LayerParams[],
    firstTrainable: number,
  ) {
    this.numLayers = layers.length;
    this.headDim = config.hiddenSize / config.numHeads;
    this.firstTrainable = firstTrainable;
  }

  /**
   * Build from Hugging Face BERT weights (PyTorch layout; transposed here).
   * @throws {RecflowError} `InvalidInput` when `layers` or `trainableLayers` do not fit the weights.
   */
  static fromWeights(w: BertWeights, config: BertConfig, opts: EncoderOptions = {}): BertEncoder {
    const keep = opts.layers ?? Array.from({ length: config.numLayers }, (_, i) => i);
    if (!keep.length || keep.some((l) => !Number.isInteger(l) || l < 0 || l >= config.numLayers)) {
      throw new RecflowError(
        ErrorType.InvalidInput,
        `encoder layers [${keep.join(', ')}] must be within 0..${config.numLayers - 1}`,
      );
    }
    const n = keep.length;
    const trainable = opts.trainableLayers ?? n;
    if (!Number.isInteger(trainable) || trainable < 0 || trainable > n) {
      throw new RecflowError(ErrorType.InvalidInput, `trainableLayers ${trainable} must be within 0..${n}`);
    }
    const first = n - trainable;
    const get = (name: string): { shape: number[]; data: Float32Array } => {
      const t = w.get(name);
      if (!t) throw new RecflowError(ErrorType.InvalidData, `encoder weights: tensor '${name}' is missing`);
      return t;
    };
    const H = config.hiddenSize;
    const I = config.intermediateSize;
    const v = (data: Float32Array, shape: number[], train: boolean, name: string) => {
      const t = tf.tensor(data, shape, 'float32');
      const out = tf.variable(t, train, `bert_${++variableCounter}_${name}`);
      t.dispose();
      return out;
    };
    const embTrain = first === 0 && (opts.trainEmbeddings ?? false);
    const vec = (name: string, train: boolean, label: string) => v(get(name).data, get(name).shape, train, label);
    const kernel = (name: string, inDim: number, outDim: number, train: boolean, label: string) =>
      v(transpose2d(get(name).data, outDim, inDim), [inDim, outDim], train, label);
    const layers = keep.map((src, i): LayerParams => {
      const p = `encoder.layer.${src}.`;
      const train = i >= first;
      const label = `l${i}`;
      return {
        qKernel: kernel(`${p}attention.self.query.weight`, H, H, train, `${label}_q`),
        qBias: vec(`${p}attention.self.query.bias`, train, `${label}_q_b`),
        kKernel: kernel(`${p}attention.self.key.weight`, H, H, train, `${label}_k`),
        kBias: vec(`${p}attention.self.key.bias`, train, `${label}_k_b`),
        vKernel: kernel(`${p}attention.self.value.weight`, H, H, train, `${label}_v`),
        vBias: vec(`${p}attention.self.value.bias`, train, `${label}_v_b`),
        outKernel: kernel(`${p}attention.output.dense.weight`, H, H, train, `${label}_out`),
        outBias: vec(`${p}attention.output.dense.bias`, train, `${label}_out_b`),
        ln1Gamma: vec(`${p}attention.output.LayerNorm.weight`, train, `${label}_ln1_g`),
        ln1Beta: vec(`${p}attention.output.LayerNorm.bias`, train, `${label}_ln1_b`),
        ffnInKernel: kernel(`${p}intermediate.dense.weight`, H, I, train, `${label}_ffn_in`),
        ffnInBias: vec(`${p}intermediate.dense.bias`, train, `${label}_ffn_in_b`),
        ffnOutKernel: kernel(`${p}output.dense.weight`, I, H, train, `${label}_ffn_out`),
        ffnOutBias: vec(`${p}output.dense.bias`, train, `${label}_ffn_out_b`),
        ln2Gamma: vec(`${p}output.LayerNorm.weight`, train, `${label}_ln2_g`),
        ln2Beta: vec(`${p}output.LayerNorm.bias`, train, `${label}_ln2_b`),
      };
    });
    return new BertEncoder(
      { ...config, numLayers: n },
      vec('embeddings.word_embeddings.weight', embTrain, 'word'),
      vec('embeddings.position_embeddings.weight', embTrain, 'pos'),
      vec('embeddings.token_type_embeddings.weight', embTrain, 'type'),
      vec('embeddings.LayerNorm.weight', embTrain, 'emb_ln_g'),
      vec('embeddings.LayerNorm.bias', embTrain, 'emb_ln_b'),
      layers,
      first,
    );
  }

  /** Embeddings and their LayerNorm: ids `[B, T]` int32 -> `[B * T, H]`. */
  embed(ids: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy((): tf.Tensor2D => {
      const [b, t] = ids.shape;
      const H = this.config.hiddenSize;
      if (t > this.config.maxPositions) {
        throw new RecflowError(
          ErrorType.InvalidInput,
          `sequence length ${t} exceeds ${this.config.maxPositions} positions`,
        );
      }
      const words = tf.reshape(tf.gather(this.wordEmb, tf.reshape(ids, [-1])), [b, t, H]);
      const posType = tf.add(tf.slice(this.posEmb, [0, 0], [t, H]), tf.slice(this.typeEmb, [0, 0], [1, H]));
      const x = tf.reshape<tf.Rank.R2>(tf.add(words, posType), [b * t, H]);
      return layerNorm(x, this.embLnGamma, this.embLnBeta, this.config.layerNormEps);
    });
  }

  /** One Transformer layer: `x [B * T, H]`, `bias` from {@link maskBias}. */
  layer(i: number, x: tf.Tensor2D, bias: tf.Tensor4D): tf.Tensor2D {
    const p = this.layers[i];
    if (!p) throw new RecflowError(ErrorType.InvalidInput, `encoder has no layer ${i}`);
    return tf.tidy(() => {
      const [b, , , t] = bias.shape;
      const H = this.config.hiddenSize;
      const nh = this.config.numHeads;
      const dh = this.headDim;
      const eps = this.config.layerNormEps;
      // [B * T, H] -> [B * nh, T, dh]: 4-D transposes only (a 5-D one is ~100x slower on wasm).
      const heads = (kernel: tf.Variable, b0: tf.Variable) =>
        tf.reshape<tf.Rank.R3>(tf.transpose(tf.reshape(dense(x, kernel, b0), [b, t, nh, dh]), [0, 2, 1, 3]), [
          b * nh,
          t,
          dh,
        ]);
      const q = heads(p.qKernel, p.qBias);
      const k = heads(p.kKernel, p.kBias);
      const v = heads(p.vKernel, p.vBias);
      // Per-head products are short (depth dh, length T): tfjs wasm runs a batch of them as fast with the MatMul's
      // transpose flags as without (bench: 24 vs 25 ms for 768 x 32x32x32), so the stock MatMul and its gradient.
      const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
      const probs = tf.softmax(tf.add(tf.reshape(scores, [b, nh, t, t]), bias));
      const ctx = tf.matMul(tf.reshape<tf.Rank.R3>(probs, [b * nh, t, t]), v); // [B * nh, T, dh]
      const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [b, nh, t, dh]), [0, 2, 1, 3]), [b * t, H]);
      const h1 = layerNorm(tf.add(x, dense(merged, p.outKernel, p.outBias)), p.ln1Gamma, p.ln1Beta, eps);
      const ffn = dense(gelu(dense(h1, p.ffnInKernel, p.ffnInBias)), p.ffnOutKernel, p.ffnOutBias);
      return layerNorm(tf.add(h1, ffn), p.ln2Gamma, p.ln2Beta, eps);
    });
  }

  /** Layers `from` .. `to - 1` over `x [B * T, H]`. */
  layersRange(x: tf.Tensor2D, bias: tf.Tensor4D, from = 0, to = this.numLayers): tf.Tensor2D {
    let h = x;
    for (let i = from; i < to; i++) {
      const next = this.layer(i, h, bias);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }

  /** Mean pooling over the mask and L2 normalisation: `hidden [B * T, H]`, `mask [B, T]` -> `[B, H]`. */
  pool(hidden: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const [b, t] = mask.shape;
      const m = tf.reshape(tf.cast(mask, 'float32'), [b, t, 1]);
      const sum = tf.sum(tf.mul(tf.reshape(hidden, [b, t, this.config.hiddenSize]), m), 1);
      const mean = tf.div(sum, tf.maximum(tf.sum(m, 1), 1e-9));
      const norm = tf.maximum(tf.sqrt(tf.sum(tf.square(mean), 1, true)), 1e-12);
      return tf.div<tf.Tensor2D>(mean, norm);
    });
  }

  /** The sentence embeddings of a batch `[B, H]` (a tensor; the caller disposes it). */
  forward(ids: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const bias = maskBias(mask);
      return this.pool(this.layersRange(this.embed(ids), bias), mask);
    });
  }

  /** Tensors of a token batch: ids int32 and mask float32, `[B, T]`. */
  static batchTensors(b: TokenBatch): { ids: tf.Tensor2D; mask: tf.Tensor2D } {
    return {
      ids: tf.tensor2d(b.inputIds, [b.batch, b.seqLen], 'int32'),
      mask: tf.tensor2d(Float32Array.from(b.attentionMask), [b.batch, b.seqLen], 'float32'),
    };
  }

  /**
   * Embed texts, `batchSize` at a time: a row-major `[texts.length, H]` Float32Array.
   * @param opts.maxLength tokens per text; @default the tokenizer's
   */
  async encode(
    tok: SearchTokenizer,
    texts: readonly string[],
    opts: { batchSize?: number; maxLength?: number } = {},
  ): Promise<Float32Array> {
    const H = this.config.hiddenSize;
    const bs = opts.batchSize ?? 64;
    const out = new Float32Array(texts.length * H);
    for (let s = 0; s < texts.length; s += bs) {
      const batch = tok.encodeBatch(texts.slice(s, s + bs), { maxLength: opts.maxLength });
      const { ids, mask } = BertEncoder.batchTensors(batch);
      const e = this.forward(ids, mask);
      out.set(await e.data(), s * H);
      tf.dispose([ids, mask, e]);
    }
    return out;
  }

  /** Every variable by a stable name (`embeddings.word`, `layer.{i}.qkvKernel`, ...): checkpoints and optimizers. */
  variablesByName(): Map<string, tf.Variable> {
    const m = new Map<string, tf.Variable>([
      ['embeddings.word', this.wordEmb],
      ['embeddings.position', this.posEmb],
      ['embeddings.type', this.typeEmb],
      ['embeddings.lnGamma', this.embLnGamma],
      ['embeddings.lnBeta', this.embLnBeta],
    ]);
    this.layers.forEach((l, i) => {
      for (const [k, v] of Object.entries(l) as Array<[string, tf.Variable]>) m.set(`layer.${i}.${k}`, v);
    });
    return m;
  }

  /** The variables that train (top layers, and the embeddings when configured). */
  trainableVariables(): tf.Variable[] {
    const vars: tf.Variable[] = [this.wordEmb, this.posEmb, this.typeEmb, this.embLnGamma, this.embLnBeta];
    for (const l of this.layers) vars.push(...(Object.values(l) as tf.Variable[]));
    return vars.filter((v) => v.trainable);
  }

  /**
   * The weights in the Hugging Face layout (Linear weights `[out, in]`, names `encoder.layer.{i}.…`, layers
   * renumbered from 0), loadable by {@link BertEncoder.fromWeights}, the ONNX exporter and sentence-transformers.
   * @param onlyTrainable only the trainable tensors (checkpoints of a partial fine-tune)
   */
  toWeights(onlyTrainable = false): BertWeights {
    const H = this.config.hiddenSize;
    const I = this.config.intermediateSize;
    const out: BertWeights = new Map();
    const put = (name: string, v: tf.Variable, shape: number[], transposeFrom?: [number, number]) => {
      if (onlyTrainable && !v.trainable) return;
      const d = v.dataSync() as Float32Array;
      out.set(name, { shape, data: transposeFrom ? transpose2d(d, transposeFrom[0], transposeFrom[1]) : d.slice() });
    };
    put('embeddings.word_embeddings.weight', this.wordEmb, this.wordEmb.shape);
    put('embeddings.position_embeddings.weight', this.posEmb, this.posEmb.shape);
    put('embeddings.token_type_embeddings.weight', this.typeEmb, this.typeEmb.shape);
    put('embeddings.LayerNorm.weight', this.embLnGamma, [H]);
    put('embeddings.LayerNorm.bias', this.embLnBeta, [H]);
    this.layers.forEach((l, i) => {
      const p = `encoder.layer.${i}.`;
      put(`${p}attention.self.query.weight`, l.qKernel, [H, H], [H, H]);
      put(`${p}attention.self.query.bias`, l.qBias, [H]);
      put(`${p}attention.self.key.weight`, l.kKernel, [H, H], [H, H]);
      put(`${p}attention.self.key.bias`, l.kBias, [H]);
      put(`${p}attention.self.value.weight`, l.vKernel, [H, H], [H, H]);
      put(`${p}attention.self.value.bias`, l.vBias, [H]);
      put(`${p}attention.output.dense.weight`, l.outKernel, [H, H], [H, H]);
      put(`${p}attention.output.dense.bias`, l.outBias, [H]);
      put(`${p}attention.output.LayerNorm.weight`, l.ln1Gamma, [H]);
      put(`${p}attention.output.LayerNorm.bias`, l.ln1Beta, [H]);
      put(`${p}intermediate.dense.weight`, l.ffnInKernel, [I, H], [H, I]);
      put(`${p}intermediate.dense.bias`, l.ffnInBias, [I]);
      put(`${p}output.dense.weight`, l.ffnOutKernel, [H, I], [I, H]);
      put(`${p}output.dense.bias`, l.ffnOutBias, [H]);
      put(`${p}output.LayerNorm.weight`, l.ln2Gamma, [H]);
      put(`${p}output.LayerNorm.bias`, l.ln2Beta, [H]);
    });
    return out;
  }

  /** Overwrite variables from weights in the {@link toWeights} layout (a checkpoint; missing names are kept). */
  assign(w: BertWeights): void {
    const fresh = BertEncoder.fromWeights(new Map([...this.toWeights(), ...w]), this.config);
    const pairs: Array<[tf.Variable, tf.Variable]> = [
      [this.wordEmb, fresh.wordEmb],
      [this.posEmb, fresh.posEmb],
      [this.typeEmb, fresh.typeEmb],
      [this.embLnGamma, fresh.embLnGamma],
      [this.embLnBeta, fresh.embLnBeta],
    ];
    this.layers.forEach((l, i) => {
      const f = fresh.layers[i] as LayerParams;
      for (const k of Object.keys(l) as Array<keyof LayerParams>) pairs.push([l[k], f[k]]);
    });
    for (const [dst, src] of pairs) dst.assign(src);
    fresh.dispose();
  }

  dispose(): void {
    tf.dispose([this.wordEmb, this.posEmb, this.typeEmb, this.embLnGamma, this.embLnBeta]);
    for (const l of this.layers) tf.dispose(Object.values(l) as tf.Variable[]);
  }
}
