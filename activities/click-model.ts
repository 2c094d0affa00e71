import { clickProbability, finalHistory, indexOfId, loadGroundTruth, type GroundTruth } from '../lib/data/ground-truth';
import { loadSearchTruth, type RenderedQuery, type SearchTruth } from '../lib/data/search-truth';
import type { ClickModel } from '../serving/simulator';
import type { ActivityDeps } from './deps';

/**
 * Simulated users click as the shop's hidden ground truth says: the oracle's click probability for the (user,
 * item) pair at the end of the shop's time range, after the history the user ended the shop with (their last event
 * and last purchase: the session and complement terms), damped by the position it was shown at (1 / log2(rank + 2),
 * the DCG discount). So a worse model shows items people click less, and the canary analysis sees a lower CTR: what
 * real users would do.
 */
export function groundTruthClickModels(deps: ActivityDeps): (shopId: string) => Promise<ClickModel | undefined> {
  const cache = new Map<string, Promise<GroundTruth | undefined>>();
  return async (shopId) => {
    let gt = cache.get(shopId);
    if (!gt) {
      gt = deps.store
        .find('shop', shopId)
        .then((ref) => (ref ? loadGroundTruth(ref.path) : undefined))
        .catch(() => undefined);
      cache.set(shopId, gt);
    }
    const truth = await gt;
    if (!truth) return undefined;
    return groundTruthClickModel(truth);
  };
}

/** The click model of one loaded ground truth (see {@link groundTruthClickModels}). */
export function groundTruthClickModel(truth: GroundTruth): ClickModel {
  const histories = new Map<string, ReturnType<typeof finalHistory> | undefined>();
  const historyOf = (userId: string) => {
    if (!histories.has(userId)) {
      const u = indexOfId(userId, truth.meta.userIdPrefix, truth.meta.users);
      histories.set(userId, u >= 0 ? finalHistory(truth, u) : undefined);
    }
    return histories.get(userId);
  };
  return (userId, itemId, _score, rank) =>
    clickProbability(truth, userId, itemId, truth.meta.end, historyOf(userId)) / Math.log2(rank + 2);
}

/** Simulated searchers of a shop: new queries drawn from the hidden intents, clicks by the true relevance. */
export interface SearchClickModel {
  /** A new query (text and hidden intent). */
  sampleQuery(r: () => number): RenderedQuery;
  /** P(click) of `itemId` shown at 0-based `rank` for `query`: the searchers' rate for its true relevance grade. */
  click(query: RenderedQuery, itemId: string, rank: number): number;
}

/**
 * Search click models by shop id, from the shop's search truth (lib/data/search-truth.ts); undefined when the shop
 * is unknown or has no search log.
 */
export function searchClickModels(deps: ActivityDeps): (shopId: string) => Promise<SearchClickModel | undefined> {
  const cache = new Map<string, Promise<SearchTruth | undefined>>();
  return async (shopId) => {
    let st = cache.get(shopId);
    if (!st) {
      st = deps.store
        .find('shop', shopId)
        .then((ref) => (ref ? loadSearchTruth(ref.path) : undefined))
        .catch(() => undefined);
      cache.set(shopId, st);
    }
    const truth = await st;
    if (!truth) return undefined;
    return {
      sampleQuery: (r) => truth.sampleQuery(r),
      click: (query, itemId, rank) => truth.clickProbability(truth.relevanceOf(query.intent, itemId), rank),
    };
  };
}
