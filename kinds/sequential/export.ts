/**
 * The sequential recommender as ONNX graphs (opset 13, LayerNorm decomposed in the pattern onnxruntime fuses back
 * into its LayerNormalization kernel), built from the checkpoint weights, fp32 or int8, in the recommender bundle
 * contract:
 * - score:     `user [B]`, `items [B, N]`, `history [B, H]` -> `scores [B, N]`
 * - recommend: `user [B]`, `k [1]`, `exclude [B, E]`, `history [B, H]` -> `scores [B, k]`, `items [B, k]`
 *
 * `history` holds item indices of the bundle's vocab, 0-padded on the left, most recent last, of any width H: the
 * graph keeps the last `maxLength` columns and pads on the left to `maxLength`. `user` is not read (this kind knows
 * users only through their histories). A row whose history is all padding gets the popularity prior instead of
 * the Transformer's logits (inside the graph, `Where`).
 *
 * Scores are next-item probabilities: the softmax of the logits over the catalogue without index 0 (for the
 * popularity prior, the items' shares of training interactions, add-half smoothed). `recommend` masks index 0 and
 * the `exclude` indices (ScatterElements of -inf), takes `TopK(min(k, items - 1))` and returns the chosen items'
 * probabilities (not renormalized after the exclusions); if `k` exceeds the items left, the tail holds excluded
 * items with score 0.
 *
 * Only the last step's representation is needed at serving time: the last block computes its query, attention and
 * feed-forward network for that step alone (keys and values still over every step).
 *
 * int8 ({@link Int8Parts}): the item table as int8 rows with a float scale each (the input lookup); the output
 * product and the dense layers as `MatMulInteger` with int8 weights (per-column scales) and activations quantized
 * per row (one scale per row, zero point 128), so a user's result never depends on the other rows of the batch
 * (per-tensor dynamic quantization would make it depend on them).
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { onnx } from 'onnx-proto';
import { ONNX_IO, type BundleManifest, type Precision } from '../../lib/bundle';
import type { Interactions, Vocabularies } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { DType, GraphBuilder, OPSET, attr, encodeModel } from '../../lib/onnx/builder';
import {
  BUNDLE_FILES,
  HISTORY_MAX_PER_USER,
  buildHistories,
  popularItems,
  writeHistories,
} from '../../lib/onnx/bundle-io';
import {
  MATMUL_QMAX,
  emitInt8Gather,
  quantizePerColumn,
  quantizePerRow,
  transpose,
  type QuantizedMatrix,
} from '../../lib/onnx/quantize';
import { MASK_VALUE } from './model';
import { LAYER_NORM_EPS } from './ops';
import {
  blockNames,
  checkWeights,
  itemTable,
  weightOf,
  type ItemFeatures,
  type SequentialConfig,
  type SequentialSizes,
  type SequentialWeights,
  type Weight,
} from './spec';

/** Bumped when the graphs change: part of the bundle's idempotency key. */
export const SEQUENTIAL_EXPORTER_VERSION = 'recflow-onnx-sequential-1';

/** Name of the history input of both graphs. */
export const HISTORY_INPUT = 'history';

/** What the graphs record in `metadata_props` (keys prefixed `recflow.`). */
export interface SequentialExportMeta {
  modelName: string;
  version?: string;
  datasetId: string;
  checkpointId: string;
  /** sha256 of the bundle's vocab.json. */
  vocabHash: string;
  config: SequentialConfig;
  sizes: SequentialSizes;
}

/** Which parts the int8 graphs quantize. */
export interface Int8Parts {
  /** The input lookup: int8 item rows, one scale per row. @default true */
  embeddings: boolean;
  /** The output product (hidden state times the item table) as MatMulInteger. @default true */
  output: boolean;
  /** The attention projections and the feed-forward layers as MatMulInteger. @default false */
  dense: boolean;
}

/** Where int8 pays for this model (bench/sequential.ts measures it): the item table, not the small dense layers. */
export const DEFAULT_INT8_PARTS: Int8Parts = { embeddings: true, output: true, dense: false };

