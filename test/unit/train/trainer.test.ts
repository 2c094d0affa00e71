import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { loadDataset, type LoadedDataset } from '../../../lib/data/dataset';
import { DEFAULT_MODEL_CONFIG, referenceScore, towerFeatures, type ModelConfig } from '../../../kinds/two-tower/spec';
import { selectBackend } from '../../../lib/train/backend';
import { itemsByUser, popularityScorer, rankSplit, topK } from '../../../lib/train/metrics';
import { epochExamples, trainTwoTower, type EpochRecord } from '../../../kinds/two-tower/trainer';
import { tempHome } from '../../helpers/temporal';
import { writeTinyDataset } from '../../helpers/tiny-dataset';

const CONFIG: ModelConfig = {
  ...DEFAULT_MODEL_CONFIG,
  embeddingDim: 16,
  featureDim: 8,
  hiddenUnits: 32,
  outputDim: 16,
  epochs: 6,
  batchSize: 256,
  learningRate: 0.01,
  earlyStoppingPatience: 10,
};

describe('topK', () => {
  it('returns the k best indices, skipping item 0 and excluded items, ties by lower index', () => {
    const row = Float32Array.from([9, 1, 5, 5, 7, 3, 8]);
    assert.deepEqual(topK(row, 3, undefined), [6, 4, 2]);
    assert.deepEqual(topK(row, 3, new Set([6])), [4, 2, 3]);
    assert.deepEqual(topK(row, 10, new Set([4, 6])), [2, 3, 5, 1]);
  });
});

describe('trainTwoTower', () => {
  let ds: LoadedDataset;
  before(async () => {
    await selectBackend('wasm');
    const dir = tempHome('recflow-trainer-');
    await writeTinyDataset(dir, { users: 240, items: 120, perUser: 14 });
    ds = await loadDataset(dir);
  });

  it('samples seeded negatives: same epoch same examples, another epoch other ones, positives kept', () => {
    const a = epochExamples(ds, CONFIG, 3);
    const b = epochExamples(ds, CONFIG, 3);
    const c = epochExamples(ds, CONFIG, 4);
    assert.deepEqual(a.items, b.items);
    assert.notDeepEqual(a.items, c.items);
    assert.equal(a.users.length, ds.splits.train.user.length * (1 + CONFIG.negativesPerPositive));
    const positives = a.labels.reduce((s, l) => s + (l > 0 ? 1 : 0), 0);
    assert.equal(positives, ds.splits.train.user.length);
    assert.ok(!a.items.includes(0), 'item 0 (unknown) is never sampled');
  });

  it('learns the planted preferences: validation NDCG@10 well above popularity, loss falls', async () => {
    const epochs: EpochRecord[] = [];
    const r = await trainTwoTower(ds, CONFIG, {
      onEpoch: async (rec) => {
        epochs.push(rec);
      },
    });
    const pop = await rankSplit(ds, ds.splits.validation, popularityScorer(ds));
    assert.equal(r.epochsRun, 6);
    assert.equal(epochs.length, 6);
    assert.ok((epochs[5]?.loss ?? 1) < (epochs[0]?.loss ?? 0), `loss ${epochs[0]?.loss} -> ${epochs[5]?.loss}`);
    const best = r.history[r.bestEpoch];
    assert.ok(best && best.ndcg10 > pop.ndcg * 1.3, `model ${best?.ndcg10} vs popularity ${pop.ndcg}`);
    assert.ok(r.samplesPerSec > 0);
    // The learning rate decays per epoch.
    assert.ok(Math.abs((epochs[2]?.learningRate ?? 0) - CONFIG.learningRate * CONFIG.learningRateDecay ** 2) < 1e-12);
    // The returned weights are the best epoch's, and they score like the reference forward.
    const f = towerFeatures(ds);
    const s = referenceScore(r.weights, f, 5, 7);
    assert.ok(s > 0 && s < 1);
  });

  it('stops early when validation NDCG@10 stops improving', async () => {
    // A learning rate of 0 never improves on epoch 0.
    const r = await trainTwoTower(ds, { ...CONFIG, learningRate: 0, epochs: 10, earlyStoppingPatience: 1 });
    assert.equal(r.stoppedEarly, true);
    assert.equal(r.bestEpoch, 0);
    assert.equal(r.epochsRun, 2);
  });

  it('resumes after a given epoch and keeps the history', async () => {
    const cfg = { ...CONFIG, epochs: 4 };
    const first = await trainTwoTower(ds, cfg, { maxEpochs: 2 });
    assert.equal(first.epochsRun, 2);
    const resumed = await trainTwoTower(ds, cfg, {
      resume: { epoch: 1, weights: first.weights, history: first.history, bestWeights: first.weights },
    });
    assert.equal(resumed.epochsRun, 2);
    assert.deepEqual(
      resumed.history.map((h) => h.epoch),
      [0, 1, 2, 3],
    );
  });

  it('ranks with training items excluded', async () => {
    const seen = itemsByUser(ds.splits.train);
    // A scorer that puts each user's training items first: excluded, so the result is as if they were absent.
    const m = await rankSplit(ds, ds.splits.validation, (users) => {
      const n = ds.vocab.items.length;
      const out = new Float32Array(users.length * n);
      users.forEach((u, j) => {
        for (const i of seen.get(u) ?? []) out[j * n + i] = 100;
        for (const i of itemsByUser(ds.splits.validation).get(u) ?? []) out[j * n + i] = 50;
      });
      return out;
    });
    assert.ok(m.users > 0);
    assert.equal(m.hr, 1);
    assert.equal(m.ndcg, 1);
  });
});
