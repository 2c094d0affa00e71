/**
 * Graph pieces shared by the recommender kinds that read a `history` input (ALS, EASE^R): history weights (valid
 * and each item counted once), the cold-start prior mix, weight matrices of either precision, Platt-calibrated
 * probabilities, and the recommend head (mask index 0 and `exclude`, TopK); lib/onnx/linear-graphs.ts assembles
 * them. Opset 13: Unsqueeze, Squeeze and ReduceSum take their axes as inputs, ReduceMax as an attribute.
 */
import type { Precision } from '../bundle';
import { DType, attr, type GraphBuilder } from './builder';
import { MATMUL_QMAX, emitInt8MatMulPerRow, quantizePerColumn } from './quantize';

/** The `history` input: item indices of the bundle's vocab, `[B, L]`, 0-padded on the left, most recent last. */
export const HISTORY_INPUT = 'history';

/** A calibration `sigmoid(a * s + b)`. */
export interface GraphCalibration {
  a: number;
  b: number;
}

/** Named int64 axis constants, each created on first use (an unused initializer makes onnxruntime warn). */
export function axes(g: GraphBuilder): { readonly a0: string; readonly a1: string; readonly a2: string } {
  const made = new Map<number, string>();
  const get = (a: number) => {
    let n = made.get(a);
    if (!n) made.set(a, (n = g.int64(`axes_${a}`, [a])));
    return n;
  };
  return {
    get a0() {
      return get(0);
    },
    get a1() {
      return get(1);
    },
    get a2() {
      return get(2);
    },
  };
}

/**
 * The history with one 0 column prepended (`[B, L + 1]`), so every reduction over it has at least one element
 * even when the caller sends `L = 0`.
 */
export function padHistory(g: GraphBuilder, history: string, user: string, ax: ReturnType<typeof axes>): string {
  const zcol = g.op1('Unsqueeze', [g.op1('Mul', [user, g.int64('zero_i64_pad', [0], [])]), ax.a1]);
  return g.op1('Concat', [zcol, history], { axis: attr.int(1) });
}

/**
 * Weights `[B, L]` float of a history: 1 for a position holding an item index > 0 that does not occur again later
 * in the row (so each item counts once, at its last position), 0 otherwise (padding, repeats).
 */
export function historyWeights(g: GraphBuilder, history: string, ax: ReturnType<typeof axes>): string {
  const valid = g.op1('Cast', [g.op1('Greater', [history, g.int64('zero_i64', [0], [])])], {
    to: attr.int(DType.float),
  });
  const eq = g.op1('Equal', [g.op1('Unsqueeze', [history, ax.a2]), g.op1('Unsqueeze', [history, ax.a1])]);
  const len = g.op1('Gather', [g.op1('Shape', [history]), g.int64('one_scalar', [1], [])], { axis: attr.int(0) });
  const pos = g.op1('Range', [g.int64('range_start', [0], []), len, g.int64('range_delta', [1], [])]);
  // later[l, j] = l < j: position j comes after position l.
  const later = g.op1('Less', [g.op1('Unsqueeze', [pos, ax.a1]), g.op1('Unsqueeze', [pos, ax.a0])]);
  const dupLater = g.op1('ReduceMax', [g.op1('Cast', [g.op1('And', [eq, later])], { to: attr.int(DType.float) })], {
    axes: attr.ints([2]),
    keepdims: attr.int(0),
  });
  return g.op1('Mul', [valid, g.op1('Sub', [g.float('one_f', [1], []), dupLater])]);
}

/** `[B, 1]` float: 1 where `count [B, 1]` is zero (no usable item), times `gate [B, 1]` when given. */
export function emptyFlag(g: GraphBuilder, count: string, gate?: string): string {
  const e = g.op1('Cast', [g.op1('Less', [count, g.float('half_f', [0.5], [])])], { to: attr.int(DType.float) });
  return gate ? g.op1('Mul', [e, gate]) : e;
}

/** `raw + empty * prior`: the prior's scores (`prior`, broadcast to `raw`) on the rows flagged `empty [B, 1]`. */
export function mixPrior(g: GraphBuilder, raw: string, empty: string, prior: string): string {
  return g.op1('Add', [raw, g.op1('Mul', [empty, prior])]);
}

