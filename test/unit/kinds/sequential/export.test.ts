import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import type { Precision } from '../../../../lib/bundle';
import { evaluateBundle } from '../../../../lib/eval/evaluate';
import { decodeModel, encodeModel, metadataOf } from '../../../../lib/onnx/builder';
import { loadBundle } from '../../../../lib/onnx/bundle-io';
import { mulberry32 } from '../../../../lib/rng';
import { selectBackend } from '../../../../lib/train/backend';
import {
  buildSequentialRecommendModel,
  buildSequentialScoreModel,
  exportSequentialBundle,
  popularityLogits,
  type SequentialExportMeta,
} from '../../../../kinds/sequential/export';
import { SequentialModel } from '../../../../kinds/sequential/model';
import {
  itemFeaturesOf,
  resolveSequentialConfig,
  sequentialSizesOf,
  type ItemFeatures,
  type SequentialWeights,
} from '../../../../kinds/sequential/spec';
import { rankSequential, trainSequential } from '../../../../kinds/sequential/trainer';
import { tempHome } from '../../../helpers/temporal';
import { patternDataset } from './pattern-dataset';

const L = 8;
const N = 40;
const config = resolveSequentialConfig({ maxLength: L, hiddenDim: 16, heads: 2, innerDim: 24, blocks: 2 });
const sizes = { items: N, categories: 5, brands: 4 };
const features: ItemFeatures = {
  category: Int32Array.from({ length: N }, (_, i) => i % 5),
  brand: Int32Array.from({ length: N }, (_, i) => i % 4),
};
const popularity = Float32Array.from({ length: N }, (_, i) => (i === 0 ? 0 : (i * 7) % 13));
const meta: SequentialExportMeta = {
  modelName: 'seq-test',
  datasetId: 'ds',
  checkpointId: 'ck',
  vocabHash: 'h',
  config,
  sizes,
};

const i64 = (xs: ArrayLike<number>, dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(Array.from(xs, (x) => BigInt(x))), dims);

type Sessions = Record<Precision, { score: ort.InferenceSession; recommend: ort.InferenceSession }>;

/** Random histories `[rows, width]`: row r has `lengths[r]` items, left-padded. */
function histories(rows: number, width: number, seed: number, lengths?: number[]): number[][] {
  const r = mulberry32(seed);
  return Array.from({ length: rows }, (_, k) => {
    const n = lengths?.[k] ?? 1 + Math.floor(r() * width);
    return [...new Array<number>(width - n).fill(0), ...Array.from({ length: n }, () => 1 + Math.floor(r() * (N - 1)))];
  });
}

async function recommend(s: ort.InferenceSession, hist: number[][], k: number, exclude: number[][] = []) {
  const B = hist.length;
  const width = hist[0]?.length ?? 0;
  const E = Math.max(0, ...exclude.map((e) => e.length));
  const ex = hist.map((_, b) => [...(exclude[b] ?? []), ...new Array<number>(E - (exclude[b]?.length ?? 0)).fill(0)]);
  const out = await s.run({
    user: i64(new Array<number>(B).fill(1), [B]),
    k: i64([k], [1]),
    exclude: i64(ex.flat(), [B, E]),
    history: i64(hist.flat(), [B, width]),
  });
  const kk = out.items!.dims[1] ?? 0;
  const items = Array.from(out.items!.data as BigInt64Array, Number);
  const scores = Array.from(out.scores!.data as Float32Array);
  return hist.map((_, b) => ({ items: items.slice(b * kk, (b + 1) * kk), scores: scores.slice(b * kk, (b + 1) * kk) }));
}

async function score(s: ort.InferenceSession, hist: number[][]): Promise<number[][]> {
  const B = hist.length;
  const all = Array.from({ length: N - 1 }, (_, i) => i + 1);
  const out = await s.run({
    user: i64(new Array<number>(B).fill(1), [B]),
    items: i64(
      hist.flatMap(() => all),
      [B, N - 1],
    ),
    history: i64(hist.flat(), [B, hist[0]?.length ?? 0]),
  });
  const d = Array.from(out.scores!.data as Float32Array);
  return hist.map((_, b) => d.slice(b * (N - 1), (b + 1) * (N - 1)));
}

