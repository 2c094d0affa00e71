/**
 * `POST /v1/search` on a real, tiny search bundle (kinds/search export, onnxruntime): answers equal the bundle's own
 * `searchBatch`, a query answers the same alone and inside a micro-batch, bad bodies get 400s naming the field, the
 * wrong route for a model's task is a 409, feedback on search results counts once, only for served items, toward
 * search CTR (apart from recommendations), and the metrics carry the kind.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSearchVariant, readSearchBundle } from '../../../kinds/search/bundle';
import type { LoadedSearchModel } from '../../../kinds/search/export';
import type { SlotState } from '../../../lib/fleet/types';
import { buildApp } from '../../../serving/app';
import { ServingMetrics } from '../../../serving/metrics';
import { ModelSlots } from '../../../serving/model-slot';
import { MAX_QUERY_CHARS } from '../../../serving/schemas';
import { makeSearchBundle, SEARCH_ITEMS, type TestSearchBundle } from '../../helpers/search-bundle';
import { makeBundle, type TestBundle } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON answers
type AnyJson = any;

let root: string;
let sb: TestSearchBundle;
let rec: TestBundle;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'recflow-search-serve-'));
  sb = await makeSearchBundle(root, 'search-a');
  rec = await makeBundle(root, 'recs', 3);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** An app over the given slots (stable, optional canary at `weight`). */
async function appWith(
  stable: SlotState,
  canary: SlotState | null = null,
  weight = 0,
  onBatch?: (graph: string, version: string, size: number) => void,
) {
  const metrics = new ServingMetrics({ processMetrics: false });
  const slots = new ModelSlots(
    {
      onBatch: (graph, version, size) => {
        metrics.batchSize.observe({ graph }, size);
        onBatch?.(graph, version, size);
      },
    },
    (s) => metrics.observeSlots(s),
  );
  await slots.apply({ generation: 1, stable, canary, canaryWeight: weight, salt: 'salt-1' });
  const app = buildApp({ slots, metrics, logger: false });
  await app.ready();
  const post = async (url: string, payload: unknown) => {
    const r = await app.inject({ method: 'POST', url, payload: payload as Record<string, unknown> });
    return { status: r.statusCode, body: r.json<AnyJson>(), headers: r.headers };
  };
  return {
    app,
    slots,
    metrics,
    post,
    close: async () => {
      await app.close();
      await slots.close();
    },
  };
}

const QUERIES = ['red backpack', 'blue coffee mug', 'green', 'wool sweater in grey', 'desk lamp', 'pink yoga mat'];