/**
 * `x [B, rows] @ W [rows, cols]` for a constant row-major `W`: fp32 MatMul (the initializer named `fp32Name`), or
 * int8 weights per column ({@link MATMUL_QMAX}) with the activations quantized per row (initializers `name_*`).
 */
export function weightMatMul(
  g: GraphBuilder,
  p: Precision,
  x: string,
  w: Float32Array,
  rows: number,
  cols: number,
  name: string,
  fp32Name = name,
): string {
  if (p === 'int8') return emitInt8MatMulPerRow(g, name, x, quantizePerColumn(w, rows, cols, MATMUL_QMAX));
  return g.op1('MatMul', [x, g.init(fp32Name, [rows, cols], w)]);
}

/**
 * Probabilities of raw scores `[B, N]` whose rows use the prior (`empty [B, 1]` = 1) or the model:
 * `sigmoid(a * s + b)` with (a, b) = `prior` or `model` per row.
 */
export function calibrated(
  g: GraphBuilder,
  scores: string,
  empty: string,
  cal: { model: GraphCalibration; prior: GraphCalibration },
  outName: string,
): string {
  const a = g.op1('Add', [
    g.float('cal_a_model', [cal.model.a], []),
    g.op1('Mul', [empty, g.float('cal_a_delta', [cal.prior.a - cal.model.a], [])]),
  ]);
  const b = g.op1('Add', [
    g.float('cal_b_model', [cal.model.b], []),
    g.op1('Mul', [empty, g.float('cal_b_delta', [cal.prior.b - cal.model.b], [])]),
  ]);
  return g.op1('Sigmoid', [g.op1('Add', [g.op1('Mul', [scores, a]), b])], {}, outName);
}

/**
 * The recommend head over catalogue scores `[B, items]`: index 0 and the `exclude` indices set to -inf
 * (ScatterElements), `TopK(min(k, items - 1))`; returns the top scores and writes the `items` output.
 */
export function recommendHead(
  g: GraphBuilder,
  scores: string,
  user: string,
  exclude: string,
  k: string,
  items: number,
  ax: ReturnType<typeof axes>,
  topItemsName: string,
): string {
  const zeros = g.op1('Mul', [user, g.int64('zero_i64_head', [0], [])]);
  const idx = g.op1('Concat', [g.op1('Unsqueeze', [zeros, ax.a1]), exclude], { axis: attr.int(1) });
  const minusInf = g.op1('ConstantOfShape', [g.op1('Shape', [idx])], {
    value: attr.tensor({ dims: [1], dataType: DType.float, floatData: [-Infinity] }),
  });
  const masked = g.op1('ScatterElements', [scores, idx, minusInf], { axis: attr.int(1) });
  const kk = g.op1('Min', [k, g.int64('max_k', [Math.max(1, items - 1)])]);
  const [vals] = g.op('TopK', [masked, kk], ['top_scores', topItemsName], {
    axis: attr.int(-1),
    largest: attr.int(1),
    sorted: attr.int(1),
  }) as [string, string];
  return vals;
}

/** `recflow.*` metadata of a linear-kind graph. */
export function linearMetadata(m: {
  kind: string;
  modelName: string;
  version?: string;
  datasetId: string;
  checkpointId: string;
  vocabHash: string;
  graph: 'score' | 'recommend';
  precision: 'fp32' | 'int8';
  exporterVersion: string;
  config: unknown;
}): Record<string, string> {
  return {
    'recflow.kind': m.kind,
    'recflow.model_name': m.modelName,
    'recflow.version': m.version ?? '',
    'recflow.dataset_id': m.datasetId,
    'recflow.checkpoint_id': m.checkpointId,
    'recflow.vocab_hash': m.vocabHash,
    'recflow.config': JSON.stringify(m.config),
    'recflow.graph': m.graph,
    'recflow.precision': m.precision,
    'recflow.exporter_version': m.exporterVersion,
    'recflow.inputs': m.graph === 'score' ? 'user,items,history' : 'user,k,exclude,history',
  };
}
