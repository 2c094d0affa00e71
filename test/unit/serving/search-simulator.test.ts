/**
 * Simulated searchers over real HTTP: a search model that ranks by what the items are (stable) against the same
 * catalogue with shuffled texts (canary, a ranking that ignores relevance), half the searchers each. Clicks follow
 * the searchers' graded relevance with a position bias: the better ranking gets more clicks, the clicks match the
 * probabilities drawn, and the replica's per-bucket search counters (what the canary analysis reads) hold them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApp } from '../../../serving/app';
import { ServingMetrics } from '../../../serving/metrics';
import { ModelSlots } from '../../../serving/model-slot';
import { routeUser } from '../../../serving/router';
import { simulateTraffic, type SearchClicks } from '../../../serving/simulator';
import { makeSearchBundle, SEARCH_ITEMS } from '../../helpers/search-bundle';

/** A searcher's query: the text sent and the item it wants. */
interface Wanted {
  text: string;
  colour: string;
  thing: string;
}
const RATE = [0.02, 0.15, 0.4, 0.7];
const byId = new Map(SEARCH_ITEMS.map((i) => [i.id, i]));
/** 3 for the wanted item, 1 for the same product in another colour, else 0. */
function grade(q: Wanted, itemId: string): number {
  const it = byId.get(itemId);
  if (!it || it.thing !== q.thing) return 0;
  return it.colour === q.colour ? 3 : 1;
}

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'recflow-search-sim-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

void describe('simulated searchers', () => {
  void it('click by graded relevance: the relevant ranking gets more clicks than a shuffled one', async () => {
    const good = await makeSearchBundle(root, 'good');
    const shuffled = await makeSearchBundle(root, 'shuffled', { shuffleTexts: 11 });
    const metrics = new ServingMetrics({ processMetrics: false });
    const slots = new ModelSlots({});
    const salt = 'rollout-s';
    await slots.apply({
      generation: 1,
      stable: good.slot('search@v1'),
      canary: shuffled.slot('search@v2'),
      canaryWeight: 50,
      salt,
    });
    const app = buildApp({ slots, metrics, logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    let expected = 0;
    const searchers: SearchClicks<Wanted> = {
      sampleQuery: (r) => {
        const it = SEARCH_ITEMS[Math.floor(r() * SEARCH_ITEMS.length)]!;
        return { text: r() < 0.5 ? it.text : `${it.thing} in ${it.colour}`, colour: it.colour, thing: it.thing };
      },
      click: (q, itemId, rank) => {
        const p = (RATE[grade(q, itemId)] ?? 0) / Math.log2(rank + 2);
        expected += p;
        return p;
      },
    };
    try {
      const users = Array.from({ length: 200 }, (_, i) => `searcher-${i}`);
      const res = await simulateTraffic({
        urls: [url],
        users,
        route: (u) => routeUser(u, 50, true, salt),
        durationMs: 3000,
        rps: 120,
        k: 10,
        seed: 3,
        search: searchers,
      });
      assert.equal(res.errors, 0);
      assert.equal(res.dropped + res.timedOut, 0);
      assert.ok(res.requests >= 250, `${res.requests} searches`);
      const s = res.byVariant.stable!;
      const c = res.byVariant.canary!;
      assert.ok(s.requests > 60 && c.requests > 60, `both variants searched: ${s.requests} / ${c.requests}`);
      const ctr = (v: typeof s) => v.clicks / v.impressions;
      assert.ok(ctr(s) > 2 * ctr(c), `stable CTR ${ctr(s).toFixed(3)} vs shuffled ${ctr(c).toFixed(3)}`);
      // The clicks follow the probabilities the searchers drew them with (binomial: within 4 sigma).
      assert.ok(
        Math.abs(res.clicks - expected) < 4 * Math.sqrt(expected),
        `${res.clicks} clicks, ${expected} expected`,
      );

      // The replica counted every search and click in the searchers' buckets, as search series.
      const read = app.bucketed.read();
      for (const [variant, version, totals] of [
        ['stable', 'search@v1', s],
        ['canary', 'search@v2', c],
      ] as const) {
        const series = read.series.find((x) => x.variant === variant && x.version === version && x.salt === salt);
        assert.ok(series, `${variant} series`);
        assert.equal(series.kind, 'search');
        assert.deepEqual(series.totals, {
          requests: totals.requests,
          errors: 0,
          impressions: totals.impressions,
          clicks: totals.clicks,
        });
        assert.ok(series.clicks.filter((n) => n > 0).length > 20, 'clicks spread over the searchers’ buckets');
      }
    } finally {
      await app.close();
      await slots.close();
    }
  });
});