/**
 * Catalogue size from which the int8 graphs are faster than fp32 (bench/sequential.ts, one intra-op thread,
 * hiddenDim 64, history 50: at 1.5k-10k items int8 is 0.92-1.05x fp32 at batch 1-64; at 20k 1.15x at batch 1;
 * at 50k 2.4x at batch 1, 1.4x at 4, 1.2x at 16, 1.0x at 64). Below it the bundle prefers fp32.
 */
export const INT8_PAYS_FROM_ITEMS = 20_000;

type GraphKind = 'score' | 'recommend';

/** Add-half smoothed log shares of training interactions, `-inf` at index 0: the prior of an empty history. */
export function popularityLogits(popularity: Float32Array, items: number): Float32Array {
  if (popularity.length !== items)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `popularity has ${popularity.length} values, the model has ${items} items`,
    );
  let total = 0;
  for (let i = 1; i < items; i++) total += (popularity[i] ?? 0) + 0.5;
  const out = new Float32Array(items);
  out[0] = -Infinity;
  for (let i = 1; i < items; i++) out[i] = Math.log(((popularity[i] ?? 0) + 0.5) / total);
  return out;
}

/** Slice columns `[from, to)` of a row-major `rows x cols` matrix. */
function columns(w: Weight, from: number, to: number): Weight {
  const [rows = 0, cols = 0] = w.shape;
  const out = new Float32Array(rows * (to - from));
  for (let r = 0; r < rows; r++) out.set(w.data.subarray(r * cols + from, r * cols + to), r * (to - from));
  return { shape: [rows, to - from], data: out };
}

class Emitter {
  private readonly w: SequentialWeights;
  constructor(
    readonly g: GraphBuilder,
    weights: SequentialWeights,
    readonly p: Precision,
    readonly parts: Int8Parts,
  ) {
    this.w = weights;
  }

  weight(name: string): Weight {
    return weightOf(this.w, name);
  }

  /** LayerNorm over the last axis, decomposed (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add). */
  layerNorm(x: string, prefix: string): string {
    const g = this.g;
    const mean = g.op1('ReduceMean', [x], { axes: attr.ints([-1]), keepdims: attr.int(1) });
    const xc = g.op1('Sub', [x, mean]);
    const sq = g.op1('Pow', [xc, this.scalar(2, 'two')]);
    const variance = g.op1('ReduceMean', [sq], { axes: attr.ints([-1]), keepdims: attr.int(1) });
    const std = g.op1('Sqrt', [g.op1('Add', [variance, this.scalar(LAYER_NORM_EPS, 'ln_eps')])]);
    const y = g.op1('Mul', [g.op1('Div', [xc, std]), this.init(`${prefix}/gamma`)]);
    return g.op1('Add', [y, this.init(`${prefix}/beta`)]);
  }

  private readonly scalars = new Map<string, string>();
  /** A float scalar constant, shared by name. */
  scalar(value: number, name: string): string {
    const have = this.scalars.get(name);
    if (have) return have;
    const n = this.g.float(name, [value], []);
    this.scalars.set(name, n);
    return n;
  }

  private readonly inits = new Map<string, string>();
  /** The initializer of a weight (added once). */
  init(name: string, w: Weight = this.weight(name)): string {
    const have = this.inits.get(name);
    if (have) return have;
    const n = this.g.init(name, w.shape, w.data);
    this.inits.set(name, n);
    return n;
  }

  /**
   * `x [..., in] @ W [in, out] + bias` in fp32, or with int8 weights (per-column scales) and activations quantized
   * per row (over the last axis; zero point 128), when `int8`.
   */
  matmul(x: string, name: string, w: Weight, bias: Weight | undefined, int8: boolean): string {
    const g = this.g;
    const [inDim = 0, outDim = 0] = w.shape;
    if (!int8) {
      const mm = g.op1('MatMul', [x, this.init(name, w)]);
      return bias ? g.op1('Add', [mm, this.init(`${name}/bias`, bias)]) : mm;
    }
    return this.int8MatMul(x, name, quantizePerColumn(w.data, inDim, outDim, MATMUL_QMAX), bias);
  }

