import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ErrorType, RecflowError } from '../../../../lib/errors';
import { selectBackend } from '../../../../lib/train/backend';
import { popularityScorer, rankSplit } from '../../../../lib/train/metrics';
import { SequentialModel } from '../../../../kinds/sequential/model';
import { itemFeaturesOf, resolveSequentialConfig, sequentialSizesOf } from '../../../../kinds/sequential/spec';
import { trainingWindows, userSequences } from '../../../../kinds/sequential/sequences';
import { mulberry32 } from '../../../../lib/rng';
import {
  batchTensors,
  epochBatches,
  negativeSampler,
  rankSequential,
  trainSequential,
  type SequentialEpochRecord,
  type SequentialResumeState,
} from '../../../../kinds/sequential/trainer';
import { patternDataset } from './pattern-dataset';

const CONFIG = resolveSequentialConfig({
  maxLength: 8,
  hiddenDim: 16,
  heads: 2,
  innerDim: 32,
  blocks: 2,
  dropout: 0.1,
  epochs: 12,
  batchSize: 32,
  learningRate: 0.01,
  negatives: 16,
  targetsAhead: 1,
  earlyStoppingPatience: 20,
});

describe('training batches', () => {
  const ds = patternDataset({ users: 40, items: 30, minLength: 3, maxLength: 12 });
  const windows = trainingWindows(userSequences(ds), 6);

  it('groups windows of similar length and trims each batch to its longest window', () => {
    const plan = epochBatches(windows, 8, mulberry32(1));
    assert.equal(
      plan.reduce((s, b) => s + b.length, 0),
      windows.count,
    );
    const sampler = negativeSampler('uniform', ds.items.popularity);
    let steps = 0;
    for (const rows of plan) {
      const b = batchTensors(windows, rows, 5, sampler, mulberry32(2));
      steps += b.steps;
      assert.equal(b.inputs.length, b.rows * b.width);
      assert.ok(b.width <= 6);
      // Every row's first column is a real item for the longest window (nothing kept is all padding).
      assert.ok(Array.from({ length: b.rows }, (_, r) => b.inputs[r * b.width]).some((x) => x !== 0));
      b.targets.forEach((y, p) => {
        for (let s = 0; s < 5; s++) assert.equal(b.hits![p * 5 + s], b.negatives![s] === y ? 1 : 0);
      });
      assert.equal(b.logQ, undefined);
    }
    assert.equal(steps, windows.positions);
  });

  it('draws popularity negatives with their log probabilities, and several targets ahead', () => {
    const sampler = negativeSampler('popularity', ds.items.popularity);
    const q = Array.from(sampler.logQ!, Math.exp);
    assert.ok(Math.abs(q.slice(1).reduce((a, b) => a + b, 0) - 1) < 1e-5);
    const r = mulberry32(3);
    const counts = new Array<number>(30).fill(0);
    for (let i = 0; i < 30000; i++) counts[sampler.draw(r)]!++;
    assert.equal(counts[0], 0, 'index 0 is never drawn');
    const most = counts.indexOf(Math.max(...counts));
    assert.ok(Math.abs(counts[most]! / 30000 - q[most]!) < 0.01);
    const rows = Int32Array.from({ length: windows.count }, (_, i) => i);
    const one = batchTensors(windows, rows, 4, sampler, mulberry32(4));
    const three = batchTensors(windows, rows, 4, sampler, mulberry32(4), 3);
    assert.deepEqual(
      Array.from(one.logQTargets!),
      Array.from(one.targets, (y) => sampler.logQ![y]!),
    );
    assert.equal(three.steps, one.steps);
    assert.equal(three.targets.length, one.targets.length);
    // Targets drawn among the next three items of the window: some differ from the next item, none lies further.
    let moved = 0;
    three.positions.forEach((p, j) => {
      const r = Math.floor(p / three.width);
      const t = p % three.width;
      const base = rows[r]! * 6 + 6 - three.width;
      const ahead = [0, 1, 2].map((k) => windows.targets[base + t + k]);
      assert.ok(ahead.includes(three.targets[j]));
      if (three.targets[j] !== one.targets[j]) moved++;
    });
    assert.ok(moved > 0);
  });
});

