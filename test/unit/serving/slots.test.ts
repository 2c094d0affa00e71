import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Batcher } from '../../../serving/batcher';
import { bucketOf, routeUser } from '../../../serving/router';
import { startServer, type RunningServer } from '../../../serving/server';
import { makeBundle, post, type TestBundle } from './helpers';

void describe('sticky routing', () => {
  void it('routes by a stable hash of the user id, monotone in the weight', () => {
    const users = Array.from({ length: 5000 }, (_, i) => `user-${i}`);
    for (const w of [0, 10, 50, 100]) {
      const canary = users.filter((u) => routeUser(u, w, true) === 'canary').length / users.length;
      assert.ok(Math.abs(canary - w / 100) < 0.03, `weight ${w}: ${canary}`);
    }
    for (const u of users.slice(0, 200)) {
      assert.equal(routeUser(u, 30, true), routeUser(u, 30, true));
      // Once on the canary at 10%, still there at 30% and 60%.
      if (routeUser(u, 10, true) === 'canary') assert.equal(routeUser(u, 60, true), 'canary');
      assert.equal(routeUser(u, 100, false), 'stable');
      assert.ok(bucketOf(u) >= 0 && bucketOf(u) < 100);
    }
  });
});

void describe('micro-batcher', () => {
  void it('runs concurrent submits together, in order, and isolates a failed batch', async () => {
    const sizes: number[] = [];
    let fail = false;
    const b = new Batcher<number, number>(
      async (xs) => {
        sizes.push(xs.length);
        await new Promise((r) => setTimeout(r, 5));
        if (fail) throw new Error('boom');
        return xs.map((x) => x * 2);
      },
      { maxBatch: 8 },
    );
    const out = await Promise.all(Array.from({ length: 20 }, (_, i) => b.submit(i)));
    assert.deepEqual(
      out,
      Array.from({ length: 20 }, (_, i) => i * 2),
    );
    assert.ok(sizes.length < 20 && Math.max(...sizes) <= 8, `sizes ${sizes.join(',')}`);
    fail = true;
    await assert.rejects(b.submit(1), /boom/);
    fail = false;
    assert.equal(await b.submit(4), 8);
  });
});

