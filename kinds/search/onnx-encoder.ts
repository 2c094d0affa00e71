/**
 * The search encoder as ONNX graphs built in TypeScript (lib/onnx/builder.ts, opset 17 for `LayerNormalization`):
 *
 * - encoder: `input_ids [B, T] int64`, `attention_mask [B, T] int64` -> `embedding [B, D]` (mean pooled over the
 *   mask, L2-normalised), the same computation as {@link BertEncoder}.
 * - search: the encoder plus the item index (catalogue embeddings `[items, D]` as an initializer) and `TopK` by dot
 *   product: extra input `k [1] int64` (clamped to the catalogue size), outputs `scores [B, k]`, `indices [B, k]`
 *   int64 and `embedding`.
 *
 * Precisions ({@link EncoderPrecision}), all with results that do not depend on the other rows of the batch:
 * - `fp32`;
 * - `int8-weight-only`: int8 weights (per output column; the word-embedding table per row) dequantized by
 *   `DequantizeLinear` into fp32 MatMuls;
 * - `int8-dynamic`: int8 weights and activations. Each token row gets its own activation scale at run time
 *   (`ReduceMax(|x|)` over the row), activations go to uint8 around 128 and `MatMulInteger` multiplies them with the
 *   int8 weights; the int32 result is scaled back by row scale x column scale. One scale per row (not per tensor, as
 *   `DynamicQuantizeLinear` would) is what makes a query's embedding the same alone or inside a batch;
 * - `int8-static`: like `int8-dynamic` with one activation scale per layer input calibrated on sample text
 *   ({@link calibrateStaticScales}), `QuantizeLinear` in the graph.
 * Attention products, LayerNorm, GELU, pooling and the index stay fp32.
 */
import { DType, GraphBuilder, attr, encodeModel } from '../../lib/onnx/builder';
import { emitInt8Gather, quantizePerColumn, quantizePerRow } from '../../lib/onnx/quantize';
import { ErrorType, RecflowError } from '../../lib/errors';
import type { BertConfig, BertWeights } from './base-model';
import { transpose2d } from './encoder';

/** The opset of the search graphs (17: `LayerNormalization`). */
export const SEARCH_OPSET = 17;

/** How the encoder's weights and activations are stored and computed. */
export type EncoderPrecision = 'fp32' | 'int8-weight-only' | 'int8-dynamic' | 'int8-static';

/** Every precision, in the order the benchmarks report them. */
export const ENCODER_PRECISIONS: readonly EncoderPrecision[] = [
  'fp32',
  'int8-weight-only',
  'int8-dynamic',
  'int8-static',
];

/** The dense layers of a layer, by the name their input value has in the graph (`l{i}_{name}_in`). */
export const DENSE_NAMES = ['qkv', 'out', 'ffn_in', 'ffn_out'] as const;

/** Options of {@link buildEncoderGraph}. */
export interface EncoderGraphOptions {
  /** @default 'fp32' */
  precision?: EncoderPrecision;
  /**
   * Largest int8 weight magnitude for `MatMulInteger` (127, or 63 for hosts without VNNI where u8 x s8 products
   * saturate in int16: lib/onnx/quantize.ts `MATMUL_QMAX`). @default 127
   */
  weightQmax?: number;
  /** `int8-static`: the activation scale of each dense input, `l{i}_{name}_in` -> scale (max |x| / 127). */
  staticScales?: Record<string, number>;
  /** Also output every dense input as `l{i}_{name}_in` (calibration). @default false */
  exposeDenseInputs?: boolean;
  /** String metadata stored in the model. */
  metadata?: Record<string, string>;
}

/** Options of {@link buildPrefixGraph}. */
export interface PrefixGraphOptions {
  /** Layers to run (0 = the embeddings only). */
  layers: number;
}

function w(weights: BertWeights, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new RecflowError(ErrorType.InvalidData, `encoder weights: tensor '${name}' is missing`);
  return t.data;
}

/** Emits `x @ W + b` for one precision; `W` is `[in, out]` row-major. */
type DenseEmitter = (
  g: GraphBuilder,
  name: string,
  x: string,
  kernel: Float32Array,
  inDim: number,
  outDim: number,
  bias: Float32Array,
) => string;

