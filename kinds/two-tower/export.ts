/**
 * The two-tower model as ONNX graphs (the I/O contract of lib/bundle.ts plus the `history` input of
 * lib/onnx/recommender-parts.ts), built in TypeScript from the checkpoint, fp32 or int8.
 *
 * - The item side is precomputed for the whole catalogue ({@link computeItemMatrix}: the item tower in float64,
 *   rounded to float32, ids gated by `itemHasId`): vectors `[items, d]` (gathered by the history and the score
 *   graph's items; transposed `[d, items]` for the recommend graph's MatMul) and one offset per item,
 *   `b_i + priorWeight * log(PRIOR_FLOOR + prior_i)`.
 * - The history of a request: the user's stored history (an int32 table `[users, S]`, the last training items,
 *   0-padded on the left) followed by the `history` input (`[B, L]`, 0-padded on the left, most recent last; `L`
 *   may be 0). Serving feeds the request's history (or the bundle's); the stored table makes a trained user's
 *   history known to the graph either way, and repeats are counted once.
 *   An item counts once, at its last position (`historyWeights`); the `historyLength` most recent counted items
 *   (TopK over positions, most recent first: a fixed `[B, historyLength]` whatever the input's padding, so a
 *   user's scores do not depend on the batch) are pooled, the item of recency rank k weighted
 *   `exp(history_position[k])`: the pooled vector is the weighted mean of their vectors.
 * - The user tower runs in the graph: segment and region tables (int32, indexed by `user`), their embeddings and
 *   the pooled vector concatenated, two dense layers, the pooled vector added back.
 * - Scores: `u . v_i + offset_i`; a request with no usable history item (unknown user, nothing stored, no history
 *   sent) scores the recent-popularity prior instead. Probabilities: Platt scaling, one calibration for model
 *   scores and one for prior scores (`calibrated`).
 * - score graph: probabilities `[B, N]` of the requested items; recommend graph: the probabilities of the top k
 *   (index 0 and `exclude` masked, `recommendHead`).
 * - int8: the item matrix and embedding tables per-row int8 (Gather), the dense layers and the recommend graph's
 *   item matrix per-column int8 with activations quantized per row (`emitInt8MatMulPerRow`: batch-independent).
 *   The pooling's small MatMul stays fp32.
 * Indices outside `[0, items)` are rejected by onnxruntime (serving validates them first).
 */
import type { onnx } from 'onnx-proto';
import { ONNX_IO, type Precision } from '../../lib/bundle';
import { TITLE_LEN } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { DType, GraphBuilder, OPSET, attr, encodeModel } from '../../lib/onnx/builder';
import {
  MATMUL_QMAX,
  emitInt8Gather,
  emitInt8MatMulPerRow,
  quantizePerColumn,
  quantizePerRow,
  transpose,
} from '../../lib/onnx/quantize';
import {
  HISTORY_INPUT,
  axes,
  calibrated,
  emptyFlag,
  historyWeights,
  linearMetadata,
  recommendHead,
} from '../../lib/onnx/recommender-parts';
import {
  itemSide,
  priorTerm,
  type ModelConfig,
  type ModelExtras,
  type ModelSizes,
  type ModelWeights,
  type TowerFeatures,
  type Weight,
} from './spec';

/** Bumped when the graphs change: part of the bundle's idempotency key. */
export const EXPORTER_VERSION = 'recflow-onnx-3';

/** What the graphs record in `metadata_props` (keys prefixed `recflow.`). */
export interface ExportMeta {
  modelName: string;
  version?: string;
  datasetId: string;
  checkpointId: string;
  /** sha256 of the bundle's vocab.json. */
  vocabHash: string;
  config: ModelConfig;
  sizes: ModelSizes;
  extras: ModelExtras;
}

export type GraphKind = 'score' | 'recommend';

/** The precomputed item side: vectors `[items, d]` and per-item offsets (bias plus the prior term), float32. */
export interface ItemMatrix {
  vectors: Float32Array;
  offsets: Float32Array;
  dim: number;
}

function checkLength(what: string, got: number, want: number): void {
  if (got !== want)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `tower features: ${what} has ${got} values, the model expects ${want}`,
    );
}

/** The item tower for every item (float64 arithmetic rounded to float32), with the offsets. */
export function computeItemMatrix(w: ModelWeights, f: TowerFeatures, e: ModelExtras): ItemMatrix {
  const items = w.item_embedding.shape[0] ?? 0;
  checkLength('itemCategory', f.itemCategory.length, items);
  checkLength('itemBrand', f.itemBrand.length, items);
  checkLength('itemPrice', f.itemPrice.length, items);
  checkLength('itemTitleTokens', f.itemTitleTokens.length, items * TITLE_LEN);
  checkLength('extras.itemHasId', e.itemHasId.length, items);
  checkLength('extras.prior', e.prior.length, items);
  const side = itemSide(w, f, e);
  const pt = priorTerm(e);
  return {
    vectors: Float32Array.from(side.vectors),
    offsets: Float32Array.from(side.bias, (b, i) => b + (pt[i] ?? 0)),
    dim: side.dim,
  };
}