  /** Per-row quantization of `x` over its last axis: uint8 values (zero point 128) and the float scales `[..., 1]`. */
  quantizeRows(x: string): [string, string] {
    const g = this.g;
    const amax = g.op1('ReduceMax', [g.op1('Abs', [x])], { axes: attr.ints([-1]), keepdims: attr.int(1) });
    const scale = g.op1('Div', [g.op1('Max', [amax, this.scalar(1e-30, 'tiny')]), this.scalar(127, 'q127')]);
    const r = g.op1('Round', [g.op1('Div', [x, scale])]);
    const shifted = g.op1('Add', [
      g.op1('Clip', [r, this.scalar(-127, 'qmin'), this.scalar(127, 'qmax')]),
      this.scalar(128, 'q128'),
    ]);
    return [g.op1('Cast', [shifted], { to: attr.int(DType.uint8) }), scale];
  }

  int8MatMul(x: string, name: string, q: QuantizedMatrix, bias?: Weight): string {
    const g = this.g;
    const [xq, xs] = this.quantizeRows(x);
    const wq = g.init(`${name}/wq`, [q.rows, q.cols], q.q);
    const ws = g.init(`${name}/wscale`, [q.cols], q.scales);
    const azp = this.azp ?? (this.azp = g.init('act_zero_point', [], Uint8Array.from([128])));
    const wzp = g.init(`${name}/wzp`, [q.cols], new Int8Array(q.cols));
    const mm = g.op1('Cast', [g.op1('MatMulInteger', [xq, wq, azp, wzp])], { to: attr.int(DType.float) });
    const y = g.op1('Mul', [g.op1('Mul', [mm, xs]), ws]);
    return bias ? g.op1('Add', [y, this.init(`${name}/bias`, bias)]) : y;
  }
  private azp: string | undefined;
}

function metadata(meta: SequentialExportMeta, kind: GraphKind, p: Precision, parts: Int8Parts): Record<string, string> {
  return {
    'recflow.model_name': meta.modelName,
    'recflow.model_kind': 'sequential',
    'recflow.version': meta.version ?? '',
    'recflow.dataset_id': meta.datasetId,
    'recflow.checkpoint_id': meta.checkpointId,
    'recflow.vocab_hash': meta.vocabHash,
    'recflow.feature_config': JSON.stringify({ config: meta.config, sizes: meta.sizes }),
    'recflow.history_length': String(meta.config.maxLength),
    'recflow.graph': kind,
    'recflow.precision': p,
    ...(p === 'int8' ? { 'recflow.int8_parts': JSON.stringify(parts) } : {}),
    'recflow.exporter_version': SEQUENTIAL_EXPORTER_VERSION,
  };
}

/**
 * The shared part of both graphs: from the `history` input to the logits `[B, items]` over the catalogue (index 0
 * at -inf; the popularity prior for empty histories).
 */
