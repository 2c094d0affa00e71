import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from '../../../serving/server';
import { scoreClickModel, simulateTraffic, type ClickModel } from '../../../serving/simulator';
import { makeBundle, type TestBundle } from './helpers';

void describe('traffic simulator against a real server', () => {
  let root: string;
  let bundle: TestBundle;
  let server: RunningServer;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-serve-sim-'));
    bundle = await makeBundle(root, 'b1', 3);
    server = await startServer({ port: 0, bundle: bundle.dir, version: 'm@v1', logger: false, processMetrics: false });
  });
  after(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  });

  const clicksCounted = async () =>
    (await server.metrics.feedback.get()).values
      .filter((v) => v.labels.event === 'click')
      .reduce((a, v) => a + v.value, 0);

  void it('sends clicks drawn from the click model to the replica that served them', async () => {
    const calls: Array<[string, string, number | null, number]> = [];
    const topOnly: ClickModel = (u, i, score, rank) => {
      calls.push([u, i, score, rank]);
      return rank === 0 ? 1 : 0;
    };
    const before = await clicksCounted();
    const res = await simulateTraffic({
      urls: [server.url],
      users: bundle.users.slice(0, 50),
      durationMs: 600,
      rps: 50,
      k: 4,
      newUserFraction: 0.2,
      clickModel: topOnly,
      seed: 2,
    });
    assert.ok(res.requests >= 20, `requests ${res.requests}`);
    assert.equal(res.errors, 0);
    assert.equal(res.impressions, res.requests * 4);
    assert.equal(res.clicks, res.requests); // exactly the top item of every response
    assert.equal((await clicksCounted()) - before, res.clicks);
    assert.ok(
      calls.some(([u, , s]) => u.startsWith('sim-new-') && s === null),
      'new users get popularity (null)',
    );
    assert.ok(calls.some(([u, , s]) => !u.startsWith('sim-new-') && typeof s === 'number'));
    const none = await simulateTraffic({
      urls: [server.url],
      users: bundle.users,
      durationMs: 300,
      rps: 30,
      clickModel: () => 0,
    });
    assert.equal(none.clicks, 0);
    assert.ok(none.requests > 0);
  });

  void it('the default click model follows the score and damps by rank', () => {
    const m = scoreClickModel();
    assert.ok(m('u', 'i', 0.9, 0) > m('u', 'i', 0.2, 0));
    assert.ok(m('u', 'i', 0.9, 0) > m('u', 'i', 0.9, 5));
    assert.equal(m('u', 'i', null, 0), 0.02);
  });

  void it('counts failures instead of throwing when a replica is down', async () => {
    const res = await simulateTraffic({ urls: ['http://127.0.0.1:9'], users: ['u1'], durationMs: 200, rps: 20 });
    assert.ok(res.requests > 0);
    assert.equal(res.errors, res.requests);
  });
});

void describe('simulator: users by activity, drops and time-outs per variant', () => {
  /** A fake replica: records user ids, answers after `delayMs` with one item and a token. */
  const fakeReplica = async (delayMs: number) => {
    const users: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        if (req.url === '/v1/recommend') users.push((JSON.parse(body) as { userId: string }).userId);
        setTimeout(() => {
          res.setHeader('content-type', 'application/json');
          res.setHeader('x-model-variant', 'stable');
          res.end(
            JSON.stringify({
              requestId: 'x',
              model: { variant: 'stable', version: 'v' },
              items: [{ itemId: 'i1', score: 0.5 }],
              feedbackToken: 't',
            }),
          );
        }, delayMs);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    return {
      url: `http://127.0.0.1:${port}`,
      users,
      close: () =>
        new Promise((r) => {
          server.closeAllConnections();
          server.close(r);
        }),
    };
  };

  void it('draws users in proportion to their activity', async () => {
    const f = await fakeReplica(0);
    try {
      await simulateTraffic({
        urls: [f.url],
        users: ['idle', 'some', 'busy'],
        weights: [0, 1, 9],
        newUserFraction: 0,
        durationMs: 800,
        rps: 200,
        clickModel: () => 0,
      });
      const n = f.users.length;
      assert.ok(n > 50, `requests ${n}`);
      assert.equal(f.users.filter((u) => u === 'idle').length, 0);
      const busy = f.users.filter((u) => u === 'busy').length / n;
      assert.ok(busy > 0.8 && busy < 0.97, `busy share ${busy}`);
    } finally {
      await f.close();
    }
  });

  void it('counts dropped and timed-out requests per variant (the one routing would pick), not as errors', async () => {
    const f = await fakeReplica(400);
    try {
      const res = await simulateTraffic({
        urls: [f.url],
        users: ['a', 'b', 'c', 'd'],
        newUserFraction: 0,
        durationMs: 600,
        rps: 100,
        maxInFlight: 5,
        requestTimeoutMs: 150,
        route: (u) => (u === 'a' || u === 'b' ? 'canary' : 'stable'),
        clickModel: () => 0,
      });
      assert.ok(res.dropped > 0, `dropped ${res.dropped}`);
      assert.ok(res.timedOut > 0, `timed out ${res.timedOut}`);
      assert.equal(res.errors, 0);
      const v = res.byVariant;
      assert.equal((v.canary?.dropped ?? 0) + (v.stable?.dropped ?? 0), res.dropped);
      assert.equal((v.canary?.timedOut ?? 0) + (v.stable?.timedOut ?? 0), res.timedOut);
      assert.ok((v.canary?.dropped ?? 0) > 0 && (v.stable?.dropped ?? 0) > 0);
    } finally {
      await f.close();
    }
  });
});
