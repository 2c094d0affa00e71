/**
 * The prepared dataset against its consumers: towerFeatures/sizesOf (lib/model-spec.ts), the bundle writer
 * (lib/onnx/bundle-io.ts, real onnxruntime) and evaluateBundle (lib/eval), on a generated shop.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactStore } from '../../../lib/artifacts';
import { datasetScorer, loadGroundTruth } from '../../../lib/data/ground-truth';
import { makeShop, prepareDataset } from '../../../lib/data/pipeline';
import { loadDataset } from '../../../lib/data/dataset';
import { evaluateBundle } from '../../../lib/eval/evaluate';
import { rankingMetrics } from '../../../lib/eval/metrics';
import { sizesOf, towerFeatures } from '../../../kinds/two-tower/spec';
import { writeBundle } from '../../../kinds/two-tower/bundle';
import { randomModel } from '../../helpers/random-model';
import { tempHome } from '../../helpers/temporal';

describe('prepared dataset contract', () => {
  it('feeds model sizes, tower features, an ONNX bundle and the evaluation; popularity beats chance', async () => {
    const store = new ArtifactStore(join(tempHome(), 'artifacts'));
    const { shop } = await makeShop(store, { users: 300, items: 200, events: 8000, seed: 2 });
    const res = await prepareDataset(store, { source: { kind: 'shop', id: shop.id } });
    const ds = await loadDataset(res.dataset.path);
    const sizes = sizesOf(ds);
    assert.equal(sizes.users, 301);
    assert.equal(sizes.items, 201);
    const features = towerFeatures(ds);
    assert.equal(features.itemTitleTokens.length, sizes.items * 8);
    for (const t of features.itemTitleTokens) assert.ok(t >= 0 && t < sizes.tokens);
    for (const c of features.itemCategory) assert.ok(c >= 0 && c < sizes.categories);
    for (const s of features.userSegment) assert.ok(s >= 0 && s < sizes.segments);
    const m = randomModel({ sizes, seed: 3 });
    const bundle = await store.put('bundle', 'b1', async (dir) => {
      await writeBundle(dir, {
        modelName: 'two-tower',
        datasetId: ds.manifest.id,
        checkpointId: 'ck-random',
        weights: m.weights,
        features,
        meta: { config: m.config, sizes },
        vocab: ds.vocab,
        popularity: ds.items.popularity,
      });
    });
    const report = await evaluateBundle(bundle.path, ds, { precisions: ['fp32'], maxUsers: 100 });
    const pop = report.popularity.overall;
    const fp32 = report.models.fp32?.overall ?? {};
    assert.ok(Number.isFinite(fp32['ndcg@10']) && Number.isFinite(fp32.auc));
    // Popularity on a shop drawn with popularity bias: far above the chance hit rate of 10 / 200.
    assert.ok((pop['hitRate@10'] ?? 0) > 3 * (10 / 200), JSON.stringify(pop));
  });
  it('the oracle (ground truth) ranks the test split far better than popularity', async () => {
    const store = new ArtifactStore(join(tempHome(), 'artifacts'));
    const { shop } = await makeShop(store, { users: 300, items: 200, events: 8000, seed: 2 });
    const res = await prepareDataset(store, { source: { kind: 'shop', id: shop.id } });
    const ds = await loadDataset(res.dataset.path);
    const gt = await loadGroundTruth(shop.path);
    const score = datasetScorer(gt, ds.vocab, ds.manifest.split.validationEnd);
    const relevant = new Map<number, Set<number>>();
    const test = ds.splits.test;
    for (let k = 0; k < test.user.length; k++) {
      const u = test.user[k] ?? 0;
      if (!relevant.has(u)) relevant.set(u, new Set());
      relevant.get(u)?.add(test.item[k] ?? 0);
    }
    const items = Array.from({ length: ds.vocab.items.length - 1 }, (_, k) => k + 1);
    const byPopularity = items.slice().sort((a, b) => (ds.items.popularity[b] ?? 0) - (ds.items.popularity[a] ?? 0));
    const oracle = rankingMetrics(
      [...relevant].map(([u, rel]) => ({
        ranking: items.slice().sort((a, b) => score(u, b) - score(u, a)),
        relevant: rel,
      })),
      10,
    );
    const pop = rankingMetrics(
      [...relevant].map(([, rel]) => ({ ranking: byPopularity, relevant: rel })),
      10,
    );
    console.log(`# oracle ndcg@10 ${oracle.ndcg.toFixed(3)}, popularity ${pop.ndcg.toFixed(3)}`);
    assert.ok(oracle.ndcg > pop.ndcg * 1.3, `oracle ${oracle.ndcg} vs popularity ${pop.ndcg}`);
    assert.equal(score(0, 1), -Infinity);
  });
});
