import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
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
