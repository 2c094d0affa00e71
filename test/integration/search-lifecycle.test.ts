/**
 * Product search through the whole lifecycle on the real dev server, with real activities, the installed MiniLM
 * base model, real onnxruntime and a real serving fleet of its own (`search`):
 *  1. the zero-shot encoder (epochs 0) is the fleet's first search model: evaluated beside BM25, registered with
 *     task `search`, auto-approved, straight to stable;
 *  2. a fine-tuned challenger (one epoch over a few hundred pairs, top layers only) beats BM25 and is not worse than
 *     the zero-shot champion on the same test queries, a reviewer approves it (Update), and its canary
 *     (simulated searchers clicking by the shop's graded relevance on `POST /v1/search`) promotes it.
 * The registry's version records the task, the search metrics and the gates; the aliases equal the fleet's state.
 * Small shop and short windows: the statistics are tested in test/unit/eval and test/unit/canary, here the wiring.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { loadConfig } from '../../lib/config';
import { CPU_TASK_QUEUE, DEFAULT_SEARCH_FLEET } from '../../lib/constants';
import { FleetStore } from '../../lib/fleet/store';
import { FileModelRegistry } from '../../lib/registry';
import { approveUpdate, statusQuery } from '../../lib/lifecycle/messages';
import type { LifecycleInput, LifecycleResult } from '../../lib/lifecycle/types';
import { startServer, type RunningServer } from '../../serving/server';
import { maybeRecordHistory } from '../helpers/histories';
import { startRecflowWorkers } from '../helpers/workers';
import { devServerEnv, tempHome } from '../helpers/temporal';

const MODEL = 'shop-search';
const FLEET = DEFAULT_SEARCH_FLEET;
const shop = { kind: 'synthetic' as const, seed: 5, users: 300, items: 200, events: 8_000, queries: 1_500 };
/** Small and quick: top two layers, a few hundred pairs, no student, one int8 variant. */
const config = {
  trainableLayers: 2,
  maxPairs: 300,
  student: false,
  precisions: ['fp32', 'int8-dynamic'],
};