/** The stored histories as a `[users, width]` int32 table, each row's last `limit` items, 0-padded on the left. */
export function storedTable(f: TowerFeatures, users: number, limit: number): { width: number; table: Int32Array } {
  checkLength('historyPtr', f.historyPtr.length, users + 1);
  let width = 1;
  for (let u = 0; u < users; u++) width = Math.max(width, Math.min(limit, f.historyPtr[u + 1]! - f.historyPtr[u]!));
  const table = new Int32Array(users * width);
  for (let u = 0; u < users; u++) {
    const hi = f.historyPtr[u + 1]!;
    const lo = Math.max(f.historyPtr[u]!, hi - limit);
    table.set(f.historyItems.subarray(lo, hi), u * width + width - (hi - lo));
  }
  return { width, table };
}

/** Embedding lookup, fp32 (`Gather`) or int8 per-row. */
function embed(g: GraphBuilder, p: Precision, name: string, w: Weight, idx: string): string {
  const [rows, cols] = w.shape as [number, number];
  if (p === 'int8') return emitInt8Gather(g, name, quantizePerRow(w.data, rows, cols), idx);
  return g.op1('Gather', [g.init(name, [rows, cols], w.data), idx], { axis: attr.int(0) });
}

/** Dense layer, fp32 (`MatMul`, `Add`) or int8 with per-row activations; optional `Relu`. */
function dense(g: GraphBuilder, p: Precision, name: string, x: string, k: Weight, b: Weight, relu: boolean): string {
  const [inDim, outDim] = k.shape as [number, number];
  let y: string;
  if (p === 'int8') y = emitInt8MatMulPerRow(g, name, x, quantizePerColumn(k.data, inDim, outDim, MATMUL_QMAX), b.data);
  else {
    const mm = g.op1('MatMul', [x, g.init(`${name}_kernel`, [inDim, outDim], k.data)]);
    y = g.op1('Add', [mm, g.init(`${name}_bias`, [outDim], b.data)]);
  }
  return relu ? g.op1('Relu', [y]) : y;
}

/**
 * The user vectors `[B, d]` and the prior flag `[B, 1]` of a request (shared by both graphs). `vecs` is the item
 * matrix lookup (fp32 Gather or int8 per-row) to use for history items.
 */
