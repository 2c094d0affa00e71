/**
 * ALS for implicit feedback (Hu, Koren, Volinsky 2008), defined once: the configuration, the fitted model, the
 * checkpoint format and the plain-TypeScript reference forward that the ONNX graphs are checked against.
 *
 * Model: preference p_ui = 1 for every training pair, 0 elsewhere; confidence c_ui = 1 + alpha * label_ui
 * (label in (0, 1], the dataset's implicit strength), 1 elsewhere. Minimise
 *   sum_ui c_ui (p_ui - x_u . y_i)^2 + regularization * (|x_u|^2 + |y_i|^2)
 * by alternating exact-in-the-limit least squares (kinds/als/fit.ts). Score of (u, i): x_u . y_i.
 *
 * Users:
 * - a user with training events (`trained[u] = 1`) is scored with the fitted x_u;
 * - any other user (index 0, or a user of the vocabulary without training events) is represented from the
 *   history passed in: x = argmin over x of the same loss with Y fixed (the "fold-in"), i.e. the exact solve
 *   (YᵀY + λI + Yᵀ(C_u - I)Y) x = Yᵀ C_u p_u, every history item with confidence `historyConfidence`
 *   (1 + alpha * the mean training label: a request's history carries no labels), each item counted once;
 * - with no history at all, the scores are the recent-popularity prior (lib/recsys/recent-popularity.ts).
 */
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../../lib/errors';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/fs-atomic';
import type { Calibration } from '../../lib/recsys/calibration';
import { solveSpd } from '../../lib/recsys/linalg';
import { packArrays, readParts, slice } from '../../lib/recsys/packed';
import type { RecentPopularityConfig } from '../../lib/recsys/recent-popularity';

/** The hyperparameters a grid point may set. */
export type AlsGridPoint = Partial<Pick<AlsConfig, 'factors' | 'regularization' | 'alpha'>>;

/** ALS settings ({@link DEFAULT_ALS_CONFIG}). */
export interface AlsConfig {
  /** Latent factors per user and item. @default 64 */
  factors: number;
  /** L2 penalty λ on every factor vector (not scaled by the number of interactions, as `implicit`). @default 10 */
  regularization: number;
  /** Confidence of a training pair: 1 + alpha * label. @default 10 */
  alpha: number;
  /** Alternating sweeps (users, then items). @default 15 */
  iterations: number;
  /**
   * Conjugate-gradient steps per least-squares solve, warm-started from the previous sweep (Takács et al. 2011,
   * `implicit`'s default solver with 3 steps); 0 solves each system exactly (Cholesky, slower). @default 3
   */
  cgSteps: number;
  /** Seed of the initial factors (uniform in [0, 0.01), as `implicit`). @default 42 */
  seed: number;
  /**
   * Grid points tried on the validation split (each overrides the fields above; the best validation NDCG@10 is
   * kept, the first on a tie). Empty: fit the configuration as given. @default {@link DEFAULT_ALS_GRID}
   */
  grid: AlsGridPoint[];
  /** Preconditioned conjugate-gradient steps of the fold-in inside the ONNX graphs. @default 12 */
  foldInSteps: number;
  /** Settings tried for the recent-popularity prior. @default RECENT_POPULARITY_GRID */
  recentGrid?: RecentPopularityConfig[];
  /** Validation users the grid search ranks (the first by index). @default 5000 */
  maxValidationUsers: number;
}

/**
 * The default validation grid: regularization in half-decades {1, 3, 10, 30, 100} x confidence weight alpha in
 * {1, 10}. Half-decades, because the best λ moves with the density of the data and the confidence scale (with
 * `implicit`'s unscaled λ) and the optimum is narrow; two alphas, because labels are implicit strengths in (0, 1].
 * Not tuned to any data set.
 */
export const DEFAULT_ALS_GRID: AlsGridPoint[] = [1, 10].flatMap((alpha) =>
  [1, 3, 10, 30, 100].map((regularization) => ({ alpha, regularization })),
);

export const DEFAULT_ALS_CONFIG: AlsConfig = {
  factors: 64,
  regularization: 10,
  alpha: 10,
  iterations: 15,
  cgSteps: 3,
  seed: 42,
  grid: DEFAULT_ALS_GRID,
  foldInSteps: 12,
  maxValidationUsers: 5000,
};

/** A fitted ALS model (everything the graphs and the reference forward need). */
export interface AlsModel {
  /** The configuration of the kept grid point. */
  config: AlsConfig;
  datasetId: string;
  users: number;
  items: number;
  /** `users x factors`, row-major. Rows of untrained users are zero. */
  userFactors: Float32Array;
  /** `items x factors`, row-major. Row 0 is zero. */
  itemFactors: Float32Array;
  /** 1 for users with training events (their factors are fitted), 0 for the others. */
  trained: Uint8Array;
  /** Recent-popularity scores by item index: the ranking of a user without any history. */
  prior: Float32Array;
  priorConfig: RecentPopularityConfig;
  /** Confidence of each history item in the fold-in. */
  historyConfidence: number;
  /** Probabilities: `model` for factor scores, `prior` for prior scores. */
  calibration: { model: Calibration; prior: Calibration };
  /** Validation NDCG@10 of every grid point, and seconds spent. */
  validation: { ndcg10: number; grid: Array<AlsGridPoint & { validationNdcg10: number; seconds: number }> };
  fitSeconds: number;
}

