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
import type { BundleManifest, Precision } from '../../lib/bundle';
import { DType, attr, type GraphBuilder } from '../../lib/onnx/builder';
import {
  linearGraphs,
  type LinearBundleInput,
  type LinearGraphInputs,
  type LinearScores,
} from '../../lib/onnx/linear-graphs';
import { emptyFlag, mixPrior, weightMatMul } from '../../lib/onnx/recommender-parts';
import type { EaseModel } from './spec';

/** Bumped when the graphs change: part of the bundle's idempotency key. */
export const EASE_EXPORTER_VERSION = 'recflow-ease-onnx-2';

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
  { user, history, ax }: LinearGraphInputs,
): LinearScores {
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
  const raw = weightMatMul(g, p, hot, m.weights, n, n, 'ease_b');
  return { scores: mixPrior(g, raw, empty, g.init('prior', [n], m.prior)), empty };
}

/** EASE^R's graphs and bundle (lib/onnx/linear-graphs.ts). */
export const easeGraphs = linearGraphs<EaseModel>({
  kind: 'ease',
  exporterVersion: EASE_EXPORTER_VERSION,
  config: (m) => ({ ...m.config, priorConfig: m.priorConfig, calibration: m.calibration }),
  scoreItems(g, p, m, io) {
    const { scores, empty } = scorePart(g, p, m, io);
    return { scores: g.op1('GatherElements', [scores, io.items], { axis: attr.int(1) }), empty };
  },
  scoreCatalogue: scorePart,
});

/**
 * Write an EASE^R bundle into `dir` (a fresh folder): vocab.json, popular.json (the prior's order), the four
 * graphs, bundle.json. Returns the manifest.
 */
export const exportEaseBundle: (dir: string, m: EaseModel, input: LinearBundleInput) => Promise<BundleManifest> =
  easeGraphs.exportBundle;
