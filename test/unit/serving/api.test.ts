import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from '../../../serving/server';
import { MAX_K } from '../../../serving/schemas';
import { makeBundle, post, type TestBundle } from './helpers';

void describe('serving API over HTTP with a real onnxruntime session', () => {
  let root: string;
  let bundle: TestBundle;
  let server: RunningServer;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-serve-api-'));
    bundle = await makeBundle(root, 'b1', 1);
    server = await startServer({
      port: 0,
      bundle: bundle.dir,
      version: 'shop-recs@v1',
      logger: false,
      processMetrics: true,
    });
  });
  after(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  });

  const url = (p: string) => `${server.url}${p}`;

  void it('recommends top-k for a known user, honours exclude, reports unknown items, tags every response', async () => {
    const r = await post(url('/v1/recommend'), { userId: 'u7', k: 5 });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.model, { version: 'shop-recs@v1', variant: 'stable', precision: 'fp32' });
    assert.equal(r.headers.get('x-request-id'), r.body.requestId);
    assert.equal(r.headers.get('x-model-version'), 'shop-recs@v1');
    assert.equal(r.headers.get('x-model-variant'), 'stable');
    assert.equal(r.body.userKnown, true);
    assert.equal(r.body.fallback, null);
    assert.equal(r.body.items.length, 5);
    const scores = r.body.items.map((x: { score: number }) => x.score);
    assert.deepEqual(
      scores,
      [...scores].sort((a, b) => b - a),
    );
    const top = r.body.items[0].itemId as string;
    const second = r.body.items[1].itemId as string;
    const ex = await post(url('/v1/recommend'), { userId: 'u7', k: 5, exclude: [top, 'no-such-item'] });
    assert.equal(ex.status, 200);
    assert.ok(!ex.body.items.some((x: { itemId: string }) => x.itemId === top));
    assert.equal(ex.body.items[0].itemId, second);
    assert.deepEqual(ex.body.unknownItems, ['no-such-item']);

    // The score graph agrees with the recommend graph on the same items.
    const sc = await post(url('/v1/score'), { userId: 'u7', itemIds: [top, 'nope', second] });
    assert.equal(sc.status, 200);
    assert.deepEqual(sc.body.unknownItems, ['nope']);
    assert.deepEqual(
      sc.body.scores.map((x: { itemId: string }) => x.itemId),
      [top, second],
    );
    assert.ok(Math.abs(sc.body.scores[0].score - r.body.items[0].score) < 1e-4);
    assert.ok(Math.abs(sc.body.scores[1].score - r.body.items[1].score) < 1e-4);
  });

  void it('falls back to popularity for an unknown user', async () => {
    const r = await post(url('/v1/recommend'), { userId: 'stranger-42', k: 4, exclude: ['i2'] });
    assert.equal(r.status, 200);
    assert.equal(r.body.userKnown, false);
    assert.equal(r.body.fallback, 'popularity');
    // helpers.ts gives item i<n> popularity 1000 - n: the head is i1, i3, i4, i5 once i2 is excluded.
    assert.deepEqual(
      r.body.items.map((x: { itemId: string }) => x.itemId),
      ['i1', 'i3', 'i4', 'i5'],
    );
    const s = await post(url('/v1/score'), { userId: 'stranger-42', itemIds: ['i1'] });
    assert.equal(s.status, 200);
    assert.equal(s.body.userKnown, false);
    assert.ok(s.body.scores[0].score > 0 && s.body.scores[0].score < 1);
  });

  void it('takes feedback for items of a response, and refuses unknown requests and items', async () => {
    const r = await post(url('/v1/recommend'), { userId: 'u9', k: 3 });
    const item = r.body.items[1].itemId as string;
    const ok = await post(url('/v1/feedback'), { requestId: r.body.requestId, itemId: item, event: 'click' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.accepted, true);
    assert.equal(ok.body.model.variant, 'stable');
    assert.notEqual(ok.body.requestId, r.body.requestId);
    const notShown = await post(url('/v1/feedback'), { requestId: r.body.requestId, itemId: 'i99999', event: 'click' });
    assert.equal(notShown.status, 400);
    assert.match(notShown.body.message, /was not in the response/);
    const unknown = await post(url('/v1/feedback'), { requestId: 'nope', itemId: item, event: 'click' });
    assert.equal(unknown.status, 404);
    const badEvent = await post(url('/v1/feedback'), { requestId: r.body.requestId, itemId: item, event: 'like' });
    assert.equal(badEvent.status, 400);
  });

  void it('answers healthz, readyz and metrics with the loaded model and the counters', async () => {
    const h = await fetch(url('/healthz'));
    assert.equal(h.status, 200);
    const hb = (await h.json()) as { model: { version: string }; requestId: string };
    assert.equal(hb.model.version, 'shop-recs@v1');
    assert.ok(hb.requestId);
    const rz = await fetch(url('/readyz'));
    assert.equal(rz.status, 200);
    assert.equal(((await rz.json()) as { ready: boolean }).ready, true);

    const before = await post(url('/v1/recommend'), { userId: 'u11', k: 6 });
    const fb = await post(url('/v1/feedback'), {
      requestId: before.body.requestId,
      itemId: before.body.items[0].itemId,
      event: 'purchase',
    });
    assert.equal(fb.status, 200);
    const text = await (await fetch(url('/metrics'))).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    assert.ok(
      value(
        /recflow_http_requests_total\{route="\/v1\/recommend",variant="stable",version="shop-recs@v1",status="200"\} (\d+)/,
      ) >= 1,
    );
    assert.equal(
      value(
        /recflow_feedback_events_total\{variant="stable",version="shop-recs@v1",event="purchase",kind="recommend"\} (\d+)/,
      ),
      1,
    );
    assert.ok(
      value(/recflow_impressions_total\{variant="stable",version="shop-recs@v1",kind="recommend"\} (\d+)/) >= 6,
    );
    assert.match(text, /recflow_model_info\{slot="stable",version="shop-recs@v1",precision="fp32"\} 1/);
    assert.match(text, /recflow_http_request_duration_seconds_bucket\{le="0.005",route="\/v1\/recommend"/);
    assert.match(text, /recflow_inference_duration_seconds_count\{graph="recommend",version="shop-recs@v1"\} \d+/);
    assert.match(text, /recflow_process_cpu_user_seconds_total/);
  });

  void it('batches concurrent requests into fewer onnxruntime runs, each answered with its own result', async () => {
    const batchCount = async () =>
      (await server.metrics.batchSize.get()).values.find(
        (v) => v.metricName === 'recflow_inference_batch_size_count' && v.labels.graph === 'recommend',
      )?.value ?? 0;
    const before = await batchCount();
    const users = Array.from({ length: 64 }, (_, i) => `u${i + 1}`);
    const solo = await Promise.all(users.slice(0, 4).map((u) => post(url('/v1/recommend'), { userId: u, k: 3 })));
    const together = await Promise.all(
      users.map((u) => post(url('/v1/recommend'), { userId: u, k: 3 + (u.length % 3) })),
    );
    assert.ok(together.every((r) => r.status === 200));
    // Same answers as one by one (different k per request in one batch is fine).
    for (let i = 0; i < 4; i++)
      assert.deepEqual(
        together[i]?.body.items.slice(0, 3).map((x: { itemId: string }) => x.itemId),
        solo[i]?.body.items.map((x: { itemId: string }) => x.itemId),
      );
    const runs = (await batchCount()) - before;
    assert.ok(runs < 4 + 64, `expected micro-batching, got ${runs} runs for 68 requests`);
  });

  void it('rejects bad input with clear 400s and limits', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{}, /must have required property 'userId'/],
      [{ userId: '' }, /userId must NOT have fewer than 1 characters/],
      [{ userId: 'u1', k: 0 }, /k must be >= 1/],
      [{ userId: 'u1', k: MAX_K + 1 }, new RegExp(`k must be <= ${MAX_K}`)],
      [{ userId: 'u1', k: 2.5 }, /k must be integer/],
      [{ userId: 'u1', k: '5' }, /k must be integer/],
      [{ userId: 42 }, /userId must be string/],
      [{ userId: 'u1', extra: 1 }, /must NOT have additional properties/],
      [{ userId: 'u1', exclude: 'i1' }, /exclude must be array/],
      ['{"userId":', /not valid JSON/],
    ];
    for (const [body, re] of cases) {
      const r = await post(url('/v1/recommend'), body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.message, re);
      assert.ok(r.body.requestId);
    }
    const big = await post(url('/v1/score'), {
      userId: 'u1',
      itemIds: Array.from({ length: 5000 }, (_, i) => `item-with-a-long-id-${i}`),
    });
    assert.equal(big.status, 413);
    const tooMany = await post(url('/v1/score'), { userId: 'u1', itemIds: Array.from({ length: 1001 }, () => 'i1') });
    assert.equal(tooMany.status, 400);
    const noType = await fetch(url('/v1/recommend'), { method: 'POST', body: 'userId=u1' });
    // fetch sends a string as text/plain: refused with the type to use.
    assert.equal(noType.status, 415);
    assert.match(
      ((await noType.json()) as { message: string }).message,
      /send a JSON body with content-type application\/json/,
    );
    const xml = await fetch(url('/v1/recommend'), {
      method: 'POST',
      headers: { 'content-type': 'application/xml' },
      body: '<userId>u1</userId>',
    });
    assert.equal(xml.status, 415);
    const admin = await fetch(url('/v1/admin/fleet'), {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ canaryWeight: 10, reason: 'x' }),
    });
    assert.equal(admin.status, 403);
  });

  void it('hides 5xx details from clients', async () => {
    const model = server.slots.get('stable', 'recommend');
    assert.ok(model);
    const original = model.recommendBatcher.submit.bind(model.recommendBatcher);
    model.recommendBatcher.submit = () => Promise.reject(new Error('secret path /etc/model.onnx'));
    try {
      const r = await post(url('/v1/recommend'), { userId: 'u3' });
      assert.equal(r.status, 500);
      assert.equal(r.body.message, 'internal error');
      assert.ok(!JSON.stringify(r.body).includes('secret'));
      assert.ok(r.body.requestId);
      assert.equal(model.inFlight, 0);
    } finally {
      model.recommendBatcher.submit = original;
    }
  });

  void it('survives fuzzed requests (random bodies, types, sizes, methods) and still serves', async () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const pieces: unknown[] = [
      null,
      true,
      -1,
      0,
      1e308,
      NaN,
      '',
      'u1',
      '\u0000\uffff',
      'x'.repeat(300),
      [],
      ['i1', 2],
      {},
      { $ref: '#' },
      { __proto__: { k: 1 } },
    ];
    const pick = () => pieces[Math.floor(rand() * pieces.length)];
    const statuses = new Map<number, number>();
    const routes = ['/v1/recommend', '/v1/score', '/v1/feedback', '/v1/admin/fleet', '/nope', '/metrics'];
    for (let i = 0; i < 300; i++) {
      const route = routes[Math.floor(rand() * routes.length)] ?? '/';
      const kind = rand();
      let body: string;
      if (kind < 0.3)
        body = JSON.stringify({ userId: pick(), k: pick(), exclude: pick(), itemIds: pick(), event: pick() });
      else if (kind < 0.5) body = JSON.stringify(pick());
      else if (kind < 0.7)
        body = Array.from({ length: Math.floor(rand() * 200) }, () =>
          String.fromCharCode(Math.floor(rand() * 256)),
        ).join('');
      else if (kind < 0.85) body = `{"userId":"u1","k":${'9'.repeat(Math.floor(rand() * 40))}}`;
      else body = `${'['.repeat(Math.floor(rand() * 5000))}`;
      const method = rand() < 0.85 ? 'POST' : rand() < 0.5 ? 'PUT' : 'DELETE';
      const res = await fetch(url(route), {
        method,
        headers: { 'content-type': rand() < 0.9 ? 'application/json' : 'text/plain' },
        body,
      });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok(res.status < 500, `${method} ${route} ${body.slice(0, 80)} -> ${res.status}`);
    }
    assert.ok((statuses.get(400) ?? 0) > 50);
    const ok = await post(url('/v1/recommend'), { userId: 'u1', k: 3 });
    assert.equal(ok.status, 200);
    assert.equal(server.slots.get('stable')?.inFlight, 0);
  });

  void it('fuzzes the admin API past its token: 4xx, never 5xx; only bundles inside the store are accepted', async () => {
    const token = 'fuzz-token';
    const store = join(root, 'artifacts');
    const good = await makeBundle(join(store, 'bundle'), 'good', 2);
    const fleetServer = await startServer({
      port: 0,
      registryDir: join(root, 'registry'),
      fleet: 'fz',
      replicaId: 'fz1',
      adminToken: token,
      logger: false,
      processMetrics: false,
      model: { bundleRoots: [store] },
    });
    try {
      let seed = 777;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
      };
      const oneOf = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const paths = [
        '/etc',
        '/etc/passwd',
        '../../etc',
        join(store, '..', 'registry'),
        join(store, 'bundle', '..', '..', '..'),
        '/proc/self',
        'C:\\Windows',
        'x'.repeat(5000),
        '',
        good.dir,
      ];
      const values: unknown[] = [null, -1, 1e308, '', 'x'.repeat(600), [], {}, 'canary', 'stable', 0.5, 503, 70_000];
      let accepted = 0;
      for (let i = 0; i < 200; i++) {
        const fleet = rand() < 0.6;
        const body = fleet
          ? {
              [oneOf(['stable', 'canary'])]: {
                version: oneOf(['m@v1', '../v2', 'x'.repeat(300), 7]),
                bundlePath: oneOf(paths),
                precision: oneOf(['fp32', 'int8', 'fp16']),
              },
              ...(rand() < 0.8 ? { reason: oneOf(['fuzz', '', 'y'.repeat(600)]) } : {}),
              ...(rand() < 0.3 ? { canaryWeight: oneOf([0, 50, 101, -1, 'x']) } : {}),
            }
          : {
              variant: oneOf(values),
              ...(rand() < 0.5 ? { abortRate: oneOf(values) } : {}),
              ...(rand() < 0.5 ? { delayMs: oneOf(values) } : {}),
              ...(rand() < 0.3 ? { abortStatus: oneOf(values) } : {}),
            };
        const res = await fetch(`${fleetServer.url}/v1/admin/${fleet ? 'fleet' : 'faults'}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const text = await res.text();
        assert.ok(res.status < 500, `${JSON.stringify(body).slice(0, 200)} -> ${res.status} ${text}`);
        if (fleet && res.status === 200) {
          accepted++;
          assert.ok(JSON.stringify(body).includes(good.dir), `accepted a slot outside the store: ${text}`);
        }
      }
      assert.ok(accepted > 0, 'some valid changes went through');
      // Every desired state the replica took names bundles in the store only; its files stay under the registry.
      const desired = (await (
        await fetch(`${fleetServer.url}/v1/admin/fleet`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as {
        desired: { stable: { bundlePath: string } | null; canary: { bundlePath: string } | null };
      };
      for (const slot of [desired.desired.stable, desired.desired.canary])
        if (slot) assert.equal(slot.bundlePath, good.dir);
      assert.deepEqual((await readdir(root)).sort(), ['artifacts', 'b1', 'registry']);
      const ok = await post(`${fleetServer.url}/v1/recommend`, { userId: 'u1', k: 3 });
      assert.ok(ok.status === 200 || ok.status === 503, `still serving: ${ok.status}`);
    } finally {
      await fleetServer.close();
    }
  });
});