/** `(YᵀY + λI)` in float64, `d x d`. */
export function gramPlusReg(y: Float32Array, rows: number, d: number, reg: number): Float64Array {
  const g = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let any = false;
    for (let a = 0; a < d; a++) {
      row[a] = y[o + a]!;
      if (row[a] !== 0) any = true;
    }
    if (!any) continue;
    for (let a = 0; a < d; a++) {
      const ya = row[a]!;
      if (ya === 0) continue;
      const ga = a * d;
      for (let b = a; b < d; b++) g[ga + b]! += ya * row[b]!;
    }
  }
  for (let a = 0; a < d; a++) {
    g[a * d + a]! += reg;
    for (let b = a + 1; b < d; b++) g[b * d + a] = g[a * d + b]!;
  }
  return g;
}

/**
 * The exact fold-in of a history: `x = (YᵀY + λI + Σ (c - 1) y_i y_iᵀ)⁻¹ Σ c y_i` over the distinct history items
 * (index 0 and out-of-range indices ignored), float64. `gram` is {@link gramPlusReg} of the item factors.
 */
export function foldIn(
  itemFactors: Float32Array,
  d: number,
  gram: Float64Array,
  history: ArrayLike<number>,
  confidence: number,
): Float64Array {
  const items = itemFactors.length / d;
  const a = Float64Array.from(gram);
  const b = new Float64Array(d);
  const seen = new Set<number>();
  for (let k = 0; k < history.length; k++) {
    const i = history[k] ?? 0;
    if (i <= 0 || i >= items || seen.has(i)) continue;
    seen.add(i);
    const o = i * d;
    for (let p = 0; p < d; p++) {
      const yp = itemFactors[o + p]!;
      b[p]! += confidence * yp;
      const w = (confidence - 1) * yp;
      for (let q = 0; q < d; q++) a[p * d + q]! += w * itemFactors[o + q]!;
    }
  }
  if (!seen.size) return new Float64Array(d);
  return solveSpd(a, d, b);
}

/** The reference user vector: fitted factors for a trained user, else the fold-in of `history`. */
export function alsUserVector(
  m: AlsModel,
  user: number,
  history: ArrayLike<number>,
  gram = gramPlusReg(m.itemFactors, m.items, m.config.factors, m.config.regularization),
): Float64Array {
  const d = m.config.factors;
  if (user > 0 && user < m.users && m.trained[user])
    return Float64Array.from(m.userFactors.subarray(user * d, (user + 1) * d));
  return foldIn(m.itemFactors, d, gram, history, m.historyConfidence);
}

/** Whether a request falls back to the prior: an untrained (or unknown) user with no usable history item. */
export function usesPrior(
  m: { users: number; items: number; trained: Uint8Array },
  user: number,
  history: ArrayLike<number>,
): boolean {
  if (user > 0 && user < m.users && m.trained[user]) return false;
  for (let k = 0; k < history.length; k++) {
    const i = history[k] ?? 0;
    if (i > 0 && i < m.items) return false;
  }
  return true;
}

/**
 * Reference ranking scores of every item for one request (float64): `x . y_i`, or the prior when
 * {@link usesPrior}.
 */
export function alsCatalogScores(
  m: AlsModel,
  user: number,
  history: ArrayLike<number>,
  gram?: Float64Array,
): Float64Array {
  if (usesPrior(m, user, history)) return Float64Array.from(m.prior);
  const d = m.config.factors;
  const x = alsUserVector(m, user, history, gram);
  const out = new Float64Array(m.items);
  for (let i = 1; i < m.items; i++) {
    let s = 0;
    const o = i * d;
    for (let p = 0; p < d; p++) s += x[p]! * m.itemFactors[o + p]!;
    out[i] = s;
  }
  return out;
}

interface AlsCheckpointJson extends Omit<AlsModel, 'userFactors' | 'itemFactors' | 'trained' | 'prior'> {
  format: 'recflow-als/1';
  arrays: Record<'userFactors' | 'itemFactors' | 'prior' | 'trained', { offset: number; bytes: number }>;
}

/** Write `checkpoint.json` and `arrays.bin` into `dir` (each atomically). */
export async function writeAlsCheckpoint(dir: string, m: AlsModel): Promise<void> {
  const parts = { userFactors: m.userFactors, itemFactors: m.itemFactors, prior: m.prior, trained: m.trained };
  const { bytes, arrays } = packArrays(parts);
  await writeFileAtomic(join(dir, 'arrays.bin'), bytes);
  const { userFactors: _u, itemFactors: _i, prior: _p, trained: _t, ...rest } = m;
  const json: AlsCheckpointJson = { format: 'recflow-als/1', ...rest, arrays };
  await writeJsonAtomic(join(dir, 'checkpoint.json'), json);
}

/**
 * Read a checkpoint written by {@link writeAlsCheckpoint}.
 * @throws {RecflowError} `ArtifactMissing` when a file is missing, truncated or of another format.
 */
export async function readAlsCheckpoint(dir: string): Promise<AlsModel> {
  const { json, bin } = await readParts<AlsCheckpointJson>(dir, 'recflow-als/1');
  const { format: _f, arrays, ...rest } = json;
  const d = rest.config.factors;
  const model: AlsModel = {
    ...rest,
    userFactors: new Float32Array(slice(bin, arrays.userFactors, dir)),
    itemFactors: new Float32Array(slice(bin, arrays.itemFactors, dir)),
    prior: new Float32Array(slice(bin, arrays.prior, dir)),
    trained: new Uint8Array(slice(bin, arrays.trained, dir)),
  };
  if (model.userFactors.length !== model.users * d || model.itemFactors.length !== model.items * d)
    throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: factor shapes do not match the config`);
  return model;
}
