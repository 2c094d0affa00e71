/**
 * Ranking metrics during training: HR@K and NDCG@K of a split, the whole catalog ranked per user with the user's
 * training items excluded (the protocol of lib/eval/evaluate.ts, which evaluates the exported bundle), so the
 * validation NDCG@10 that early stopping and the hyperparameter search read means the same thing as the evaluation's.
 */
import type { Interactions, LoadedDataset } from '../data/dataset';
import { rankingMetrics } from '../eval/metrics';

/** Scores of `users.length x items` (row-major): higher is better. Item 0 (unknown) is never recommended. */
export type CatalogScorer = (users: Int32Array) => Float32Array | Promise<Float32Array>;

/** Ranking quality of one split. */
export interface SplitRanking {
  k: number;
  /** Users with at least one relevant item (the average's denominator). */
  users: number;
  hr: number;
  ndcg: number;
}

/** Which items each user interacted with in a split. */
export function itemsByUser(split: Interactions): Map<number, Set<number>> {
  const out = new Map<number, Set<number>>();
  for (let r = 0; r < split.user.length; r++) {
    const u = split.user[r] ?? 0;
    let s = out.get(u);
    if (!s) out.set(u, (s = new Set()));
    s.add(split.item[r] ?? 0);
  }
  return out;
}

/** Indices of the `k` largest scores in `row` (ties: lower index first), skipping `exclude` and item 0. */
export function topK(row: Float32Array, k: number, exclude: ReadonlySet<number> | undefined): number[] {
  const idx: number[] = [];
  const val: number[] = [];
  for (let i = 1; i < row.length; i++) {
    if (exclude?.has(i)) continue;
    const v = row[i] ?? -Infinity;
    if (idx.length === k && v <= (val[k - 1] ?? -Infinity)) continue;
    let p = idx.length === k ? k - 1 : idx.length;
    while (p > 0 && (val[p - 1] ?? -Infinity) < v) {
      idx[p] = idx[p - 1] ?? 0;
      val[p] = val[p - 1] ?? 0;
      p--;
    }
    idx[p] = i;
    val[p] = v;
    if (idx.length > k) {
      idx.length = k;
      val.length = k;
    }
  }
  return idx;
}

export interface RankSplitOptions {
  /** @default 10 */
  k?: number;
  /** At most this many users (the first by index): bounds the cost of a per-epoch validation. @default all */
  maxUsers?: number;
  /** Users per scorer call. @default 256 */
  batchSize?: number;
}

/**
 * HR@K and NDCG@K of `split` under `scorer`: per user, the relevant items are the split's items the user did not
 * have in training; the ranking excludes the user's training items and item 0.
 */
export async function rankSplit(
  ds: LoadedDataset,
  split: Interactions,
  scorer: CatalogScorer,
  opts: RankSplitOptions = {},
): Promise<SplitRanking> {
  const k = opts.k ?? 10;
  const nItems = ds.vocab.items.length;
  const seen = itemsByUser(ds.splits.train);
  const relevantOf = itemsByUser(split);
  const users: number[] = [];
  for (const [u, items] of [...relevantOf.entries()].sort((a, b) => a[0] - b[0])) {
    const prior = seen.get(u);
    const relevant = [...items].filter((i) => i !== 0 && !prior?.has(i));
    if (relevant.length) users.push(u);
    if (opts.maxUsers !== undefined && users.length >= opts.maxUsers) break;
  }
  const cases: Array<{ ranking: number[]; relevant: Set<number> }> = [];
  const batch = opts.batchSize ?? 256;
  for (let start = 0; start < users.length; start += batch) {
    const chunk = Int32Array.from(users.slice(start, start + batch));
    const scores = await scorer(chunk);
    for (let j = 0; j < chunk.length; j++) {
      const u = chunk[j] ?? 0;
      const prior = seen.get(u);
      const relevant = new Set([...(relevantOf.get(u) ?? [])].filter((i) => i !== 0 && !prior?.has(i)));
      cases.push({ ranking: topK(scores.subarray(j * nItems, (j + 1) * nItems), k, prior), relevant });
    }
  }
  const m = rankingMetrics(cases, k);
  return { k, users: m.users, hr: m.hitRate, ndcg: m.ndcg };
}

/** The popularity baseline: every user gets the catalog ranked by training interaction count. */
export function popularityScorer(ds: LoadedDataset): CatalogScorer {
  const pop = ds.items.popularity;
  return (users) => {
    const out = new Float32Array(users.length * pop.length);
    for (let j = 0; j < users.length; j++) out.set(pop, j * pop.length);
    return out;
  };
}
