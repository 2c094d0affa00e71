/**
 * The training loop of the sequential recommender: every user's training interactions in time order, cut into
 * windows of `maxLength` steps (./sequences.ts), next-item cross-entropy at every step (sampled softmax with
 * `negatives` uniform items shared by the batch, or the full softmax), Adam with an exponentially decaying learning
 * rate, validation HR@10 / NDCG@10 after each epoch (the validation split's items ranked over the whole catalogue
 * from each user's training history, training items excluded; users without history get popularity, as the
 * exported graphs do), early stopping on validation NDCG@10 and the best epoch's weights as the result.
 *
 * Why shared uniform negatives: one `[P, d] x [d, S]` product per batch instead of per-row gathers, a cost that does
 * not grow with the catalogue, and with a uniform proposal the sampled softmax needs no logQ correction (the
 * correction is the same constant for every logit), so it estimates the full softmax, popularity included.
 * In-batch negatives would be popularity-distributed and need a logQ correction; with small batches they also
 * repeat the same few popular items.
 *
 * Adam is lib/train/optimizer.ts `FusedAdam` (one kernel per small variable on wasm and cpu). Everything random is
 * seeded by `(config.seed, epoch, batch)`; with the optimizer state of the checkpoint
 * (`OptimizerState`: Adam's moments and step count), a run resumed after epoch e computes the same weights as an
 * uninterrupted one on the same backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { LoadedDataset } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { AliasTable, mulberry32 } from '../../lib/rng';
import { rankSplit, type CatalogScorer, type SplitRanking } from '../../lib/train/metrics';
import { FusedAdam } from '../../lib/train/optimizer';
import { SequentialModel } from './model';
import {
  historyMatrix,
  sequenceLength,
  trainingWindows,
  userSequences,
  type TrainingWindows,
  type UserSequences,
} from './sequences';
import {
  itemFeaturesOf,
  sequentialSizesOf,
  weightShapes,
  type OptimizerState,
  type SequentialConfig,
  type SequentialSizes,
  type SequentialWeights,
} from './spec';

/** One finished epoch. */
export interface SequentialEpochRecord {
  epoch: number;
  loss: number;
  ndcg10: number;
  hr10: number;
  learningRate: number;
  /** Seconds of the epoch's training steps (validation excluded). */
  seconds: number;
  /** Next-item targets trained on (the samples). */
  samples: number;
  /** Training windows (sequences of up to `maxLength` steps). */
  windows: number;
  samplesPerSec: number;
}

/** Where to start from: the last finished epoch, its weights and optimizer state, the best epoch's weights. */
export interface SequentialResumeState {
  epoch: number;
  weights: SequentialWeights;
  history: SequentialEpochRecord[];
  bestWeights: SequentialWeights;
  /** Adam's state after `epoch`; without it the moments restart at zero (the result then differs slightly). */
  optimizer?: OptimizerState;
}

export interface SequentialTrainOptions {
  /** Resume after this state's epoch. */
  resume?: SequentialResumeState;
  /** Validation users per epoch (the first by index). @default 5000 */
  maxValidationUsers?: number;
  /**
   * Called after each epoch with its record, weights and optimizer state, before the next starts (write a
   * checkpoint, heartbeat). `isBest`: this epoch has the best validation NDCG@10 so far.
   */
  onEpoch?: (
    record: SequentialEpochRecord,
    weights: SequentialWeights,
    isBest: boolean,
    optimizer: OptimizerState,
  ) => Promise<void>;
  /** Called every few batches while an epoch runs (heartbeat progress); the event loop gets a turn before each call. */
  onProgress?: (epoch: number, batch: number, batches: number) => void;
  /** Stop after this many epochs of this call (benchmarks), whatever `config.epochs` says. */
  maxEpochs?: number;
  /** Train on at most this many windows per epoch (benchmarks). @default all */
  maxWindows?: number;
}

