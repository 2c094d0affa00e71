import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { catalogScores, itemSide, priorTerm, referenceProbability } from '../../../kinds/two-tower/spec';
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
  extras: m.extras,
};
const graphs = exportGraphs(m.weights, m.features, meta);
const side = itemSide(m.weights, m.features, m.extras);

const i64 = (xs: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), dims);
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** A stored-history-free user (index 0 is unknown; users with an empty stored row exist too). */
const emptyUser = [...Array(m.sizes.users).keys()].find(
  (u) => u > 0 && m.features.historyPtr[u + 1] === m.features.historyPtr[u],
)!;

/** Requests covering every path: stored only, stored + request history (with repeats and padding), cold. */
const REQUESTS: Array<{ user: number; history: number[] }> = [
  { user: 1, history: [0, 0, 0, 0, 0] },
  { user: 7, history: [0, 0, 5, 9, 5] },
  { user: 42, history: [3, 3, 3, 3, 3] },
  { user: 0, history: [0, 11, 12, 13, 14] },
  { user: 0, history: [0, 0, 0, 0, 0] },
  { user: emptyUser, history: [0, 0, 0, 0, 0] },
  { user: emptyUser, history: Array.from({ length: 5 }, (_, k) => 100 + k) },
  { user: 299, history: [0, 0, 0, 0, 250] },
];

/** Reference ranking of all items but 0 and the excluded, by probability, best first. */
function referenceRanking(user: number, history: number[], exclude: number[]) {
  const { scores, cold } = catalogScores(m.weights, m.features, m.extras, side, user, history);
  const c = cold ? m.extras.calibration.prior : m.extras.calibration.model;
  const out: Array<{ item: number; score: number }> = [];
  for (let i = 1; i < m.sizes.items; i++)
    if (!exclude.includes(i)) out.push({ item: i, score: sigmoid(c.a * scores[i]! + c.b) });
  return out.sort((a, b) => b.score - a.score);
}

