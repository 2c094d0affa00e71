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
import {
  createServingActivities,
  type ApplyFleetStateResult,
  type GetFleetStateResult,
  type ReadFleetStatsResult,
  type SimulateTrafficResult,
} from '../../activities/serving';
import { ArtifactStore } from '../../lib/artifacts';
import { loadConfig } from '../../lib/config';
import { analyzeWindow } from '../../lib/canary/analysis';
import { routeUser } from '../../serving/router';
import { makeBundle, post, type TestBundle } from '../unit/serving/helpers';
import { mockActivityEnv } from '../helpers/activity-env';

const REPO = resolve(__dirname, '..', '..');
const FLEET = 'it-fleet';
const TOKEN = 'it-admin-token';

void describe('serving fleet: two replicas, the fleet store and the serving activities', () => {
  let root: string;
  let b1: TestBundle;
  let b2: TestBundle;
  const procs: ChildProcess[] = [];
  let acts: ReturnType<typeof createServingActivities>;
  const env = mockActivityEnv();

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
      {
        env: { ...process.env, RECFLOW_HOME: root, RECFLOW_LOG_LEVEL: 'warn', RECFLOW_ADMIN_TOKEN: TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      if (code && code !== 0) console.error(`replica ${id} exited ${code}: ${err}`);
    });
    procs.push(p);
    return p;
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
    b1 = await makeBundle(join(root, 'artifacts', 'test-bundles'), 'b1', 1);
    b2 = await makeBundle(join(root, 'artifacts', 'test-bundles'), 'b2', 2);
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

    // A window: traffic during it is counted. The window opens once the simulator is under way (it loads the
    // bundle's users first) and closes before it stops, so it holds about 1.5 s of 40 requests/s.
    const during = env.run(acts.simulateTraffic, { fleet: FLEET, durationMs: 3000, rps: 40, seed: 4 });
    await new Promise((res) => setTimeout(res, 700));
    const windowed = (await env.run(acts.readFleetStats, { fleet: FLEET, windowMs: 1500 })) as ReadFleetStatsResult;
    await during;
    const inWindow = windowed.variants.stable.requests + windowed.variants.canary.requests;
    assert.ok(inWindow > 10, `${inWindow} requests in the window`);
  });

  void it('a window by serve time, read after a feedback delay: every impression and click of it, per bucket', async () => {
    // The window starts on the next 1 s boundary after the call: call early in a second, traffic after the boundary.
    const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
    await sleep(1300 - (Date.now() % 1000));
    const window = env.run(acts.readFleetStats, {
      fleet: FLEET,
      windowMs: 3000,
      feedbackDelayMs: 600,
    }) as Promise<ReadFleetStatsResult>;
    await sleep(1200 - (Date.now() % 1000));
    const sim = (await env.run(acts.simulateTraffic, {
      fleet: FLEET,
      durationMs: 1000,
      rps: 40,
      seed: 11,
    })) as SimulateTrafficResult;
    const stats = await window;
    assert.equal(sim.dropped, 0);
    assert.equal(sim.timedOut, 0);
    const { stable, canary } = stats.variants;
    assert.equal(stable.requests + canary.requests, sim.requests);
    assert.equal(stable.impressions + canary.impressions, sim.impressions);
    assert.equal(stable.clicks + canary.clicks, sim.clicks, 'no click lost at the boundary, none counted twice');
    assert.equal(canary.clicks, sim.byVariant?.canary?.clicks);
    assert.ok(stats.window && stats.window.servedBefore - stats.window.servedFrom === 3000);
    assert.equal(stats.window.feedbackDelayMs, 600);
    assert.equal(stats.shed, 0);
    const b = stats.buckets;
    assert.ok(b, 'the replicas report buckets');
    assert.equal(b.count, 512);
    assert.equal(b.stable.impressions.length, 512);
    const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
    assert.equal(sum(b.canary.clicks), canary.clicks);
    assert.equal(sum(b.stable.impressions), stable.impressions);
    assert.ok(b.stable.impressions.filter((x) => x > 0).length > 5, 'users spread over buckets');
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

  void it('the admin API refuses a bundle outside the artifact store (400), and nothing changes', async () => {
    const { replicas } = await state();
    const url = replicas[0]!.url;
    const before = await state();
    for (const bundlePath of ['/etc', join(root, 'artifacts', '..', 'registry'), join(root, 'artifacts', '..')]) {
      const res = await fetch(`${url}/v1/admin/fleet`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ stable: { version: 'x@v9', bundlePath, precision: 'fp32' }, reason: 'traversal' }),
      });
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { message: string }).message, /outside the bundle roots/);
    }
    const after = await state();
    assert.equal(after.desired?.generation, before.desired?.generation);
  });

  void it('fault injection (admin API): the canary fails and slows down, stable never fails', async () => {
    startReplica('r3');
    await until('r2 and r3 live', (x) => x.replicas.map((r) => r.replicaId).join() === 'r2,r3');
    const r = (await env.run(acts.applyFleetState, {
      fleet: FLEET,
      canary: b1.slot('m@v1'),
      canaryWeight: 50,
      reason: 'canary for the fault test',
      waitForReplicasMs: 20_000,
    })) as ApplyFleetStateResult;
    assert.equal(r.converged, true);
    const faults = (url: string, method: string, body?: unknown, token: string | null = TOKEN) =>
      fetch(`${url}/v1/admin/faults`, {
        method,
        headers: {
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
    // 150 ms: far above what a loaded host adds to stable's p99 (the latency check asks 1.5x and +20 ms over it).
    const spec = { variant: 'canary', abortRate: 0.5, delayMs: 150 };
    for (const x of r.replicas) {
      assert.equal((await faults(x.url, 'PUT', spec, null)).status, 401);
      assert.equal((await faults(x.url, 'PUT', spec, 'wrong')).status, 401);
      assert.equal((await faults(x.url, 'PUT', { ...spec, abortRate: 2 })).status, 400);
      const ok = await faults(x.url, 'PUT', spec);
      assert.equal(ok.status, 200, await ok.text());
    }
    await env.run(acts.readFleetStats, { fleet: FLEET });
    const sim = (await env.run(acts.simulateTraffic, {
      fleet: FLEET,
      durationMs: 2000,
      rps: 60,
      users: 100,
      seed: 5,
    })) as SimulateTrafficResult;
    const stats = (await env.run(acts.readFleetStats, { fleet: FLEET })) as ReadFleetStatsResult;
    const { stable, canary } = stats.variants;
    assert.equal(stable.errors, 0, 'stable traffic never failed');
    assert.equal(sim.byVariant?.stable?.errors, 0);
    assert.ok(canary.requests > 20, `canary requests ${canary.requests}`);
    const errRate = canary.errors / canary.requests;
    assert.ok(errRate > 0.25 && errRate < 0.75, `canary error rate ${errRate}`);
    assert.equal(sim.byVariant?.canary?.errors, canary.errors, 'the simulator saw the same failures');
    assert.ok(canary.p50Ms >= 150, `canary p50 ${canary.p50Ms} ms`);
    assert.ok(stable.p50Ms < 150, `stable p50 ${stable.p50Ms} ms`);
    const analysis = analyzeWindow(stable, canary, { minRequests: 20, minImpressions: 50 });
    assert.equal(analysis.verdict, 'fail');
    const failed = analysis.checks.filter((c) => c.verdict === 'fail').map((c) => c.name);
    assert.ok(
      failed.includes('error-rate') && failed.includes('latency-p99'),
      `${failed.join()}; p99 stable ${stable.p99Ms} ms, canary ${canary.p99Ms} ms`,
    );

    for (const x of r.replicas) {
      assert.equal((await faults(x.url, 'DELETE', undefined, null)).status, 401);
      assert.equal((await faults(x.url, 'DELETE')).status, 200);
      assert.equal((await faults(x.url, 'GET', undefined, null)).status, 401);
      const left = (await (await faults(x.url, 'GET')).json()) as { faults: unknown[] };
      assert.deepEqual(left.faults, []);
    }
  });

  void it('a replica killed during a stats window is missing from it: the analysis is inconclusive', async () => {
    const victim = procs.at(-1)!;
    const window = env.run(acts.readFleetStats, { fleet: FLEET, windowMs: 1500 }) as Promise<ReadFleetStatsResult>;
    const traffic = env.run(acts.simulateTraffic, { fleet: FLEET, durationMs: 1500, rps: 40, seed: 6 });
    await new Promise((res) => setTimeout(res, 400));
    victim.kill('SIGKILL');
    const stats = await window;
    await traffic;
    assert.deepEqual(stats.coverage, { expected: 2, covered: 1, missing: ['r3'] });
    const analysis = analyzeWindow(
      stats.variants.stable,
      stats.variants.canary,
      { minRequests: 1, minImpressions: 1 },
      { coverage: stats.coverage },
    );
    const coverage = analysis.checks.find((c) => c.name === 'coverage');
    assert.equal(coverage?.verdict, 'inconclusive');
    assert.match(coverage?.reason ?? '', /r3/);
    assert.notEqual(analysis.verdict, 'pass');
  });
});
