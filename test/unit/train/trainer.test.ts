import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { loadDataset, type LoadedDataset } from '../../../lib/data/dataset';
import { DEFAULT_MODEL_CONFIG, type ModelConfig } from '../../../kinds/two-tower/spec';
import { selectBackend } from '../../../lib/train/backend';
import { itemsByUser, popularityScorer, rankSplit, topK } from '../../../lib/train/metrics';
import { MASKED_SCORE } from '../../../lib/train/ops';
import {
  batchContext,
  buildBatch,
  epochExamples,
  fitScaled,
  seededRandom,
  trainTwoTower,
  trainingSequences,
  type EpochRecord,
} from '../../../kinds/two-tower/trainer';
import { tempHome } from '../../helpers/temporal';
import { writeTinyDataset } from '../../helpers/tiny-dataset';

const CONFIG: ModelConfig = {
  ...DEFAULT_MODEL_CONFIG,
  embeddingDim: 16,
  featureDim: 8,
  hiddenUnits: 32,
  outputDim: 16,
  historyLength: 8,
  epochs: 6,
  batchSize: 256,
  learningRate: 0.01,
  earlyStoppingPatience: 10,
};

void describe('topK', () => {
  void it('returns the k best indices, skipping item 0 and excluded items, ties by lower index', () => {
    const row = Float32Array.from([9, 1, 5, 5, 7, 3, 8]);
    assert.deepEqual(topK(row, 3, undefined), [6, 4, 2]);
    assert.deepEqual(topK(row, 3, new Set([6])), [4, 2, 3]);
    assert.deepEqual(topK(row, 10, new Set([4, 6])), [2, 3, 5, 1]);
  });
});

void describe('two-tower calibration', () => {
  void it('fits Platt scaling on logits of any range (plain Newton from a = 1 diverges there)', () => {
    const r = seededRandom(1);
    const s: number[] = [];
    const l: number[] = [];
    for (let i = 0; i < 4000; i++) {
      const y = r() < 0.2 ? 1 : 0;
      s.push(10 + 3 * y + 16 * (r() - 0.5));
      l.push(y);
    }
    const c = fitScaled(s, l);
    assert.ok(c.a > 0 && c.a < 1 && Number.isFinite(c.b), JSON.stringify(c));
    // Mean predicted probability close to the base rate.
    const mean = s.reduce((a, x) => a + 1 / (1 + Math.exp(-(c.a * x + c.b))), 0) / s.length;
    assert.ok(Math.abs(mean - 0.2) < 0.02, `mean ${mean}`);
  });
});