void describe('ONNX export (fp32)', () => {
  void it('item matrix equals the reference item tower, offsets its bias plus the prior term', () => {
    const im = computeItemMatrix(m.weights, m.features, m.extras);
    const pt = priorTerm(m.extras);
    let max = 0;
    for (let i = 0; i < side.vectors.length; i++) max = Math.max(max, Math.abs(im.vectors[i]! - side.vectors[i]!));
    for (let i = 0; i < m.sizes.items; i++) max = Math.max(max, Math.abs(im.offsets[i]! - side.bias[i]! - pt[i]!));
    assert.ok(max < 1e-5, `max |delta| ${max}`);
    // An item without an id is scored from its features: its vector is the tower without the id embedding.
    assert.ok(m.extras.itemHasId.includes(0) && m.extras.itemHasId.includes(1));
  });

  void it('score graph matches the reference probability to 1e-5, with and without a history input', async () => {
    const session = await ort.InferenceSession.create(graphs.fp32.score);
    const r = rng(11);
    const N = 10;
    const B = REQUESTS.length;
    const items = Array.from({ length: B * N }, () => Math.floor(r() * m.sizes.items));
    const feeds = {
      user: i64(
        REQUESTS.map((q) => q.user),
        [B],
      ),
      items: i64(items, [B, N]),
    };
    const withHist = (
      await session.run({
        ...feeds,
        history: i64(
          REQUESTS.flatMap((q) => q.history),
          [B, 5],
        ),
      })
    ).scores!.data as Float32Array;
    const without = (await session.run({ ...feeds, history: i64([], [B, 0]) })).scores!.data as Float32Array;
    let max = 0;
    REQUESTS.forEach((q, b) => {
      for (let n = 0; n < N; n++) {
        const i = items[b * N + n]!;
        const ref = referenceProbability(m.weights, m.features, m.extras, side, q.user, i, q.history);
        const refNoHist = referenceProbability(m.weights, m.features, m.extras, side, q.user, i, []);
        max = Math.max(max, Math.abs(withHist[b * N + n]! - ref), Math.abs(without[b * N + n]! - refNoHist));
      }
    });
    assert.ok(max <= 1e-5, `max |delta| ${max}`);
    // Cold rows (no stored history, no usable history item) score the calibrated prior.
    const cold = REQUESTS.findIndex((q) => q.user === 0 && q.history.every((x) => x === 0));
    const c = m.extras.calibration.prior;
    for (let n = 0; n < N; n++)
      assert.ok(Math.abs(withHist[cold * N + n]! - sigmoid(c.a * m.extras.prior[items[cold * N + n]!]! + c.b)) < 1e-6);
    await session.release();
  });

  void it('recommend graph returns the reference top-K, never index 0 nor excluded items', async () => {
    const session = await ort.InferenceSession.create(graphs.fp32.recommend);
    const K = 20;
    const ref0 = REQUESTS.map((q) => referenceRanking(q.user, q.history, []));
    // Exclude 3 of each request's top 10, 0-padded to width 4.
    const excl = ref0.map((rk) => [rk[0]!.item, rk[4]!.item, rk[9]!.item, 0]);
    const B = REQUESTS.length;
    const out = await session.run({
      user: i64(
        REQUESTS.map((q) => q.user),
        [B],
      ),
      k: i64([K], [1]),
      exclude: i64(excl.flat(), [B, 4]),
      history: i64(
        REQUESTS.flatMap((q) => q.history),
        [B, 5],
      ),
    });
    assert.deepEqual(out.items!.dims, [B, K]);
    const items = Array.from(out.items!.data as BigInt64Array, Number);
    const scores = out.scores!.data as Float32Array;
    REQUESTS.forEach((q, b) => {
      const got = items.slice(b * K, (b + 1) * K);
      const ref = referenceRanking(q.user, q.history, excl[b]!).slice(0, K);
      assert.ok(!got.includes(0), `request ${b}: index 0 returned`);
      for (const e of excl[b]!) if (e !== 0) assert.ok(!got.includes(e), `request ${b}: excluded ${e} returned`);
      for (let j = 0; j < K; j++) {
        assert.ok(Math.abs(scores[b * K + j]! - ref[j]!.score) <= 1e-5, `request ${b} rank ${j} score`);
        if (got[j] !== ref[j]!.item) {
          const tie = ref.find((x) => x.item === got[j]);
          assert.ok(
            tie && Math.abs(tie.score - ref[j]!.score) < 1e-6,
            `request ${b} rank ${j}: ${got[j]} vs ${ref[j]!.item}`,
          );
        }
      }
    });
    await session.release();
  });

  void it('a request without history ranks by the recent-popularity prior', async () => {
    const session = await ort.InferenceSession.create(graphs.fp32.recommend);
    const out = await session.run({
      user: i64([0, emptyUser], [2]),
      k: i64([15], [1]),
      exclude: new ort.Tensor('int64', new BigInt64Array(0), [2, 0]),
      history: i64([], [2, 0]),
    });
    const items = Array.from(out.items!.data as BigInt64Array, Number);
    const byPrior = [...Array(m.sizes.items).keys()].slice(1).sort((a, b) => m.extras.prior[b]! - m.extras.prior[a]!);
    assert.deepEqual(items.slice(0, 15), byPrior.slice(0, 15));
    assert.deepEqual(items.slice(15), byPrior.slice(0, 15));
    await session.release();
  });

  void it('recommend works with an empty exclude list and clamps k to the catalog', async () => {
    const session = await ort.InferenceSession.create(graphs.fp32.recommend);
    const out = await session.run({
      user: i64([5], [1]),
      k: i64([10_000], [1]),
      exclude: new ort.Tensor('int64', new BigInt64Array(0), [1, 0]),
      history: i64([], [1, 0]),
    });
    const items = Array.from(out.items!.data as BigInt64Array, Number);
    assert.equal(items.length, m.sizes.items - 1);
    assert.deepEqual(
      [...items].sort((a, b) => a - b),
      Array.from({ length: m.sizes.items - 1 }, (_, i) => i + 1),
    );
    await session.release();
  });

  void it('records metadata_props and opset 13; history is an input', () => {
    const model = decodeModel(graphs.fp32.score);
    const md = metadataOf(model);
    assert.equal(md['recflow.kind'], 'two-tower');
    assert.equal(md['recflow.model_name'], 'two-tower');
    assert.equal(md['recflow.dataset_id'], 'ds-1');
    assert.equal(md['recflow.vocab_hash'], 'abc123');
    assert.equal(md['recflow.precision'], 'fp32');
    assert.equal(md['recflow.inputs'], 'user,items,history');
    assert.equal(JSON.parse(md['recflow.feature_config']!).sizes.items, m.sizes.items);
    assert.equal(JSON.parse(md['recflow.config']!).priorWeight, 0.5);
    assert.equal(Number(model.opsetImport[0]!.version), 13);
    assert.ok(model.graph!.input!.some((i) => i.name === 'history'));
  });

  void it('rejects features that do not fit the weights', () => {
    assert.throws(
      () => exportGraphs(m.weights, { ...m.features, userSegment: new Int32Array(3) }, meta),
      /userSegment has 3 values, the model expects 300/,
    );
    assert.throws(
      () => exportGraphs(m.weights, m.features, { ...meta, extras: { ...m.extras, prior: new Float32Array(2) } }),
      /extras.prior has 2 values, the model expects 400/,
    );
  });
});
