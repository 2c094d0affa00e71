/**
 * Traffic simulator: replays shop users against the serving replicas at a fixed request rate (open loop), users
 * drawn by their activity (a weight per user, e.g. their interaction count), and for each recommended item draws a
 * click from a click model, sent back as `/v1/feedback` with the response's token to any replica (as a load
 * balancer would). The click model is a parameter: the ground truth of a synthetic shop when there is one, else
 * {@link scoreClickModel} (clicks follow the served score). Requests it could not send (too many in flight) or that
 * timed out are counted per variant (the variant routing would have picked), so a window with them can be called
 * inconclusive.
 *
 * For a search model (`search`: a {@link SearchClicks}) the users are searchers: each request draws a query, calls
 * `/v1/search` with the user's id (sticky routing and stats buckets as for recommendations), and each returned item
 * is clicked with the probability the searchers' model gives its graded relevance for that query at that position,
 * so the canary analysis compares search CTR exactly as it compares recommendation CTR.
 */
import { mulberry32 } from '../lib/rng';
/** Deterministic PRNG (mulberry32). */
export const rng = mulberry32;

/** Probability (0..1) that `userId` clicks `itemId`, shown at `rank` with the served `score` (null: popularity). */
export type ClickModel = (userId: string, itemId: string, score: number | null, rank: number) => number;

/** Clicks follow the served score, damped by rank; popularity fallbacks get `base`. */
export function scoreClickModel(opts: { scale?: number; base?: number } = {}): ClickModel {
  const scale = opts.scale ?? 0.3;
  const base = opts.base ?? 0.02;
  return (_u, _i, score, rank) => (score === null ? base : Math.min(1, Math.max(0, score)) * scale) / (1 + 0.1 * rank);
}

/**
 * Simulated searchers: where queries come from and how they click. `Q` is whatever the click model needs to judge
 * a result (the query's hidden intent, for the synthetic shop's search truth: activities/click-model.ts).
 */
export interface SearchClicks<Q extends { text: string } = { text: string }> {
  /** A new query (its `text` is sent); draw only from `r` so a seeded run repeats. */
  sampleQuery(r: () => number): Q;
  /** P(click) of `itemId` shown at 0-based `rank` for `query` (graded relevance, position-biased). */
  click(query: Q, itemId: string, rank: number): number;
}

/** A known-item searcher's query: the title words typed and the item wanted. */
export interface KnownItemQuery {
  text: string;
  itemId: string;
}

/**
 * Searchers without a shop's search truth: known-item search over the catalogue (the fallback, as
 * {@link scoreClickModel} is for recommendations). A searcher wants one item, drawn uniformly, and types its text,
 * or its first words (with probability `prefixRate`, at least two words); the wanted item is clicked with
 * `wanted / log2(rank + 2)`, any other with `other / log2(rank + 2)`.
 */
export function knownItemSearchers(
  items: ReadonlyArray<{ id: string; text: string }>,
  opts: { prefixRate?: number; wanted?: number; other?: number } = {},
): SearchClicks<KnownItemQuery> {
  if (!items.length) throw new Error('knownItemSearchers: the catalogue is empty');
  const prefixRate = opts.prefixRate ?? 0.5;
  const wanted = opts.wanted ?? 0.7;
  const other = opts.other ?? 0.02;
  return {
    sampleQuery: (r) => {
      const it = items[Math.min(items.length - 1, Math.floor(r() * items.length))]!;
      const words = it.text.split(/\s+/).filter(Boolean);
      const cut = r() < prefixRate && words.length > 2 ? 2 + Math.floor(r() * (words.length - 2)) : words.length;
      return { text: words.slice(0, cut).join(' ') || it.id, itemId: it.id };
    },
    click: (q, itemId, rank) => (itemId === q.itemId ? wanted : other) / Math.log2(rank + 2),
  };
}