export interface SequentialTrainResult {
  /** Weights of the best epoch by validation NDCG@10. */
  weights: SequentialWeights;
  bestEpoch: number;
  /** Every finished epoch, the resumed ones included. */
  history: SequentialEpochRecord[];
  /** Epochs trained by this call. */
  epochsRun: number;
  stoppedEarly: boolean;
  /** Next-item targets per second over this call's epochs. */
  samplesPerSec: number;
}

/**
 * Catalogue scores for users from their sequences: the model's next-item logits, or `popularity` for a user with
 * no history (what the exported graphs do).
 */
export function sequentialScorer(
  model: SequentialModel,
  seqs: UserSequences,
  popularity: Float32Array,
  subBatch = 64,
): CatalogScorer {
  const L = model.config.maxLength;
  const n = model.sizes.items;
  return (users) => {
    const scores = new Float32Array(users.length * n);
    // Users sorted by history length, in sub-batches trimmed to their longest history (padding costs time only).
    const byLength = Array.from(users, (u, j) => [Math.min(L, sequenceLength(seqs, u)), j] as const).sort(
      (a, b) => a[0] - b[0] || a[1] - b[1],
    );
    for (let s = 0; s < byLength.length; s += subBatch) {
      const part = byLength.slice(s, s + subBatch);
      const width = Math.max(1, part[part.length - 1]?.[0] ?? 1);
      const hist = historyMatrix(
        seqs,
        part.map(([, j]) => users[j] ?? 0),
        width,
      );
      const logits = tf.tidy(
        () => model.catalogueLogits(tf.tensor2d(hist, [part.length, width], 'int32')).dataSync() as Float32Array,
      );
      part.forEach(([len, j], r) =>
        scores.set(len === 0 ? popularity.subarray(0, n) : logits.subarray(r * n, (r + 1) * n), j * n),
      );
    }
    return scores;
  };
}

/** HR@10 / NDCG@10 of the model on a split, from the histories of `historySplits`. */
export async function rankSequential(
  model: SequentialModel,
  ds: LoadedDataset,
  split: 'validation' | 'test',
  opts: { maxUsers?: number; historySplits?: Array<'train' | 'validation'> } = {},
): Promise<SplitRanking> {
  const seqs = userSequences(ds, opts.historySplits ?? ['train']);
  return rankSplit(ds, ds.splits[split], sequentialScorer(model, seqs, ds.items.popularity), {
    k: 10,
    maxUsers: opts.maxUsers,
  });
}

/** A `[n]` int32 permutation of 0..n-1 (Fisher-Yates). */
function permutation(n: number, rand: () => number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i] ?? 0;
    p[i] = p[j] ?? 0;
    p[j] = t;
  }
  return p;
}