function userPart(
  g: GraphBuilder,
  p: Precision,
  w: ModelWeights,
  f: TowerFeatures,
  m: ExportMeta,
  vecLookup: (idx: string) => string,
  user: string,
  history: string,
  ax: ReturnType<typeof axes>,
): { u: string; empty: string } {
  const users = m.sizes.users;
  const L = m.config.historyLength;
  checkLength('userSegment', f.userSegment.length, users);
  checkLength('userRegion', f.userRegion.length, users);
  const { width, table } = storedTable(f, users, L);
  const stored = g.op1('Gather', [g.init('stored_history', [users, width], table), user], { axis: attr.int(0) });
  const all = g.op1('Concat', [g.op1('Cast', [stored], { to: attr.int(DType.int64) }), history], {
    axis: attr.int(1),
  });
  // L zero columns first: every row has at least L positions (TopK below takes L), and L = 0 input widths work.
  const zeros = g.op1(
    'ConstantOfShape',
    [g.op1('Concat', [g.op1('Shape', [user]), g.int64('hist_pad', [L])], { axis: attr.int(0) })],
    {
      value: attr.tensor({ dims: [1], dataType: DType.int64, int64Data: [0] }),
    },
  );
  const hist = g.op1('Concat', [zeros, all], { axis: attr.int(1) });
  const valid = historyWeights(g, hist, ax); // [B, T]: 1 at each distinct item's last position
  const count = g.op1('ReduceSum', [valid, ax.a1], { keepdims: attr.int(1) });
  const empty = emptyFlag(g, count);
  // The L most recent counted positions, most recent first: TopK of (position + 1) on counted positions, 0 elsewhere.
  // A fixed [B, L] from here on, so the pooled vector does not depend on how wide the batch's rows were padded.
  const len = g.op1('Gather', [g.op1('Shape', [hist]), g.int64('one_scalar_pos', [1], [])], { axis: attr.int(0) });
  const pos = g.op1(
    'Cast',
    [
      g.op1('Range', [
        g.int64('pos_start', [1], []),
        g.op1('Add', [len, g.int64('pos_one', [1], [])]),
        g.int64('pos_delta', [1], []),
      ]),
    ],
    {
      to: attr.int(DType.float),
    },
  );
  const [, top] = g.op('TopK', [g.op1('Mul', [valid, pos]), g.int64('pool_k', [L])], 2, {
    axis: attr.int(1),
    largest: attr.int(1),
    sorted: attr.int(1),
  }) as [string, string];
  const recent = g.op1('GatherElements', [hist, top], { axis: attr.int(1) }); // [B, L] item indices
  const recentValid = g.op1('GatherElements', [valid, top], { axis: attr.int(1) });
  const posw = new Float32Array(L);
  for (let k = 0; k < L; k++) posw[k] = Math.exp(w.history_position.data[k] ?? 0);
  const weight = g.op1('Mul', [recentValid, g.init('position_weights', [L], posw)]); // [B, L]
  // The weighted sum rank by rank, in a fixed order: onnxruntime's ReduceSum and batched MatMul sum in an order
  // that depends on the batch size, and a row's result must not (int8 quantizes the pooled vector per row).
  const one = g.int64('pool_axis', [1]);
  let num = '';
  let z = '';
  for (let k = 0; k < L; k++) {
    const at = [g.int64(`pool_s${k}`, [k]), g.int64(`pool_e${k}`, [k + 1]), one];
    const wk = g.op1('Slice', [weight, ...at]); // [B, 1]
    const vk = g.op1('Squeeze', [vecLookup(g.op1('Slice', [recent, ...at])), ax.a1]); // [B, d]
    const t = g.op1('Mul', [vk, wk]);
    num = k ? g.op1('Add', [num, t]) : t;
    z = k ? g.op1('Add', [z, wk]) : wk;
  }
  const pooled = g.op1('Div', [num, g.op1('Max', [z, g.float('pool_tiny', [1e-30], [])])]);
  const seg = g.op1('Gather', [g.init('user_segment_table', [users], Int32Array.from(f.userSegment)), user], {
    axis: attr.int(0),
  });
  const reg = g.op1('Gather', [g.init('user_region_table', [users], Int32Array.from(f.userRegion)), user], {
    axis: attr.int(0),
  });
  const x = g.op1(
    'Concat',
    [
      pooled,
      embed(g, p, 'segment_embedding', w.segment_embedding, seg),
      embed(g, p, 'region_embedding', w.region_embedding, reg),
    ],
    { axis: attr.int(1) },
  );
  const h = dense(g, p, 'user_dense1', x, w['user_dense1/kernel'], w['user_dense1/bias'], true);
  const u = g.op1('Add', [
    dense(g, p, 'user_dense2', h, w['user_dense2/kernel'], w['user_dense2/bias'], false),
    pooled,
  ]);
  return { u, empty };
}

/** `(1 - empty) * s + empty * prior`: the model's scores, or the prior's for rows without history. */
function mixPrior(g: GraphBuilder, s: string, prior: string, empty: string): string {
  const keep = g.op1('Sub', [g.float('one_f_mix', [1], []), empty]);
  return g.op1('Add', [g.op1('Mul', [s, keep]), g.op1('Mul', [prior, empty])]);
}

function metadata(m: ExportMeta, kind: GraphKind, p: Precision): Record<string, string> {
  const { itemHasId: _h, prior: _p, ...extras } = m.extras;
  return {
    ...linearMetadata({
      kind: 'two-tower',
      modelName: m.modelName,
      version: m.version,
      datasetId: m.datasetId,
      checkpointId: m.checkpointId,
      vocabHash: m.vocabHash,
      graph: kind,
      precision: p,
      exporterVersion: EXPORTER_VERSION,
      config: { ...m.config, ...extras },
    }),
    'recflow.feature_config': JSON.stringify({ config: m.config, sizes: m.sizes }),
  };
}

/** Gathers of item vectors by an index tensor (one table, fp32 or int8 per row, shared by every lookup). */
function itemVectorLookup(g: GraphBuilder, p: Precision, im: ItemMatrix, items: number): (idx: string) => string {
  let tables: { q: string; scale?: string } | undefined;
  return (idx) => {
    if (p === 'int8') {
      if (!tables) {
        const q = quantizePerRow(im.vectors, items, im.dim);
        tables = {
          q: g.init('item_vectors_q', [items, im.dim], q.q),
          scale: g.init('item_vectors_scale', [items, 1], q.scales),
        };
      }
      const rows = g.op1('Cast', [g.op1('Gather', [tables.q, idx], { axis: attr.int(0) })], {
        to: attr.int(DType.float),
      });
      return g.op1('Mul', [rows, g.op1('Gather', [tables.scale!, idx], { axis: attr.int(0) })]);
    }
    tables ??= { q: g.init('item_vectors', [items, im.dim], im.vectors) };
    return g.op1('Gather', [tables.q, idx], { axis: attr.int(0) });
  };
}