/** Options of {@link simulateTraffic}. */
export interface SimulateOptions {
  /** Replica base URLs; requests go round-robin. */
  urls: string[];
  /** Known user ids to replay. */
  users: string[];
  /** Activity of each user (same order as `users`): users are drawn in proportion to it. @default uniform */
  weights?: ArrayLike<number>;
  /** The variant a user is routed to (to attribute dropped and timed-out requests). @default unknown (`none`) */
  route?: (userId: string) => string;
  /** A request not answered within this is abandoned and counted as timed out. @default 5000 */
  requestTimeoutMs?: number;
  /** Where feedback goes: the replica that served the request, or any (round robin). @default 'any' */
  feedbackTo?: 'same' | 'any';
  durationMs: number;
  /** Recommend (or search) requests per second. */
  rps: number;
  /** @default 1 */
  seed?: number;
  /** Items per request. @default 10 */
  k?: number;
  /** Share of requests from users the model never saw. @default 0.05 */
  newUserFraction?: number;
  /** @default {@link scoreClickModel}() */
  clickModel?: ClickModel;
  /**
   * Drive `/v1/search` instead of `/v1/recommend`: queries and clicks from these searchers (`clickModel` is then
   * unused; searchers are drawn from `users` and new users as recommendation users are).
   */
  search?: SearchClicks;
  /** Most requests in flight; beyond it a due request is counted as dropped. @default 256 */
  maxInFlight?: number;
  /** Called about every `progressMs` (heartbeats). */
  onProgress?: (stats: SimulateResult) => void;
  /** @default 1000 */
  progressMs?: number;
  signal?: AbortSignal;
}

/** Totals of a simulation; `byVariant` as reported by the replicas. */
export interface SimulateResult {
  /** Requests sent (dropped ones not included). */
  requests: number;
  errors: number;
  /** Requests due but not sent: `maxInFlight` were in flight. */
  dropped: number;
  /** Requests abandoned after `requestTimeoutMs` (not in `errors`). */
  timedOut: number;
  impressions: number;
  clicks: number;
  /**
   * Per variant as the replicas labelled their answers (`x-model-variant`), failed requests included; requests
   * without an answer (dropped, timed out, refused without a label) go to the variant `route` gives.
   */
  byVariant: Record<string, VariantTotals>;
}

/** One variant's share of a simulation. */
export interface VariantTotals {
  requests: number;
  errors: number;
  impressions: number;
  clicks: number;
  dropped: number;
  timedOut: number;
}

/** A failed HTTP answer, with the variant the replica said served it (when it said). */
class HttpFailure extends Error {
  constructor(
    message: string,
    readonly variant: string | null,
  ) {
    super(message);
  }
}

interface RecommendResponse {
  requestId: string;
  model: { variant: string; version: string };
  items: Array<{ itemId: string; score: number | null }>;
  feedbackToken: string;
}

/** Cumulative weights for drawing index i with probability w[i] / sum(w) (binary search). */
function weightedPicker(weights: ArrayLike<number> | undefined, n: number): (u: number) => number {
  if (!weights || weights.length !== n) return (u) => Math.min(n - 1, Math.floor(u * n));
  const cum = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) cum[i] = total += Math.max(0, weights[i] ?? 0);
  if (!(total > 0)) return (u) => Math.min(n - 1, Math.floor(u * n));
  return (u) => {
    const x = u * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cum[mid] ?? 0) > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

/**
 * Drive recommend (or, with `search`, search) + feedback traffic for `durationMs`. Resolves when every request sent
 * has finished.
 */
