/* eslint-disable @typescript-eslint/unbound-method, @typescript-eslint/no-unnecessary-type-assertion -- activity methods do not use `this`; env.run cannot infer results */
/**
 * The search kind through the generic activities, as the lifecycle calls them (no search-specific activity): a
 * small real shop with its search log, a tiny random BERT as the base model (test/helpers/search-model.ts, so this
 * runs in seconds; the real MiniLM runs in test/integration/search-lifecycle.test.ts), then trainModel -> exportModel
 * -> evaluateModel (the search gates chosen by the bundle's task) -> checkServingHealth (the kind's own health
 * check) -> registerModel (the lineage records the task and every ranker). A champion of another task is refused.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createEvaluateActivities,
  type EvaluateModelResult,
  type EvaluationArtifact,
} from '../../../activities/evaluate';
import { createExportActivities, type ExportModelResult } from '../../../activities/export';
import { createRegistryActivities } from '../../../activities/registry';
import { createTrainingActivities, type TrainModelResult } from '../../../activities/training';
import { ArtifactStore } from '../../../lib/artifacts';
import type { BundleManifest } from '../../../lib/bundle';
import type { HybridFile } from '../../../kinds/search/bundle';
import { loadConfig } from '../../../lib/config';
import { makeShop, prepareDataset } from '../../../lib/data/pipeline';
import { SEARCH_GATES } from '../../../lib/eval/gates';
import { FileModelRegistry } from '../../../lib/registry';
import { mockActivityEnv } from '../../helpers/activity-env';
import { writeCheckpoint } from '../../../kinds/two-tower/spec';
import { randomModel, writeRandomDataset } from '../../helpers/random-model';
import { writeTinyBert } from '../../helpers/search-model';

void describe('search kind through the lifecycle activities', () => {
  let root: string;
  let store: ArtifactStore;
  let datasetId: string;
  let baseModel: string;
  const deps = () => ({ config: loadConfig({ RECFLOW_HOME: root, RECFLOW_LOG_LEVEL: 'warn' }), store });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-search-acts-'));
    store = new ArtifactStore(join(root, 'artifacts'));
    baseModel = writeTinyBert(join(root, 'tiny-bert'), 3);
    const shop = await makeShop(store, { seed: 4, users: 150, items: 80, events: 3000, queries: 500 });
    datasetId = (await prepareDataset(store, { source: { kind: 'shop', id: shop.shop.id } })).dataset.id;
  });
  after(() => rm(root, { recursive: true, force: true }));

  let trained: TrainModelResult;
  let exported: ExportModelResult;
  let evaluated: EvaluateModelResult;

  void it('trainModel and exportModel dispatch by kind: a search checkpoint, a search bundle with its own precision choice', async () => {
    const env = mockActivityEnv();
    trained = (await env.run(createTrainingActivities(deps()).trainModel, {
      kind: 'search' as const,
      datasetId,
      config: {
        baseModel,
        epochs: 1,
        maxPairs: 64,
        batchSize: 16,
        studentLayers: 1,
        precisions: ['fp32', 'int8-dynamic'],
      },
      seed: 1,
    })) as TrainModelResult;
    assert.equal(trained.kind, 'search');
    assert.equal(trained.epochsRun, 1);
    assert.ok(trained.metrics.ndcg10 >= 0 && trained.metrics.ndcg10 <= 1);
    exported = (await env.run(createExportActivities(deps()).exportModel, {
      kind: 'search' as const,
      checkpointId: trained.checkpoint.id,
      datasetId,
      modelName: 'shop-search',
    })) as ExportModelResult;
    const manifest = JSON.parse(await readFile(join(exported.bundle.path, 'bundle.json'), 'utf8')) as BundleManifest;
    assert.equal(manifest.task, 'search');
    assert.equal(manifest.kind, 'search');
    assert.ok(
      manifest.search?.variants.fp32 && manifest.search.variants['int8-dynamic'] && manifest.search.variants.student,
    );
    // The kind's own choice (measured variants), not the recommenders' fp32/int8 timing.
    assert.equal(exported.servingPrecision?.preferred, manifest.search.choice.preferred);
    assert.ok(
      ['int8-dynamic', 'student', 'student-int8-dynamic'].includes(manifest.search.serves.int8),
      manifest.search.serves.int8,
    );
    // Each variant's hybrid weight, tuned on its OWN dense scores: the grid's weight-1 point (dense alone) is that
    // variant's validation NDCG@10, and the chosen weight is the grid's best (ties: more dense).
    const hybrid = JSON.parse(await readFile(join(exported.bundle.path, 'bm25.json'), 'utf8')) as HybridFile;
    const variants = Object.keys(manifest.search.variants).sort();
    assert.deepEqual(Object.keys(hybrid.variants ?? {}).sort(), variants);
    assert.deepEqual(Object.keys(manifest.search.hybrid.variants ?? {}).sort(), variants);
    for (const v of variants) {
      const h = hybrid.variants![v]!;
      const dense = h.grid.find((g) => g.weight === 1)?.ndcg;
      const own = manifest.search.variants[v]!.validation['ndcg@10'];
      assert.ok(dense !== undefined && Math.abs(dense - own) < 1e-4, `${v}: grid at weight 1 ${dense} vs dense ${own}`);
      const best = Math.max(...h.grid.map((g) => g.ndcg));
      assert.equal(h.weight, Math.max(...h.grid.filter((g) => g.ndcg === best).map((g) => g.weight)), v);
      assert.equal(manifest.search.hybrid.variants![v]!.weight, h.weight);
    }
    assert.equal(hybrid.weight, hybrid.variants!.fp32!.weight);
  });

  void it('evaluateModel: the search gates by the bundle task, the headline over queries', async () => {
    const env = mockActivityEnv();
    evaluated = (await env.run(createEvaluateActivities(deps()).evaluateModel, {
      bundleId: exported.bundle.id,
      datasetId,
      precision: 'int8' as const,
    })) as EvaluateModelResult;
    const names = evaluated.gates.map((g) => g.name);
    assert.ok(names.includes('champion:int8:ndcg@10') || names.includes('champion:fp32:ndcg@10'), names.join());
    assert.ok(
      names.some((n) => n.startsWith('int8-drop:ndcg@10:')),
      names.join(),
    );
    const beat = evaluated.gates.find((g) => g.name.startsWith('beats-baselines:'));
    assert.ok(beat, names.join());
    assert.match(beat.reason, /bm25/);
    for (const k of ['ndcg@10', 'mrr@10', 'recall@100', 'queries'])
      assert.ok(Number.isFinite(evaluated.headline[k]), `headline ${k}: ${JSON.stringify(evaluated.headline)}`);
    assert.ok((evaluated.headline.queries ?? 0) > 10);
    const art = JSON.parse(
      await readFile(join(evaluated.evaluation.path, 'evaluation.json'), 'utf8'),
    ) as EvaluationArtifact;
    const rankers = art.candidate.search?.rankers.map((r) => r.name) ?? [];
    for (const r of ['fp32', 'int8-dynamic', 'student', 'hybrid', 'bm25', 'zeroShot'])
      assert.ok(rankers.includes(r), rankers.join());
    // The gates read what serves: each precision's model is the one ranker of the table that serves it.
    const search = art.candidate.search!;
    for (const p of ['fp32', 'int8'] as const) {
      const serving = search.rankers.filter((r) => r.serves?.includes(p));
      assert.equal(serving.length, 1, `${p}: ${serving.map((r) => r.name).join()}`);
      assert.equal(serving[0]!.name, search.served?.[p]?.ranker);
      assert.equal(serving[0]!.role, (search.served?.[p]?.weight ?? 1) < 1 ? 'hybrid' : 'variant');
      assert.deepEqual(art.candidate.models[p]?.overall, serving[0]!.overall, p);
    }
    // The gate read BM25 from the same report it shows.
    const bm25 = art.candidate.baselines?.bm25?.overall['ndcg@10'];
    assert.equal(beat.threshold, bm25);
    assert.equal(beat.passed, (evaluated.headline['ndcg@10'] ?? 0) > (bm25 ?? 1));
    assert.deepEqual(SEARCH_GATES.baselinesToBeat, ['bm25']);
  });

  void it("checkServingHealth uses the kind's health check; registerModel records the task and the rankers", async () => {
    const env = mockActivityEnv();
    const health = (await env.run(createEvaluateActivities(deps()).checkServingHealth, {
      bundleId: exported.bundle.id,
      precision: 'int8' as const,
    })) as { blessed: boolean; gates: Array<{ name: string; reason: string }> };
    assert.ok(
      health.gates.some((g) => /quer/.test(g.reason)),
      JSON.stringify(health.gates),
    );
    const registered = (await env.run(createRegistryActivities(deps()).registerModel, {
      modelName: 'shop-search',
      bundleId: exported.bundle.id,
      evaluationId: evaluated.evaluation.id,
    })) as { ref: string };
    const v = await new FileModelRegistry(deps().config.registryDir).get(registered.ref);
    assert.equal(v.lineage.config?.task, 'search');
    assert.equal(v.lineage.config?.kind, 'search');
    for (const k of ['int8.ndcg@10', 'search.bm25.ndcg@10', 'search.hybrid.ndcg@10', 'search.zeroShot.mrr@10'])
      assert.ok(Number.isFinite(v.lineage.metrics?.[k]), k);
  });

  void it('refuses to gate a search model against a recommender champion', async () => {
    const model = randomModel({ seed: 1 });
    await store.put('dataset', 'ds-random', async (dir) => {
      await writeRandomDataset(dir, model, { id: 'ds-random' });
    });
    await store.put('checkpoint', 'ck-random', (dir) =>
      writeCheckpoint(
        dir,
        {
          config: model.config,
          sizes: model.sizes,
          datasetId: 'ds-random',
          backend: 'cpu',
          gpu: false,
          epoch: 0,
          history: [],
          extras: model.extras,
        },
        model.weights,
      ),
    );
    const env = mockActivityEnv();
    const recs = (await env.run(createExportActivities(deps()).exportModel, {
      checkpointId: 'ck-random',
      datasetId: 'ds-random',
    })) as ExportModelResult;
    await assert.rejects(
      env.run(createEvaluateActivities(deps()).evaluateModel, {
        bundleId: exported.bundle.id,
        datasetId,
        championBundleId: recs.bundle.id,
      }),
      (err: Error & { type?: string; nonRetryable?: boolean }) => {
        assert.equal(err.type, 'InvalidInput');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /a search model, the champion's bundle .* a recommend model/);
        return true;
      },
    );
  });
});
