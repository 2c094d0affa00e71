/**
 * ALS as ONNX graphs (the bundle contract of lib/bundle.ts, plus the `history` input), fp32 or int8.
 *
 * - User vector: `X[user]` for a trained user; otherwise the fold-in of `history` (kinds/als/spec.ts): the system
 *   `(YᵀY + λI + Σ (c - 1) y yᵀ) x = Σ c y` over the distinct history items, solved by `foldInSteps` steps of
 *   conjugate gradient preconditioned with `(YᵀY + λI)⁻¹` (a constant). With that preconditioner the iteration
 *   matrix is the identity plus a rank-|history| term, so CG is exact after |history| + 1 steps in exact arithmetic
 *   and converges fast for longer histories too (the parity test measures it against the Cholesky reference).
 * - Scores: `x . y_i`; a request with no trained user and no history item scores the recent-popularity prior.
 * - score graph: Platt-calibrated probabilities `[B, N]`; recommend graph: the same probabilities of the top k,
 *   index 0 and `exclude` masked (lib/onnx/recommender-parts.ts).
 * - int8: factor tables and item matrices with per-row (Gather) or per-column (MatMul) int8 scales
 *   (lib/onnx/quantize.ts); the fold-in's small d x d matrices stay fp32.
 */
import type { BundleManifest, Precision } from '../../lib/bundle';
import { attr, type GraphBuilder } from '../../lib/onnx/builder';
import { linearGraphs, type LinearBundleInput, type LinearGraphInputs } from '../../lib/onnx/linear-graphs';
import { emitInt8Gather, quantizePerRow, transpose } from '../../lib/onnx/quantize';
import { emptyFlag, historyWeights, mixPrior, padHistory, weightMatMul } from '../../lib/onnx/recommender-parts';
import { solveSpd } from '../../lib/recsys/linalg';
import { gramPlusReg, type AlsModel } from './spec';

/** Bumped when the graphs change: part of the bundle's idempotency key. */
export const ALS_EXPORTER_VERSION = 'recflow-als-onnx-2';

/** `(YᵀY + λI)` and its inverse, float32 for the graph. */
function foldInMatrices(m: AlsModel): { a0: Float32Array; m0: Float32Array } {
  const d = m.config.factors;
  const gram = gramPlusReg(m.itemFactors, m.items, d, m.config.regularization);
  const inv = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    const e = new Float64Array(d);
    e[c] = 1;
    const col = solveSpd(gram, d, e);
    for (let r = 0; r < d; r++) inv[r * d + c] = col[r]!;
  }
  return { a0: Float32Array.from(gram), m0: Float32Array.from(inv) };
}

/** Table lookup `[rows, cols]` by an index tensor: fp32 Gather or int8 per-row. */
function lookup(
  g: GraphBuilder,
  p: Precision,
  name: string,
  data: Float32Array,
  rows: number,
  cols: number,
  idx: string,
): string {
  if (p === 'int8') return emitInt8Gather(g, name, quantizePerRow(data, rows, cols), idx);
  return g.op1('Gather', [g.init(name, [rows, cols], data), idx], { axis: attr.int(0) });
}

/**
 * The user vectors `[B, d]` and the prior flag `[B, 1]` of a request (shared by both graphs).
 */