const fp32Dense: DenseEmitter = (g, name, x, kernel, inDim, outDim, bias) => {
  const k = g.init(`${name}_w`, [inDim, outDim], kernel);
  const b = g.init(`${name}_b`, [outDim], bias);
  return g.op1('Add', [g.op1('MatMul', [x, k]), b]);
};

const weightOnlyDense: DenseEmitter = (g, name, x, kernel, inDim, outDim, bias) => {
  const q = quantizePerColumn(kernel, inDim, outDim, 127);
  const wq = g.init(`${name}_wq`, [inDim, outDim], q.q);
  const ws = g.init(`${name}_wscale`, [outDim], q.scales);
  const wz = g.init(`${name}_wzp`, [outDim], new Int8Array(outDim));
  const k = g.op1('DequantizeLinear', [wq, ws, wz], { axis: attr.int(1) });
  const b = g.init(`${name}_b`, [outDim], bias);
  return g.op1('Add', [g.op1('MatMul', [x, k]), b]);
};

function int8Dense(qmax: number, staticScales?: Record<string, number>): DenseEmitter {
  return (g, name, x, kernel, inDim, outDim, bias) => {
    const q = quantizePerColumn(kernel, inDim, outDim, qmax);
    const wq = g.init(`${name}_wq`, [inDim, outDim], q.q);
    const wz = g.init(`${name}_wzp`, [], new Int8Array(1));
    const b = g.init(`${name}_b`, [outDim], bias);
    const zp = g.init(`${name}_xzp`, [], Uint8Array.of(128));
    if (staticScales) {
      const s = staticScales[`${name}_in`];
      if (!(s && s > 0))
        throw new RecflowError(ErrorType.InvalidInput, `int8-static: no calibrated scale for ${name}_in`);
      const xs = g.float(`${name}_xscale`, [s], []);
      const xq = g.op1('QuantizeLinear', [x, xs, zp]);
      const mm = g.op1('Cast', [g.op1('MatMulInteger', [xq, wq, zp, wz])], { to: attr.int(DType.float) });
      const scale = g.init(
        `${name}_scale`,
        [outDim],
        Float32Array.from(q.scales, (c) => c * s),
      );
      return g.op1('Add', [g.op1('Mul', [mm, scale]), b]);
    }
    // One scale per token row: s = max|x| / 127 over the row; xq = round(x / s) + 128 in [1, 255], the rounding,
    // offset and saturation done by one QuantizeLinear (scale 1, zero point 128) of x / s.
    const ws = g.init(`${name}_wscale`, [outDim], q.scales);
    const m = g.op1('Max', [
      g.op1('ReduceMax', [g.op1('Abs', [x])], { axes: attr.ints([-1]), keepdims: attr.int(1) }),
      'qeps',
    ]);
    const inv = g.op1('Div', ['q127', m]);
    const xq = g.op1('QuantizeLinear', [g.op1('Mul', [x, inv]), 'q1f', zp]);
    const mm = g.op1('Cast', [g.op1('MatMulInteger', [xq, wq, zp, wz])], { to: attr.int(DType.float) });
    const rowScale = g.op1('Mul', [m, 'q1_127']);
    return g.op1('Add', [g.op1('Mul', [g.op1('Mul', [mm, ws]), rowScale]), b]);
  };
}

