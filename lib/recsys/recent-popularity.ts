/**
 * Recent popularity: items ranked by how many users interacted with them in the last W days of the training split
 * (or with an exponential time decay), ties broken by all-time training popularity. W (or the half-life) is chosen
 * on the validation split from a small grid. It is a baseline of the evaluation, and the prior every linear kind
 * (ALS, EASE) falls back to for a user with no history at all.
 *
 * On a time split the training split ends at `manifest.split.trainEnd`; the window is `[trainEnd - W, trainEnd)`.
 * A count is one (user, item) pair of the split (the split holds one row per pair, at the time of its last event).
 */
import type { Interactions, LoadedDataset } from '../data/dataset';
import { rankSplit } from '../train/metrics';

const DAY_MS = 86_400_000;

/** One setting of recent popularity: a hard window, an exponential decay, or all time (both null). */
export interface RecentPopularityConfig {
  /** Count only the last this many days of the training split; `null`: no window. */
  windowDays: number | null;
  /** Weight each interaction by `2^(-age / halfLifeDays)` (age in days before the split's end); `null`: no decay. */
  halfLifeDays: number | null;
}

/** The default validation grid: windows of 1, 3, 7, 14, 30 days and all time, and half-lives of 3, 7 and 14 days. */
export const RECENT_POPULARITY_GRID: readonly RecentPopularityConfig[] = [
  ...[1, 3, 7, 14, 30, null].map((w) => ({ windowDays: w, halfLifeDays: null })),
  ...[3, 7, 14].map((h) => ({ windowDays: null, halfLifeDays: h })),
];

/** A fitted recent popularity: the chosen setting, its item scores and how each grid point did on validation. */
export interface RecentPopularityFit {
  config: RecentPopularityConfig;
  /**
   * Item scores by item index, in [0, 1.5): `recent / maxRecent + tieBreak`, where the tie-break
   * `0.5 * allTime / (maxAllTime * (maxRecent + 1))` is below one recent count, so it only orders equal counts.
   * Index 0 scores 0.
   */
  scores: Float32Array;
  /** Validation NDCG@10 of every grid point (the chosen one is the best; the first wins a tie). */
  grid: Array<RecentPopularityConfig & { validationNdcg10: number }>;
  seconds: number;
}

/** Human-readable name of a setting: `7d`, `half-life 3d`, `all time`. */
export function describeRecent(c: RecentPopularityConfig): string {
  if (c.halfLifeDays !== null)
    return `half-life ${c.halfLifeDays}d${c.windowDays !== null ? `, ${c.windowDays}d window` : ''}`;
  return c.windowDays === null ? 'all time' : `${c.windowDays}d`;
}

/**
 * Item scores of one setting over `split` (interactions before `end`, epoch ms). `allTime` breaks ties.
 */
export function recentPopularityScores(
  split: Interactions,
  items: number,
  end: number,
  config: RecentPopularityConfig,
  allTime: ArrayLike<number>,
): Float32Array {
  const counts = new Float64Array(items);
  const from = config.windowDays === null ? -Infinity : end - config.windowDays * DAY_MS;
  const h = config.halfLifeDays;
  for (let r = 0; r < split.user.length; r++) {
    const t = split.timestamp[r]!;
    if (t < from || t >= end) continue;
    const i = split.item[r]!;
    if (i <= 0 || i >= items) continue;
    counts[i]! += h === null ? 1 : 2 ** (-(end - t) / (h * DAY_MS));
  }
  let maxC = 0;
  let maxP = 0;
  for (let i = 1; i < items; i++) {
    maxC = Math.max(maxC, counts[i]!);
    maxP = Math.max(maxP, allTime[i] ?? 0);
  }
  const out = new Float32Array(items);
  // The tie-break is below the smallest step of an integer count (1 / maxC); for decayed counts it is tiny.
  const eps = 0.5 / (maxC + 1);
  for (let i = 1; i < items; i++) {
    out[i] = (maxC > 0 ? counts[i]! / maxC : 0) + (maxP > 0 ? (eps * (allTime[i] ?? 0)) / maxP : 0);
  }
  return out;
}

/**
 * Choose the recent-popularity setting with the best validation NDCG@10 (training items excluded, the whole
 * catalogue ranked) and return its scores over the training split.
 */
export async function fitRecentPopularity(
  ds: LoadedDataset,
  grid: readonly RecentPopularityConfig[] = RECENT_POPULARITY_GRID,
  maxValidationUsers?: number,
): Promise<RecentPopularityFit> {
  const t0 = performance.now();
  const items = ds.vocab.items.length;
  const end = ds.manifest.split.trainEnd;
  const train = ds.splits.train;
  const results: RecentPopularityFit['grid'] = [];
  let best: { config: RecentPopularityConfig; scores: Float32Array; ndcg: number } | undefined;
  for (const config of grid.length ? grid : [{ windowDays: null, halfLifeDays: null }]) {
    const scores = recentPopularityScores(train, items, end, config, ds.items.popularity);
    const v = await rankSplit(ds, ds.splits.validation, constantScorer(scores), {
      k: 10,
      maxUsers: maxValidationUsers,
    });
    const ndcg = Number.isNaN(v.ndcg) ? 0 : v.ndcg;
    results.push({ ...config, validationNdcg10: ndcg });
    if (!best || ndcg > best.ndcg) best = { config, scores, ndcg };
  }
  return { config: best!.config, scores: best!.scores, grid: results, seconds: (performance.now() - t0) / 1000 };
}

/** A catalogue scorer that gives every user the same scores. */
export function constantScorer(scores: Float32Array): (users: Int32Array) => Float32Array {
  return (users) => {
    const out = new Float32Array(users.length * scores.length);
    for (let j = 0; j < users.length; j++) out.set(scores, j * scores.length);
    return out;
  };
}