void describe('POST /v1/search', () => {
  let t: Awaited<ReturnType<typeof appWith>>;
  let own: Record<'fp32' | 'int8', LoadedSearchModel>;
  const sizes: number[] = [];
  before(async () => {
    t = await appWith(
      sb.slot('shop-search@v1', 'fp32'),
      null,
      0,
      (graph, _v, n) => graph === 'search' && sizes.push(n),
    );
    const b = await readSearchBundle(sb.dir);
    own = { fp32: (await loadSearchVariant(b, 'fp32')).model, int8: (await loadSearchVariant(b, 'int8')).model };
  });
  after(async () => {
    await t.close();
    await own.fp32.session.release();
    await own.int8.session.release();
  });

  void it("answers the bundle's own searchBatch top-k, with the model, request id and a feedback token", async () => {
    for (const k of [1, 5, 10, 64]) {
      const want = await own.fp32.searchBatch(QUERIES, k);
      for (const [i, query] of QUERIES.entries()) {
        const r = await t.post('/v1/search', { query, k, userId: 'u1' });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.deepEqual(
          r.body.items.map((x: AnyJson) => [x.itemId, x.score]),
          want[i]!.map((h) => [h.id, h.score]),
          `${query} k=${k}`,
        );
        assert.deepEqual(r.body.model, { version: 'shop-search@v1', variant: 'stable', precision: 'fp32' });
        assert.equal(r.headers['x-request-id'], r.body.requestId);
        assert.equal(r.headers['x-model-version'], 'shop-search@v1');
        assert.equal(typeof r.body.feedbackToken, 'string');
        assert.equal(r.body.truncated, false);
      }
    }
    // An exact item text finds that item first (identical texts embed identically).
    const exact = await t.post('/v1/search', { query: 'red backpack', k: 3 });
    assert.equal(exact.body.items[0].itemId, 'red-backpack');
    assert.equal((await t.post('/v1/search', { query: 'desk lamp' })).body.items.length, 10, 'k defaults to 10');
    const long = await t.post('/v1/search', { query: 'red backpack '.repeat(20), k: 3 });
    assert.equal(long.status, 200);
    assert.equal(long.body.truncated, true, 'a query over the 16-token limit is cut, and says so');
  });

  void it('serves the int8 variant the bundle chose for precision int8', async () => {
    const t8 = await appWith(sb.slot('shop-search@v1', 'int8'));
    try {
      const want = await own.int8.searchBatch(QUERIES, 8);
      for (const [i, query] of QUERIES.entries()) {
        const r = await t8.post('/v1/search', { query, k: 8 });
        assert.equal(r.body.model.precision, 'int8');
        assert.deepEqual(
          r.body.items.map((x: AnyJson) => [x.itemId, x.score]),
          want[i]!.map((h) => [h.id, h.score]),
        );
      }
    } finally {
      await t8.close();
    }
  });

  void it('answers a query the same alone and inside a micro-batch of concurrent requests', async () => {
    const qs = [...QUERIES, ...SEARCH_ITEMS.slice(0, 26).map((i) => `${i.thing} ${i.colour}`)];
    const ks = qs.map((_, i) => 1 + (i % 12));
    const alone: AnyJson[] = [];
    for (const [i, query] of qs.entries()) alone.push((await t.post('/v1/search', { query, k: ks[i] })).body.items);
    const before = sizes.length;
    const together = await Promise.all(qs.map((query, i) => t.post('/v1/search', { query, k: ks[i] })));
    assert.ok(
      Math.max(...sizes.slice(before)) > 1,
      `the concurrent requests were batched (${sizes.slice(before).join(', ')})`,
    );
    together.forEach((r, i) => assert.deepEqual(r.body.items, alone[i], qs[i]));
  });

  void it('refuses bad bodies with a 400 that names the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{}, /must have required property 'query'/],
      [{ k: 5 }, /must have required property 'query'/],
      [{ query: '' }, /body\/query must NOT have fewer than 1 characters/],
      [{ query: '   ' }, /body\/query must contain a non-space character/],
      [{ query: 'x'.repeat(MAX_QUERY_CHARS + 1) }, /body\/query must NOT have more than 512 characters/],
      [{ query: 42 }, /body\/query must be string/],
      [{ query: ['red'] }, /body\/query must be string/],
      [{ query: 'red', k: 0 }, /body\/k must be >= 1/],
      [{ query: 'red', k: 101 }, /body\/k must be <= 100/],
      [{ query: 'red', k: 2.5 }, /body\/k must be integer/],
      [{ query: 'red', k: '5' }, /body\/k must be integer/],
      [{ query: 'red', userId: '' }, /body\/userId must NOT have fewer than 1 characters/],
      [{ query: 'red', userId: 7 }, /body\/userId must be string/],
      [{ query: 'red', filter: 'x' }, /must NOT have additional properties/],
    ];
    for (const [payload, message] of cases) {
      const r = await t.post('/v1/search', payload);
      assert.equal(r.status, 400, JSON.stringify(payload));
      assert.match(r.body.message, message, JSON.stringify(payload));
      assert.equal(typeof r.body.requestId, 'string');
    }
    const okMax = await t.post('/v1/search', { query: 'y'.repeat(MAX_QUERY_CHARS), k: 100 });
    assert.equal(okMax.status, 200, 'the limits themselves are allowed');
    assert.equal(okMax.body.items.length, 64, 'k beyond the catalogue returns the whole catalogue');
  });

  void it('409 for the other task: recommend on a search model, search on a recommender', async () => {
    for (const [url, payload] of [
      ['/v1/recommend', { userId: 'u1' }],
      ['/v1/score', { userId: 'u1', itemIds: ['red-backpack'] }],
    ] as const) {
      const r = await t.post(url, payload);
      assert.equal(r.status, 409, url);
      assert.match(r.body.message, /is a search model: use POST \/v1\/search/);
    }
    assert.equal(t.slots.get('stable')?.inFlight, 0, 'the refused requests released the model');
    const tr = await appWith(rec.slot('recs@v1'));
    try {
      const r = await tr.post('/v1/search', { query: 'red backpack' });
      assert.equal(r.status, 409);
      assert.match(r.body.message, /needs a search model, but the stable model recs@v1 is a recommend model/);
      assert.match(r.body.message, /use POST \/v1\/recommend/);
      assert.equal((await tr.post('/v1/recommend', { userId: 'u1' })).status, 200);
    } finally {
      await tr.close();
    }
  });

  void it('counts feedback on a search result once, only for served items, as search CTR; metrics carry the kind', async () => {
    const tf = await appWith(sb.slot('shop-search@v2'));
    try {
      const r = await tf.post('/v1/search', { query: 'red backpack', k: 4, userId: 'shopper-9' });
      const token = r.body.feedbackToken as string;
      const [first, second] = r.body.items as AnyJson[];
      const fb = (itemId: string, event = 'click') => tf.post('/v1/feedback', { token, itemId, event });
      const a = await fb(first.itemId);
      assert.equal(a.status, 200);
      assert.equal(a.body.counted, true);
      assert.equal(a.body.countedAs, 'search');
      assert.deepEqual(a.body.model, { version: 'shop-search@v2', variant: 'stable', precision: 'fp32' });
      assert.equal((await fb(first.itemId)).body.reason, 'duplicate');
      assert.equal((await fb(second.itemId)).body.counted, true);
      assert.equal((await fb(second.itemId, 'purchase')).body.counted, true);
      const notServed = SEARCH_ITEMS.find((i) => !r.body.items.some((x: AnyJson) => x.itemId === i.id))!;
      const bad = await fb(notServed.id);
      assert.equal(bad.status, 400);
      assert.match(bad.body.message, new RegExp(`itemId ${notServed.id} was not in the response`));

      const text = (await tf.app.inject({ method: 'GET', url: '/metrics' })).body;
      const val = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
      assert.equal(
        val(/recflow_impressions_total\{variant="stable",version="shop-search@v2",kind="search"\} (\d+)/),
        4,
      );
      assert.equal(
        val(
          /recflow_feedback_events_total\{variant="stable",version="shop-search@v2",event="click",kind="search"\} (\d+)/,
        ),
        2,
      );
      assert.doesNotMatch(text, /recflow_feedback_events_total\{[^}]*kind="recommend"/, 'no recommendation feedback');
      assert.match(
        text,
        /recflow_http_requests_total\{route="\/v1\/search",variant="stable",version="shop-search@v2",status="200"\} 1/,
      );
      assert.match(text, /recflow_inference_duration_seconds_count\{graph="search",version="shop-search@v2"\} \d+/);
      assert.match(text, /recflow_inference_batch_size_count\{graph="search"\} \d+/);

      const bucketed = tf.app.bucketed.read();
      const series = bucketed.series.filter((s) => s.version === 'shop-search@v2');
      assert.equal(series.length, 1);
      assert.equal(series[0]!.kind, 'search');
      assert.deepEqual(series[0]!.totals, { requests: 1, errors: 0, impressions: 4, clicks: 2 });
      const bucket = tf.app.bucketed.bucketOf('shopper-9', 'salt-1');
      assert.equal(series[0]!.clicks[bucket], 2, "the clicks land in the searcher's bucket");
      const counters = await tf.metrics.stats();
      const c = counters.find((x) => x.version === 'shop-search@v2')!;
      assert.equal(c.kind, 'search');
      assert.equal(c.requests, 1);
      assert.equal(c.impressions, 4);
      assert.equal(c.clicks, 2);
    } finally {
      await tf.close();
    }
  });

  void it('routes searchers sticky by userId between stable and canary; anonymous searches spread', async () => {
    const other = await makeSearchBundle(root, 'search-b', { seed: 9 });
    const tc = await appWith(sb.slot('shop-search@v1'), other.slot('shop-search@v2'), 50);
    try {
      const seen = new Map<string, Set<string>>();
      for (let i = 0; i < 40; i++) {
        const userId = `s${i % 10}`;
        const r = await tc.post('/v1/search', { query: QUERIES[i % QUERIES.length], userId });
        const set = seen.get(userId) ?? new Set<string>();
        set.add(r.body.model.variant);
        seen.set(userId, set);
      }
      assert.ok(
        [...seen.values()].every((s) => s.size === 1),
        'each searcher stays on one variant',
      );
      const variants = new Set<string>();
      for (let i = 0; i < 30; i++) variants.add((await tc.post('/v1/search', { query: 'red' })).body.model.variant);
      assert.deepEqual([...variants].sort(), ['canary', 'stable']);
    } finally {
      await tc.close();
    }
  });
});
