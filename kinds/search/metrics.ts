/**
 * Ranking metrics for graded relevance (search): each query has a ranked list of document ids (best first) and
 * judgements `doc -> grade` (grade > 0 is relevant). Definitions, as trec_eval / pytrec_eval (what BEIR reports):
 * - NDCG@K: linear gains `grade / log2(rank + 2)`, ideal DCG over the judged grades sorted, best first, cut at K;
 * - MRR@K: 1 / rank of the first relevant document within the top K, 0 if none;
 * - Recall@K: relevant documents in the top K / relevant documents.
 * Averaged over queries with at least one relevant document. With grades 0/1, NDCG@K and Recall@K equal
 * lib/eval/metrics.ts `rankingMetrics`' (a test checks it).
 */

/** One query: its ranking and its judgements. */
export interface GradedCase {
  ranking: ArrayLike<number>;
  grades: ReadonlyMap<number, number>;
}

/** NDCG@10, MRR@10 and Recall@100 (the cut-offs configurable), averaged over queries. */
export interface SearchMetrics {
  queries: number;
  ndcg: number;
  mrr: number;
  recall: number;
  /** The cut-offs used. */
  k: { ndcg: number; mrr: number; recall: number };
}

/** Average NDCG@ndcgK, MRR@mrrK and Recall@recallK over the cases with a relevant document. */
export function searchMetrics(
  cases: Iterable<GradedCase>,
  k: { ndcg?: number; mrr?: number; recall?: number } = {},
): SearchMetrics {
  const kn = k.ndcg ?? 10;
  const km = k.mrr ?? 10;
  const kr = k.recall ?? 100;
  let n = 0;
  let ndcg = 0;
  let mrr = 0;
  let recall = 0;
  for (const c of cases) {
    const rel = [...c.grades.values()].filter((g) => g > 0).sort((a, b) => b - a);
    if (!rel.length) continue;
    n++;
    let dcg = 0;
    let rr = 0;
    let hits = 0;
    const upto = Math.min(c.ranking.length, Math.max(kn, km, kr));
    for (let r = 0; r < upto; r++) {
      const g = c.grades.get(c.ranking[r] ?? -1) ?? 0;
      if (g <= 0) continue;
      if (r < kn) dcg += g / Math.log2(r + 2);
      if (r < km && rr === 0) rr = 1 / (r + 1);
      if (r < kr) hits++;
    }
    let idcg = 0;
    for (let r = 0; r < Math.min(kn, rel.length); r++) idcg += (rel[r] ?? 0) / Math.log2(r + 2);
    ndcg += dcg / idcg;
    mrr += rr;
    recall += hits / rel.length;
  }
  const avg = (x: number) => (n ? x / n : NaN);
  return { queries: n, ndcg: avg(ndcg), mrr: avg(mrr), recall: avg(recall), k: { ndcg: kn, mrr: km, recall: kr } };
}