void describe('trainTwoTower', () => {
  let ds: LoadedDataset;
  before(async () => {
    await selectBackend('wasm');
    const dir = tempHome('recflow-trainer-');
    await writeTinyDataset(dir, { users: 240, items: 120, perUser: 14 });
    ds = await loadDataset(dir);
  });

  void it('draws seeded examples: every training interaction after a user first, same epoch same order', () => {
    const seqs = trainingSequences(ds);
    const a = epochExamples(seqs, CONFIG, 3);
    const b = epochExamples(seqs, CONFIG, 3);
    const c = epochExamples(seqs, CONFIG, 4);
    assert.deepEqual(a.users, b.users);
    assert.deepEqual(a.positions, b.positions);
    assert.notDeepEqual(a.users, c.users);
    const users = new Set(ds.splits.train.user);
    assert.equal(a.users.length, ds.splits.train.user.length - users.size);
    assert.ok(a.positions.every((p) => p >= 1));
  });

  void it('builds a batch: earlier items as the history (most recent first) and masked, the next item the target', () => {
    const ctx = batchContext(ds, { ...CONFIG, historyDropout: 0 });
    const ex = epochExamples(ctx.seqs, CONFIG, 0);
    const batch = buildBatch(ctx, ex, 0, 32, seededRandom(1));
    const L = CONFIG.historyLength;
    const W = batch.candidates.length;
    assert.equal(W, ds.vocab.items.length, 'a catalogue this small is scored whole');
    for (let b = 0; b < 32; b++) {
      const u = ex.users[b]!;
      const p = ex.positions[b]!;
      const seq = ctx.seqs.items.subarray(ctx.seqs.ptr[u], ctx.seqs.ptr[u + 1]);
      assert.equal(batch.targets[b], seq[p]);
      const want = Array.from(seq.subarray(Math.max(0, p - L), p)).reverse();
      const got = Array.from(batch.history.subarray(b * L, b * L + want.length));
      assert.deepEqual(got, want);
      assert.equal(
        batch.historyValid.subarray(b * L, (b + 1) * L).reduce((s, x) => s + x, 0),
        want.length,
      );
      for (let q = 0; q < p; q++) assert.equal(batch.logitMask[b * W + seq[q]!], MASKED_SCORE);
      assert.equal(batch.logitMask[b * W + seq[p]!], 0, 'the target is not masked');
      assert.equal(batch.logitMask[b * W], MASKED_SCORE, 'item 0 is masked');
    }
    // Above `sampledItems`: the batch's items plus a uniform sample, with finite sampling corrections.
    const small = batchContext(ds, { ...CONFIG, sampledItems: 16 });
    const sb = buildBatch(small, ex, 0, 32, seededRandom(1));
    assert.ok(sb.candidates.length < ds.vocab.items.length && !sb.candidates.includes(0));
    for (let b = 0; b < 32; b++) {
      assert.equal(sb.candidates[sb.targets[b]!], batch.targets[b], 'targets point at their item');
      const L2 = CONFIG.historyLength;
      for (let k = 0; k < L2; k++)
        if (sb.historyValid[b * L2 + k])
          assert.ok(sb.candidates[sb.history[b * L2 + k]!]! > 0, 'history items are candidates');
    }
    assert.ok(sb.logitOffset.every((x) => Number.isFinite(x)));
  });

  void it('ends a history a random gap before its target: only earlier items, sometimes not the latest', () => {
    const ctx = batchContext(ds, { ...CONFIG, historyDropout: 0, historyGap: 4 });
    const window = ds.manifest.split.validationEnd - ds.manifest.split.trainEnd;
    assert.equal(ctx.gapMs, 4 * window);
    const ex = epochExamples(ctx.seqs, CONFIG, 0);
    const batch = buildBatch(ctx, ex, 0, 256, seededRandom(2));
    const L = CONFIG.historyLength;
    let gapped = 0;
    for (let b = 0; b < 256; b++) {
      const u = ex.users[b]!;
      const p = ex.positions[b]!;
      const base = ctx.seqs.ptr[u]!;
      const first = batch.history[b * L]!;
      // The most recent pooled item is an earlier one, and the rest follow it backwards in time without holes.
      let q = p - 1;
      while (q > 0 && ctx.seqs.items[base + q] !== first) q--;
      assert.equal(ctx.seqs.items[base + q], first);
      if (q < p - 1) gapped++;
      for (let k = 1; k < L && batch.historyValid[b * L + k]; k++)
        assert.equal(batch.history[b * L + k], ctx.seqs.items[base + q - k]);
    }
    assert.ok(gapped > 20, `${gapped} of 256 examples skip their latest items`);
  });

  void it('learns the planted preferences: validation NDCG@10 well above popularity, loss falls', async () => {
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
    // Extras: the prior and the item gates are fitted, the calibration of model scores is finite.
    assert.ok(r.extras.priorConfig !== null);
    assert.ok(r.extras.calibration.model.a > 0 && r.extras.calibration.model.a < 100);
    assert.equal(r.extras.itemHasId[0], 0);
  });

  void it('stops early when validation NDCG@10 stops improving', async () => {
    // A learning rate of 0 never improves on epoch 0.
    const r = await trainTwoTower(ds, { ...CONFIG, learningRate: 0, epochs: 10, earlyStoppingPatience: 1 });
    assert.equal(r.stoppedEarly, true);
    assert.equal(r.bestEpoch, 0);
    assert.equal(r.epochsRun, 2);
  });

  void it('resumes after a given epoch: the same epochs as one uninterrupted run', async () => {
    const cfg = { ...CONFIG, epochs: 3 };
    const whole = await trainTwoTower(ds, cfg);
    const first = await trainTwoTower(ds, cfg, { maxEpochs: 2 });
    assert.equal(first.epochsRun, 2);
    const last = first.history[1]!;
    const resumed = await trainTwoTower(ds, cfg, {
      resume: { epoch: 1, weights: first.weights, history: first.history, bestWeights: first.weights },
    });
    assert.equal(resumed.epochsRun, 1);
    assert.deepEqual(
      resumed.history.map((h) => h.epoch),
      [0, 1, 2],
    );
    // Same examples, order and dropout; Adam's moments restart, so the resumed epoch is close, not equal.
    assert.ok(
      Number.isFinite(resumed.history[2]!.loss) && Math.abs(resumed.history[2]!.loss - whole.history[2]!.loss) < 0.5,
    );
    assert.equal(last.epoch, 1);
  });

  void it('ranks with training items excluded', async () => {
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
