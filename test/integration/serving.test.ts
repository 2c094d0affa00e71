/* eslint-disable @typescript-eslint/unbound-method, @typescript-eslint/no-unnecessary-type-assertion -- activity methods do not use `this`; env.run cannot infer results */
/**
 * Two serving replicas as real processes (`recflow serve --fleet`), driven by the serving activities through the
 * fleet store: they converge on each desired-state change, take simulated traffic, and report per-variant stats.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  createServingActivities,
  type ApplyFleetStateResult,
  type GetFleetStateResult,
  type ReadFleetStatsResult,
  type SimulateTrafficResult,
} from '../../activities/serving';
import { ArtifactStore } from '../../lib/artifacts';
import { loadConfig } from '../../lib/config';
import { routeUser } from '../../serving/router';
import { makeBundle, post, type TestBundle } from '../unit/serving/helpers';

const REPO = resolve(__dirname, '..', '..');
const FLEET = 'it-fleet';

void describe('serving fleet: two replicas, the fleet store and the serving activities', () => {
  let root: string;
  let b1: TestBundle;
  let b2: TestBundle;
  const procs: ChildProcess[] = [];
  let acts: ReturnType<typeof createServingActivities>;
  const env = new MockActivityEnvironment();

  const startReplica = (id: string) => {
    const p = spawn(
      process.execPath,
      [
        join(REPO, 'bin', 'recflow.js'),
        'serve',
        '--port',
        '0',
        '--fleet',
        FLEET,
        '--replica-id',
        id,
        '--poll-ms',
        '200',
      ],
      { env: { ...process.env, RECFLOW_HOME: root, RECFLOW_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      if (code && code !== 0) console.error(`replica ${id} exited ${code}: ${err}`);
    });
    procs.push(p);
  };
  const state = async () => (await env.run(acts.getFleetState, { fleet: FLEET })) as GetFleetStateResult;
  const until = async (what: string, ok: (s: GetFleetStateResult) => boolean, ms = 20_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const s = await state();
      if (ok(s)) return s;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s.replicas)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-serve-it-'));
    b1 = await makeBundle(join(root, 'bundles'), 'b1', 1);
    b2 = await makeBundle(join(root, 'bundles'), 'b2', 2);
    const config = loadConfig({ RECFLOW_HOME: root });
    acts = createServingActivities({ config, store: new ArtifactStore(config.artifactsDir) }, { pollMs: 100 });
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  void it('sets the desired state before any replica runs: not converged', async () => {
    const r = (await env.run(acts.applyFleetState, {
      fleet: FLEET,
      stable: b1.slot('m@v1'),
      reason: 'initial',
      waitForReplicasMs: 300,
    })) as ApplyFleetStateResult;
    assert.equal(r.generation, 1);
    assert.equal(r.converged, false);
    assert.deepEqual(r.replicas, []);
  });

  void it('two replicas start, reconcile to it and report', async () => {
    startReplica('r1');
    startReplica('r2');
    const s = await until(
      '2 replicas on generation 1',
      (x) => x.replicas.length === 2 && x.replicas.every((r) => r.appliedGeneration === 1 && r.healthy),
    );
    assert.deepEqual(
      s.replicas.map((r) => [r.replicaId, r.stable, r.canary]),
      [
        ['r1', 'm@v1', null],
        ['r2', 'm@v1', null],
      ],
    );
    for (const r of s.replicas) {
      const res = await post(`${r.url}/v1/recommend`, { userId: 'u1', k: 3 });
      assert.equal(res.body.model.version, 'm@v1');
    }
  });

  void it('applyFleetState: both replicas converge on a canary at 40%, routing the same users the same way', async () => {
    const r = (await env.run(acts.applyFleetState, {
      fleet: FLEET,
      canary: b2.slot('m@v2', 'int8'),
      canaryWeight: 40,
      reason: 'rollout step 1',
      waitForReplicasMs: 20_000,
    })) as ApplyFleetStateResult;
    assert.equal(r.generation, 2);
    assert.equal(r.converged, true);
    assert.ok(r.replicas.every((x) => x.canary === 'm@v2' && x.canaryWeight === 40 && x.stable === 'm@v1'));
    const again = (await env.run(acts.applyFleetState, {
      fleet: FLEET,
      canaryWeight: 40,
      reason: 'retry of step 1',
    })) as ApplyFleetStateResult;
    assert.equal(again.generation, 2);
    assert.equal(again.changed, false);
    assert.equal(again.converged, true);
    const [x, y] = r.replicas;
    assert.ok(x && y);
    for (const u of b1.users.slice(0, 30)) {
      const a = await post(`${x.url}/v1/recommend`, { userId: u, k: 2 });
      const b = await post(`${y.url}/v1/recommend`, { userId: u, k: 2 });
      assert.equal(a.body.model.variant, routeUser(u, 40, true));
      assert.deepEqual(a.body.model, b.body.model);
      assert.deepEqual(a.body.items, b.body.items);
    }
  });

  void it('simulateTraffic + readFleetStats: per-variant requests, latency and CTR from the replicas', async () => {
    await env.run(acts.readFleetStats, { fleet: FLEET }); // snapshot: what came before is not counted
    const sim = (await env.run(acts.simulateTraffic, {
      fleet: FLEET,
      durationMs: 2000,
      rps: 50,
      users: 100,
      seed: 3,
    })) as SimulateTrafficResult;
    assert.ok(sim.requests >= 80, `requests ${sim.requests}`);
    assert.equal(sim.errors, 0);
    assert.ok(sim.clicks > 0);
    const stats = (await env.run(acts.readFleetStats, { fleet: FLEET })) as ReadFleetStatsResult;
    assert.equal(stats.replicas, 2);
    const { stable, canary } = stats.variants;
    assert.equal(stable.version, 'm@v1');
    assert.equal(canary.version, 'm@v2');
    assert.equal(stable.requests + canary.requests, sim.requests);
    assert.equal(stable.clicks + canary.clicks, sim.clicks);
    assert.equal(stable.impressions + canary.impressions, sim.impressions);
    assert.equal(canary.requests, sim.byVariant?.canary?.requests);
    assert.ok(canary.requests > 10 && stable.requests > 10);
    for (const v of [stable, canary]) {
      assert.equal(v.errors, 0);
      assert.ok(v.p50Ms > 0 && v.p99Ms >= v.p50Ms, JSON.stringify(v));
      assert.ok(Math.abs(v.ctr - v.clicks / v.impressions) < 1e-12);
    }
    const none = (await env.run(acts.readFleetStats, { fleet: FLEET })) as ReadFleetStatsResult;
    assert.equal(none.variants.stable.requests + none.variants.canary.requests, 0);

    // A window: traffic during it is counted.
    const during = env.run(acts.simulateTraffic, { fleet: FLEET, durationMs: 1200, rps: 40, seed: 4 });
    const windowed = (await env.run(acts.readFleetStats, { fleet: FLEET, windowMs: 800 })) as ReadFleetStatsResult;
    await during;
    assert.ok(windowed.variants.stable.requests + windowed.variants.canary.requests > 10);
  });

  void it('promote, then a replica stopping removes its report', async () => {
    const r = (await env.run(acts.applyFleetState, {
      fleet: FLEET,
      stable: b2.slot('m@v2', 'int8'),
      canary: null,
      canaryWeight: 0,
      reason: 'promote m@v2',
    })) as ApplyFleetStateResult;
    assert.equal(r.converged, true);
    assert.ok(r.replicas.every((x) => x.stable === 'm@v2' && x.canary === null));
    const p = procs[0];
    assert.ok(p);
    const exited = new Promise((res) => p.once('exit', res));
    p.kill('SIGTERM');
    await exited;
    const s = await until('one replica left', (x) => x.replicas.length === 1);
    assert.equal(s.replicas[0]?.replicaId, 'r2');
  });
});