describe('trainSequential', () => {
  const ds = patternDataset({ users: 200, items: 60 });
  before(async () => {
    await selectBackend('wasm');
  });

  it('learns a deterministic next-item rule that popularity cannot see', async () => {
    const epochs: SequentialEpochRecord[] = [];
    const r = await trainSequential(ds, CONFIG, {
      onEpoch: async (rec, weights, _isBest, optimizer) => {
        epochs.push(rec);
        assert.ok(weights.item_embedding && optimizer.iterations > 0);
      },
    });
    assert.equal(r.epochsRun, 12);
    assert.equal(epochs.length, 12);
    assert.ok(epochs[11]!.loss < epochs[0]!.loss * 0.5, `loss ${epochs[0]!.loss} -> ${epochs[11]!.loss}`);
    const best = r.history[r.bestEpoch]!;
    const pop = await rankSplit(ds, ds.splits.validation, popularityScorer(ds));
    assert.ok(best.hr10 > 0.9, `validation HR@10 ${best.hr10}`);
    assert.ok(best.ndcg10 > 0.6 && best.ndcg10 > pop.ndcg * 3, `NDCG@10 ${best.ndcg10} vs popularity ${pop.ndcg}`);
    assert.ok(r.samplesPerSec > 0);
    assert.equal(epochs[0]!.samples, ds.splits.train.user.length - 200, 'every training item but the first per user');
    // The returned weights are the best epoch's: rebuilt, they score the validation split the same.
    const m = new SequentialModel(CONFIG, sequentialSizesOf(ds), itemFeaturesOf(ds), r.weights);
    const again = await rankSequential(m, ds, 'validation');
    m.dispose();
    assert.ok(Math.abs(again.ndcg - best.ndcg10) < 1e-9);
    // With the validation item in the history, the test item (its successor) is predictable too.
    const m2 = new SequentialModel(CONFIG, sequentialSizesOf(ds), itemFeaturesOf(ds), r.weights);
    const test = await rankSequential(m2, ds, 'test', { historySplits: ['train', 'validation'] });
    m2.dispose();
    assert.ok(test.hr > 0.85, `test HR@10 ${test.hr}`);
  });

  it('resumes exactly: weights after a resume equal those of an uninterrupted run', async () => {
    const cfg = { ...CONFIG, epochs: 3 };
    let afterFirst: SequentialResumeState | undefined;
    const full = await trainSequential(ds, cfg, {
      maxValidationUsers: 50,
      onEpoch: async (rec, weights, _isBest, optimizer) => {
        if (rec.epoch === 0) afterFirst = { epoch: 0, weights, history: [rec], bestWeights: weights, optimizer };
      },
    });
    let last: Record<string, { data: Float32Array }> = {};
    const lastOf = async (resume: SequentialResumeState) =>
      trainSequential(ds, cfg, {
        maxValidationUsers: 50,
        resume,
        onEpoch: async (_r, weights) => {
          last = weights;
        },
      });
    const resumed = await lastOf(afterFirst!);
    assert.equal(resumed.epochsRun, 2);
    assert.deepEqual(
      resumed.history.map((h) => h.epoch),
      [0, 1, 2],
    );
    assert.deepEqual(
      resumed.history.map((h) => h.ndcg10),
      full.history.map((h) => h.ndcg10),
    );
    const fullLast = full.history[2]!;
    assert.equal(resumed.history[2]!.loss, fullLast.loss);
    const exact = { ...last };
    // Without the optimizer state Adam restarts: the run goes on but ends elsewhere.
    const { optimizer: _o, ...noOptimizer } = afterFirst!;
    await lastOf(noOptimizer);
    const differs = Object.keys(exact).some((k) => exact[k]!.data.some((x, i) => x !== last[k]!.data[i]));
    assert.ok(differs, 'restarting the moments changes the result');
  });

  it('stops early when validation NDCG@10 stops improving', async () => {
    const r = await trainSequential(ds, { ...CONFIG, learningRate: 0, epochs: 10, earlyStoppingPatience: 1 });
    assert.equal(r.stoppedEarly, true);
    assert.equal(r.bestEpoch, 0);
    assert.equal(r.epochsRun, 2);
  });

  it('fails with TrainingDiverged on a NaN loss, and InvalidData when nothing can be learned', async () => {
    const good = await trainSequential(ds, { ...CONFIG, epochs: 1 }, { maxValidationUsers: 10 });
    const broken = { ...good.weights };
    broken['block0/ffn1/bias'] = { ...broken['block0/ffn1/bias']!, data: new Float32Array(32).fill(Number.NaN) };
    await assert.rejects(
      trainSequential(
        ds,
        { ...CONFIG, epochs: 3 },
        { resume: { epoch: 0, weights: broken, history: [], bestWeights: broken } },
      ),
      (e: unknown) =>
        e instanceof RecflowError && e.type === ErrorType.TrainingDiverged && /epoch 1, batch 0/.test(e.message),
    );
    const single = patternDataset({ users: 5, minLength: 3, maxLength: 3 });
    await assert.rejects(
      trainSequential(single, CONFIG),
      (e: unknown) => e instanceof RecflowError && e.type === ErrorType.InvalidData,
    );
  });
});