/** The encoder nodes into `g` from `input_ids`/`attention_mask`; returns the embedding's value name. */
function emitEncoder(
  g: GraphBuilder,
  weights: BertWeights,
  c: BertConfig,
  opts: EncoderGraphOptions,
  prefixLayers?: number,
): string {
  const precision = opts.precision ?? 'fp32';
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const nh = c.numHeads;
  const dh = H / nh;
  const eps = c.layerNormEps;
  const int8 = precision !== 'fp32';
  const dense: DenseEmitter =
    precision === 'fp32'
      ? fp32Dense
      : precision === 'int8-weight-only'
        ? weightOnlyDense
        : int8Dense(opts.weightQmax ?? 127, precision === 'int8-static' ? (opts.staticScales ?? {}) : undefined);
  if (precision === 'int8-static' && !opts.staticScales) {
    throw new RecflowError(ErrorType.InvalidInput, 'int8-static export needs staticScales (calibrateStaticScales)');
  }
  if (precision === 'int8-dynamic') {
    g.float('qeps', [1e-12], []);
    g.float('q127', [127], []);
    g.float('q1_127', [1 / 127], []);
    g.float('q1f', [1], []);
  }
  const ids = 'input_ids';
  const maskIn = 'attention_mask';
  // Embeddings: word (int8 rows when quantized) + position (+ token type 0, folded in) -> LayerNorm.
  let words: string;
  if (int8) {
    const table = quantizePerRow(w(weights, 'embeddings.word_embeddings.weight'), c.vocabSize, H);
    words = emitInt8Gather(g, 'word_emb', table, ids);
  } else {
    const table = g.init('word_emb', [c.vocabSize, H], w(weights, 'embeddings.word_embeddings.weight'));
    words = g.op1('Gather', [table, ids], { axis: attr.int(0) });
  }
  const pos = w(weights, 'embeddings.position_embeddings.weight');
  const type0 = w(weights, 'embeddings.token_type_embeddings.weight').subarray(0, H);
  const posType = Float32Array.from(pos, (v, i) => v + (type0[i % H] ?? 0));
  const posTable = g.init('pos_emb', [c.maxPositions, H], posType);
  const seqLen = g.op1('Shape', [ids], { start: attr.int(1), end: attr.int(2) });
  const zero = g.int64('i0', [0]);
  const posRows = g.op1('Slice', [posTable, zero, seqLen, zero]);
  const ln = (x: string, prefix: string) =>
    g.op1(
      'LayerNormalization',
      [
        x,
        g.init(`${prefix}_g`, [H], w(weights, `${prefix}.weight`)),
        g.init(`${prefix}_b`, [H], w(weights, `${prefix}.bias`)),
      ],
      {
        axis: attr.int(-1),
        epsilon: attr.float(eps),
      },
    );
  let x = ln(g.op1('Add', [words, posRows]), 'embeddings.LayerNorm');
  if (prefixLayers === 0) return g.op1('Identity', [x], {}, 'hidden');
  // Attention bias [B, 1, 1, T]: 0 for tokens, -1e9 for padding.
  const maskF = g.op1('Cast', [maskIn], { to: attr.int(DType.float) });
  const neg = g.float('neg_big', [-1e9], []);
  const one = g.float('f1', [1], []);
  const bias = g.op1('Unsqueeze', [g.op1('Mul', [g.op1('Sub', [one, maskF]), neg]), g.int64('axes12', [1, 2])]);
  const headShape = g.int64('head_shape', [0, 0, nh, dh]);
  const mergedShape = g.int64('merged_shape', [0, 0, H]);
  const split = g.int64('qkv_split', [H, H, H]);
  const inv = 1 / Math.sqrt(dh);
  const outputs: string[] = [];
  const named = (v: string, name: string) => {
    if (!opts.exposeDenseInputs) return v;
    const out = g.op1('Identity', [v], {}, name);
    outputs.push(name);
    return out;
  };
  for (let l = 0; l < (prefixLayers ?? c.numLayers); l++) {
    const p = `encoder.layer.${l}.`;
    const kernelOf = (n: string, inDim: number, outDim: number) =>
      transpose2d(w(weights, `${p}${n}.weight`), outDim, inDim);
    // Fused QKV kernel [H, 3H], the query part pre-scaled by 1/sqrt(dh).
    const qkv = new Float32Array(H * 3 * H);
    const qkvBias = new Float32Array(3 * H);
    ['attention.self.query', 'attention.self.key', 'attention.self.value'].forEach((n, j) => {
      const k = kernelOf(n, H, H);
      const b = w(weights, `${p}${n}.bias`);
      const s = j === 0 ? inv : 1;
      for (let r = 0; r < H; r++) for (let cc = 0; cc < H; cc++) qkv[r * 3 * H + j * H + cc] = (k[r * H + cc] ?? 0) * s;
      for (let cc = 0; cc < H; cc++) qkvBias[j * H + cc] = (b[cc] ?? 0) * s;
    });
    const L = `l${l}`;
    const qkvOut = dense(g, `${L}_qkv`, named(x, `${L}_qkv_in`), qkv, H, 3 * H, qkvBias);
    const [q, k, v] = g.op('Split', [qkvOut, split], 3, { axis: attr.int(-1) }) as [string, string, string];
    const qh = g.op1('Transpose', [g.op1('Reshape', [q, headShape])], { perm: attr.ints([0, 2, 1, 3]) });
    const kh = g.op1('Transpose', [g.op1('Reshape', [k, headShape])], { perm: attr.ints([0, 2, 3, 1]) });
    const vh = g.op1('Transpose', [g.op1('Reshape', [v, headShape])], { perm: attr.ints([0, 2, 1, 3]) });
    const probs = g.op1('Softmax', [g.op1('Add', [g.op1('MatMul', [qh, kh]), bias])], { axis: attr.int(-1) });
    const ctx = g.op1('Transpose', [g.op1('MatMul', [probs, vh])], { perm: attr.ints([0, 2, 1, 3]) });
    const merged = g.op1('Reshape', [ctx, mergedShape]);
    const attnOut = dense(
      g,
      `${L}_out`,
      named(merged, `${L}_out_in`),
      kernelOf('attention.output.dense', H, H),
      H,
      H,
      w(weights, `${p}attention.output.dense.bias`),
    );
    const h1 = ln(g.op1('Add', [x, attnOut]), `${p}attention.output.LayerNorm`);
    const f1 = dense(
      g,
      `${L}_ffn_in`,
      named(h1, `${L}_ffn_in_in`),
      kernelOf('intermediate.dense', H, I),
      H,
      I,
      w(weights, `${p}intermediate.dense.bias`),
    );
    // GELU, erf form: x * 0.5 * (1 + erf(x / sqrt 2)) (onnxruntime fuses the pattern into Gelu).
    const erf = g.op1('Erf', [g.op1('Div', [f1, g.float(`${L}_sqrt2`, [Math.SQRT2], [])])]);
    const gelu = g.op1('Mul', [
      g.op1('Mul', [f1, g.op1('Add', [erf, g.float(`${L}_one`, [1], [])])]),
      g.float(`${L}_half`, [0.5], []),
    ]);
    const f2 = dense(
      g,
      `${L}_ffn_out`,
      named(gelu, `${L}_ffn_out_in`),
      kernelOf('output.dense', I, H),
      I,
      H,
      w(weights, `${p}output.dense.bias`),
    );
    x = ln(g.op1('Add', [h1, f2]), `${p}output.LayerNorm`);
  }
  if (prefixLayers !== undefined) return g.op1('Identity', [x], {}, 'hidden');
  // Mean pooling over the mask, then L2 normalisation (norm floored at 1e-12). Both sums are batched MatMuls
  // (`mask [B, 1, T] @ x [B, T, H]`, `mean [B, 1, H] @ mean^T`), one small product per row: unlike ReduceSum over
  // axis 1, whose summation order changes with the batch size, they give a row the same bits in any batch.
  const m3 = g.op1('Unsqueeze', [maskF, g.int64('axes1', [1])]); // [B, 1, T]
  const sum = g.op1('MatMul', [m3, x]); // [B, 1, H]
  const count = g.op1('Max', [
    g.op1('ReduceSum', [m3, g.int64('axes_last', [-1])], { keepdims: attr.int(1) }),
    g.float('f1e_9', [1e-9], []),
  ]);
  const mean3 = g.op1('Div', [sum, count]); // [B, 1, H]
  const sq = g.op1('MatMul', [mean3, g.op1('Transpose', [mean3], { perm: attr.ints([0, 2, 1]) })]); // [B, 1, 1]
  const norm = g.op1('Max', [g.op1('Sqrt', [sq]), g.float('f1e_12', [1e-12], [])]);
  const mean = g.op1('Reshape', [mean3, g.int64('emb_shape', [0, H])]);
  const normFlat = g.op1('Reshape', [norm, g.int64('norm_shape', [0, 1])]);
  const emb = g.op1('Div', [mean, normFlat], {}, 'embedding');
  for (const o of outputs)
    g.output(o, DType.float, o.endsWith('ffn_out_in') ? ['batch', 'seq', I] : ['batch', 'seq', H]);
  return emb;
}