function emitLogits(
  e: Emitter,
  c: SequentialConfig,
  sizes: SequentialSizes,
  table: Float32Array,
  popularity: Float32Array,
): string {
  const g = e.g;
  const L = c.maxLength;
  const d = c.hiddenDim;
  const H = c.heads;
  const dh = d / H;
  const int8 = e.p === 'int8';
  const history = g.input(HISTORY_INPUT, DType.int64, ['batch', 'history']);
  // The last L columns, left-padded to L.
  const sliced = g.op1('Slice', [
    history,
    g.int64('hist_start', [-L]),
    g.int64('hist_end', [Number.MAX_SAFE_INTEGER]),
    g.int64('axis_1', [1]),
  ]);
  const width = g.op1('Slice', [g.op1('Shape', [sliced]), g.int64('one', [1]), g.int64('two_i', [2])]);
  const padLeft = g.op1('Sub', [g.int64('max_length', [L]), width]);
  const zero = g.int64('zero_1', [0]);
  const pads = g.op1('Concat', [zero, padLeft, zero, zero], { axis: attr.int(0) });
  const hist = g.op1('Pad', [sliced, pads]);
  const mask = g.op1('Cast', [g.op1('Greater', [hist, g.int64('zero', [0], [])])], { to: attr.int(DType.float) });
  const hasHistory = g.op1('Greater', [
    g.op1('ReduceMax', [mask], { axes: attr.ints([1]), keepdims: attr.int(1) }),
    e.scalar(0, 'f_zero'),
  ]); // [B, 1]
  const mask3 = g.op1('Unsqueeze', [mask, g.int64('axis_2', [2])]); // [B, L, 1]

  const items = sizes.items;
  const E: Weight = { shape: [items, d], data: table };
  const emb =
    int8 && e.parts.embeddings
      ? emitInt8Gather(g, 'item_embedding_int8', quantizePerRow(E.data, items, d), hist)
      : g.op1('Gather', [e.init('item_table', E), hist], { axis: attr.int(0) });
  let x = g.op1('Mul', [g.op1('Add', [emb, e.init('position_embedding')]), mask3]);

  // Additive attention mask [B, 1, L, L]: (1 - causal * key_mask) * MASK_VALUE.
  const causal = new Float32Array(L * L);
  for (let i = 0; i < L; i++) for (let j = 0; j <= i; j++) causal[i * L + j] = 1;
  const allowed = g.op1('Mul', [g.init('causal', [1, L, L], causal), g.op1('Unsqueeze', [mask, 'axis_1'])]);
  const additive = g.op1('Unsqueeze', [
    g.op1('Mul', [g.op1('Sub', [e.scalar(1, 'f_one'), allowed]), e.scalar(MASK_VALUE, 'mask_value')]),
    'axis_1',
  ]);
  const scale = e.scalar(1 / Math.sqrt(dh), 'attn_scale');
  const headShape = g.int64('head_shape', [0, 0, H, dh]);
  const mergeShape = g.int64('merge_shape', [0, 0, d]);
  const qi8 = int8 && e.parts.dense;
  const lastIndex = g.int64('last_step', [L - 1], []);
  let last = '';
  for (let b = 0; b < c.blocks; b++) {
    const n = blockNames(b);
    const qkvK = e.weight(n.qkvKernel);
    const qkvB = e.weight(n.qkvBias);
    const h = e.layerNorm(x, `block${b}/ln1`);
    const heads = (t: string, perm: number[]) =>
      g.op1('Transpose', [g.op1('Reshape', [t, headShape])], { perm: attr.ints(perm) });
    if (b < c.blocks - 1) {
      const qkv = e.matmul(h, n.qkvKernel, qkvK, qkvB, qi8);
      const [q, k, v] = g.op('Split', [qkv], 3, { axis: attr.int(-1) }) as [string, string, string];
      const scores = g.op1('Add', [
        g.op1('Mul', [g.op1('MatMul', [heads(q, [0, 2, 1, 3]), heads(k, [0, 2, 3, 1])]), scale]),
        additive,
      ]);
      const probs = g.op1('Softmax', [scores], { axis: attr.int(-1) });
      const ctx = g.op1('Reshape', [
        g.op1('Transpose', [g.op1('MatMul', [probs, heads(v, [0, 2, 1, 3])])], { perm: attr.ints([0, 2, 1, 3]) }),
        mergeShape,
      ]);
      x = g.op1('Add', [x, e.matmul(ctx, n.outKernel, e.weight(n.outKernel), e.weight(n.outBias), qi8)]);
      const h2 = e.layerNorm(x, `block${b}/ln2`);
      const f = g.op1('Relu', [e.matmul(h2, n.ffn1Kernel, e.weight(n.ffn1Kernel), e.weight(n.ffn1Bias), qi8)]);
      x = g.op1('Mul', [
        g.op1('Add', [x, e.matmul(f, n.ffn2Kernel, e.weight(n.ffn2Kernel), e.weight(n.ffn2Bias), qi8)]),
        mask3,
      ]);
      continue;
    }
    // The last block, for the last step only: query from the last row, keys and values from every row.
    const hLast = g.op1('Gather', [h, lastIndex], { axis: attr.int(1) }); // [B, d]
    const qK = columns(qkvK, 0, d);
    const qB = { shape: [d], data: qkvB.data.slice(0, d) };
    const kvK = columns(qkvK, d, 3 * d);
    const kvB = { shape: [2 * d], data: qkvB.data.slice(d, 3 * d) };
    const q = e.matmul(hLast, `${n.qkvKernel}/q`, qK, qB, qi8); // [B, d]
    const kv = e.matmul(h, `${n.qkvKernel}/kv`, kvK, kvB, qi8); // [B, L, 2d]
    const [k, v] = g.op('Split', [kv], 2, { axis: attr.int(-1) }) as [string, string];
    const qh = g.op1('Reshape', [q, g.int64('query_shape', [0, H, 1, dh])]); // [B, H, 1, dh]
    const lastMask = g.op1('Slice', [additive, g.int64('last_from', [L - 1]), g.int64('last_to', [L]), 'axis_2']);
    const scores = g.op1('Add', [g.op1('Mul', [g.op1('MatMul', [qh, heads(k, [0, 2, 3, 1])]), scale]), lastMask]);
    const probs = g.op1('Softmax', [scores], { axis: attr.int(-1) }); // [B, H, 1, L]
    const ctx = g.op1('Reshape', [g.op1('MatMul', [probs, heads(v, [0, 2, 1, 3])]), g.int64('flat_shape', [0, d])]);
    const xLast = g.op1('Add', [
      g.op1('Gather', [x, lastIndex], { axis: attr.int(1) }),
      e.matmul(ctx, n.outKernel, e.weight(n.outKernel), e.weight(n.outBias), qi8),
    ]);
    const h2 = e.layerNorm(xLast, `block${b}/ln2`);
    const f = g.op1('Relu', [e.matmul(h2, n.ffn1Kernel, e.weight(n.ffn1Kernel), e.weight(n.ffn1Bias), qi8)]);
    last = g.op1('Add', [xLast, e.matmul(f, n.ffn2Kernel, e.weight(n.ffn2Kernel), e.weight(n.ffn2Bias), qi8)]);
  }
  const hidden = e.layerNorm(last, 'final_ln'); // [B, d]
  const logits =
    int8 && e.parts.output
      ? e.int8MatMul(hidden, 'output', quantizePerColumn(transpose(E.data, items, d), d, items, MATMUL_QMAX))
      : g.op1('Gemm', [hidden, e.init('item_table', E)], { transB: attr.int(1) });
  const item0 = new Float32Array(items);
  item0[0] = -Infinity;
  const model = g.op1('Add', [logits, g.init('item0_mask', [1, items], item0)]);
  const prior = g.init('popularity_logits', [1, items], popularityLogits(popularity, sizes.items));
  return g.op1('Where', [hasHistory, model, prior]);
}