void describe('search model lifecycle end to end (dev server, real activities, search fleet)', () => {
  let env: TestWorkflowEnvironment;
  let workers: Awaited<ReturnType<typeof startRecflowWorkers>> | undefined;
  const home = tempHome();
  const cfg = loadConfig({ RECFLOW_HOME: home, RECFLOW_LOG_LEVEL: 'warn' });
  const servers: RunningServer[] = [];
  const registry = new FileModelRegistry(cfg.registryDir);

  before(async () => {
    env = await devServerEnv();
    workers = await startRecflowWorkers(env, home);
    for (const id of ['s1', 's2'])
      servers.push(
        await startServer({
          port: 0,
          registryDir: cfg.registryDir,
          fleet: FLEET,
          replicaId: id,
          pollMs: 200,
          logger: false,
          processMetrics: false,
        }),
      );
  });
  after(async () => {
    for (const s of servers) await s.close();
    await workers?.stop();
    await env?.teardown();
  });

  const rollout: LifecycleInput['rollout'] = {
    fleet: FLEET,
    steps: [
      { weight: 50, bake: '6s' },
      { weight: 100, bake: '4s' },
    ],
    traffic: { rps: 40, users: 200 },
    criteria: { minRequests: 20, minImpressions: 100, decisiveWeight: 101, minSliceRequests: 5 },
    convergeTimeout: '60s',
    maxExtensions: 1,
    onInconclusive: 'rollback',
  };

  async function lifecycle(id: string, input: LifecycleInput, approveAs?: string): Promise<LifecycleResult> {
    const handle = await env.client.workflow.start('modelLifecycleWorkflow', {
      taskQueue: CPU_TASK_QUEUE,
      workflowId: id,
      args: [input],
    });
    if (approveAs) {
      for (let i = 0; ; i++) {
        const s = await handle.query(statusQuery);
        if (s.stage === 'awaiting_approval') break;
        assert.ok(s.stage !== 'done' && i < 2400, `never awaited approval: ${s.outcome} ${s.reason}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      await handle.executeUpdate(approveUpdate, { args: [{ reviewer: approveAs, comment: 'ship it' }] });
    }
    return (await handle.result()) as LifecycleResult;
  }

  async function assertAliasesMatchFleet(): Promise<void> {
    const desired = await new FleetStore(cfg.registryDir, FLEET).readDesired();
    const champion = await registry.find(`${MODEL}@champion`);
    const canary = await registry.find(`${MODEL}@canary`);
    assert.equal(desired?.stable?.version, champion ? `${MODEL}@v${champion.version}` : undefined);
    assert.equal(desired?.canary?.version ?? null, canary ? `${MODEL}@v${canary.version}` : null);
  }

  void it('ships the zero-shot encoder as the first search model', async () => {
    const r = await lifecycle('search-e2e-first', {
      modelName: MODEL,
      kind: 'search',
      requestedBy: 'alice',
      data: shop,
      train: { config: { ...config, epochs: 0 }, seed: 1 },
      approval: { autoApprove: true },
      rollout,
    });
    assert.equal(r.outcome, 'promoted', `${r.reason} ${JSON.stringify(r.status.evaluation?.gates)}`);
    assert.equal(r.status.kind, 'search');
    assert.equal(r.status.rollout?.firstDeployment, true);
    assert.equal(r.version, `${MODEL}@v1`);
    const v1 = await registry.get(`${MODEL}@v1`);
    assert.equal(v1.lineage.config?.task, 'search');
    assert.equal(v1.lineage.config?.kind, 'search');
    const m = v1.lineage.metrics ?? {};
    // The zero-shot encoder against BM25 on the same held-out queries (gated: it must beat it to ship).
    assert.ok((m['fp32.ndcg@10'] ?? 0) > (m['search.bm25.ndcg@10'] ?? 1), JSON.stringify(m));
    assert.ok((m['fp32.queries'] ?? 0) >= 30, 'enough test queries to mean something');
    for (const k of ['fp32.mrr@10', 'fp32.recall@100', 'int8.ndcg@10', 'search.hybrid.ndcg@10'])
      assert.ok(Number.isFinite(m[k]), `${k} in the lineage`);
    assert.ok(v1.lineage.blessing?.gates.some((g) => g.name.includes('ndcg@10') && g.passed));
    await assertAliasesMatchFleet();
  });

  void it('fine-tunes a challenger, a reviewer approves it, the canary promotes it', async (t) => {
    const r = await lifecycle(
      'search-e2e-better',
      {
        modelName: MODEL,
        kind: 'search',
        requestedBy: 'alice',
        data: shop,
        train: { config: { ...config, epochs: 1 }, seed: 1 },
        approval: { reviewers: ['bob'] },
        rollout,
      },
      'bob',
    );
    assert.equal(r.outcome, 'promoted', `${r.reason} ${JSON.stringify(r.status.evaluation?.gates)}`);
    assert.equal(r.status.approval.reviewer, 'bob');
    assert.equal(r.version, `${MODEL}@v2`);
    const gates = r.status.evaluation?.gates ?? [];
    const champion = gates.find((g) => g.name.startsWith('champion:'));
    assert.ok(champion?.passed, `the zero-shot champion was compared on the same queries: ${JSON.stringify(gates)}`);
    const analyses = r.status.rollout!.steps.flatMap((s) => s.analyses ?? []);
    assert.ok(analyses.length >= 1, 'the canary was analysed');
    for (const a of analyses) {
      const traffic = a.checks.find((c) => c.name === 'traffic');
      assert.ok((traffic?.canary ?? 0) > 0, `the canary served simulated searchers: ${JSON.stringify(traffic)}`);
    }
    const v2 = await registry.get(`${MODEL}@v2`);
    assert.equal(v2.status, 'production');
    assert.equal(v2.lineage.config?.task, 'search');
    const m = v2.lineage.metrics ?? {};
    t.diagnostic(
      `test NDCG@10: ${['fp32', 'int8', 'search.hybrid', 'search.bm25', 'search.zeroShot']
        .map((k) => `${k} ${m[`${k}.ndcg@10`]?.toFixed(4)}`)
        .join(', ')}; canary: ${analyses.map((a) => a.summary).join(' | ')}`,
    );
    assert.ok((m['fp32.ndcg@10'] ?? 0) > (m['search.bm25.ndcg@10'] ?? 1));
    // Fine-tuning on the shop's own log: the fine-tuned encoder is at least as good as the zero-shot one here.
    assert.ok((m['fp32.ndcg@10'] ?? 0) >= (m['search.zeroShot.ndcg@10'] ?? 1) - 0.01, JSON.stringify(m));
    assert.equal((await registry.get(`${MODEL}@v1`)).status, 'archived');
    // The run report shows every ranker of the search evaluation.
    const report = readFileSync(r.status.reportPath ?? '', 'utf8');
    assert.match(report, /Search: every ranker on the test queries/);
    assert.match(report, /serves int8/);
    await assertAliasesMatchFleet();
    await maybeRecordHistory(
      env.client.workflow.getHandle('search-e2e-better'),
      'modelLifecycleWorkflow',
      'search-promoted',
    );
  });
});