/** The Adam state as plain arrays, moments named by weight. */
async function optimizerState(
  optimizer: tf.Optimizer,
  names: Map<string, string>,
  config: SequentialConfig,
  sizes: SequentialSizes,
): Promise<OptimizerState> {
  const named = await optimizer.getWeights();
  const [iter, ...moments] = named;
  const state: OptimizerState = { iterations: iter ? ((await iter.tensor.data())[0] ?? 0) : 0, m: {}, v: {} };
  for (const { name, tensor } of moments) {
    const slot = name.endsWith('/m') ? state.m : state.v;
    const weight = names.get(name.slice(0, -2));
    if (weight) slot[weight] = { shape: [...tensor.shape], data: Float32Array.from(await tensor.data()) };
  }
  // Before the first step there are no moments yet: zeros.
  for (const [name, shape] of weightShapes(config, sizes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    state.m[name] ??= { shape, data: new Float32Array(n) };
    state.v[name] ??= { shape, data: new Float32Array(n) };
  }
  return state;
}

async function restoreOptimizer(optimizer: tf.Optimizer, model: SequentialModel, s: OptimizerState): Promise<void> {
  const tensors: Array<{ name: string; tensor: tf.Tensor }> = [
    { name: 'iter', tensor: tf.scalar(s.iterations, 'int32') },
  ];
  for (const slot of ['m', 'v'] as const)
    for (const [name, v] of model.vars) {
      const w = s[slot][name];
      if (!w) throw new RecflowError(ErrorType.InvalidInput, `optimizer state: ${slot} of ${name} missing`);
      tensors.push({ name: `${v.name}/${slot}`, tensor: tf.tensor(w.data, w.shape, 'float32') });
    }
  await optimizer.setWeights(tensors);
  for (const t of tensors) t.tensor.dispose();
}

/**
 * One epoch's batches: windows of similar length together (sorted by length, ties in random order), the batches in
 * random order, so that each batch can be trimmed to its longest window.
 * @param maxWindows a random subset of this many windows (benchmarks).
 */
export function epochBatches(
  windows: TrainingWindows,
  batchSize: number,
  rand: () => number,
  maxWindows?: number,
): Int32Array[] {
  const L = windows.length;
  const chosen = permutation(windows.count, rand).subarray(0, Math.min(windows.count, maxWindows ?? Infinity));
  const steps = (w: number) => {
    let k = 0;
    while (k < L && (windows.inputs[w * L + k] ?? 0) === 0) k++;
    return L - k;
  };
  const sorted = Array.from(chosen, (w) => [steps(w), w] as const).sort((a, b) => a[0] - b[0]);
  const out: Int32Array[] = [];
  for (let i = 0; i < sorted.length; i += batchSize)
    out.push(Int32Array.from(sorted.slice(i, i + batchSize), ([, w]) => w));
  const order = permutation(out.length, rand);
  return Array.from(order, (i) => out[i]!);
}

/** The arrays of one training step (see `SequentialModel.loss`). */
export interface BatchArrays {
  rows: number;
  /** Columns kept: the longest window of the batch. */
  width: number;
  inputs: Int32Array;
  positions: Int32Array;
  targets: Int32Array;
  weights: Float32Array;
  /** Steps with a target (the length of `positions`). */
  steps: number;
  /** Sampled negatives, or undefined for the full softmax. */
  negatives?: Int32Array;
  /** Log sampling probabilities of the targets and the negatives (non-uniform proposals only). */
  logQTargets?: Float32Array;
  logQ?: Float32Array;
  /** `[targets, negatives]`: 1 where the negative is the target. */
  hits?: Float32Array;
}

/** Draws negatives for the sampled softmax; `logQ` (by item) is set for non-uniform proposals. */
export interface NegativeSampler {
  draw: (rand: () => number) => number;
  logQ?: Float32Array;
}

/**
 * The proposal of `negativeSampling`: uniform over items 1..items-1, or proportional to (count + 1)^0.75.
 * @param popularity training counts by item.
 */
export function negativeSampler(kind: SequentialConfig['negativeSampling'], popularity: Float32Array): NegativeSampler {
  const items = popularity.length;
  if (kind === 'uniform') return { draw: (rand) => 1 + Math.floor(rand() * (items - 1)) };
  const w = Array.from(popularity, (c, i) => (i === 0 ? 0 : (c + 1) ** 0.75));
  const total = w.reduce((a, b) => a + b, 0);
  const table = new AliasTable(w);
  return { draw: (rand) => table.draw(rand), logQ: Float32Array.from(w, (x) => (x > 0 ? Math.log(x / total) : 0)) };
}

/**
 * Build one step's arrays from windows `rows`, drawing `negatives` items from `sampler` (0: none, the full
 * softmax); each step's target is its next item (`ahead` 1) or one of its next `ahead` items in the window, drawn
 * uniformly.
 */
export function batchTensors(
  windows: TrainingWindows,
  rows: Int32Array,
  negatives: number,
  sampler: NegativeSampler,
  rand: () => number,
  ahead = 1,
): BatchArrays {
  const L = windows.length;
  let width = 1;
  for (const w of rows) {
    let k = 0;
    while (k < L && (windows.inputs[w * L + k] ?? 0) === 0) k++;
    width = Math.max(width, L - k);
  }
  const inputs = new Int32Array(rows.length * width);
  const pos: number[] = [];
  const tgt: number[] = [];
  const wts: number[] = [];
  let steps = 0;
  rows.forEach((w, r) => {
    inputs.set(windows.inputs.subarray(w * L + L - width, (w + 1) * L), r * width);
    const base = w * L + L - width;
    for (let t = 0; t < width; t++) {
      if ((windows.targets[base + t] ?? 0) === 0) continue;
      steps++;
      // The next item, or one of the next `ahead` items of the window drawn uniformly.
      const k = ahead > 1 ? Math.floor(rand() * Math.min(ahead, width - t)) : 0;
      pos.push(r * width + t);
      tgt.push(windows.targets[base + t + k] ?? 0);
      wts.push(windows.weights[base + t + k] ?? 1);
    }
  });
  const out: BatchArrays = {
    rows: rows.length,
    width,
    inputs,
    positions: Int32Array.from(pos),
    targets: Int32Array.from(tgt),
    weights: Float32Array.from(wts),
    steps,
  };
  if (negatives > 0) {
    const negs = Int32Array.from({ length: negatives }, () => sampler.draw(rand));
    const slots = new Map<number, number[]>();
    negs.forEach((item, s) => {
      const have = slots.get(item);
      if (have) have.push(s);
      else slots.set(item, [s]);
    });
    const hits = new Float32Array(tgt.length * negatives);
    tgt.forEach((y, p) => {
      for (const s of slots.get(y) ?? []) hits[p * negatives + s] = 1;
    });
    out.negatives = negs;
    out.hits = hits;
    if (sampler.logQ) {
      const logQ = sampler.logQ;
      out.logQ = Float32Array.from(negs, (i) => logQ[i] ?? 0);
      out.logQTargets = Float32Array.from(tgt, (i) => logQ[i] ?? 0);
    }
  }
  return out;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Train (or resume training) a sequential recommender on `ds`'s train split, validating on its validation split.
 * The tfjs backend must already be selected (lib/train/backend.ts). `config` should come from
 * `resolveSequentialConfig`.
 * @throws {RecflowError} `TrainingDiverged` when the loss becomes NaN or infinite; `InvalidData` when the train
 *   split has no user with two interactions or the validation split is empty.
 */
export async function trainSequential(
  ds: LoadedDataset,
  config: SequentialConfig,
  opts: SequentialTrainOptions = {},
): Promise<SequentialTrainResult> {
  const seqs = userSequences(ds, ['train']);
  const windows = trainingWindows(seqs, config.maxLength, config.weightByLabel);
  if (windows.count === 0)
    throw new RecflowError(
      ErrorType.InvalidData,
      `dataset ${ds.manifest.id}: no user has two training interactions, nothing to learn a next item from`,
    );
  if (ds.splits.validation.user.length === 0)
    throw new RecflowError(ErrorType.InvalidData, `dataset ${ds.manifest.id}: the validation split is empty`);
  const sizes = sequentialSizesOf(ds);
  const nItems = sizes.items;
  const model = new SequentialModel(config, sizes, itemFeaturesOf(ds), opts.resume?.weights);
  const optimizer = new FusedAdam(config.learningRate);
  // Only this model's variables: other trainings may run in the same process (the tfjs engine is global).
  const varList = [...model.vars.values()];
  const weightOfVar = new Map([...model.vars].map(([name, v]) => [v.name, name]));
  const fullSoftmax = config.negatives === 0 || config.negatives >= nItems - 1;
  const sampler = negativeSampler(config.negativeSampling, ds.items.popularity);
  const history: SequentialEpochRecord[] = [...(opts.resume?.history ?? [])];
  let bestWeights = opts.resume?.bestWeights;
  let best = history.reduce<SequentialEpochRecord | undefined>(
    (b, r) => (!b || r.ndcg10 > b.ndcg10 ? r : b),
    undefined,
  );
  const first = opts.resume ? opts.resume.epoch + 1 : 0;
  const last = Math.min(config.epochs, opts.maxEpochs !== undefined ? first + opts.maxEpochs : Infinity);
  let epochsRun = 0;
  let stoppedEarly = false;
  let samples = 0;
  let seconds = 0;
  try {
    if (opts.resume?.optimizer) await restoreOptimizer(optimizer, model, opts.resume.optimizer);
    for (let epoch = first; epoch < last; epoch++) {
      if (best && epoch - best.epoch > config.earlyStoppingPatience) {
        stoppedEarly = true;
        break;
      }
      const learningRate = config.learningRate * config.learningRateDecay ** epoch;
      optimizer.learningRate = learningRate;
      const rand = mulberry32(config.seed * 7919 + epoch * 104729 + 1);
      const plan = epochBatches(windows, config.batchSize, rand, opts.maxWindows);
      const batches = plan.length;
      let lossSum = 0;
      let weightSum = 0;
      let epochSamples = 0;
      let epochWindows = 0;
      const t0 = performance.now();
      let lastYield = t0;
      for (let b = 0; b < batches; b++) {
        const batch = batchTensors(
          windows,
          plan[b]!,
          fullSoftmax ? 0 : config.negatives,
          sampler,
          rand,
          config.targetsAhead,
        );
        const dropoutSeed = (config.seed * 1_000_003 + epoch * 10_007 + b) % 2_147_483_647;
        const cost = tf.tidy(() => {
          const h = tf.tensor2d(batch.inputs, [batch.rows, batch.width], 'int32');
          const p = tf.tensor1d(batch.positions, 'int32');
          const y = tf.tensor1d(batch.targets, 'int32');
          const wt = tf.tensor1d(batch.weights, 'float32');
          const negs = batch.negatives
            ? {
                items: tf.tensor1d(batch.negatives, 'int32'),
                hits: tf.tensor2d(batch.hits!, [batch.targets.length, batch.negatives.length], 'float32'),
                ...(batch.logQ && batch.logQTargets
                  ? { logQ: tf.tensor1d(batch.logQ), logQTargets: tf.tensor1d(batch.logQTargets) }
                  : {}),
              }
            : undefined;
          return optimizer.minimize(() => model.loss(h, p, y, wt, negs, dropoutSeed), true, varList) ?? tf.scalar(NaN);
        });
        const l = (await cost.data())[0] ?? NaN;
        cost.dispose();
        if (!Number.isFinite(l))
          throw new RecflowError(
            ErrorType.TrainingDiverged,
            `training diverged at epoch ${epoch}, batch ${b}: loss ${l} (learning rate ${learningRate})`,
          );
        const wsum = batch.weights.reduce((a, x) => a + x, 0);
        lossSum += l * wsum;
        weightSum += wsum;
        epochSamples += batch.steps;
        epochWindows += batch.rows;
        if (performance.now() - lastYield > 200) {
          await yieldToEventLoop();
          opts.onProgress?.(epoch, b + 1, batches);
          lastYield = performance.now();
        }
      }
      const secs = (performance.now() - t0) / 1000;
      await yieldToEventLoop();
      const val = await rankSplit(ds, ds.splits.validation, sequentialScorer(model, seqs, ds.items.popularity), {
        k: 10,
        maxUsers: opts.maxValidationUsers ?? 5000,
      });
      const record: SequentialEpochRecord = {
        epoch,
        loss: weightSum > 0 ? lossSum / weightSum : 0,
        ndcg10: val.ndcg,
        hr10: val.hr,
        learningRate,
        seconds: secs,
        samples: epochSamples,
        windows: epochWindows,
        samplesPerSec: epochSamples / secs,
      };
      history.push(record);
      epochsRun++;
      samples += epochSamples;
      seconds += secs;
      const weights = model.toWeights();
      const isBest = !best || record.ndcg10 > best.ndcg10;
      if (isBest) {
        best = record;
        bestWeights = weights;
      }
      if (opts.onEpoch)
        await opts.onEpoch(record, weights, isBest, await optimizerState(optimizer, weightOfVar, config, sizes));
    }
    return {
      // No epoch ran (resumed after the last one): the resumed best weights, else the current ones.
      weights: bestWeights ?? model.toWeights(),
      bestEpoch: best?.epoch ?? -1,
      history,
      epochsRun,
      stoppedEarly,
      samplesPerSec: seconds > 0 ? samples / seconds : 0,
    };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
