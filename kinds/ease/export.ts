/**
 * EASE^R as ONNX graphs (the bundle contract of lib/bundle.ts plus the `history` input), fp32 or int8.
 *
 * - The user's item set as a multi-hot row `[B, items]`: the stored items of a trained user (an int32 table
 *   `[users, maxStored]`, 0-padded) and the request's `history`, written with ScatterElements (repeats land on
 *   the same cell, padding on column 0, which is then zeroed).
 * - Scores: `multihot · B` (MatMul; int8: per-row quantization of the 0/1 row is exact, B int8 per column);
 *   a row with no item scores the recent-popularity prior.
 * - score graph: Platt-calibrated probabilities of the requested items (GatherElements); recommend graph: the
 *   probabilities of the top k, index 0 and `exclude` masked.
 */
import type { onnx } from 'onnx-proto';
import { ONNX_IO, type BundleManifest, type Precision } from '../../lib/bundle';
import { DType, GraphBuilder, attr, encodeModel } from '../../lib/onnx/builder';
import { MATMUL_QMAX, emitInt8MatMulPerRow, quantizePerColumn } from '../../lib/onnx/quantize';
import {
  HISTORY_INPUT,
  axes,
  calibrated,
  emptyFlag,
  linearMetadata,
  recommendHead,
} from '../../lib/onnx/recommender-parts';
import { writeGraphBundle, type GraphBundleInput } from '../../lib/onnx/write-bundle';
import type { EaseModel } from './spec';

/** Bumped when the graphs change: part of the bundle's idempotency key. */
export const EASE_EXPORTER_VERSION = 'recflow-ease-onnx-2';

/** What the graphs record besides the model. */
export interface EaseExportMeta {
  modelName: string;
  version?: string;
  checkpointId: string;
  vocabHash: string;
}

/** The stored items as a `[users, width]` int32 table, 0-padded on the left (width >= 1). */
export function storedTable(m: EaseModel): { width: number; table: Int32Array } {
  let width = 1;
  for (let u = 0; u < m.users; u++) width = Math.max(width, m.historyPtr[u + 1]! - m.historyPtr[u]!);
  const table = new Int32Array(m.users * width);
  for (let u = 0; u < m.users; u++) {
    const lo = m.historyPtr[u]!;
    const hi = m.historyPtr[u + 1]!;
    table.set(m.historyItems.subarray(lo, hi), u * width + width - (hi - lo));
  }
  return { width, table };
}

/** Scores `[B, items]` (prior mixed in for empty rows) and the empty flag `[B, 1]`. */
function scorePart(
  g: GraphBuilder,
  p: Precision,
  m: EaseModel,
  user: string,
  history: string,
  ax: ReturnType<typeof axes>,
): { scores: string; empty: string } {
  const n = m.items;
  const { width, table } = storedTable(m);
  const stored = g.op1('Gather', [g.init('stored_items', [m.users, width], table), user], { axis: attr.int(0) });
  const all = g.op1('Concat', [g.op1('Cast', [stored], { to: attr.int(DType.int64) }), history], { axis: attr.int(1) });
  const shape = g.op1('Concat', [g.op1('Shape', [user]), g.int64('n_items', [n])], { axis: attr.int(0) });
  const zeros = g.op1('ConstantOfShape', [shape], {
    value: attr.tensor({ dims: [1], dataType: DType.float, floatData: [0] }),
  });
  const ones = g.op1('ConstantOfShape', [g.op1('Shape', [all])], {
    value: attr.tensor({ dims: [1], dataType: DType.float, floatData: [1] }),
  });
  const mask0 = new Float32Array(n).fill(1);
  mask0[0] = 0;
  const hot = g.op1('Mul', [
    g.op1('ScatterElements', [zeros, all, ones], { axis: attr.int(1) }),
    g.init('mask_item0', [n], mask0),
  ]);
  const count = g.op1('ReduceSum', [hot, ax.a1], { keepdims: attr.int(1) });
  const empty = emptyFlag(g, count);
  const raw =
    p === 'int8'
      ? emitInt8MatMulPerRow(g, 'ease_b', hot, quantizePerColumn(m.weights, n, n, MATMUL_QMAX))
      : g.op1('MatMul', [hot, g.init('ease_b', [n, n], m.weights)]);
  const scores = g.op1('Add', [raw, g.op1('Mul', [empty, g.init('prior', [n], m.prior)])]);
  return { scores, empty };
}

