/**
 * The serving HTTP contract, route by route, through `app.inject` (no socket) over a real onnxruntime session:
 * status codes, bodies, headers, limits and auth. The real-server tests (api, slots, simulator) keep load and hot swap.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { BODY_LIMIT, MAX_K } from '../../../serving/schemas';
import { injectApp, makeBundle, type InjectApp, type TestBundle } from './helpers';

const TOKEN = 'contract-token';

void describe('serving HTTP contract (app.inject)', () => {
  let root: string;
  let b1: TestBundle;
  let b2: TestBundle;
  let t: InjectApp;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-serve-inject-'));
    b1 = await makeBundle(root, 'b1', 1);
    b2 = await makeBundle(root, 'b2', 2);
    t = await injectApp(b1, { adminToken: TOKEN });
  });
  after(async () => {
    await t.close();
    await rm(root, { recursive: true, force: true });
  });

  const call = async (o: InjectOptions) => {
    const res = await t.app.inject(o);
    let body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- arbitrary JSON answers
    try {
      body = res.json();
    } catch {
      body = res.body;
    }
    return { status: res.statusCode, headers: res.headers, body };
  };
  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    call({ method: 'POST', url, payload: payload as InjectOptions['payload'], headers });
  const admin = (method: InjectOptions['method'], url: string, payload?: unknown, token: string | null = TOKEN) =>
    call({
      method,
      url,
      payload: payload as InjectOptions['payload'],
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  void it('POST /v1/recommend: 200 with the model, request id and model headers; k and exclude honoured', async () => {
    const r = await post('/v1/recommend', { userId: 'u5', k: 4 });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.deepEqual(r.body.model, { version: 'm@v1', variant: 'stable', precision: 'fp32' });
    assert.equal(r.headers['x-request-id'], r.body.requestId);
    assert.equal(r.headers['x-model-version'], 'm@v1');
    assert.equal(r.headers['x-model-variant'], 'stable');
    assert.equal(r.body.items.length, 4);
    assert.equal(r.body.userKnown, true);
    assert.equal(r.body.fallback, null);
    const top = r.body.items[0].itemId as string;
    const ex = await post('/v1/recommend', { userId: 'u5', k: 4, exclude: [top, 'zzz'] });
    assert.ok(!ex.body.items.some((x: { itemId: string }) => x.itemId === top));
    assert.deepEqual(ex.body.unknownItems, ['zzz']);
    const stranger = await post('/v1/recommend', { userId: 'nobody', k: 3 });
    assert.equal(stranger.body.fallback, 'popularity');
    assert.deepEqual(
      stranger.body.items.map((x: { score: unknown }) => x.score),
      [null, null, null],
    );
  });

  void it('POST /v1/recommend: 400 naming the field for every schema violation', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{}, /body must have required property 'userId'/],
      [{ userId: '' }, /body\/userId must NOT have fewer than 1 characters/],
      [{ userId: 'u1', k: MAX_K + 1 }, new RegExp(`body/k must be <= ${MAX_K}`)],
      [{ userId: 'u1', k: '3' }, /body\/k must be integer/],
      [{ userId: 'u1', nope: 1 }, /must NOT have additional properties/],
    ];
    for (const [body, re] of cases) {
      const r = await post('/v1/recommend', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error, 'Bad Request');
      assert.match(r.body.message, re);
      assert.equal(r.body.requestId, r.headers['x-request-id']);
    }
  });

  void it('POST /v1/score: 200 with scores in (0, 1), unknown items listed; 400 on an empty list', async () => {
    const r = await post('/v1/score', { userId: 'u5', itemIds: ['i1', 'nope', 'i2'] });
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.scores.map((x: { itemId: string }) => x.itemId),
      ['i1', 'i2'],
    );
    assert.ok(r.body.scores.every((x: { score: number }) => x.score > 0 && x.score < 1));
    assert.deepEqual(r.body.unknownItems, ['nope']);
    assert.equal((await post('/v1/score', { userId: 'u5', itemIds: [] })).status, 400);
  });

  void it('POST /v1/feedback: 200 for a served item, 400 for another item, 404 for an unknown request', async () => {
    const r = await post('/v1/recommend', { userId: 'u6', k: 3 });
    const item = r.body.items[0].itemId as string;
    const ok = await post('/v1/feedback', { requestId: r.body.requestId, itemId: item, event: 'click' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.accepted, true);
    assert.equal(ok.headers['x-model-variant'], 'stable');
    const other = await post('/v1/feedback', { requestId: r.body.requestId, itemId: 'i99999', event: 'click' });
    assert.equal(other.status, 400);
    assert.match(other.body.message, /was not in the response/);
    const bad = await post('/v1/feedback', { requestId: r.body.requestId, itemId: item, event: 'like' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /body\/event must be equal to one of the allowed values/);
  });

  void it('GET /healthz, /readyz, /metrics', async () => {
    const h = await call({ method: 'GET', url: '/healthz' });
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
    const r = await call({ method: 'GET', url: '/readyz' });
    assert.equal(r.status, 200);
    assert.equal(r.body.ready, true);
    assert.equal(r.body.generation, 1);
    const m = await call({ method: 'GET', url: '/metrics' });
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /text\/plain/);
    assert.match(
      m.body,
      /recflow_http_requests_total\{route="\/v1\/recommend",variant="stable",version="m@v1",status="200"\}/,
    );
  });

  void it('admin writes: 401 without or with a wrong token (www-authenticate: Bearer), 200 with it', async () => {
    const change = { canary: b2.slot('m@v2'), canaryWeight: 20, reason: 'contract' };
    for (const token of [null, 'wrong']) {
      const r = await admin('PUT', '/v1/admin/fleet', change, token);
      assert.equal(r.status, 401, String(token));
      assert.equal(r.body.error, 'Unauthorized');
      assert.equal(r.headers['www-authenticate'], 'Bearer');
      assert.ok(r.body.requestId);
    }
    const ok = await admin('PUT', '/v1/admin/fleet', change);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.applied.canary, 'm@v2');
    assert.equal((await admin('PUT', '/v1/admin/fleet', { canaryWeight: 101, reason: 'x' })).status, 400);
    const back = await admin('PUT', '/v1/admin/fleet', { canary: null, canaryWeight: 0, reason: 'back' });
    assert.equal(back.status, 200);
    assert.equal((await admin('PUT', '/v1/admin/faults', { variant: 'canary', abortRate: 1 }, null)).status, 401);
    const f = await admin('PUT', '/v1/admin/faults', { variant: 'canary', abortRate: 0.5 });
    assert.equal(f.status, 200);
    assert.equal(f.body.faults.length, 1);
    assert.equal((await admin('DELETE', '/v1/admin/faults')).status, 200);
  });

  void it('an app without an admin token refuses admin changes with 403', async () => {
    const bare = await injectApp(b1);
    try {
      const r = await bare.app.inject({
        method: 'PUT',
        url: '/v1/admin/faults',
        payload: { variant: 'stable', abortRate: 1 },
        headers: { authorization: 'Bearer anything' },
      });
      assert.equal(r.statusCode, 403);
      assert.match(r.json<{ message: string }>().message, /RECFLOW_ADMIN_TOKEN/);
    } finally {
      await bare.close();
    }
  });

  void it('limits: 413 over the body limit, 415 for other media types, 404 for unknown paths', async () => {
    const big = await post('/v1/score', { userId: 'u1', itemIds: ['x'.repeat(BODY_LIMIT)] });
    assert.equal(big.status, 413);
    const xml = await call({
      method: 'POST',
      url: '/v1/recommend',
      payload: '<userId>u1</userId>',
      headers: { 'content-type': 'application/xml' },
    });
    assert.equal(xml.status, 415);
    const none = await call({ method: 'GET', url: '/v1/nothing' });
    assert.equal(none.status, 404);
    assert.equal(none.body.error, 'Not Found');
  });

  void it('5xx: the message is hidden from the client, the request id is kept', async () => {
    const model = t.slots.get('stable', 'recommend');
    assert.ok(model);
    const original = model.scoreBatcher.submit.bind(model.scoreBatcher);
    model.scoreBatcher.submit = () => Promise.reject(new Error('secret /etc/bundle path'));
    try {
      const r = await post('/v1/score', { userId: 'u1', itemIds: ['i1'] });
      assert.equal(r.status, 500);
      assert.deepEqual(Object.keys(r.body).sort(), ['error', 'message', 'requestId']);
      assert.equal(r.body.message, 'internal error');
      assert.equal(model.inFlight, 0);
    } finally {
      model.scoreBatcher.submit = original;
    }
  });
});
