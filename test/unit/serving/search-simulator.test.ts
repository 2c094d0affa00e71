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
import { knownItemSearchers, simulateTraffic } from '../../../serving/simulator';
import { catalogueSearchers, makeSearchBundle } from '../../helpers/search-bundle';

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
    const searchers = catalogueSearchers((p) => (expected += p));
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
        // A starved shared host can stall a request for seconds: this test is about clicks, not time-outs.
        requestTimeoutMs: 60_000,
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

  void it('known-item searchers (no search truth): type an item text or its first words, click that item most', () => {
    const items = [
      { id: 'a', text: 'red leather running shoes' },
      { id: 'b', text: 'blue mug' },
    ];
    const s = knownItemSearchers(items);
    let x = 0;
    const r = () => ((x = (x * 7919 + 13) % 1000), x / 1000);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const q = s.sampleQuery(r);
      const it = items.find((t) => t.id === q.itemId)!;
      assert.ok(it.text.startsWith(q.text) && q.text.split(' ').length >= Math.min(2, it.text.split(' ').length));
      seen.add(q.text);
    }
    assert.ok(seen.has('red leather running shoes') && seen.has('blue mug') && seen.size > 2, [...seen].join('|'));
    const q = { text: 'blue mug', itemId: 'b' };
    assert.equal(s.click(q, 'b', 0), 0.7);
    assert.equal(s.click(q, 'a', 0), 0.02);
    assert.equal(s.click(q, 'b', 2), 0.7 / Math.log2(4));
    assert.throws(() => knownItemSearchers([]), /catalogue is empty/);
  });
});
