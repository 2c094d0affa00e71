import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { itemVector, referenceScore, userVector } from '../../../kinds/two-tower/spec';
import { decodeModel, metadataOf } from '../../../lib/onnx/builder';
import { computeItemMatrix, exportGraphs, type ExportMeta } from '../../../kinds/two-tower/export';
import { randomModel, rng } from '../../helpers/random-model';

const m = randomModel({ seed: 3 });
const meta: ExportMeta = {
  modelName: 'two-tower',
  version: 'v1',
  datasetId: 'ds-1',
  checkpointId: 'ck-1',
  vocabHash: 'abc123',
  config: m.config,
  sizes: m.sizes,
};
const graphs = exportGraphs(m.weights, m.features, meta);

const i64 = (xs: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), dims);

/** Reference ranking of all items but 0 and the excluded, by logit, best first. */
function referenceRanking(user: number, exclude: number[]): Array<{ item: number; score: number }> {
  const u = userVector(m.weights, m.features, user);
  const out: Array<{ item: number; score: number }> = [];
  for (let i = 1; i < m.sizes.items; i++) {
    if (exclude.includes(i)) continue;
    const v = itemVector(m.weights, m.features, i);
    let s = 0;
    for (let j = 0; j < u.length; j++) s += (u[j] ?? 0) * (v[j] ?? 0);
    out.push({ item: i, score: 1 / (1 + Math.exp(-s)) });
  }
  return out.sort((a, b) => b.score - a.score);
}

void describe('ONNX export (fp32)', () => {
  void it('item matrix equals the reference item tower', () => {
    const im = computeItemMatrix(m.weights, m.features);
    const d = m.config.outputDim;
    let max = 0;
    for (let i = 0; i < m.sizes.items; i++) {
      const v = itemVector(m.weights, m.features, i);
      for (let j = 0; j < d; j++) max = Math.max(max, Math.abs((im[i * d + j] ?? 0) - (v[j] ?? 0)));
    }
    assert.ok(max < 1e-5, `max |delta| ${max}`);
  });

  void it('score graph matches referenceScore to 1e-5 on 2000 pairs', async () => {
    const session = await ort.InferenceSession.create(graphs.fp32.score);
    const r = rng(11);
    const B = 200;
    const N = 10;
    const users = Array.from({ length: B }, () => Math.floor(r() * m.sizes.users));
    const items = Array.from({ length: B * N }, () => Math.floor(r() * m.sizes.items));
    const out = await session.run({ user: i64(users, [B]), items: i64(items, [B, N]) });
    const scores = out.scores!.data as Float32Array;
    assert.deepEqual(out.scores!.dims, [B, N]);
    let max = 0;
    for (let b = 0; b < B; b++)
      for (let n = 0; n < N; n++) {
        const ref = referenceScore(m.weights, m.features, users[b]!, items[b * N + n]!);
        max = Math.max(max, Math.abs((scores[b * N + n] ?? NaN) - ref));
      }
    assert.ok(max <= 1e-5, `max |delta| ${max}`);
    await session.release();
  });

  void it('recommend graph returns the reference top-K, never index 0 nor excluded items', async () => {
    const session = await ort.InferenceSession.create(graphs.fp32.recommend);
    const K = 20;
    const users = [1, 7, 42, 0, 299];
    const ref0 = users.map((u) => referenceRanking(u, []));
    // Exclude 3 of each user's top 10, 0-padded to width 4.
    const excl = ref0.map((rk) => [rk[0]!.item, rk[4]!.item, rk[9]!.item, 0]);
    const out = await session.run({
      user: i64(users, [users.length]),
      k: i64([K], [1]),
      exclude: i64(excl.flat(), [users.length, 4]),
    });
    assert.deepEqual(out.items!.dims, [users.length, K]);
    const items = Array.from(out.items!.data as BigInt64Array, Number);
    const scores = out.scores!.data as Float32Array;
    users.forEach((u, b) => {
      const got = items.slice(b * K, (b + 1) * K);
      const ref = referenceRanking(u, excl[b]!).slice(0, K);
      assert.ok(!got.includes(0), `user ${u}: index 0 returned`);
      for (const e of excl[b]!) if (e !== 0) assert.ok(!got.includes(e), `user ${u}: excluded ${e} returned`);
      for (let j = 0; j < K; j++) {
        assert.ok(Math.abs((scores[b * K + j] ?? NaN) - ref[j]!.score) <= 1e-5, `user ${u} rank ${j} score`);
        // Same item unless the reference has a near-tie at this rank.
        if (got[j] !== ref[j]!.item) {
          const tie = ref.find((x) => x.item === got[j]);
          assert.ok(
            tie && Math.abs(tie.score - ref[j]!.score) < 1e-6,
            `user ${u} rank ${j}: ${got[j]} vs ${ref[j]!.item}`,
          );
        }
      }
    });
    await session.release();
  });

  void it('recommend works with an empty exclude list and clamps k to the catalog', async () => {
    const session = await ort.InferenceSession.create(graphs.fp32.recommend);
    const out = await session.run({
      user: i64([5], [1]),
      k: i64([10_000], [1]),
      exclude: new ort.Tensor('int64', new BigInt64Array(0), [1, 0]),
    });
    const items = Array.from(out.items!.data as BigInt64Array, Number);
    assert.equal(items.length, m.sizes.items - 1);
    assert.deepEqual(
      [...items].sort((a, b) => a - b),
      Array.from({ length: m.sizes.items - 1 }, (_, i) => i + 1),
    );
    await session.release();
  });

  void it('records metadata_props and opset 13', () => {
    const model = decodeModel(graphs.fp32.score);
    const md = metadataOf(model);
    assert.equal(md['recflow.model_name'], 'two-tower');
    assert.equal(md['recflow.dataset_id'], 'ds-1');
    assert.equal(md['recflow.vocab_hash'], 'abc123');
    assert.equal(md['recflow.precision'], 'fp32');
    assert.equal(JSON.parse(md['recflow.feature_config']!).sizes.items, m.sizes.items);
    assert.equal(Number(model.opsetImport[0]!.version), 13);
  });

  void it('rejects features that do not fit the weights', () => {
    assert.throws(
      () => exportGraphs(m.weights, { ...m.features, userSegment: new Int32Array(3) }, meta),
      /userSegment has 3 values, the model expects 300/,
    );
  });
});
