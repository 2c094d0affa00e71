/**
 * Fitting ALS (kinds/als/spec.ts has the model): alternating least squares, one solve per user then one per item,
 * each touching only that row's interactions through the `YᵀY + Yᵀ(C_u - I)Y` decomposition (Hu et al. 2008), with
 * `implicit`'s conjugate-gradient solver (warm-started, `cgSteps` steps) or an exact Cholesky solve. Then the
 * validation grid, the recent-popularity prior and the calibration.
 */
import type { LoadedDataset } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { fitModelAndPrior } from '../../lib/recsys/calibration';
import { meanLabel, transposeCsr, userItemMatrix, type Csr, type FitProgress } from '../../lib/recsys/interactions';
import { choleskyInPlace, choleskySolveInPlace } from '../../lib/recsys/linalg';
import { fitRecentPopularity } from '../../lib/recsys/recent-popularity';
import { mulberry32 } from '../../lib/rng';
import { rankSplit } from '../../lib/train/metrics';
import { DEFAULT_ALS_CONFIG, gramPlusReg, type AlsConfig, type AlsGridPoint, type AlsModel } from './spec';

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One half-sweep: solve every row `u` of `X` given `Y`, `C` holding the confidences of row u's entries (preference
 * 1 where there is an entry). `cgSteps > 0`: conjugate gradient warm-started from the current row (as `implicit`'s
 * `least_squares_cg`); 0: exact solve.
 */
export function solveRows(C: Csr, X: Float32Array, Y: Float32Array, d: number, reg: number, cgSteps: number): void {
  const gram = gramPlusReg(Y, C.cols, d, reg);
  const x = new Float64Array(d);
  const r = new Float64Array(d);
  const p = new Float64Array(d);
  const ap = new Float64Array(d);
  const a = cgSteps > 0 ? undefined : new Float64Array(d * d);
  for (let u = 0; u < C.rows; u++) {
    const lo = C.indptr[u]!;
    const hi = C.indptr[u + 1]!;
    const xo = u * d;
    if (a) {
      // Exact: A = YᵀY + λI + Σ (c - 1) y yᵀ, b = Σ c y.
      a.set(gram);
      x.fill(0);
      for (let k = lo; k < hi; k++) {
        const c = C.data[k]!;
        const yo = C.indices[k]! * d;
        for (let s = 0; s < d; s++) {
          const ys = Y[yo + s]!;
          x[s]! += c * ys;
          const w = (c - 1) * ys;
          if (w === 0) continue;
          const row = s * d;
          for (let t = 0; t <= s; t++) a[row + t]! += w * Y[yo + t]!;
        }
      }
      for (let s = 0; s < d; s++) for (let t = s + 1; t < d; t++) a[s * d + t] = a[t * d + s]!;
      choleskyInPlace(a, d);
      choleskySolveInPlace(a, d, x);
      for (let s = 0; s < d; s++) X[xo + s] = x[s]!;
      continue;
    }
    for (let s = 0; s < d; s++) x[s] = X[xo + s]!;
    // r = Yᵀ C p - (YᵀY + λI + Yᵀ(C - I)Y) x
    for (let s = 0; s < d; s++) r[s] = -dot(gram, s * d, x, 0, d);
    for (let k = lo; k < hi; k++) {
      const c = C.data[k]!;
      const yo = C.indices[k]! * d;
      axpy(c - (c - 1) * dot(Y, yo, x, 0, d), Y, yo, r, d);
    }
    let rs = 0;
    for (let s = 0; s < d; s++) {
      p[s] = r[s]!;
      rs += r[s]! * r[s]!;
    }
    if (rs < 1e-20) continue;
    for (let step = 0; step < cgSteps; step++) {
      for (let s = 0; s < d; s++) ap[s] = dot(gram, s * d, p, 0, d);
      for (let k = lo; k < hi; k++) {
        const c = C.data[k]!;
        const yo = C.indices[k]! * d;
        axpy((c - 1) * dot(Y, yo, p, 0, d), Y, yo, ap, d);
      }
      let pap = 0;
      for (let s = 0; s < d; s++) pap += p[s]! * ap[s]!;
      const alpha = rs / pap;
      let rsNew = 0;
      for (let s = 0; s < d; s++) {
        x[s]! += alpha * p[s]!;
        r[s]! -= alpha * ap[s]!;
        rsNew += r[s]! * r[s]!;
      }
      if (rsNew < 1e-20) break;
      const beta = rsNew / rs;
      for (let s = 0; s < d; s++) p[s] = r[s]! + beta * p[s]!;
      rs = rsNew;
    }
    for (let s = 0; s < d; s++) X[xo + s] = x[s]!;
  }
}