/** The score graph: `user [B]`, `items [B, N]`, `history [B, L]` to `scores [B, N]` probabilities. */
export function buildScoreModel(
  w: ModelWeights,
  f: TowerFeatures,
  meta: ExportMeta,
  p: Precision,
  im = computeItemMatrix(w, f, meta.extras),
): onnx.ModelProto {
  const g = new GraphBuilder(`recflow_score_${p}`);
  const n = meta.sizes.items;
  const user = g.input(ONNX_IO.user, DType.int64, ['batch']);
  const items = g.input(ONNX_IO.items, DType.int64, ['batch', 'n']);
  const history = g.input(HISTORY_INPUT, DType.int64, ['batch', 'history']);
  const ax = axes(g);
  const lookup = itemVectorLookup(g, p, im, n);
  const { u, empty } = userPart(g, p, w, f, meta, lookup, user, history, ax);
  const iv = lookup(items); // [B, N, d]
  const dot = g.op1('Squeeze', [g.op1('MatMul', [iv, g.op1('Unsqueeze', [u, ax.a2])]), ax.a2]);
  const offsets = g.op1('Gather', [g.init('item_offsets', [n], im.offsets), items], { axis: attr.int(0) });
  const prior = g.op1('Gather', [g.init('prior', [n], meta.extras.prior), items], { axis: attr.int(0) });
  const s = mixPrior(g, g.op1('Add', [dot, offsets]), prior, empty);
  calibrated(g, s, empty, meta.extras.calibration, ONNX_IO.scores);
  g.output(ONNX_IO.scores, DType.float, ['batch', 'n']);
  return g.model(metadata(meta, 'score', p));
}

/**
 * The recommend graph: `user [B]`, `k [1]`, `exclude [B, E]`, `history [B, L]` to `scores [B, k]` and
 * `items [B, k]`.
 */
export function buildRecommendModel(
  w: ModelWeights,
  f: TowerFeatures,
  meta: ExportMeta,
  p: Precision,
  im = computeItemMatrix(w, f, meta.extras),
): onnx.ModelProto {
  const g = new GraphBuilder(`recflow_recommend_${p}`);
  const n = meta.sizes.items;
  const d = im.dim;
  const user = g.input(ONNX_IO.user, DType.int64, ['batch']);
  const k = g.input(ONNX_IO.k, DType.int64, [1]);
  const exclude = g.input(ONNX_IO.exclude, DType.int64, ['batch', 'excluded']);
  const history = g.input(HISTORY_INPUT, DType.int64, ['batch', 'history']);
  const ax = axes(g);
  const { u, empty } = userPart(g, p, w, f, meta, itemVectorLookup(g, p, im, n), user, history, ax);
  const itemT = transpose(im.vectors, n, d);
  const dot =
    p === 'int8'
      ? emitInt8MatMulPerRow(g, 'item_matrix', u, quantizePerColumn(itemT, d, n, MATMUL_QMAX))
      : g.op1('MatMul', [u, g.init('item_matrix_t', [d, n], itemT)]);
  const s = mixPrior(
    g,
    g.op1('Add', [dot, g.init('item_offsets', [n], im.offsets)]),
    g.init('prior', [n], meta.extras.prior),
    empty,
  );
  const top = recommendHead(g, s, user, exclude, k, n, ax, ONNX_IO.topItems);
  calibrated(g, top, empty, meta.extras.calibration, ONNX_IO.scores);
  g.output(ONNX_IO.scores, DType.float, ['batch', 'k']);
  g.output(ONNX_IO.topItems, DType.int64, ['batch', 'k']);
  return g.model(metadata(meta, 'recommend', p));
}

/** Encoded graphs for both precisions. */
export type EncodedGraphs = Record<Precision, Record<GraphKind, Uint8Array>>;

/** Build and encode the four graphs (the item matrix computed once). */
export function exportGraphs(w: ModelWeights, f: TowerFeatures, meta: ExportMeta): EncodedGraphs {
  const im = computeItemMatrix(w, f, meta.extras);
  const out = {} as EncodedGraphs;
  for (const p of ['fp32', 'int8'] as const) {
    out[p] = {
      score: encodeModel(buildScoreModel(w, f, meta, p, im)),
      recommend: encodeModel(buildRecommendModel(w, f, meta, p, im)),
    };
  }
  return out;
}

export { OPSET };
