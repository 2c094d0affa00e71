/**
 * Fitting EASE^R (kinds/ease/spec.ts has the model): the Gram matrix of the binary training matrix, one
 * `items x items` SPD inverse per λ of the grid (lib/recsys/linalg.ts), λ chosen on validation NDCG@10, then the
 * recent-popularity prior and the calibrations.
 */
import type { LoadedDataset } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { fitModelAndPrior } from '../../lib/recsys/calibration';
import { userHistories, userItemMatrix, type Csr, type FitProgress } from '../../lib/recsys/interactions';
import { spdInverseInPlace } from '../../lib/recsys/linalg';
import { fitRecentPopularity } from '../../lib/recsys/recent-popularity';
import { rankSplit } from '../../lib/train/metrics';
import { DEFAULT_EASE_CONFIG, assertEaseFits, easeScoresOf, type EaseConfig, type EaseModel } from './spec';

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** `XᵀX` of a binary CSR matrix (entries count as 1), float64 `cols x cols`. */
export function gramOf(x: Csr): Float64Array {
  const n = x.cols;
  const g = new Float64Array(n * n);
  for (let u = 0; u < x.rows; u++) {
    const lo = x.indptr[u]!;
    const hi = x.indptr[u + 1]!;
    for (let a = lo; a < hi; a++) {
      const ra = x.indices[a]! * n;
      for (let b = lo; b < hi; b++) g[ra + x.indices[b]!]! += 1;
    }
  }
  return g;
}

/**
 * B from the Gram matrix for one λ: `P = (G + λI)⁻¹`, `B_ij = -P_ij / P_jj`, `B_jj = 0`; float32, row 0 and
 * column 0 zero.
 */
export function easeWeights(
  gram: Float64Array,
  n: number,
  lambda: number,
  onProgress?: (f: number) => void,
): Float32Array {
  const p = Float64Array.from(gram);
  for (let i = 0; i < n; i++) p[i * n + i]! += lambda;
  spdInverseInPlace(p, n, onProgress);
  const w = new Float32Array(n * n);
  const inv = new Float64Array(n);
  for (let j = 0; j < n; j++) inv[j] = -1 / p[j * n + j]!;
  for (let i = 1; i < n; i++) {
    const o = i * n;
    for (let j = 1; j < n; j++) w[o + j] = i === j ? 0 : p[o + j]! * inv[j]!;
  }
  return w;
}

/**
 * Fit EASE^R on `ds`'s train split, λ chosen on validation from `config.lambdaGrid` (or `config.lambda`).
 * @throws {RecflowError} `InvalidInput` when the catalogue exceeds `maxItems` or λ is not positive;
 *   `InvalidData` when the train split is empty.
 */
export async function fitEase(
  ds: LoadedDataset,
  config: Partial<EaseConfig> = {},
  onProgress: FitProgress = () => {},
): Promise<EaseModel> {
  const t0 = performance.now();
  const c: EaseConfig = { ...DEFAULT_EASE_CONFIG, ...config };
  const users = ds.vocab.users.length;
  const n = ds.vocab.items.length;
  assertEaseFits(n, c.maxItems);
  if (ds.splits.train.user.length === 0)
    throw new RecflowError(ErrorType.InvalidData, `dataset ${ds.manifest.id}: the train split is empty`);
  const lambdas = c.lambdaGrid.length ? c.lambdaGrid : [c.lambda];
  for (const l of lambdas)
    if (!(l > 0)) throw new RecflowError(ErrorType.InvalidInput, `EASE config: lambda ${l} must be > 0`);
  if (!Number.isInteger(c.maxStoredHistory) || c.maxStoredHistory < 1)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `EASE config: maxStoredHistory ${c.maxStoredHistory} must be an integer >= 1`,
    );
  onProgress({ step: 'recent popularity' });
  const recent = await fitRecentPopularity(ds, c.recentGrid, c.maxValidationUsers);
  const x = userItemMatrix(ds.splits.train, users, n, () => 1);
  const gram = gramOf(x);
  // Stored histories: the most recent maxStoredHistory items of each user, oldest first.
  const hist = userHistories(ds.splits.train, c.maxStoredHistory);
  const historyPtr = new Int32Array(users + 1);
  const flat: number[] = [];
  for (let u = 0; u < users; u++) {
    for (const i of hist.get(u) ?? []) flat.push(i);
    historyPtr[u + 1] = flat.length;
  }
  const historyItems = Int32Array.from(flat);
  const scorerOf = (w: Float32Array) => (us: Int32Array) => {
    const out = new Float32Array(us.length * n);
    us.forEach((u, j) => {
      const lo = historyPtr[u]!;
      const hi = historyPtr[u + 1]!;
      if (lo === hi) out.set(recent.scores, j * n);
      else out.set(easeScoresOf(w, n, historyItems.subarray(lo, hi)), j * n);
    });
    return out;
  };
  const grid: EaseModel['validation']['grid'] = [];
  let best: { lambda: number; w: Float32Array; ndcg: number } | undefined;
  for (let g = 0; g < lambdas.length; g++) {
    const lambda = lambdas[g]!;
    const tg = performance.now();
    const w = easeWeights(gram, n, lambda, (f) =>
      onProgress({ step: 'ease', lambda, gridPoint: g + 1, gridPoints: lambdas.length, fraction: f }),
    );
    await yieldToEventLoop();
    const v = await rankSplit(ds, ds.splits.validation, scorerOf(w), { k: 10, maxUsers: c.maxValidationUsers });
    const ndcg = Number.isNaN(v.ndcg) ? 0 : v.ndcg;
    grid.push({ lambda, validationNdcg10: ndcg, seconds: (performance.now() - tg) / 1000 });
    if (!best || ndcg > best.ndcg) best = { lambda, w, ndcg };
  }
  onProgress({ step: 'calibration' });
  const { w, lambda, ndcg } = best!;
  const cache = new Map<number, Float64Array>();
  const calibration = fitModelAndPrior(ds, recent.scores, (u, i) => {
    const lo = historyPtr[u]!;
    const hi = historyPtr[u + 1]!;
    if (lo === hi) return undefined;
    let s = cache.get(u);
    if (!s) {
      s = easeScoresOf(w, n, historyItems.subarray(lo, hi));
      cache.set(u, s);
    }
    return s[i]!;
  });
  return {
    config: { ...c, lambda },
    datasetId: ds.manifest.id,
    users,
    items: n,
    weights: w,
    historyPtr,
    historyItems,
    prior: recent.scores,
    priorConfig: recent.config,
    calibration,
    validation: { ndcg10: ndcg, grid },
    fitSeconds: (performance.now() - t0) / 1000,
  };
}
