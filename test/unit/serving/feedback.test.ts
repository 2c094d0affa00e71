/**
 * Feedback counted once, on any replica (issue 14, items 0 and 3): signed tokens, dedup, score feedback kept apart,
 * clicks attributed to their impression's time slot and user bucket, forwarding to the replica that served the
 * request, and counting from the token when that replica is gone.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { FleetStore } from '../../../lib/fleet/store';
import {
  FeedbackLedger,
  FeedbackSigner,
  feedbackOwner,
  itemHash,
  type ServedResponse,
} from '../../../serving/feedback';
import { startServer, type RunningServer } from '../../../serving/server';
import { BucketedCounters, HorizonError, statsBucket } from '../../../serving/stats';
import { injectApp, makeBundle, post, type InjectApp, type TestBundle } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON answers
type AnyJson = any;

const served = (over: Partial<ServedResponse> = {}): ServedResponse => ({
  rid: 'req-1',
  rep: 'r1',
  variant: 'canary',
  version: 'm@v2',
  precision: 'int8',
  salt: 'rollout-7',
  bucket: 33,
  t: 1_000_000,
  kind: 'recommend',
  items: ['i1', 'i2'].map(itemHash),
  ...over,
});

void describe('feedback tokens and the ledger', () => {
  void it('verify what was signed with the fleet secret; refuse altered tokens and other fleets', () => {
    const secret = randomBytes(32);
    const a = new FeedbackSigner(secret);
    const r = served();
    const token = a.sign(r);
    assert.deepEqual(new FeedbackSigner(Buffer.from(secret)).verify(token), r);
    assert.equal(new FeedbackSigner(randomBytes(32)).verify(token), undefined);
    const [payload, mac] = token.split('.') as [string, string];
    const forged = Buffer.from(payload, 'base64url').toString().replace('"canary"', '"stable"');
    assert.equal(a.verify(`${Buffer.from(forged).toString('base64url')}.${mac}`), undefined);
    assert.equal(a.verify('garbage'), undefined);
    assert.equal(a.verify(`${payload}.`), undefined);
  });

  void it('claims one event per (request, item, event); expired responses are never counted; dedup is bounded', () => {
    let now = 1_000_000;
    const ledger = new FeedbackLedger(new FeedbackSigner(randomBytes(32)), {
      ttlMs: 60_000,
      maxDedup: 3,
      now: () => now,
    });
    const r = served({ t: now });
    assert.equal(ledger.served(r, 'i2'), true);
    assert.equal(ledger.served(r, 'i3'), false);
    assert.equal(ledger.claim(r, 'i1', 'click'), true);
    assert.equal(ledger.claim(r, 'i1', 'click'), 'duplicate');
    assert.equal(ledger.claim(r, 'i1', 'purchase'), true);
    assert.equal(ledger.claim(r, 'i2', 'click'), true);
    now += 61_000;
    assert.equal(ledger.claim(r, 'i2', 'click'), 'expired');
    const fresh = served({ rid: 'req-2', t: now });
    for (let i = 0; i < 10; i++) assert.equal(ledger.claim(fresh, `x${i}`, 'click'), true);
    assert.equal(ledger.claim(fresh, 'x9', 'click'), 'duplicate', 'the newest keys are kept');
  });

  void it('the owner is the serving replica when live, else the same live replica for every caller', () => {
    const peers = ['r2', 'r3', 'r4'].map((id) => ({ replicaId: id, url: `http://${id}` }));
    assert.equal(feedbackOwner(served({ rep: 'r3' }), peers)?.replicaId, 'r3');
    const owners = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const r = served({ rep: 'gone', rid: `req-${i}` });
      const o = feedbackOwner(r, peers)?.replicaId;
      assert.equal(feedbackOwner(r, [...peers].reverse())?.replicaId, o, 'order-independent');
      owners.add(o ?? '');
    }
    assert.equal(owners.size, 3, 'requests spread over the live replicas');
    assert.equal(feedbackOwner(served(), []), undefined);
  });
});

void describe('bucketed counters', () => {
  void it('count per user bucket and serve-time slot; clicks land in their impression slot; folding stays exact', () => {
    let now = 100_000;
    const c = new BucketedCounters({ buckets: 8, slotMs: 1000, horizonMs: 10_000, now: () => now });
    const key = { variant: 'stable' as const, version: 'v1', salt: 's' };
    const b = c.bucketOf('alice', 's');
    assert.equal(b, statsBucket('alice', 's', 8));
    assert.notEqual(statsBucket('alice', 's'), statsBucket('alice', 't'), 'the salt changes the bucket (this pair)');
    c.add(key, 'impressions', b, 100_500, 10);
    c.add(key, 'requests', b, 100_500);
    now = 103_000;
    c.add(key, 'impressions', b, 102_200, 10);
    // A click arriving now, on the impression served at 100.5 s, counts toward that slot.
    c.add(key, 'clicks', b, 100_500);
    const at101 = c.read(101_000).series[0]!;
    assert.equal(at101.impressions[b], 10);
    assert.equal(at101.clicks[b], 1);
    assert.equal(at101.requests[b], 1);
    assert.equal(c.read(101_999).servedBefore, 101_000, 'aligned down to the slot');
    const all = c.read().series[0]!;
    assert.deepEqual(all.totals, { requests: 1, errors: 0, impressions: 20, clicks: 1 });
    assert.equal(all.impressions.length, 8);
    // Beyond the horizon slots fold into the base: totals unchanged, old cutoffs refused.
    now = 200_000;
    c.add(key, 'clicks', b, 102_200);
    assert.deepEqual(c.read().series[0]!.totals, { requests: 1, errors: 0, impressions: 20, clicks: 2 });
    assert.deepEqual(c.read(195_000).series[0]!.totals, { requests: 1, errors: 0, impressions: 20, clicks: 2 });
    assert.throws(() => c.read(150_000), HorizonError);
  });
});

void describe('feedback over HTTP (inject)', () => {
  let root: string;
  let b1: TestBundle;
  let t: InjectApp;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-serve-fb-'));
    b1 = await makeBundle(root, 'b1', 1);
    t = await injectApp(b1, { adminToken: 'tok' });
  });
  after(async () => {
    await t.close();
    await rm(root, { recursive: true, force: true });
  });
  const call = async (method: InjectOptions['method'], url: string, payload?: unknown, headers = {}) => {
    const res = await t.app.inject({ method, url, payload: payload as InjectOptions['payload'], headers });
    return { status: res.statusCode, headers: res.headers, body: res.json<AnyJson>() };
  };
  const stats = async (servedBefore?: number) =>
    (
      await call('GET', `/v1/admin/stats${servedBefore ? `?servedBefore=${servedBefore}` : ''}`, undefined, {
        authorization: 'Bearer tok',
      })
    ).body;
  const clicks = (s: AnyJson) =>
    s.bucketed.series.reduce((a: number, x: AnyJson) => a + (x.totals.clicks as number), 0) as number;

  void it('the server issues the request id; a client x-request-id is only logged', async () => {
    const r = await call('POST', '/v1/recommend', { userId: 'u1', k: 2 }, { 'x-request-id': 'client-chosen' });
    assert.notEqual(r.body.requestId, 'client-chosen');
    assert.equal(r.headers['x-request-id'], r.body.requestId);
    assert.match(r.body.requestId, /^[0-9a-f-]{36}$/);
  });

  void it('a click counts once per (request, item); retries answer 200 counted: false; only served items', async () => {
    const r = await call('POST', '/v1/recommend', { userId: 'u3', k: 3 });
    const token = r.body.feedbackToken as string;
    const item = r.body.items[1].itemId as string;
    const before = clicks(await stats());
    const first = await call('POST', '/v1/feedback', { token, itemId: item, event: 'click' });
    assert.equal(first.status, 200);
    assert.deepEqual(
      { counted: first.body.counted, countedAs: first.body.countedAs, accepted: first.body.accepted },
      { counted: true, countedAs: 'recommend', accepted: true },
    );
    for (let i = 0; i < 3; i++) {
      const again = await call('POST', '/v1/feedback', { token, itemId: item, event: 'click' });
      assert.equal(again.status, 200);
      assert.equal(again.body.counted, false);
      assert.equal(again.body.reason, 'duplicate');
    }
    // The older requestId form shares the same dedup.
    const byId = await call('POST', '/v1/feedback', { requestId: r.body.requestId, itemId: item, event: 'click' });
    assert.equal(byId.body.counted, false);
    assert.equal(clicks(await stats()) - before, 1);
    const notServed = await call('POST', '/v1/feedback', { token, itemId: 'i399', event: 'click' });
    assert.equal(notServed.status, 400);
    assert.match(notServed.body.message, /was not in the response/);
    const bad = await call('POST', '/v1/feedback', { token: `${token}x`, itemId: item, event: 'click' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /feedback token is not valid/);
    const neither = await call('POST', '/v1/feedback', { itemId: item, event: 'click' });
    assert.equal(neither.status, 400);
    const mismatch = await call('POST', '/v1/feedback', { token, requestId: 'other', itemId: item, event: 'click' });
    assert.equal(mismatch.status, 400);
  });

  void it('feedback on a /v1/score response is counted apart, never toward CTR', async () => {
    const s = await call('POST', '/v1/score', { userId: 'u4', itemIds: ['i1', 'i2'] });
    const before = await stats();
    const fb = await call('POST', '/v1/feedback', { token: s.body.feedbackToken, itemId: 'i1', event: 'click' });
    assert.equal(fb.status, 200);
    assert.equal(fb.body.countedAs, 'score');
    assert.equal(fb.body.counted, true);
    const afterStats = await stats();
    assert.equal(clicks(afterStats), clicks(before));
    const counterClicks = (x: AnyJson) => x.counters.reduce((a: number, c: AnyJson) => a + (c.clicks as number), 0);
    assert.equal(counterClicks(afterStats), counterClicks(before));
    assert.deepEqual(afterStats.scoreFeedback, [{ variant: 'stable', version: 'm@v1', event: 'click', count: 1 }]);
  });

  void it('stats?servedBefore=T counts impressions served before T with every click so far, per bucket', async () => {
    const r = await call('POST', '/v1/recommend', { userId: 'u8', k: 4 });
    await new Promise((res) => setTimeout(res, 1100));
    const cut = Date.now();
    const later = await call('POST', '/v1/recommend', { userId: 'u8', k: 4 });
    // A click arriving after T on the impression served before T.
    await call('POST', '/v1/feedback', { token: r.body.feedbackToken, itemId: r.body.items[0].itemId, event: 'click' });
    await call('POST', '/v1/feedback', {
      token: later.body.feedbackToken,
      itemId: later.body.items[0].itemId,
      event: 'click',
    });
    const s = await stats(cut);
    assert.equal(s.bucketed.servedBefore, Math.floor(cut / 1000) * 1000);
    assert.equal(s.bucketed.buckets, 512);
    const series = s.bucketed.series.find(
      (x: AnyJson) => x.variant === 'stable' && x.version === 'm@v1' && x.salt === '',
    );
    const b = statsBucket('u8', '');
    const all = (await stats()).bucketed.series.find((x: AnyJson) => x.variant === 'stable' && x.salt === '');
    assert.equal(all.impressions[b] - series.impressions[b], 4, 'the later impression is after the cutoff');
    assert.equal(all.clicks[b] - series.clicks[b], 1, 'so is its click');
    assert.ok(series.clicks[b] >= 1, 'the late click on the early impression is before the cutoff');
    assert.equal(series.requests[b] + 1, all.requests[b]);
    // Today's totals and histograms are still there.
    assert.ok(s.counters.length >= 1 && s.counters[0].latencyBuckets.length > 10);
    assert.equal(
      (await call('GET', '/v1/admin/stats?servedBefore=12', undefined, { authorization: 'Bearer tok' })).status,
      409,
    );
    assert.equal(
      (await call('GET', '/v1/admin/stats?servedBefore=x', undefined, { authorization: 'Bearer tok' })).status,
      400,
    );
  });
});

void describe('feedback across replicas (two real servers, one fleet)', () => {
  let root: string;
  let b1: TestBundle;
  let r1: RunningServer;
  let r2: RunningServer;
  const registryDir = () => join(root, 'registry');
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-serve-fbx-'));
    b1 = await makeBundle(join(root, 'artifacts'), 'b1', 1);
    await new FleetStore(registryDir(), 'fx').updateDesired({ stable: b1.slot('m@v1'), reason: 'test' });
    const start = (id: string) =>
      startServer({
        port: 0,
        registryDir: registryDir(),
        fleet: 'fx',
        replicaId: id,
        pollMs: 100,
        logger: false,
        processMetrics: false,
        adminToken: 'tok',
      });
    [r1, r2] = await Promise.all([start('fx-1'), start('fx-2')]);
    for (const s of [r1, r2]) while (!s.slots.ready) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // both reports written
  });
  after(async () => {
    await r1?.close();
    await r2?.close();
    await rm(root, { recursive: true, force: true });
  });
  const clicksOn = async (s: RunningServer) => {
    const res = await fetch(`${s.url}/v1/admin/stats`, { headers: { authorization: 'Bearer tok' } });
    const body = (await res.json()) as AnyJson;
    return body.bucketed.series.reduce((a: number, x: AnyJson) => a + (x.totals.clicks as number), 0) as number;
  };

  void it('feedback for another replica is forwarded to it (exact dedup); never a 404', async () => {
    const r = await post(`${r1.url}/v1/recommend`, { userId: 'u2', k: 3 });
    const body = { token: r.body.feedbackToken, itemId: r.body.items[0].itemId, event: 'click' };
    const [c1, c2] = [await clicksOn(r1), await clicksOn(r2)];
    const via2 = await post(`${r2.url}/v1/feedback`, body);
    assert.equal(via2.status, 200, JSON.stringify(via2.body));
    assert.equal(via2.body.counted, true);
    assert.equal(via2.body.countedBy, 'fx-1');
    const again = await post(`${r2.url}/v1/feedback`, body);
    assert.equal(again.body.counted, false, 'the repeat meets the serving replica’s dedup');
    assert.equal((await post(`${r1.url}/v1/feedback`, body)).body.counted, false);
    assert.equal((await clicksOn(r1)) - c1, 1);
    assert.equal((await clicksOn(r2)) - c2, 0);
  });

  void it('when the serving replica is gone, a live replica counts it from the token', async () => {
    const r = await post(`${r1.url}/v1/recommend`, { userId: 'u6', k: 3 });
    const body = { token: r.body.feedbackToken, itemId: r.body.items[2].itemId, event: 'click' };
    await r1.close();
    await new Promise((res) => setTimeout(res, 1200)); // r2's view of the live replicas refreshes
    const c2 = await clicksOn(r2);
    const fb = await post(`${r2.url}/v1/feedback`, body);
    assert.equal(fb.status, 200, JSON.stringify(fb.body));
    assert.equal(fb.body.counted, true);
    assert.equal(fb.body.countedBy, 'fx-2');
    assert.equal((await post(`${r2.url}/v1/feedback`, body)).body.counted, false);
    assert.equal((await clicksOn(r2)) - c2, 1);
    const unknown = await post(`${r2.url}/v1/feedback`, { requestId: r.body.requestId, itemId: 'i1', event: 'click' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.message, /send the response's feedbackToken/);
  });
});
