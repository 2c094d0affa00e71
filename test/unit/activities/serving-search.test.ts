/* eslint-disable @typescript-eslint/unbound-method, @typescript-eslint/no-unnecessary-type-assertion -- activity methods do not use `this`; env.run cannot infer results */
/**
 * The serving activities on a search model: `simulateTraffic` sees from the stable bundle that it is a search model
 * and drives searchers against `/v1/search` (the shop's searchers when given, else known-item searches over the
 * catalogue); `readFleetStats` reads search CTR per variant and per user bucket from the replica, and the canary
 * analysis compares them exactly as for recommendations.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createServingActivities,
  type ReadFleetStatsResult,
  type SimulateTrafficResult,
} from '../../../activities/serving';
import { ArtifactStore } from '../../../lib/artifacts';
import { analyzeWindow } from '../../../lib/canary/analysis';
import { loadConfig } from '../../../lib/config';
import { startServer, type RunningServer } from '../../../serving/server';
import { mockActivityEnv } from '../../helpers/activity-env';
import { catalogueSearchers, makeSearchBundle, type TestSearchBundle } from '../../helpers/search-bundle';

const FLEET = 'search-fleet';

void describe('serving activities on a search model', () => {
  let root: string;
  let good: TestSearchBundle;
  let shuffled: TestSearchBundle;
  let server: RunningServer;
  const env = mockActivityEnv();
  let config: ReturnType<typeof loadConfig>;
  const acts = (withTruth: boolean) =>
    createServingActivities(
      { config, store: new ArtifactStore(config.artifactsDir) },
      { pollMs: 100, ...(withTruth ? { searchClicksFor: async () => catalogueSearchers() } : {}) },
    );

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-search-acts-'));
    config = loadConfig({ RECFLOW_HOME: root });
    const dir = join(config.artifactsDir, 'test-bundles');
    const users = Array.from({ length: 300 }, (_, i) => `shopper-${i}`);
    good = await makeSearchBundle(dir, 'good', { users });
    shuffled = await makeSearchBundle(dir, 'shuffled', { users, shuffleTexts: 4 });
    server = await startServer({
      port: 0,
      registryDir: config.registryDir,
      fleet: FLEET,
      replicaId: 'search-r1',
      pollMs: 100,
      logger: false,
      processMetrics: false,
    });
    await env.run(acts(true).applyFleetState, {
      fleet: FLEET,
      stable: good.slot('shop-search@v1'),
      canary: shuffled.slot('shop-search@v2', 'int8'),
      canaryWeight: 50,
      salt: 'rollout-search',
      reason: 'search canary',
      waitForReplicasMs: 20_000,
    });
  });
  after(async () => {
    await server?.close();
    await rm(root, { recursive: true, force: true });
  });

  void it("drives the shop's searchers against /v1/search; search CTR per variant and bucket; the analysis sees the worse canary", async () => {
    const a = acts(true);
    await env.run(a.readFleetStats, { fleet: FLEET }); // snapshot
    const sim = (await env.run(a.simulateTraffic, {
      fleet: FLEET,
      shopId: 'shop-1',
      durationMs: 3000,
      rps: 120,
      seed: 7,
    })) as SimulateTrafficResult;
    assert.ok(sim.requests >= 250, `${sim.requests} searches`);
    // The activity's requests time out after 5 s: a starved shared host can make a few fail (then the replica may
    // have counted what the simulator gave up on). Exact otherwise.
    const slack = sim.errors + (sim.timedOut ?? 0) + (sim.dropped ?? 0);
    assert.ok(slack <= 0.02 * sim.requests, JSON.stringify(sim));
    const near = (server: number, client: number, per: number, what: string) =>
      assert.ok(Math.abs(server - client) <= slack * per, `${what}: replica ${server}, simulator ${client}`);
    const stats = (await env.run(a.readFleetStats, { fleet: FLEET })) as ReadFleetStatsResult;
    const { stable, canary } = stats.variants;
    assert.equal(stable.version, 'shop-search@v1');
    assert.equal(canary.version, 'shop-search@v2');
    near(stable.requests + canary.requests, sim.requests, 1, 'requests');
    near(stable.impressions + canary.impressions, sim.impressions ?? 0, 10, 'impressions');
    near(stable.clicks + canary.clicks, sim.clicks, 10, 'clicks');
    assert.ok(stable.ctr > 2 * canary.ctr, `search CTR stable ${stable.ctr} vs canary ${canary.ctr}`);
    assert.ok(stats.buckets, 'per-bucket counts for the canary statistics');
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
    assert.equal(sum(stats.buckets.canary.clicks), canary.clicks);
    assert.equal(sum(stats.buckets.stable.impressions), stable.impressions);
    const analysis = analyzeWindow(stable, canary, { minRequests: 20, minImpressions: 50 });
    assert.equal(analysis.verdict, 'fail', JSON.stringify(analysis.checks));
    assert.ok(
      analysis.checks.some((c) => c.verdict === 'fail' && /ctr/i.test(c.name)),
      JSON.stringify(analysis.checks),
    );
  });

  void it('without a search truth: known-item searches over the bundle catalogue', async () => {
    const a = acts(false);
    const sim = (await env.run(a.simulateTraffic, {
      fleet: FLEET,
      durationMs: 1500,
      rps: 60,
      seed: 8,
    })) as SimulateTrafficResult;
    assert.ok(sim.errors <= 0.02 * sim.requests, JSON.stringify(sim));
    assert.ok(sim.requests > 40 && sim.clicks > 0, JSON.stringify(sim));
    assert.ok((sim.byVariant?.stable?.requests ?? 0) > 0 && (sim.byVariant?.canary?.requests ?? 0) > 0);
  });
});
