import { clickProbability, loadGroundTruth, type GroundTruth } from '../lib/data/ground-truth';
import type { ClickModel } from '../serving/simulator';
import type { ActivityDeps } from './deps';

/**
 * Simulated users click as the shop's hidden ground truth says: the oracle's click probability for the (user,
 * item) pair, damped by the position it was shown at (1 / log2(rank + 2), the DCG discount). So a worse model shows
 * items people click less, and the canary analysis sees a lower CTR: what real users would do.
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
    return (userId, itemId, _score, rank) => clickProbability(truth, userId, itemId) / Math.log2(rank + 2);
  };
}
