/**
 * Hardening of the serving API (issue 16, item 8), each case a behaviour the code before it got wrong: admin reads
 * need a token and show no bundle paths without one; 405 with `Allow`; 415 naming the accepted type (and text/plain
 * JSON told so); `__proto__` refused as such; 413 stating the limit; a moved RECFLOW_HOME still serves; known
 * interactions left out of recommendations by default; a `history` graph input fed from the request or the bundle.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { FleetStore } from '../../../lib/fleet/store';
import { startServer } from '../../../serving/server';
import { BODY_LIMIT } from '../../../serving/schemas';
import { makeHistoryBundle, nextItem } from './history-graph';
import { injectApp, makeBundle, testHistory, type InjectApp, type TestBundle } from './helpers';

const TOKEN = 'hardening-admin-token';
const READER = 'hardening-reader-token';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON answers
type AnyJson = any;

void describe('serving hardening', () => {
  let root: string;
  let b1: TestBundle;
  let t: InjectApp;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-serve-hard-'));
    b1 = await makeBundle(root, 'b1', 1);
    t = await injectApp(b1, { adminToken: TOKEN, readToken: READER });
  });
  after(async () => {
    await t.close();
    await rm(root, { recursive: true, force: true });
  });
  const call = async (o: InjectOptions) => {
    const res = await t.app.inject(o);
    let body: AnyJson = res.body;
    try {
      body = res.json();
    } catch {
      /* not JSON */
    }
    return { status: res.statusCode, headers: res.headers, body, text: res.body };
  };

  void it('admin GETs need a token and show no bundle path without one; the reader token reads, never writes', async () => {
    for (const url of ['/v1/admin/stats', '/v1/admin/fleet', '/v1/admin/faults']) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }]) {
        const r = await call({ method: 'GET', url, headers });
        assert.equal(r.status, 401, url);
        assert.equal(r.headers['www-authenticate'], 'Bearer');
        assert.ok(!r.text.includes(root), `${url} leaks a bundle path: ${r.text}`);
      }
      for (const token of [TOKEN, READER]) {
        const r = await call({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
        assert.equal(r.status, 200, `${url} with ${token}`);
      }
    }
    const fleet = await call({ method: 'GET', url: '/v1/admin/fleet', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(fleet.body.desired.stable.bundlePath, b1.dir);
    const write = await call({
      method: 'PUT',
      url: '/v1/admin/faults',
      payload: { variant: 'stable', abortRate: 1 },
      headers: { authorization: `Bearer ${READER}` },
    });
    assert.equal(write.status, 401);
    // No admin token and no reader: the admin API is off (403), reads included.
    const bare = await injectApp(b1);
    try {
      const r = await bare.app.inject({ method: 'GET', url: '/v1/admin/stats' });
      assert.equal(r.statusCode, 403);
      assert.match(r.body, /RECFLOW_ADMIN_TOKEN/);
    } finally {
      await bare.close();
    }
  });

  void it('a known path with the wrong method gets 405 with Allow; an unknown path 404', async () => {
    const cases: Array<[InjectOptions['method'], string, RegExp]> = [
      ['GET', '/v1/recommend', /^POST$/],
      ['DELETE', '/v1/feedback', /^POST$/],
      ['POST', '/healthz', /GET/],
      ['POST', '/v1/admin/fleet', /GET.*PUT/],
      ['PATCH', '/v1/admin/faults?x=1', /DELETE.*GET.*PUT/],
    ];
    for (const [method, url, allow] of cases) {
      const r = await call({ method, url, headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(r.status, 405, `${method} ${url}`);
      assert.match(String(r.headers.allow), allow);
      assert.match(r.body.message, /use /);
      assert.ok(r.body.requestId);
    }
    assert.equal((await call({ method: 'GET', url: '/v1/nope' })).status, 404);
  });

  void it('415 names the accepted type; text/plain carrying JSON is told to send application/json', async () => {
    const xml = await call({
      method: 'POST',
      url: '/v1/recommend',
      payload: '<userId>u1</userId>',
      headers: { 'content-type': 'application/xml' },
    });
    assert.equal(xml.status, 415);
    assert.match(xml.body.message, /content-type application\/xml is not accepted: send application\/json/);
    assert.equal(xml.headers.accept, 'application/json');
    const plain = await call({
      method: 'POST',
      url: '/v1/recommend',
      payload: JSON.stringify({ userId: 'u1' }),
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
    });
    assert.equal(plain.status, 415);
    assert.match(
      plain.body.message,
      /the body is JSON but its content-type is text\/plain: send it with content-type application\/json/,
    );
    const form = await call({
      method: 'POST',
      url: '/v1/recommend',
      payload: 'userId=u1',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(form.status, 415);
    assert.match(form.body.message, /text\/plain is not accepted/);
  });

  void it('a __proto__ or constructor.prototype key is refused as such, not as invalid JSON', async () => {
    for (const [payload, key] of [
      ['{"userId":"u1","__proto__":{"k":1}}', '__proto__'],
      ['{"userId":"u1","exclude":[{"\\u005f_proto__":1}]}', '__proto__'],
      ['{"userId":"u1","constructor":{"prototype":{"k":1}}}', 'constructor.prototype'],
    ] as const) {
      const r = await call({
        method: 'POST',
        url: '/v1/recommend',
        payload,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.status, 400, payload);
      assert.match(r.body.message, new RegExp(`'${key.replace('.', '\\.')}' key, which is refused`));
      assert.doesNotMatch(r.body.message, /not valid JSON/);
    }
    const broken = await call({
      method: 'POST',
      url: '/v1/recommend',
      payload: '{"userId":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(broken.status, 400);
    assert.match(broken.body.message, /the body is not valid JSON: /);
    // A key merely named "constructor" (no prototype inside) is an ordinary unknown field.
    const ctor = await call({ method: 'POST', url: '/v1/recommend', payload: { userId: 'u1', constructor: 1 } });
    assert.match(ctor.body.message, /must NOT have additional properties/);
  });

  void it('413 states the limit', async () => {
    const r = await call({
      method: 'POST',
      url: '/v1/score',
      payload: { userId: 'u1', itemIds: ['x'.repeat(BODY_LIMIT)] },
    });
    assert.equal(r.status, 413);
    assert.match(r.body.message, new RegExp(`larger than the limit of ${BODY_LIMIT} bytes \\(64 KiB\\)`));
  });

  void it('leaves the user’s known items out by default; includeSeen: true lets them in; request history too', async () => {
    const ids = (r: AnyJson) => r.body.items.map((x: { itemId: string }) => x.itemId) as string[];
    const rec = (payload: unknown) =>
      call({ method: 'POST', url: '/v1/recommend', payload: payload as InjectOptions['payload'] });
    // A user both of whose stored items rank in the unfiltered top 100 (of 400 items).
    let u = 0;
    let all: AnyJson;
    for (let c = 1; c < 300 && !u; c++) {
      all = await rec({ userId: `u${c}`, k: 100, includeSeen: true });
      if (testHistory(c).every((i) => ids(all).includes(`i${i}`))) u = c;
    }
    assert.ok(u > 0, 'some user has both seen items in the unfiltered top 100');
    assert.equal(all.body.seenExcluded, 0);
    const seen = testHistory(u).map((i) => `i${i}`);
    const def = await rec({ userId: `u${u}`, k: 100 });
    assert.equal(def.body.seenExcluded, 2);
    for (const s of seen) assert.ok(!ids(def).includes(s), `${s} was seen: excluded`);
    // The answer is the unfiltered ranking minus the seen items.
    assert.deepEqual(
      ids(def).slice(0, 90),
      ids(all)
        .filter((x) => !seen.includes(x))
        .slice(0, 90),
    );
    const extra = ids(all)[0]!;
    const withHistory = await rec({ userId: `u${u}`, k: 10, history: [extra, 'not-an-item'] });
    assert.ok(!ids(withHistory).includes(extra));
    assert.equal(withHistory.body.seenExcluded, 3);
    assert.deepEqual(withHistory.body.unknownItems, ['not-an-item']);
    // Unknown users: popularity without a history; with one, the graphs (they take a `history` input) answer for
    // it, leaving the history's items out.
    const stranger = await rec({ userId: 'who', k: 3 });
    assert.deepEqual(ids(stranger), ['i1', 'i2', 'i3']);
    assert.equal(stranger.body.fallback, 'popularity');
    const strangerWithHistory = await rec({ userId: 'who', k: 3, history: ['i1'] });
    assert.equal(strangerWithHistory.body.fallback, null);
    assert.equal(strangerWithHistory.body.userKnown, false);
    assert.equal(ids(strangerWithHistory).length, 3);
    assert.ok(!ids(strangerWithHistory).includes('i1'), 'the request history is left out');
  });

  void it('a graph with a history input gets the request history, else the stored one (check session.inputNames)', async () => {
    const hb = await makeHistoryBundle(root, 'hist');
    const h = await injectApp(hb, { version: 'seq@v1' });
    try {
      const items = hb.model.sizes.items;
      assert.equal(h.slots.get('stable')?.historyLength, 200);
      const rec = async (payload: unknown) =>
        (
          await h.app.inject({ method: 'POST', url: '/v1/recommend', payload: payload as InjectOptions['payload'] })
        ).json<AnyJson>();
      // Stored history of u9 ends with testHistory(9)[1]: the graph ranks its successor first.
      const stored = await rec({ userId: 'u9', k: 3 });
      assert.equal(stored.items[0].itemId, `i${nextItem(testHistory(9)[1]!, items)}`);
      // The request's history wins over the stored one (most recent last).
      // (Its successor must not be a seen item: u9 has 15 and 18, the request adds 40 and 20.)
      const asked = await rec({ userId: 'u9', k: 3, history: ['i40', 'i20'] });
      assert.equal(asked.items[0].itemId, `i${nextItem(20, items)}`);
      // A user the bundle never saw, with a history: the model answers (no popularity fallback).
      const fresh = await rec({ userId: 'someone-new', k: 3, history: ['i30'] });
      assert.equal(fresh.fallback, null);
      assert.equal(fresh.items[0].itemId, 'i31');
      // ...and without one: popularity.
      assert.equal((await rec({ userId: 'someone-new', k: 3 })).fallback, 'popularity');
      // A batch of mixed history lengths (padding on the left) answers each request with its own history.
      const many = await Promise.all(
        [5, 11, 23, 37].map((n) =>
          rec({ userId: `u${n}`, k: 1, history: Array.from({ length: (n % 7) + 1 }, (_, j) => `i${n + j}`) }),
        ),
      );
      many.forEach((r, j) => {
        const n = [5, 11, 23, 37][j]!;
        assert.equal(r.items[0].itemId, `i${nextItem(n + (n % 7), items)}`);
      });
    } finally {
      await h.close();
    }
    // A static history width is fed exactly.
    const fixed = await makeHistoryBundle(root, 'hist-fixed', 4);
    const f = await injectApp(fixed);
    try {
      assert.equal(f.slots.get('stable')?.historyLength, 4);
      const r = await f.app.inject({
        method: 'POST',
        url: '/v1/recommend',
        payload: { userId: 'u2', k: 2, history: ['i3'] },
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json<AnyJson>().items[0].itemId, 'i4');
    } finally {
      await f.close();
    }
  });

  void it('a moved RECFLOW_HOME still serves: the slot carries the bundle id, found under the bundle roots', async () => {
    const homeA = join(root, 'home-a');
    const id = 'bundle-abc123';
    const bundle = await makeBundle(join(homeA, 'artifacts', 'bundle'), id, 3);
    await writeFile(join(bundle.dir, 'artifact.json'), JSON.stringify({ kind: 'bundle', id, contentHash: 'x' }));
    const store = new FleetStore(join(homeA, 'registry'), 'moved');
    const { desired } = await store.updateDesired({ stable: bundle.slot('m@v7'), reason: 'first deployment' });
    assert.equal(desired.stable?.bundleId, id, 'the fleet store records the artifact id');
    const homeB = join(root, 'home-b');
    await mkdir(homeB, { recursive: true });
    await rename(join(homeA, 'artifacts'), join(homeB, 'artifacts'));
    await rename(join(homeA, 'registry'), join(homeB, 'registry'));
    const server = await startServer({
      port: 0,
      registryDir: join(homeB, 'registry'),
      fleet: 'moved',
      replicaId: 'moved-1',
      pollMs: 100,
      logger: false,
      processMetrics: false,
      model: { bundleRoots: [join(homeB, 'artifacts')] },
    });
    try {
      const end = Date.now() + 15_000;
      let ready = await fetch(`${server.url}/readyz`);
      while (ready.status !== 200 && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 100));
        ready = await fetch(`${server.url}/readyz`);
      }
      assert.equal(ready.status, 200, 'ready after the move');
      assert.equal(server.slots.get('stable')?.dir, join(homeB, 'artifacts', 'bundle', id));
    } finally {
      await server.close();
    }
  });
});