function declareInputs(g: GraphBuilder): void {
  g.input('input_ids', DType.int64, ['batch', 'seq']);
  g.input('attention_mask', DType.int64, ['batch', 'seq']);
}

/** The encoder graph: `input_ids`, `attention_mask` -> `embedding [B, D]`. */
export function buildEncoderGraph(
  weights: BertWeights,
  config: BertConfig,
  opts: EncoderGraphOptions = {},
): Uint8Array {
  const g = new GraphBuilder(`recflow_search_encoder_${opts.precision ?? 'fp32'}`, SEARCH_OPSET);
  declareInputs(g);
  emitEncoder(g, weights, config, opts);
  g.output('embedding', DType.float, ['batch', config.hiddenSize]);
  return encodeModel(
    g.model({ precision: opts.precision ?? 'fp32', dim: String(config.hiddenSize), ...opts.metadata }),
  );
}

/**
 * The search graph: the encoder, then scores against the item index (`items` row-major `[n, D]`, L2-normalised
 * embeddings) and `TopK`: inputs `input_ids`, `attention_mask`, `k [1] int64`; outputs `scores [B, k]`,
 * `indices [B, k]` (int64 row numbers of `items`) and `embedding [B, D]`. `k` larger than the catalogue is clamped.
 * @throws {RecflowError} `InvalidInput` when `items` does not hold whole rows.
 */
