/**
 * Hybrid ranking: a weighted sum of normalised BM25 and dense scores, `w * dense' + (1 - w) * bm25'`, where
 * `bm25' = bm25 / max(bm25)` (0 when nothing matches) and `dense' = (s - min) / (max - min)` over the catalogue,
 * per query. The weight is chosen on validation queries by {@link tuneHybridWeight} (a grid, best NDCG@10).
 */
import { ErrorType, RecflowError } from '../../lib/errors';
import { topK } from './bm25';
import { searchMetrics, type SearchMetrics } from './metrics';

/** The combined score of every document. */
export function hybridScores(bm25: ArrayLike<number>, dense: ArrayLike<number>, weight: number): Float32Array {
  if (bm25.length !== dense.length) {
    throw new RecflowError(
      ErrorType.InvalidInput,
      `hybrid: ${bm25.length} BM25 scores but ${dense.length} dense scores`,
    );
  }
  if (!(weight >= 0 && weight <= 1))
    throw new RecflowError(ErrorType.InvalidInput, `hybrid weight ${weight} not in [0, 1]`);
  let bmax = 0;
  let dmin = Infinity;
  let dmax = -Infinity;
  for (let i = 0; i < dense.length; i++) {
    bmax = Math.max(bmax, bm25[i] ?? 0);
    dmin = Math.min(dmin, dense[i] ?? 0);
    dmax = Math.max(dmax, dense[i] ?? 0);
  }
  const out = new Float32Array(dense.length);
  const dr = dmax > dmin ? dmax - dmin : 1;
  for (let i = 0; i < dense.length; i++) {
    const b = bmax > 0 ? (bm25[i] ?? 0) / bmax : 0;
    out[i] = weight * (((dense[i] ?? 0) - dmin) / dr) + (1 - weight) * b;
  }
  return out;
}

/** The top `k` document rows for one query. */
export function hybridRank(bm25: ArrayLike<number>, dense: ArrayLike<number>, weight: number, k: number): number[] {
  return topK(hybridScores(bm25, dense, weight), k).map((h) => h.doc);
}

/** One validation query for {@link tuneHybridWeight}: its scores over the catalogue and its judgements. */
export interface HybridCase {
  bm25: ArrayLike<number>;
  dense: ArrayLike<number>;
  grades: ReadonlyMap<number, number>;
}

/** The chosen weight, its validation metrics and the whole grid. */
export interface HybridTuning {
  weight: number;
  metrics: SearchMetrics;
  grid: Array<{ weight: number; ndcg: number }>;
}

/**
 * Pick the weight with the best validation NDCG@10 from `grid` (ties: the larger weight, i.e. more dense).
 * @param grid candidate weights; @default 0, 0.05, ..., 1
 */
export function tuneHybridWeight(
  cases: readonly HybridCase[],
  grid: readonly number[] = Array.from({ length: 21 }, (_, i) => i / 20),
): HybridTuning {
  if (!cases.length) throw new RecflowError(ErrorType.InvalidInput, 'hybrid tuning needs validation queries');
  let best: HybridTuning | undefined;
  const rows: Array<{ weight: number; ndcg: number }> = [];
  for (const w of grid) {
    const metrics = searchMetrics(
      cases.map((c) => ({ ranking: hybridRank(c.bm25, c.dense, w, 100), grades: c.grades })),
    );
    rows.push({ weight: w, ndcg: metrics.ndcg });
    if (!best || metrics.ndcg >= best.metrics.ndcg) best = { weight: w, metrics, grid: rows };
  }
  return best!;
}