void describe('stable/canary slots over HTTP', () => {
  let root: string;
  let b1: TestBundle;
  let b2: TestBundle;
  let server: RunningServer;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-serve-slots-'));
    b1 = await makeBundle(root, 'b1', 1);
    b2 = await makeBundle(root, 'b2', 2);
    server = await startServer({
      port: 0,
      bundle: b1.dir,
      version: 'm@v1',
      logger: false,
      processMetrics: false,
      adminToken: 'sekret',
    });
  });
  after(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  });

  const put = (body: unknown, token?: string) =>
    fetch(`${server.url}/v1/admin/fleet`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  void it('admin API needs the bearer token, then routes users to the canary by weight, sticky', async () => {
    const change = { canary: b2.slot('m@v2', 'int8'), canaryWeight: 30, reason: 'test canary' };
    assert.equal((await put(change)).status, 401);
    assert.equal((await put(change, 'wrong')).status, 401);
    assert.equal((await put({ canaryWeight: 300, reason: 'x' }, 'sekret')).status, 400);
    const ok = await put(change, 'sekret');
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as { desired: { generation: number }; applied: { canary: string } };
    assert.equal(body.desired.generation, 2);
    assert.equal(body.applied.canary, 'm@v2');

    const users = b1.users.slice(0, 120);
    const seen = new Map<string, string>();
    for (const u of users) {
      const r = await post(`${server.url}/v1/recommend`, { userId: u, k: 3 });
      assert.equal(r.status, 200);
      const expected = routeUser(u, 30, true);
      assert.equal(r.body.model.variant, expected, u);
      assert.equal(r.body.model.version, expected === 'canary' ? 'm@v2' : 'm@v1');
      assert.equal(r.body.model.precision, expected === 'canary' ? 'int8' : 'fp32');
      seen.set(u, r.body.model.variant);
    }
    const canaryShare = [...seen.values()].filter((v) => v === 'canary').length / users.length;
    assert.ok(canaryShare > 0.15 && canaryShare < 0.45, `canary share ${canaryShare}`);
    for (const u of users.slice(0, 20)) {
      const r = await post(`${server.url}/v1/score`, { userId: u, itemIds: ['i1'] });
      assert.equal(r.body.model.variant, seen.get(u));
    }
    // Promote: the canary's loaded model moves to stable without a reload; every user on v2.
    const canaryModel = server.slots.get('canary');
    const promoted = await put(
      { stable: b2.slot('m@v2', 'int8'), canary: null, canaryWeight: 0, reason: 'promote' },
      'sekret',
    );
    assert.equal(promoted.status, 200);
    assert.equal(server.slots.get('stable'), canaryModel);
    const r = await post(`${server.url}/v1/recommend`, { userId: users[0], k: 3 });
    assert.deepEqual(r.body.model, { version: 'm@v2', variant: 'stable', precision: 'int8' });
  });

  void it('hot-swaps under load with zero failed requests; the old session drains before release', async () => {
    await put({ stable: b1.slot('m@v1'), canary: null, canaryWeight: 0, reason: 'reset' }, 'sekret');
    const versions = new Set<string>();
    let failures = 0;
    let total = 0;
    let stop = false;
    const worker = async (w: number) => {
      let i = 0;
      while (!stop) {
        const user = b1.users[(w * 37 + i++) % b1.users.length] ?? 'u1';
        const path = i % 3 === 0 ? '/v1/score' : '/v1/recommend';
        const body = path === '/v1/score' ? { userId: user, itemIds: ['i1', 'i2', 'i3'] } : { userId: user, k: 10 };
        try {
          const r = await post(`${server.url}${path}`, body);
          total++;
          if (r.status !== 200) failures++;
          else versions.add(r.body.model.version as string);
        } catch {
          failures++;
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    await new Promise((r) => setTimeout(r, 300));
    const old = server.slots.get('stable');
    assert.ok(old);
    for (const [n, slot] of [
      [2, b2.slot('m@v2')],
      [3, b1.slot('m@v3', 'int8')],
      [4, b2.slot('m@v4', 'int8')],
    ] as const) {
      const res = await put({ stable: slot, reason: `swap ${n}` }, 'sekret');
      assert.equal(res.status, 200);
      await new Promise((r) => setTimeout(r, 250));
    }
    stop = true;
    await load;
    assert.equal(failures, 0, `${failures} of ${total} requests failed`);
    assert.ok(total > 100, `only ${total} requests`);
    for (const v of ['m@v1', 'm@v2', 'm@v3', 'm@v4']) assert.ok(versions.has(v), `never served ${v}`);
    assert.equal(old.inFlight, 0);
    assert.throws(() => old.acquire(), /closed/);
    assert.equal(server.slots.get('stable')?.version, 'm@v4');
  });

  void it('keeps serving the old model when a new bundle fails to load', async () => {
    const before = server.slots.get('stable')?.version;
    const res = await put(
      { stable: { version: 'm@broken', bundlePath: join(root, 'missing'), precision: 'fp32' }, reason: 'bad' },
      'sekret',
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as { applied: { error?: string; healthy: boolean } };
    assert.match(body.applied.error ?? '', /bundle\.json/);
    assert.equal(body.applied.healthy, false);
    const r = await post(`${server.url}/v1/recommend`, { userId: 'u1', k: 2 });
    assert.equal(r.status, 200);
    assert.equal(r.body.model.version, before);
  });
});

void describe('graceful close', () => {
  void it('finishes requests in flight, then releases the model', async () => {
    const root = await mkdtemp(join(tmpdir(), 'recflow-serve-close-'));
    try {
      const b = await makeBundle(root, 'b', 4);
      const server = await startServer({
        port: 0,
        bundle: b.dir,
        version: 'm@v1',
        logger: false,
        processMetrics: false,
      });
      const model = server.slots.get('stable', 'recommend');
      assert.ok(model);
      const submit = model.recommendBatcher.submit.bind(model.recommendBatcher);
      model.recommendBatcher.submit = async (x) => {
        await new Promise((r) => setTimeout(r, 400));
        return submit(x);
      };
      const inflight = post(`${server.url}/v1/recommend`, { userId: 'u1', k: 3 });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(model.inFlight, 1);
      const t0 = Date.now();
      const closed = server.close();
      const r = await inflight;
      assert.equal(r.status, 200);
      assert.equal(r.body.items.length, 3);
      await closed;
      // The keep-alive socket of the finished request does not hold close() for its 65 s timeout.
      assert.ok(Date.now() - t0 < 5000, `close took ${Date.now() - t0} ms`);
      assert.equal(model.inFlight, 0);
      assert.throws(() => model.acquire(), /closed/);
      await assert.rejects(fetch(`${server.url}/healthz`));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
