/**
 * EASE^R (Steck 2019), defined once: configuration, fitted model, checkpoint format and the reference forward.
 *
 * With X the binary user x item matrix of the training split (one entry per pair) and G = XᵀX:
 *   P = (G + λI)⁻¹,  B = I - P · diag(1 / diag(P)),  diag(B) = 0   (so B_ij = -P_ij / P_jj for i != j),
 * and a user with item set H scores item j with `sum_{i in H} B_ij`. There are no user parameters: a user is their
 * items. A trained user's items are stored with the model (the most recent `maxStoredHistory`); a request's
 * `history` is added to them (each item counted once); a user with no item at all gets the recent-popularity prior.
 * B is `items x items`: fitting holds ~3 such float64 matrices, serving one float32 (or int8) matrix, so the
 * catalogue is capped ({@link EaseConfig.maxItems}).
 */
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../../lib/errors';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/fs-atomic';
import type { Calibration } from '../../lib/recsys/calibration';
import { packArrays, readParts, slice } from '../../lib/recsys/packed';
import type { RecentPopularityConfig } from '../../lib/recsys/recent-popularity';

/** EASE^R settings ({@link DEFAULT_EASE_CONFIG}). */
export interface EaseConfig {
  /** L2 penalty λ (used as is when `lambdaGrid` is empty). @default 200 */
  lambda: number;
  /**
   * λ values tried on the validation split (best validation NDCG@10 kept; the first on a tie). Each costs one
   * `items x items` inverse (about items³/2 multiply-adds). @default [20, 100, 500, 2500]
   */
  lambdaGrid: number[];
  /**
   * Largest catalogue (item vocabulary size) EASE^R accepts: memory grows with its square. @default 5000
   */
  maxItems: number;
  /** Items of a trained user stored with the model (the most recent). @default 500 */
  maxStoredHistory: number;
  /** Settings tried for the recent-popularity prior. @default RECENT_POPULARITY_GRID */
  recentGrid?: RecentPopularityConfig[];
  /** Validation users the λ search ranks (the first by index). @default 5000 */
  maxValidationUsers: number;
}

export const DEFAULT_EASE_CONFIG: EaseConfig = {
  lambda: 200,
  lambdaGrid: [20, 100, 500, 2500],
  maxItems: 5000,
  maxStoredHistory: 500,
  maxValidationUsers: 5000,
};

/** A fitted EASE^R model. */
export interface EaseModel {
  /** The configuration, `lambda` the chosen value. */
  config: EaseConfig;
  datasetId: string;
  users: number;
  items: number;
  /** B, `items x items` row-major float32: `scores[j] = sum_{i in H} weights[i * items + j]`. Row and column 0 zero. */
  weights: Float32Array;
  /** Stored items of each user: `historyItems[historyPtr[u] .. historyPtr[u + 1])`, oldest first. */
  historyPtr: Int32Array;
  historyItems: Int32Array;
  /** Recent-popularity scores by item index: the ranking of a user without any item. */
  prior: Float32Array;
  priorConfig: RecentPopularityConfig;
  calibration: { model: Calibration; prior: Calibration };
  validation: { ndcg10: number; grid: Array<{ lambda: number; validationNdcg10: number; seconds: number }> };
  fitSeconds: number;
}

/** Check the catalogue size before allocating anything. @throws {RecflowError} `InvalidInput` above the cap. */
export function assertEaseFits(items: number, maxItems: number): void {
  if (items > maxItems)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `EASE^R needs an items x items matrix: this catalogue has ${items} items (vocabulary, index 0 included), more than maxItems = ${maxItems} (about ${Math.round((3 * 8 * items * items) / 2 ** 20)} MiB to fit, ${Math.round((4 * items * items) / 2 ** 20)} MiB to serve). Use ALS, or raise maxItems.`,
    );
}

/** The distinct usable items of a user: stored items (trained users) and the request's history. */
export function easeItemSet(m: EaseModel, user: number, history: ArrayLike<number>): Set<number> {
  const set = new Set<number>();
  if (user > 0 && user < m.users)
    for (let k = m.historyPtr[user]!; k < m.historyPtr[user + 1]!; k++) set.add(m.historyItems[k]!);
  for (let k = 0; k < history.length; k++) {
    const i = history[k] ?? 0;
    if (i > 0 && i < m.items) set.add(i);
  }
  return set;
}

/** `sum_{i in items} B_ij` for every j (float64); item 0 scores 0. */
export function easeScoresOf(weights: Float32Array, n: number, items: Iterable<number>): Float64Array {
  const out = new Float64Array(n);
  for (const i of items) {
    const o = i * n;
    for (let j = 0; j < n; j++) out[j]! += weights[o + j]!;
  }
  out[0] = 0;
  return out;
}

/** Reference ranking scores of every item for one request: item-set scores, or the prior for an empty set. */
export function easeCatalogScores(m: EaseModel, user: number, history: ArrayLike<number>): Float64Array {
  const set = easeItemSet(m, user, history);
  if (!set.size) return Float64Array.from(m.prior);
  return easeScoresOf(m.weights, m.items, set);
}

interface EaseCheckpointJson extends Omit<EaseModel, 'weights' | 'historyPtr' | 'historyItems' | 'prior'> {
  format: 'recflow-ease/1';
  arrays: Record<'weights' | 'historyPtr' | 'historyItems' | 'prior', { offset: number; bytes: number }>;
}

/** Write `checkpoint.json` and `arrays.bin` into `dir` (each atomically). */
export async function writeEaseCheckpoint(dir: string, m: EaseModel): Promise<void> {
  const { weights, historyPtr, historyItems, prior, ...rest } = m;
  const { bytes, arrays } = packArrays({ weights, historyPtr, historyItems, prior });
  await writeFileAtomic(join(dir, 'arrays.bin'), bytes);
  const json: EaseCheckpointJson = { format: 'recflow-ease/1', ...rest, arrays };
  await writeJsonAtomic(join(dir, 'checkpoint.json'), json);
}

/**
 * Read a checkpoint written by {@link writeEaseCheckpoint}.
 * @throws {RecflowError} `ArtifactMissing` when a file is missing, truncated or of another format.
 */
export async function readEaseCheckpoint(dir: string): Promise<EaseModel> {
  const { json, bin } = await readParts<EaseCheckpointJson>(dir, 'recflow-ease/1');
  const { format: _f, arrays, ...rest } = json;
  const m: EaseModel = {
    ...rest,
    weights: new Float32Array(slice(bin, arrays.weights, dir)),
    historyPtr: new Int32Array(slice(bin, arrays.historyPtr, dir)),
    historyItems: new Int32Array(slice(bin, arrays.historyItems, dir)),
    prior: new Float32Array(slice(bin, arrays.prior, dir)),
  };
  if (m.weights.length !== m.items * m.items || m.historyPtr.length !== m.users + 1)
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `checkpoint ${dir}: array shapes do not match ${m.users} users x ${m.items} items`,
    );
  return m;
}