/** Check the inputs and fold the item table. */
function prepare(
  w: SequentialWeights,
  f: ItemFeatures | undefined,
  c: SequentialConfig,
  s: SequentialSizes,
  popularity: Float32Array,
): Float32Array {
  checkWeights(c, s, w);
  if (popularity.length !== s.items)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `popularity has ${popularity.length} values, the model has ${s.items} items`,
    );
  return itemTable(c, s, w, f);
}

/** The score graph: `user [B]`, `items [B, N]`, `history [B, H]` to next-item probabilities `scores [B, N]`. */
export function buildSequentialScoreModel(
  w: SequentialWeights,
  features: ItemFeatures | undefined,
  popularity: Float32Array,
  meta: SequentialExportMeta,
  p: Precision,
  parts: Int8Parts = DEFAULT_INT8_PARTS,
): onnx.ModelProto {
  const table = prepare(w, features, meta.config, meta.sizes, popularity);
  const g = new GraphBuilder(`recflow_sequential_score_${p}`);
  g.input(ONNX_IO.user, DType.int64, ['batch']);
  const items = g.input(ONNX_IO.items, DType.int64, ['batch', 'n']);
  const logits = emitLogits(new Emitter(g, w, p, parts), meta.config, meta.sizes, table, popularity);
  const logProbs = g.op1('LogSoftmax', [logits], { axis: attr.int(1) });
  g.op1('Exp', [g.op1('GatherElements', [logProbs, items], { axis: attr.int(1) })], {}, ONNX_IO.scores);
  g.output(ONNX_IO.scores, DType.float, ['batch', 'n']);
  return g.model(metadata(meta, 'score', p, parts));
}

