/**
 * The two-tower model as ONNX graphs (the I/O contract is lib/bundle.ts), built in TypeScript from the checkpoint
 * weights, fp32 or int8.
 *
 * - The user tower runs in the graph: per-user feature tables (segment, region) are int32 initializers indexed by
 *   the `user` input, then the embeddings are gathered, concatenated and passed through the two dense layers.
 * - The item tower is precomputed for the whole catalog ({@link computeItemMatrix}, float64 arithmetic rounded to
 *   float32) and stored as an initializer: `[items, outputDim]` in the score graph, transposed `[outputDim, items]`
 *   in the recommend graph (the layout MatMul wants).
 * - score: `sigmoid(<user vector, item vector>)` for each requested item: probabilities `[B, N]`.
 * - recommend: user vector times the item matrix (all logits `[B, items]`), index 0 and the `exclude` indices set to
 *   -inf (ScatterElements; 0-padding of `exclude` lands on index 0, masked anyway), `TopK(min(k, items - 1))`.
 *   Outputs `scores` are probabilities (sigmoid of the top logits), `items` the item indices, best first.
 *   If `k` exceeds the number of items left after exclusions, the tail holds excluded items with score 0.
 *   Indices outside `[0, items)` are rejected by onnxruntime (serving validates them first).
 */
import type { onnx } from 'onnx-proto';
import { ONNX_IO, type Precision } from '../../lib/bundle';
import { TITLE_LEN } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import type { ModelConfig, ModelSizes, ModelWeights, TowerFeatures, Weight } from './spec';
import { DType, GraphBuilder, OPSET, attr, encodeModel } from '../../lib/onnx/builder';
import {
  MATMUL_QMAX,
  emitInt8Gather,
  emitInt8MatMulPerRow,
  quantizePerColumn,
  quantizePerRow,
  transpose,
} from '../../lib/onnx/quantize';

/** Bumped when the graphs change: part of the bundle's idempotency key. */
export const EXPORTER_VERSION = 'recflow-onnx-2';

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
}

export type GraphKind = 'score' | 'recommend';

/** Item tower for every item: `[items, outputDim]` row-major float32 (float64 accumulation). */
export function computeItemMatrix(w: ModelWeights, f: TowerFeatures): Float32Array {
  const items = w.item_embedding.shape[0] ?? 0;
  const de = w.item_embedding.shape[1] ?? 0;
  const df = w.category_embedding.shape[1] ?? 0;
  const [inDim, hidden] = w['item_dense1/kernel'].shape as [number, number];
  const outDim = w['item_dense2/kernel'].shape[1] ?? 0;
  if (inDim !== de + 3 * df + 1)
    throw new RecflowError(ErrorType.InvalidInput, `item_dense1/kernel: ${inDim} inputs, expected ${de + 3 * df + 1}`);
  checkLength('itemCategory', f.itemCategory.length, items);
  checkLength('itemTitleTokens', f.itemTitleTokens.length, items * TITLE_LEN);
  const k1 = w['item_dense1/kernel'].data;
  const b1 = w['item_dense1/bias'].data;
  const k2 = w['item_dense2/kernel'].data;
  const b2 = w['item_dense2/bias'].data;
  const out = new Float32Array(items * outDim);
  const x = new Float64Array(inDim);
  const h = new Float64Array(hidden);
  const copyRow = (t: Weight, r: number, at: number, width: number) => {
    for (let j = 0; j < width; j++) x[at + j] = t.data[r * width + j] ?? 0;
  };
  for (let i = 0; i < items; i++) {
    copyRow(w.item_embedding, i, 0, de);
    copyRow(w.category_embedding, f.itemCategory[i] ?? 0, de, df);
    copyRow(w.brand_embedding, f.itemBrand[i] ?? 0, de + df, df);
    const t0 = de + 2 * df;
    for (let j = 0; j < df; j++) x[t0 + j] = 0;
    let n = 0;
    for (let t = 0; t < TITLE_LEN; t++) {
      const tok = f.itemTitleTokens[i * TITLE_LEN + t] ?? 0;
      if (tok === 0) continue;
      for (let j = 0; j < df; j++) x[t0 + j] = (x[t0 + j] ?? 0) + (w.token_embedding.data[tok * df + j] ?? 0);
      n++;
    }
    if (n > 0) for (let j = 0; j < df; j++) x[t0 + j] = (x[t0 + j] ?? 0) / n;
    x[inDim - 1] = f.itemPrice[i] ?? 0;
    for (let o = 0; o < hidden; o++) h[o] = b1[o] ?? 0;
    for (let a = 0; a < inDim; a++) {
      const xa = x[a] ?? 0;
      if (xa === 0) continue;
      const base = a * hidden;
      for (let o = 0; o < hidden; o++) h[o] = (h[o] ?? 0) + xa * (k1[base + o] ?? 0);
    }
    for (let o = 0; o < hidden; o++) if ((h[o] ?? 0) < 0) h[o] = 0;
    for (let o = 0; o < outDim; o++) {
      let s = b2[o] ?? 0;
      for (let a = 0; a < hidden; a++) s += (h[a] ?? 0) * (k2[a * outDim + o] ?? 0);
      out[i * outDim + o] = s;
    }
  }
  return out;
}