function userPart(
  g: GraphBuilder,
  p: Precision,
  m: AlsModel,
  { user, history, ax }: LinearGraphInputs,
): { u: string; empty: string } {
  const d = m.config.factors;
  const hist = padHistory(g, history, user, ax);
  const w = historyWeights(g, hist, ax);
  const c = m.historyConfidence;
  const trained = g.op1('Gather', [g.init('trained', [m.users], Float32Array.from(m.trained)), user], {
    axis: attr.int(0),
  });
  const t2 = g.op1('Unsqueeze', [trained, ax.a1]);
  const untrained = g.op1('Sub', [g.float('one_f_user', [1], []), t2]);
  const count = g.op1('ReduceSum', [w, ax.a1], { keepdims: attr.int(1) });
  const empty = emptyFlag(g, count, untrained);

  // Fold-in (vectors kept as [B, 1, d]).
  const yh = lookup(g, p, 'item_factors_hist', m.itemFactors, m.items, d, hist);
  const yhT = g.op1('Transpose', [yh], { perm: attr.ints([0, 2, 1]) });
  const wc = g.op1('Unsqueeze', [g.op1('Mul', [w, g.float('conf', [c], [])]), ax.a1]);
  const wd = g.op1('Unsqueeze', [g.op1('Mul', [w, g.float('conf_minus_1', [c - 1], [])]), ax.a1]);
  const { a0, m0 } = foldInMatrices(m);
  const A0 = g.init('fold_a0', [d, d], a0);
  const M0 = g.init('fold_m0', [d, d], m0);
  const tiny = g.float('tiny', [1e-30], []);
  const apply = (v: string) =>
    g.op1('Add', [g.op1('MatMul', [v, A0]), g.op1('MatMul', [g.op1('Mul', [g.op1('MatMul', [v, yhT]), wd]), yh])]);
  const dot = (a: string, b: string) => g.op1('ReduceSum', [g.op1('Mul', [a, b]), ax.a2], { keepdims: attr.int(1) });
  let r = g.op1('MatMul', [wc, yh]); // b, with x0 = 0
  let z = g.op1('MatMul', [r, M0]);
  let pv = z;
  let rz = dot(r, z);
  let x: string | undefined;
  for (let s = 0; s < m.config.foldInSteps; s++) {
    const ap = apply(pv);
    const alpha = g.op1('Div', [rz, g.op1('Add', [dot(pv, ap), tiny])]);
    const step = g.op1('Mul', [alpha, pv]);
    x = x ? g.op1('Add', [x, step]) : step;
    if (s === m.config.foldInSteps - 1) break;
    r = g.op1('Sub', [r, g.op1('Mul', [alpha, ap])]);
    z = g.op1('MatMul', [r, M0]);
    const rzNew = dot(r, z);
    const beta = g.op1('Div', [rzNew, g.op1('Add', [rz, tiny])]);
    pv = g.op1('Add', [z, g.op1('Mul', [beta, pv])]);
    rz = rzNew;
  }
  const fold = g.op1('Squeeze', [x!, ax.a1]);
  const xu = lookup(g, p, 'user_factors', m.userFactors, m.users, d, user);
  const u = g.op1('Add', [xu, g.op1('Mul', [untrained, fold])]);
  return { u, empty };
}

/** ALS's graphs and bundle (lib/onnx/linear-graphs.ts). */
export const alsGraphs = linearGraphs<AlsModel>({
  kind: 'als',
  exporterVersion: ALS_EXPORTER_VERSION,
  config: (m) => ({
    ...m.config,
    priorConfig: m.priorConfig,
    calibration: m.calibration,
    historyConfidence: m.historyConfidence,
  }),
  scoreItems(g, p, m, io) {
    const { items, ax } = io;
    const { u, empty } = userPart(g, p, m, io);
    const yi = lookup(g, p, 'item_factors', m.itemFactors, m.items, m.config.factors, items);
    const raw = g.op1('Squeeze', [g.op1('MatMul', [yi, g.op1('Unsqueeze', [u, ax.a2])]), ax.a2]);
    const prior = g.op1('Gather', [g.init('prior', [m.items], m.prior), items], { axis: attr.int(0) });
    return { scores: mixPrior(g, raw, empty, prior), empty };
  },
  scoreCatalogue(g, p, m, io) {
    const d = m.config.factors;
    const { u, empty } = userPart(g, p, m, io);
    const raw = weightMatMul(g, p, u, transpose(m.itemFactors, m.items, d), d, m.items, 'item_matrix', 'item_matrix_t');
    return { scores: mixPrior(g, raw, empty, g.init('prior', [m.items], m.prior)), empty };
  },
});

/**
 * Write an ALS bundle into `dir` (a fresh folder): vocab.json, popular.json (the prior's order), the four graphs,
 * bundle.json. Returns the manifest.
 */
export const exportAlsBundle: (dir: string, m: AlsModel, input: LinearBundleInput) => Promise<BundleManifest> =
  alsGraphs.exportBundle;
