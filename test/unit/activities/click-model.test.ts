import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { groundTruthClickModels, searchClickModels } from '../../../activities/click-model';
import { defaultDeps } from '../../../activities/deps';
import { loadConfig } from '../../../lib/config';
import { clickProbability, finalHistory, loadGroundTruth, oracleTopK } from '../../../lib/data/ground-truth';
import { makeShop } from '../../../lib/data/pipeline';
import { mulberry32 } from '../../../lib/rng';
import { tempHome } from '../../helpers/temporal';

describe('ground-truth click models (canary simulator)', () => {
  it("recommendations: clicks know the user's last purchase; search: new queries, clicks by true relevance", async () => {
    const deps = defaultDeps(loadConfig({ RECFLOW_HOME: tempHome() }));
    const { shop } = await makeShop(deps.store, { users: 300, items: 200, events: 20_000, queries: 300, seed: 3 });
    const model = await groundTruthClickModels(deps)(shop.id);
    assert.ok(model);
    assert.equal(await groundTruthClickModels(deps)('shop-nope'), undefined);
    const gt = await loadGroundTruth(join(deps.store.root, 'shop', shop.id));
    // A user who ended the shop with a recent purchase: its complements are clicked more than without the history.
    const u = [...Array(gt.meta.users).keys()].find((k) => {
      const h = finalHistory(gt, k);
      const t = h.times?.[0] ?? 0;
      return h.types?.includes(3) && gt.meta.end - t < 86_400_000;
    });
    assert.ok(u !== undefined, 'a user with a purchase on the last day');
    const h = finalHistory(gt, u);
    const bought = h.items[(h.types ?? []).indexOf(3)] ?? 0;
    const complement = gt.itemComplements[bought * 4] ?? 0;
    const id = `i${complement + 1}`;
    const withHistory = model(`u${u + 1}`, id, null, 0);
    assert.equal(withHistory, clickProbability(gt, `u${u + 1}`, id, gt.meta.end, h));
    assert.ok(withHistory > clickProbability(gt, `u${u + 1}`, id, gt.meta.end) * 1.5);
    assert.ok(model(`u${u + 1}`, id, null, 4) < withHistory);
    // The history-aware oracle ranks the complement higher.
    const rankOf = (history?: typeof h) =>
      oracleTopK(gt, `u${u + 1}`, 200, undefined, gt.meta.end, history).findIndex((x) => x.itemId === id);
    assert.ok(rankOf(h) < rankOf(), `rank ${rankOf(h)} with the history, ${rankOf()} without`);

    const search = await searchClickModels(deps)(shop.id);
    assert.ok(search);
    const r = mulberry32(4);
    let relevantClick = 0;
    let irrelevantClick = 0;
    for (let k = 0; k < 100; k++) {
      const q = search.sampleQuery(r);
      assert.ok(q.text.length > 0);
      for (let i = 0; i < 200; i++) {
        const p = search.click(q, `i${i + 1}`, 0);
        if (p > 0.3) relevantClick++;
        else if (p < 0.05) irrelevantClick++;
      }
    }
    assert.ok(relevantClick > 0 && irrelevantClick > relevantClick);
    assert.equal(
      search.click({ text: 'x', intent: { type: 0, attrs: [] }, style: search.sampleQuery(r).style }, 'nope', 0),
      0.02,
    );
  });
});