/** `sum_k a[ao + k] * b[bo + k]` for k < n, four accumulators. */
function dot(a: Float32Array | Float64Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < n; k += 4) {
    s0 += a[ao + k]! * b[bo + k]!;
    s1 += a[ao + k + 1]! * b[bo + k + 1]!;
    s2 += a[ao + k + 2]! * b[bo + k + 2]!;
    s3 += a[ao + k + 3]! * b[bo + k + 3]!;
  }
  for (; k < n; k++) s0 += a[ao + k]! * b[bo + k]!;
  return s0 + s1 + s2 + s3;
}

/** `out[k] += w * a[ao + k]` for k < n. */
function axpy(w: number, a: Float32Array, ao: number, out: Float64Array, n: number): void {
  let k = 0;
  for (; k + 3 < n; k += 4) {
    out[k]! += w * a[ao + k]!;
    out[k + 1]! += w * a[ao + k + 1]!;
    out[k + 2]! += w * a[ao + k + 2]!;
    out[k + 3]! += w * a[ao + k + 3]!;
  }
  for (; k < n; k++) out[k]! += w * a[ao + k]!;
}

/** Initial factors as `implicit` draws them: uniform in [0, 0.01), users first, then items. */
export function initialFactors(
  users: number,
  items: number,
  d: number,
  seed: number,
): { X: Float32Array; Y: Float32Array } {
  const r = mulberry32(seed);
  const X = new Float32Array(users * d);
  const Y = new Float32Array(items * d);
  for (let k = 0; k < X.length; k++) X[k] = r() * 0.01;
  for (let k = 0; k < Y.length; k++) Y[k] = r() * 0.01;
  return { X, Y };
}

/**
 * Alternate `iterations` sweeps (users from items, then items from users) on a confidence matrix `Cui` (user rows)
 * and its transpose, starting from `X`, `Y` (changed in place).
 */
export async function alternate(
  Cui: Csr,
  Ciu: Csr,
  X: Float32Array,
  Y: Float32Array,
  c: Pick<AlsConfig, 'factors' | 'regularization' | 'iterations' | 'cgSteps'>,
  onIteration?: (iteration: number) => void,
): Promise<void> {
  for (let it = 0; it < c.iterations; it++) {
    solveRows(Cui, X, Y, c.factors, c.regularization, c.cgSteps);
    solveRows(Ciu, Y, X, c.factors, c.regularization, c.cgSteps);
    for (const v of Y)
      if (!Number.isFinite(v))
        throw new RecflowError(
          ErrorType.TrainingDiverged,
          `ALS diverged at iteration ${it}: non-finite item factors (raise the regularization)`,
        );
    onIteration?.(it);
    await yieldToEventLoop();
  }
}

/** Catalogue scores `users.length x items` of factor models with a prior for untrained users. */
export function factorScorer(
  X: Float32Array,
  Y: Float32Array,
  d: number,
  trained: Uint8Array,
  prior: Float32Array,
): (users: Int32Array) => Float32Array {
  const items = Y.length / d;
  return (users) => {
    const out = new Float32Array(users.length * items);
    const x = new Float64Array(d);
    users.forEach((u, j) => {
      const o = j * items;
      if (!trained[u]) {
        out.set(prior, o);
        return;
      }
      for (let s = 0; s < d; s++) x[s] = X[u * d + s]!;
      for (let i = 1; i < items; i++) {
        let v = 0;
        const yo = i * d;
        for (let s = 0; s < d; s++) v += x[s]! * Y[yo + s]!;
        out[o + i] = v;
      }
    });
    return out;
  };
}

/**
 * Fit ALS on `ds`'s train split: every grid point of `config.grid` (or `config` alone when the grid is empty),
 * the best by validation NDCG@10 kept, with the recent-popularity prior (chosen on validation) and Platt
 * calibrations (fitted on validation pairs).
 * @throws {RecflowError} `InvalidData` when the train split is empty; `InvalidInput` on a bad setting;
 *   `TrainingDiverged` when the factors stop being finite.
 */
