/**
 * Hard negatives for contrastive fine-tuning: for each training pair, the texts a first-stage ranker (BM25, or the
 * zero-shot encoder's embeddings) puts highest for the query that are not relevant to it: not its positive, not the
 * positive of another pair with the same query, and not judged relevant by `isRelevant` when given (graded
 * judgements of the search log). `skipTop` leaves out the very top, where unjudged relevant texts hide.
 */
import { Bm25Index, topK } from './bm25';
import type { TrainingPair } from './pairs';

/** Ranks the corpus for a query: corpus rows, best first. */
export type CorpusRanker = (query: string, k: number) => number[];

/** Options of {@link mineHardNegatives}. */
export interface MiningOptions {
  /** Negatives per pair. @default 1 */
  perPair?: number;
  /** Ranked candidates skipped at the top. @default 0 */
  skipTop?: number;
  /** Candidates examined per query. @default 50 */
  depth?: number;
  /** True when `text` is relevant to `query` (never used as its negative). */
  isRelevant?: (query: string, text: string) => boolean;
}

/** A {@link CorpusRanker} by BM25 (Okapi, Lucene-like analysis). */
export function bm25Ranker(corpus: readonly string[]): CorpusRanker {
  const index = new Bm25Index(corpus);
  return (q, k) => index.search(q, k).map((h) => h.doc);
}

/**
 * A {@link CorpusRanker} by dot product of precomputed embeddings (`corpusEmb` row-major `[corpus, dim]`); `embed`
 * returns the query's embedding.
 */
export function denseRanker(
  corpusEmb: Float32Array,
  dim: number,
  embed: (query: string) => Float32Array,
): CorpusRanker {
  const n = corpusEmb.length / dim;
  return (q, k) => {
    const e = embed(q);
    const s = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let j = 0; j < dim; j++) acc += (corpusEmb[i * dim + j] ?? 0) * (e[j] ?? 0);
      s[i] = acc;
    }
    return topK(s, k).map((h) => h.doc);
  };
}

/** The pairs with `negatives` filled from `rank` over `corpus` (given negatives are kept first). */
export function mineHardNegatives(
  pairs: readonly TrainingPair[],
  corpus: readonly string[],
  rank: CorpusRanker,
  opts: MiningOptions = {},
): TrainingPair[] {
  const per = opts.perPair ?? 1;
  const skip = opts.skipTop ?? 0;
  const depth = opts.depth ?? 50;
  const positives = new Map<string, Set<string>>();
  for (const p of pairs) {
    let s = positives.get(p.query);
    if (!s) positives.set(p.query, (s = new Set()));
    s.add(p.positive);
  }
  const cache = new Map<string, number[]>();
  return pairs.map((p) => {
    let ranked = cache.get(p.query);
    if (!ranked) cache.set(p.query, (ranked = rank(p.query, depth + skip)));
    const own = positives.get(p.query) ?? new Set<string>();
    const negatives = [...(p.negatives ?? [])];
    for (const row of ranked.slice(skip)) {
      if (negatives.length >= per) break;
      const text = corpus[row];
      if (text === undefined || own.has(text) || negatives.includes(text)) continue;
      if (opts.isRelevant?.(p.query, text)) continue;
      negatives.push(text);
    }
    return { ...p, negatives };
  });
}