function checkLength(what: string, got: number, want: number): void {
  if (got !== want)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `tower features: ${what} has ${got} values, the model expects ${want}`,
    );
}

/** Embedding lookup, fp32 (`Gather`) or int8 per-row. */
function embed(g: GraphBuilder, p: Precision, name: string, w: Weight, idx: string): string {
  const [rows, cols] = w.shape as [number, number];
  if (p === 'int8') return emitInt8Gather(g, name, quantizePerRow(w.data, rows, cols), idx);
  return g.op1('Gather', [g.init(name, [rows, cols], w.data), idx], { axis: attr.int(0) });
}

/** Dense layer, fp32 (`MatMul`, `Add`) or int8 dynamic quantization; optional `Relu`. */
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

/** The user tower in the graph: `[B]` user indices to `[B, outputDim]` vectors. */
function userTower(g: GraphBuilder, p: Precision, w: ModelWeights, f: TowerFeatures, user: string): string {
  const users = w.user_embedding.shape[0] ?? 0;
  checkLength('userSegment', f.userSegment.length, users);
  checkLength('userRegion', f.userRegion.length, users);
  const segTable = g.init('user_segment_table', [users], Int32Array.from(f.userSegment));
  const regTable = g.init('user_region_table', [users], Int32Array.from(f.userRegion));
  const seg = g.op1('Gather', [segTable, user], { axis: attr.int(0) });
  const reg = g.op1('Gather', [regTable, user], { axis: attr.int(0) });
  const x = g.op1(
    'Concat',
    [
      embed(g, p, 'user_embedding', w.user_embedding, user),
      embed(g, p, 'segment_embedding', w.segment_embedding, seg),
      embed(g, p, 'region_embedding', w.region_embedding, reg),
    ],
    { axis: attr.int(1) },
  );
  const h = dense(g, p, 'user_dense1', x, w['user_dense1/kernel'], w['user_dense1/bias'], true);
  return dense(g, p, 'user_dense2', h, w['user_dense2/kernel'], w['user_dense2/bias'], false);
}

function metadata(meta: ExportMeta, kind: GraphKind, p: Precision): Record<string, string> {
  return {
    'recflow.model_name': meta.modelName,
    'recflow.version': meta.version ?? '',
    'recflow.dataset_id': meta.datasetId,
    'recflow.checkpoint_id': meta.checkpointId,
    'recflow.vocab_hash': meta.vocabHash,
    'recflow.feature_config': JSON.stringify({ config: meta.config, sizes: meta.sizes }),
    'recflow.graph': kind,
    'recflow.precision': p,
    'recflow.exporter_version': EXPORTER_VERSION,
  };
}

