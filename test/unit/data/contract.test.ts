/**
 * The prepared dataset against its consumers: towerFeatures/sizesOf (lib/model-spec.ts), the bundle writer
 * (lib/onnx/bundle-io.ts, real onnxruntime) and evaluateBundle (lib/eval), on a generated shop.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactStore } from '../../../lib/artifacts';
import { makeShop, prepareDataset } from '../../../lib/data/pipeline';
import { loadDataset } from '../../../lib/dataset';
import { evaluateBundle } from '../../../lib/eval/evaluate';
import { sizesOf, towerFeatures } from '../../../lib/model-spec';
import { writeBundle } from '../../../lib/onnx/bundle-io';
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
});