describe('sequential ONNX export', () => {
  let model: SequentialModel;
  let weights: SequentialWeights;
  const sessions = {} as Sessions;
  before(async () => {
    await selectBackend('wasm');
    model = new SequentialModel(config, sizes, features);
    weights = model.toWeights();
    const r = mulberry32(4);
    for (const w of Object.values(weights)) for (let i = 0; i < w.data.length; i++) w.data[i]! += (r() - 0.5) * 0.6;
    model.setWeights(weights);
    const opts = { intraOpNumThreads: 1, interOpNumThreads: 1 };
    for (const p of ['fp32', 'int8'] as const)
      sessions[p] = {
        score: await ort.InferenceSession.create(
          encodeModel(buildSequentialScoreModel(weights, features, popularity, meta, p)),
          opts,
        ),
        recommend: await ort.InferenceSession.create(
          encodeModel(buildSequentialRecommendModel(weights, features, popularity, meta, p)),
          opts,
        ),
      };
  });

  /** tfjs next-item probabilities over items 1..N-1 (softmax without index 0). */
  function tfjsProbs(hist: number[][]): number[][] {
    const logits = model.catalogueLogits(tf.tensor2d(hist, [hist.length, L], 'int32')).arraySync();
    return logits.map((row) => {
      const x = row.slice(1);
      const m = Math.max(...x);
      const z = x.reduce((a, v) => a + Math.exp(v - m), 0);
      return x.map((v) => Math.exp(v - m) / z);
    });
  }

  it('fp32 matches the tfjs forward (max |delta| of log-probabilities under 1e-4) and its ranking', async () => {
    const hist = histories(16, L, 1);
    const want = tfjsProbs(hist);
    const got = await score(sessions.fp32.score, hist);
    let maxLog = 0;
    want.forEach((row, b) =>
      row.forEach((p, i) => (maxLog = Math.max(maxLog, Math.abs(Math.log(p) - Math.log(got[b]![i]!))))),
    );
    assert.ok(maxLog < 1e-4, `max |delta log p| ${maxLog}`);
    const rec = await recommend(sessions.fp32.recommend, hist, 5);
    rec.forEach((r, b) => {
      const order = want[b]!.map((p, i) => [p, i + 1] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
      assert.deepEqual(
        r.items,
        order.slice(0, 5).map((x) => x[1]),
      );
      r.scores.forEach((s, j) => assert.ok(Math.abs(s - order[j]![0]) < 1e-5));
    });
    const m = metadataOf(
      decodeModel(encodeModel(buildSequentialScoreModel(weights, features, popularity, meta, 'fp32'))),
    );
    assert.equal(m['recflow.model_kind'], 'sequential');
    assert.equal(m['recflow.history_length'], String(L));
  });

  it('int8 stays close to fp32 (probabilities within 0.01, most of the top 10 shared)', async () => {
    const hist = histories(32, L, 2);
    const a = await score(sessions.fp32.score, hist);
    const b = await score(sessions.int8.score, hist);
    let maxd = 0;
    a.forEach((row, r) => row.forEach((p, i) => (maxd = Math.max(maxd, Math.abs(p - b[r]![i]!)))));
    assert.ok(maxd < 0.01, `max |delta p| ${maxd}`);
    const ra = await recommend(sessions.fp32.recommend, hist, 10);
    const rb = await recommend(sessions.int8.recommend, hist, 10);
    const shared = ra.reduce((s, r, k) => s + r.items.filter((i) => rb[k]!.items.includes(i)).length, 0);
    assert.ok(shared / (10 * hist.length) > 0.85, `top-10 overlap ${shared / (10 * hist.length)}`);
  });

  it('gives a user the same answer alone and inside a batch of 64 (fp32 and int8)', async () => {
    const batch = histories(64, L, 3);
    for (const p of ['fp32', 'int8'] as const) {
      const together = await recommend(sessions[p].recommend, batch, 10);
      const scored = await score(sessions[p].score, batch);
      for (const b of [0, 17, 63]) {
        const [alone] = await recommend(sessions[p].recommend, [batch[b]!], 10);
        assert.deepEqual(alone!.items, together[b]!.items, `${p} row ${b}`);
        alone!.scores.forEach((s, j) => assert.ok(Math.abs(s - together[b]!.scores[j]!) <= 1e-6 * Math.max(1, s)));
        const [one] = await score(sessions[p].score, [batch[b]!]);
        one!.forEach((s, i) => assert.ok(Math.abs(s - scored[b]![i]!) <= 1e-6 * Math.max(1e-3, s), `${p} score`));
      }
    }
  });

  it('reads any history width: a longer one is cut to the last items, a shorter one padded, an empty one gets popularity', async () => {
    const base = histories(4, L, 5, [8, 5, 2, 1]);
    const want = await recommend(sessions.fp32.recommend, base, 6);
    const longer = base.map((h, k) => [k + 1, 3, 9, ...h]); // three older items beyond the window
    assert.deepEqual(await recommend(sessions.fp32.recommend, longer, 6), want);
    const shorter = base.slice(1).map((h) => h.slice(3)); // widths 5: still every item of these rows
    assert.deepEqual(await recommend(sessions.fp32.recommend, shorter, 6), want.slice(1));
    const empty = await recommend(
      sessions.fp32.recommend,
      [[], []].map(() => []),
      6,
    );
    const prior = popularityLogits(popularity, N);
    const order = Array.from({ length: N - 1 }, (_, i) => i + 1).sort((x, y) => prior[y]! - prior[x]! || x - y);
    assert.deepEqual(empty[0]!.items, order.slice(0, 6));
    const shares = order.slice(0, 6).map((i) => Math.exp(prior[i]!));
    empty[0]!.scores.forEach((s, j) => assert.ok(Math.abs(s - shares[j]!) < 1e-6));
    const zeros = await recommend(sessions.fp32.recommend, [new Array<number>(L).fill(0)], 6);
    assert.deepEqual(zeros[0]!.items, order.slice(0, 6), 'an all-padding history is empty');
  });

  it('never recommends excluded items or index 0, and caps k at the catalogue', async () => {
    const hist = histories(3, L, 6);
    const top = await recommend(sessions.fp32.recommend, hist, 4);
    const excl = top.map((t) => t.items.slice(0, 2));
    const next = await recommend(sessions.fp32.recommend, hist, 4, excl);
    next.forEach((r, b) => {
      assert.deepEqual(r.items.slice(0, 2), top[b]!.items.slice(2, 4));
      assert.ok(!r.items.some((i) => excl[b]!.includes(i) || i === 0));
    });
    const all = await recommend(sessions.int8.recommend, hist, 500);
    assert.equal(all[0]!.items.length, N - 1);
    assert.ok(!all[0]!.items.includes(0));
  });
});

describe('exportSequentialBundle', () => {
  it('writes a bundle that evaluateBundle ranks like the tfjs model, from the users histories', async () => {
    await selectBackend('wasm');
    const ds = patternDataset({ users: 160, items: 50, testLikeValidation: true });
    const cfg = resolveSequentialConfig({
      maxLength: 8,
      hiddenDim: 16,
      heads: 2,
      innerDim: 32,
      epochs: 8,
      batchSize: 32,
      learningRate: 0.01,
      negatives: 16,
      targetsAhead: 1,
      dropout: 0.1,
    });
    const trained = await trainSequential(ds, cfg);
    const dir = tempHome('recflow-seq-bundle-');
    const manifest = await exportSequentialBundle(dir, {
      modelName: 'seq',
      datasetId: ds.manifest.id,
      checkpointId: 'ck-1',
      weights: trained.weights,
      config: cfg,
      sizes: sequentialSizesOf(ds),
      features: itemFeaturesOf(ds),
      vocab: ds.vocab,
      popularity: ds.items.popularity,
    });
    assert.equal(manifest.kind, 'sequential');
    assert.equal(manifest.historyLength, 8);
    assert.equal(manifest.preferredPrecision, 'fp32', 'int8 does not pay on a 50-item catalogue');
    const loaded = await loadBundle(dir);
    assert.equal(loaded.manifest.opset, 13);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')).items, ds.vocab.items);
    const report = await evaluateBundle(dir, ds, { ks: [10], historyThrough: 'train' });
    const m = new SequentialModel(cfg, sequentialSizesOf(ds), itemFeaturesOf(ds), trained.weights);
    const tfjs = await rankSequential(m, ds, 'test');
    m.dispose();
    const fp32 = report.models.fp32!.overall;
    assert.ok(fp32['ndcg@10']! > 0.5, `bundle NDCG@10 ${fp32['ndcg@10']}`);
    assert.ok(Math.abs(fp32['ndcg@10']! - tfjs.ndcg) < 0.01, `bundle ${fp32['ndcg@10']} vs tfjs ${tfjs.ndcg}`);
    assert.ok(fp32['ndcg@10']! > report.popularity.overall['ndcg@10']! * 3);
    assert.ok(Math.abs(report.models.int8!.overall['ndcg@10']! - fp32['ndcg@10']!) < 0.05);
    // A history cut to the last item still predicts this rule; an empty one falls back to popularity.
    const last = await evaluateBundle(dir, ds, {
      precisions: ['fp32'],
      ks: [10],
      historyLength: 1,
      historyThrough: 'train',
    });
    assert.ok(last.models.fp32!.overall['ndcg@10']! > 0.5);
  });
});