function meta(m: EaseModel, e: EaseExportMeta, graph: 'score' | 'recommend', precision: Precision) {
  return linearMetadata({
    kind: 'ease',
    modelName: e.modelName,
    version: e.version,
    datasetId: m.datasetId,
    checkpointId: e.checkpointId,
    vocabHash: e.vocabHash,
    graph,
    precision,
    exporterVersion: EASE_EXPORTER_VERSION,
    config: { ...m.config, priorConfig: m.priorConfig, calibration: m.calibration },
  });
}

/** The score graph: `user [B]`, `items [B, N]`, `history [B, L]` to `scores [B, N]` probabilities. */
export function buildEaseScoreModel(m: EaseModel, e: EaseExportMeta, p: Precision): onnx.ModelProto {
  const g = new GraphBuilder(`recflow_ease_score_${p}`);
  const user = g.input(ONNX_IO.user, DType.int64, ['batch']);
  const items = g.input(ONNX_IO.items, DType.int64, ['batch', 'n']);
  const history = g.input(HISTORY_INPUT, DType.int64, ['batch', 'history']);
  const ax = axes(g);
  const { scores, empty } = scorePart(g, p, m, user, history, ax);
  const picked = g.op1('GatherElements', [scores, items], { axis: attr.int(1) });
  calibrated(g, picked, empty, m.calibration, ONNX_IO.scores);
  g.output(ONNX_IO.scores, DType.float, ['batch', 'n']);
  return g.model(meta(m, e, 'score', p));
}

/** The recommend graph: `user [B]`, `k [1]`, `exclude [B, E]`, `history [B, L]` to `scores [B, k]`, `items [B, k]`. */
export function buildEaseRecommendModel(m: EaseModel, e: EaseExportMeta, p: Precision): onnx.ModelProto {
  const g = new GraphBuilder(`recflow_ease_recommend_${p}`);
  const user = g.input(ONNX_IO.user, DType.int64, ['batch']);
  const k = g.input(ONNX_IO.k, DType.int64, [1]);
  const exclude = g.input(ONNX_IO.exclude, DType.int64, ['batch', 'excluded']);
  const history = g.input(HISTORY_INPUT, DType.int64, ['batch', 'history']);
  const ax = axes(g);
  const { scores, empty } = scorePart(g, p, m, user, history, ax);
  const top = recommendHead(g, scores, user, exclude, k, m.items, ax, ONNX_IO.topItems);
  calibrated(g, top, empty, m.calibration, ONNX_IO.scores);
  g.output(ONNX_IO.scores, DType.float, ['batch', 'k']);
  g.output(ONNX_IO.topItems, DType.int64, ['batch', 'k']);
  return g.model(meta(m, e, 'recommend', p));
}

/** Encoded graphs of both precisions. */
export function exportEaseGraphs(
  m: EaseModel,
  e: EaseExportMeta,
): Record<Precision, { score: Uint8Array; recommend: Uint8Array }> {
  const out = {} as Record<Precision, { score: Uint8Array; recommend: Uint8Array }>;
  for (const p of ['fp32', 'int8'] as const)
    out[p] = {
      score: encodeModel(buildEaseScoreModel(m, e, p)),
      recommend: encodeModel(buildEaseRecommendModel(m, e, p)),
    };
  return out;
}

/**
 * Write an EASE^R bundle into `dir` (a fresh folder): vocab.json, popular.json (the prior's order), the four
 * graphs, bundle.json. Returns the manifest.
 */
export async function exportEaseBundle(
  dir: string,
  m: EaseModel,
  input: Omit<GraphBundleInput, 'kind' | 'datasetId' | 'popularity' | 'graphs'>,
): Promise<BundleManifest> {
  return writeGraphBundle(dir, {
    ...input,
    kind: 'ease',
    datasetId: m.datasetId,
    popularity: m.prior,
    graphs: (vocabHash) => exportEaseGraphs(m, { ...input, vocabHash }),
  });
}