/**
 * The recommend graph: `user [B]`, `k [1]`, `exclude [B, E]`, `history [B, H]` to `scores [B, k]` (next-item
 * probabilities) and `items [B, k]`.
 */
export function buildSequentialRecommendModel(
  w: SequentialWeights,
  features: ItemFeatures | undefined,
  popularity: Float32Array,
  meta: SequentialExportMeta,
  p: Precision,
  parts: Int8Parts = DEFAULT_INT8_PARTS,
): onnx.ModelProto {
  const table = prepare(w, features, meta.config, meta.sizes, popularity);
  const g = new GraphBuilder(`recflow_sequential_recommend_${p}`);
  const user = g.input(ONNX_IO.user, DType.int64, ['batch']);
  const k = g.input(ONNX_IO.k, DType.int64, [1]);
  const exclude = g.input(ONNX_IO.exclude, DType.int64, ['batch', 'excluded']);
  const logits = emitLogits(new Emitter(g, w, p, parts), meta.config, meta.sizes, table, popularity);
  const lse = g.op1('ReduceLogSumExp', [logits], { axes: attr.ints([1]), keepdims: attr.int(1) });
  // Mask index 0 (a zero column built from the batch) and the excluded indices with -inf.
  const zcol = g.op1('Unsqueeze', [g.op1('Mul', [user, g.int64('zero_user', [0], [])]), 'axis_1']);
  const idx = g.op1('Concat', [zcol, exclude], { axis: attr.int(1) });
  const minusInf = g.op1('ConstantOfShape', [g.op1('Shape', [idx])], {
    value: attr.tensor({ dims: [1], dataType: DType.float, floatData: [-Infinity] }),
  });
  const masked = g.op1('ScatterElements', [logits, idx, minusInf], { axis: attr.int(1) });
  const kk = g.op1('Min', [k, g.int64('max_k', [Math.max(1, meta.sizes.items - 1)])]);
  const [vals] = g.op('TopK', [masked, kk], ['top_logits', ONNX_IO.topItems], {
    axis: attr.int(-1),
    largest: attr.int(1),
    sorted: attr.int(1),
  }) as [string, string];
  g.op1('Exp', [g.op1('Sub', [vals, lse])], {}, ONNX_IO.scores);
  g.output(ONNX_IO.scores, DType.float, ['batch', 'k']);
  g.output(ONNX_IO.topItems, DType.int64, ['batch', 'k']);
  return g.model(metadata(meta, 'recommend', p, parts));
}

/** Encoded graphs for both precisions. */
export type SequentialGraphs = Record<Precision, Record<GraphKind, Uint8Array>>;

/** Build and encode the four graphs. */
export function exportSequentialGraphs(
  w: SequentialWeights,
  features: ItemFeatures | undefined,
  popularity: Float32Array,
  meta: SequentialExportMeta,
  parts: Int8Parts = DEFAULT_INT8_PARTS,
): SequentialGraphs {
  const out = {} as SequentialGraphs;
  for (const p of ['fp32', 'int8'] as const)
    out[p] = {
      score: encodeModel(buildSequentialScoreModel(w, features, popularity, meta, p, parts)),
      recommend: encodeModel(buildSequentialRecommendModel(w, features, popularity, meta, p, parts)),
    };
  return out;
}