export async function simulateTraffic(opts: SimulateOptions): Promise<SimulateResult> {
  if (!opts.urls.length) throw new Error('simulateTraffic: no replica URLs');
  if (!(opts.rps > 0)) throw new Error(`simulateTraffic: rps ${opts.rps} must be > 0`);
  const r = rng(opts.seed ?? 1);
  const click = opts.clickModel ?? scoreClickModel();
  const k = opts.k ?? 10;
  const newShare = opts.newUserFraction ?? 0.05;
  const search = opts.search;
  const maxInFlight = opts.maxInFlight ?? 256;
  const timeoutMs = opts.requestTimeoutMs ?? 5000;
  const routeOf = opts.route ?? (() => 'none');
  const res: SimulateResult = {
    requests: 0,
    errors: 0,
    dropped: 0,
    timedOut: 0,
    impressions: 0,
    clicks: 0,
    byVariant: {},
  };
  const inflight = new Set<Promise<void>>();
  let next = 0;
  let nextFeedback = 0;

  const variantTotals = (variant: string): VariantTotals =>
    (res.byVariant[variant] ??= { requests: 0, errors: 0, impressions: 0, clicks: 0, dropped: 0, timedOut: 0 });
  const pick = weightedPicker(opts.weights, opts.users.length);
  const pickUser = (): string => {
    if (!opts.users.length || r() < newShare) return `sim-new-${Math.floor(r() * 1e9)}`;
    return opts.users[pick(r())] ?? opts.users[0] ?? 'sim-user';
  };
  const postJson = async (url: string, body: unknown): Promise<unknown> => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const resp = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    });
    if (!resp.ok) {
      await resp.body?.cancel();
      throw new HttpFailure(`${url}: HTTP ${resp.status}`, resp.headers.get('x-model-variant'));
    }
    return resp.json();
  };
  const one = async (): Promise<void> => {
    const url = opts.urls[next++ % opts.urls.length] ?? '';
    const userId = pickUser();
    // Draw the query and the click decisions before awaiting so the random stream does not depend on timing.
    const query = search?.sampleQuery(r);
    const draws = Array.from({ length: k }, () => r());
    const p = (it: RecommendResponse['items'][number], rank: number) =>
      query && search ? search.click(query, it.itemId, rank) : click(userId, it.itemId, it.score, rank);
    res.requests++;
    let answered = false;
    try {
      const body = (
        query
          ? await postJson(`${url}/v1/search`, { query: query.text, k, userId })
          : await postJson(`${url}/v1/recommend`, { userId, k })
      ) as RecommendResponse;
      answered = true;
      const v = variantTotals(body.model.variant);
      v.requests++;
      v.impressions += body.items.length;
      res.impressions += body.items.length;
      for (const [rank, it] of body.items.entries()) {
        if ((draws[rank] ?? 1) >= p(it, rank)) continue;
        const to = opts.feedbackTo === 'same' ? url : (opts.urls[nextFeedback++ % opts.urls.length] ?? url);
        await postJson(`${to}/v1/feedback`, { token: body.feedbackToken, itemId: it.itemId, event: 'click' });
        res.clicks++;
        v.clicks++;
      }
    } catch (err) {
      const timedOut = (err as Error).name === 'TimeoutError' && !opts.signal?.aborted;
      if (timedOut && !answered) {
        res.timedOut++;
        variantTotals(routeOf(userId)).timedOut++;
        return;
      }
      res.errors++;
      const v = variantTotals((err instanceof HttpFailure && err.variant) || routeOf(userId));
      if (!answered) v.requests++;
      v.errors++;
    }
  };

  const t0 = Date.now();
  let due = 0;
  let lastProgress = t0;
  while (Date.now() - t0 < opts.durationMs && !opts.signal?.aborted) {
    const target = Math.floor(((Date.now() - t0) * opts.rps) / 1000);
    while (due < target) {
      due++;
      if (inflight.size >= maxInFlight) {
        res.dropped++;
        variantTotals(routeOf(pickUser())).dropped++;
        continue;
      }
      const p = one().finally(() => inflight.delete(p));
      inflight.add(p);
    }
    if (opts.onProgress && Date.now() - lastProgress >= (opts.progressMs ?? 1000)) {
      lastProgress = Date.now();
      opts.onProgress({ ...res });
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(inflight);
  opts.onProgress?.({ ...res });
  return res;
}
