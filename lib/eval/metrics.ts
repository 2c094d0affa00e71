/**
 * Offline metrics of a recommender, plain functions over arrays (cross-checked against scikit-learn / numpy in
 * test/fixtures/eval/make_reference.py).
 *
 * Pointwise (labels 0/1, scores = probabilities): AUC (ties get half credit, as `roc_auc_score`), log loss (natural
 * log, probabilities clipped to [eps, 1 - eps] with eps = 2^-52, as `log_loss` on float64), and accuracy, precision,
 * recall and F1 of `score >= threshold` (precision and F1 are 0 when nothing is predicted positive, as
 * `zero_division=0`).
 *
 * Ranking (one ranked list of item indices per user, best first, and that user's relevant items): HR@K (any relevant
 * item in the top K), NDCG@K (binary gains, `1 / log2(rank + 2)`, ideal DCG over min(|relevant|, K)), MRR (reciprocal
 * rank of the first relevant item anywhere in the list, 0 if none), Recall@K (|relevant in top K| / |relevant|), each
 * averaged over users; catalog coverage@K (distinct items in all top-K lists / catalog size).
 */

/** Area under the ROC curve; NaN when only one class is present. */
export function auc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const n = checkSame(labels, scores);
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => (scores[a] ?? 0) - (scores[b] ?? 0));
  let pos = 0;
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    const avgRank = (i + j) / 2 + 1; // 1-based average rank of the tie group
    for (let t = i; t <= j; t++) {
      if ((labels[idx[t]!] ?? 0) > 0) {
        pos++;
        rankSumPos += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Mean binary cross-entropy (natural log). */
export function logLoss(labels: ArrayLike<number>, probs: ArrayLike<number>, eps = 2 ** -52): number {
  const n = checkSame(labels, probs);
  let s = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.min(1 - eps, Math.max(eps, probs[i] ?? 0));
    s -= (labels[i] ?? 0) > 0 ? Math.log(p) : Math.log(1 - p);
  }
  return n ? s / n : NaN;
}

export interface ThresholdMetrics {
  threshold: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
}

/** Accuracy, precision, recall and F1 of `score >= threshold`. */
export function thresholdMetrics(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  threshold = 0.5,
): ThresholdMetrics {
  const n = checkSame(labels, scores);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  for (let i = 0; i < n; i++) {
    const y = (labels[i] ?? 0) > 0;
    const p = (scores[i] ?? 0) >= threshold;
    if (y && p) tp++;
    else if (!y && p) fp++;
    else if (y) fn++;
    else tn++;
  }
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  return {
    threshold,
    accuracy: n ? (tp + tn) / n : NaN,
    precision,
    recall,
    f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
  };
}

/** One user's ranked list (item indices, best first) and relevant items. */
export interface RankedCase {
  ranking: ArrayLike<number>;
  relevant: ReadonlySet<number>;
}

export interface RankingMetrics {
  k: number;
  users: number;
  hitRate: number;
  ndcg: number;
  mrr: number;
  recall: number;
}

/** HR@K, NDCG@K, MRR and Recall@K averaged over the cases that have at least one relevant item. */
export function rankingMetrics(cases: Iterable<RankedCase>, k: number): RankingMetrics {
  let users = 0;
  let hr = 0;
  let ndcg = 0;
  let mrr = 0;
  let recall = 0;
  for (const c of cases) {
    if (c.relevant.size === 0) continue;
    users++;
    let hits = 0;
    let dcg = 0;
    let rr = 0;
    for (let r = 0; r < c.ranking.length; r++) {
      if (!c.relevant.has(c.ranking[r] ?? -1)) continue;
      if (rr === 0) rr = 1 / (r + 1);
      if (r < k) {
        hits++;
        dcg += 1 / Math.log2(r + 2);
      }
    }
    let idcg = 0;
    for (let r = 0; r < Math.min(k, c.relevant.size); r++) idcg += 1 / Math.log2(r + 2);
    hr += hits > 0 ? 1 : 0;
    ndcg += dcg / idcg;
    mrr += rr;
    recall += hits / c.relevant.size;
  }
  const avg = (x: number) => (users ? x / users : NaN);
  return { k, users, hitRate: avg(hr), ndcg: avg(ndcg), mrr: avg(mrr), recall: avg(recall) };
}

/** Distinct items in the top K of all lists, over the catalog size (items the model may recommend). */
export function catalogCoverage(rankings: Iterable<ArrayLike<number>>, k: number, catalogSize: number): number {
  const seen = new Set<number>();
  for (const r of rankings) for (let i = 0; i < Math.min(k, r.length); i++) seen.add(r[i] ?? -1);
  return catalogSize ? seen.size / catalogSize : NaN;
}

function checkSame(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`metrics: ${a.length} labels but ${b.length} scores`);
  return a.length;
}