/** The score graph: `user [B]`, `items [B, N]` to `scores [B, N]` probabilities. */
export function buildScoreModel(
  w: ModelWeights,
  f: TowerFeatures,
  meta: ExportMeta,
  p: Precision,
  itemMatrix = computeItemMatrix(w, f),
): onnx.ModelProto {
  const g = new GraphBuilder(`recflow_score_${p}`);
  const items = w.item_embedding.shape[0] ?? 0;
  const d = w['item_dense2/kernel'].shape[1] ?? 0;
  const user = g.input(ONNX_IO.user, DType.int64, ['batch']);
  const itemIdx = g.input(ONNX_IO.items, DType.int64, ['batch', 'n']);
  const u = userTower(g, p, w, f, user);
  const u3 = g.op1('Unsqueeze', [u, g.int64('axis_2', [2])]);
  const iv = embed(g, p, 'item_matrix', { shape: [items, d], data: itemMatrix }, itemIdx);
  const logits = g.op1('Squeeze', [g.op1('MatMul', [iv, u3]), 'axis_2']);
  g.op1('Sigmoid', [logits], {}, ONNX_IO.scores);
  g.output(ONNX_IO.scores, DType.float, ['batch', 'n']);
  return g.model(metadata(meta, 'score', p));
}

/** The recommend graph: `user [B]`, `k [1]`, `exclude [B, E]` to `scores [B, k]` and `items [B, k]`. */
export function buildRecommendModel(
  w: ModelWeights,
  f: TowerFeatures,
  meta: ExportMeta,
  p: Precision,
  itemMatrix = computeItemMatrix(w, f),
): onnx.ModelProto {
  const g = new GraphBuilder(`recflow_recommend_${p}`);
  const items = w.item_embedding.shape[0] ?? 0;
  const d = w['item_dense2/kernel'].shape[1] ?? 0;
  const user = g.input(ONNX_IO.user, DType.int64, ['batch']);
  const k = g.input(ONNX_IO.k, DType.int64, [1]);
  const exclude = g.input(ONNX_IO.exclude, DType.int64, ['batch', 'excluded']);
  const u = userTower(g, p, w, f, user);
  const itemT = transpose(itemMatrix, items, d);
  const logits =
    p === 'int8'
      ? emitInt8MatMulPerRow(g, 'item_matrix', u, quantizePerColumn(itemT, d, items, MATMUL_QMAX))
      : g.op1('MatMul', [u, g.init('item_matrix_t', [d, items], itemT)]);
  // Mask index 0 (a zero column built from the batch) and the excluded indices with -inf.
  const zeros = g.op1('Mul', [user, g.int64('zero', [0], [])]);
  const zcol = g.op1('Unsqueeze', [zeros, g.int64('axis_1', [1])]);
  const idx = g.op1('Concat', [zcol, exclude], { axis: attr.int(1) });
  const minusInf = g.op1('ConstantOfShape', [g.op1('Shape', [idx])], {
    value: attr.tensor({ dims: [1], dataType: DType.float, floatData: [-Infinity] }),
  });
  const masked = g.op1('ScatterElements', [logits, idx, minusInf], { axis: attr.int(1) });
  const kk = g.op1('Min', [k, g.int64('max_k', [Math.max(1, items - 1)])]);
  const [vals, top] = g.op('TopK', [masked, kk], ['top_logits', ONNX_IO.topItems], {
    axis: attr.int(-1),
    largest: attr.int(1),
    sorted: attr.int(1),
  }) as [string, string];
  g.op1('Sigmoid', [vals], {}, ONNX_IO.scores);
  void top;
  g.output(ONNX_IO.scores, DType.float, ['batch', 'k']);
  g.output(ONNX_IO.topItems, DType.int64, ['batch', 'k']);
  return g.model(metadata(meta, 'recommend', p));
}

/** Encoded graphs for both precisions. */
export type EncodedGraphs = Record<Precision, Record<GraphKind, Uint8Array>>;

/** Build and encode the four graphs (the item matrix computed once). */
export function exportGraphs(w: ModelWeights, f: TowerFeatures, meta: ExportMeta): EncodedGraphs {
  const im = computeItemMatrix(w, f);
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