export async function fitAls(
  ds: LoadedDataset,
  config: Partial<AlsConfig> = {},
  onProgress: FitProgress = () => {},
): Promise<AlsModel> {
  const t0 = performance.now();
  const base: AlsConfig = { ...DEFAULT_ALS_CONFIG, ...config };
  if (ds.splits.train.user.length === 0)
    throw new RecflowError(ErrorType.InvalidData, `dataset ${ds.manifest.id}: the train split is empty`);
  const users = ds.vocab.users.length;
  const items = ds.vocab.items.length;
  const points: AlsGridPoint[] = base.grid.length ? base.grid : [{}];
  for (const pt of points) checkConfig({ ...base, ...pt });
  onProgress({ step: 'recent popularity' });
  const recent = await fitRecentPopularity(ds, base.recentGrid, base.maxValidationUsers);
  const trained = new Uint8Array(users);
  for (const u of ds.splits.train.user) trained[u] = 1;
  /** Validation NDCG@10 of factors (NaN when no validation user has a positive). */
  const validationNdcg = async (X: Float32Array, Y: Float32Array, c: AlsConfig) => {
    const scorer = factorScorer(X, Y, c.factors, trained, recent.scores);
    return (await rankSplit(ds, ds.splits.validation, scorer, { k: 10, maxUsers: c.maxValidationUsers })).ndcg;
  };
  const byAlpha = new Map<number, { Cui: Csr; Ciu: Csr }>();
  const grid: AlsModel['validation']['grid'] = [];
  let best: { c: AlsConfig; X: Float32Array; Y: Float32Array; ndcg: number } | undefined;
  for (let g = 0; g < points.length; g++) {
    const c: AlsConfig = { ...base, ...points[g] };
    const tg = performance.now();
    let m = byAlpha.get(c.alpha);
    if (!m) {
      const Cui = userItemMatrix(ds.splits.train, users, items, (l) => 1 + c.alpha * l);
      m = { Cui, Ciu: transposeCsr(Cui) };
      byAlpha.set(c.alpha, m);
    }
    const { X, Y } = initialFactors(users, items, c.factors, c.seed);
    await alternate(m.Cui, m.Ciu, X, Y, c, (it) =>
      onProgress({
        step: 'als',
        gridPoint: g + 1,
        gridPoints: points.length,
        iteration: it + 1,
        iterations: c.iterations,
      }),
    );
    clean(X, Y, c.factors, trained);
    let ndcg = NaN;
    if (points.length > 1) {
      const v = await validationNdcg(X, Y, c);
      ndcg = Number.isNaN(v) ? 0 : v;
    }
    grid.push({ ...points[g], validationNdcg10: ndcg, seconds: (performance.now() - tg) / 1000 });
    if (!best || ndcg > best.ndcg) best = { c, X, Y, ndcg };
  }
  const { c, X, Y } = best!;
  if (points.length === 1) {
    const v = await validationNdcg(X, Y, c);
    best!.ndcg = v;
    grid[0]!.validationNdcg10 = v;
  }
  onProgress({ step: 'calibration' });
  const calibration = fitModelAndPrior(ds, recent.scores, (u, i) => {
    if (!trained[u]) return undefined;
    let v = 0;
    for (let s = 0; s < c.factors; s++) v += X[u * c.factors + s]! * Y[i * c.factors + s]!;
    return v;
  });
  const { grid: _g, ...chosen } = c;
  return {
    config: { ...chosen, grid: base.grid },
    datasetId: ds.manifest.id,
    users,
    items,
    userFactors: X,
    itemFactors: Y,
    trained,
    prior: recent.scores,
    priorConfig: recent.config,
    historyConfidence: 1 + c.alpha * meanLabel(ds.splits.train),
    calibration,
    validation: { ndcg10: best!.ndcg, grid },
    fitSeconds: (performance.now() - t0) / 1000,
  };
}

/** Zero the rows the graphs must not use: untrained users, item 0. */
function clean(X: Float32Array, Y: Float32Array, d: number, trained: Uint8Array): void {
  for (let u = 0; u < trained.length; u++) if (!trained[u]) X.fill(0, u * d, (u + 1) * d);
  Y.fill(0, 0, d);
}

function checkConfig(c: AlsConfig): void {
  const bad = (field: string, v: unknown, want: string) => {
    throw new RecflowError(ErrorType.InvalidInput, `ALS config: ${field} = ${String(v)}: ${want}`);
  };
  if (!Number.isInteger(c.factors) || c.factors < 1 || c.factors > 1024)
    bad('factors', c.factors, 'an integer in [1, 1024]');
  if (!(c.regularization > 0)) bad('regularization', c.regularization, 'must be > 0');
  if (!(c.alpha >= 0)) bad('alpha', c.alpha, 'must be >= 0');
  if (!Number.isInteger(c.iterations) || c.iterations < 1) bad('iterations', c.iterations, 'an integer >= 1');
  if (!Number.isInteger(c.cgSteps) || c.cgSteps < 0) bad('cgSteps', c.cgSteps, 'an integer >= 0');
  if (!Number.isInteger(c.foldInSteps) || c.foldInSteps < 1) bad('foldInSteps', c.foldInSteps, 'an integer >= 1');
}