export function buildSearchGraph(
  weights: BertWeights,
  config: BertConfig,
  items: Float32Array,
  opts: EncoderGraphOptions = {},
): Uint8Array {
  const D = config.hiddenSize;
  if (items.length === 0 || items.length % D !== 0) {
    throw new RecflowError(ErrorType.InvalidInput, `item index: ${items.length} values are not whole rows of ${D}`);
  }
  const n = items.length / D;
  const g = new GraphBuilder(`recflow_search_${opts.precision ?? 'fp32'}`, SEARCH_OPSET);
  declareInputs(g);
  g.input('k', DType.int64, [1]);
  const emb = emitEncoder(g, weights, config, opts);
  const index = g.init('item_index_t', [D, n], transpose2d(items, n, D));
  const scores = g.op1('MatMul', [emb, index]);
  const k = g.op1('Min', ['k', g.int64('n_items', [n])]);
  g.op('TopK', [scores, k], ['scores', 'indices'], { axis: attr.int(-1), largest: attr.int(1), sorted: attr.int(1) });
  g.output('embedding', DType.float, ['batch', D]);
  g.output('scores', DType.float, ['batch', 'k']);
  g.output('indices', DType.int64, ['batch', 'k']);
  return encodeModel(
    g.model({ precision: opts.precision ?? 'fp32', dim: String(D), items: String(n), ...opts.metadata }),
  );
}

/**
 * The first `layers` layers of the encoder (fp32): `input_ids`, `attention_mask` -> `hidden [B, T, H]`, the input of
 * layer `layers`. Fine-tuning of the top layers computes the frozen layers' outputs with it once.
 */
export function buildPrefixGraph(weights: BertWeights, config: BertConfig, opts: PrefixGraphOptions): Uint8Array {
  if (!Number.isInteger(opts.layers) || opts.layers < 0 || opts.layers > config.numLayers) {
    throw new RecflowError(
      ErrorType.InvalidInput,
      `prefix layers ${opts.layers} must be within 0..${config.numLayers}`,
    );
  }
  const g = new GraphBuilder('recflow_search_prefix', SEARCH_OPSET);
  declareInputs(g);
  emitEncoder(g, weights, config, {}, opts.layers);
  g.output('hidden', DType.float, ['batch', 'seq', config.hiddenSize]);
  return encodeModel(g.model({ prefixLayers: String(opts.layers) }));
}