/** bundle.json of a sequential bundle: the common manifest plus what a caller needs to build the history input. */
export interface SequentialBundleManifest extends BundleManifest {
  kind: 'sequential';
  /** The graphs read the last this many history items (a longer `history` is cut, a shorter one padded). */
  historyLength: number;
  exporterVersion: string;
  int8Parts: Int8Parts;
  /** The precision to serve: int8 only where it is faster ({@link INT8_PAYS_FROM_ITEMS}). */
  preferredPrecision: Precision;
}

/** Input of {@link exportSequentialBundle}. */
export interface SequentialBundleInput {
  modelName: string;
  version?: string;
  datasetId: string;
  checkpointId: string;
  weights: SequentialWeights;
  config: SequentialConfig;
  sizes: SequentialSizes;
  /** Per-item category and brand (required when the config has `itemFeatures`). */
  features?: ItemFeatures;
  vocab: Pick<Vocabularies, 'users' | 'items'>;
  /** Training interaction count by item index (the prior of empty histories, and popular.json). */
  popularity: Float32Array;
  /** @default {@link DEFAULT_INT8_PARTS} */
  int8Parts?: Int8Parts;
  /**
   * The training interactions (time-ordered): each known user's history goes to history.bin, which serving feeds to
   * the graphs' `history` input and leaves out of recommendations. Without it a known user is served as a new one.
   */
  history?: Pick<Interactions, 'user' | 'item' | 'timestamp'>;
}

/**
 * Write a complete sequential bundle into `dir` (a fresh folder, e.g. the temp folder of `ArtifactStore.put`):
 * vocab.json, popular.json, history.bin (with `history`), the four ONNX graphs and bundle.json. Returns the manifest.
 * @throws {RecflowError} `InvalidInput` when the weights do not fit the config or the vocab the sizes.
 */
export async function exportSequentialBundle(
  dir: string,
  input: SequentialBundleInput,
): Promise<SequentialBundleManifest> {
  if (input.vocab.items.length !== input.sizes.items)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `vocab has ${input.vocab.items.length} items, the model ${input.sizes.items}`,
    );
  const parts = input.int8Parts ?? DEFAULT_INT8_PARTS;
  const vocabJson = `${JSON.stringify({ users: input.vocab.users, items: input.vocab.items })}\n`;
  const vocabHash = createHash('sha256').update(vocabJson).digest('hex');
  const graphs = exportSequentialGraphs(
    input.weights,
    input.features,
    input.popularity,
    {
      modelName: input.modelName,
      version: input.version,
      datasetId: input.datasetId,
      checkpointId: input.checkpointId,
      vocabHash,
      config: input.config,
      sizes: input.sizes,
    },
    parts,
  );
  await writeFile(join(dir, 'vocab.json'), vocabJson);
  await writeFile(join(dir, 'popular.json'), `${JSON.stringify(popularItems(input.vocab, input.popularity))}\n`);
  const history = input.history
    ? await writeHistories(
        dir,
        buildHistories(input.vocab.users.length, input.history, Math.max(HISTORY_MAX_PER_USER, input.config.maxLength)),
      )
    : undefined;
  const sizes = { fp32: { score: 0, recommend: 0 }, int8: { score: 0, recommend: 0 } };
  for (const p of ['fp32', 'int8'] as const)
    for (const k of ['score', 'recommend'] as const) {
      await writeFile(join(dir, BUNDLE_FILES[p][k]), graphs[p][k]);
      sizes[p][k] = graphs[p][k].byteLength;
    }
  const manifest: SequentialBundleManifest = {
    modelName: input.modelName,
    ...(input.version ? { version: input.version } : {}),
    datasetId: input.datasetId,
    checkpointId: input.checkpointId,
    opset: OPSET,
    files: BUNDLE_FILES,
    sizes,
    vocabHash,
    ...(history ? { history } : {}),
    createdAt: new Date().toISOString(),
    kind: 'sequential',
    historyLength: input.config.maxLength,
    exporterVersion: SEQUENTIAL_EXPORTER_VERSION,
    int8Parts: parts,
    preferredPrecision: input.sizes.items >= INT8_PAYS_FROM_ITEMS ? 'int8' : 'fp32',
  };
  await writeFile(join(dir, 'bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
