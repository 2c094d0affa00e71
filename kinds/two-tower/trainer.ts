/**
 * The training loop of the two-tower model: implicit-feedback positives (label = interaction strength) plus
 * `negativesPerPositive` uniformly sampled items (label 0) per positive, shuffled, Adam with an exponentially
 * decaying learning rate, validation HR@10 / NDCG@10 after each epoch, early stopping on validation NDCG@10 and the
 * best epoch's weights as the result.
 *
 * Everything random is seeded by `(config.seed, epoch)`, so a run resumed at epoch e draws the same negatives and
 * order for the epochs after e as an uninterrupted run. Adam's moments are not checkpointed: a resumed run restarts
 * them at the resume point (documented in docs/training.md).
 */
import * as tf from '@tensorflow/tfjs';
import type { LoadedDataset } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { sizesOf, towerFeatures, type ModelConfig, type ModelWeights } from './spec';
import { rankSplit, type SplitRanking } from '../../lib/train/metrics';
import { TwoTowerModel } from './model';
import { mulberry32 } from '../../lib/rng';
import { FusedAdam } from '../../lib/train/optimizer';

/** One finished epoch. */
export interface EpochRecord {
  epoch: number;
  loss: number;
  ndcg10: number;
  hr10: number;
  learningRate: number;
  /** Seconds of the epoch's training steps (validation excluded). */
  seconds: number;
  samples: number;
  samplesPerSec: number;
}

/** Where to start from: the last finished epoch and its weights, the best so far and its weights. */
export interface ResumeState {
  epoch: number;
  weights: ModelWeights;
  history: EpochRecord[];
  bestWeights: ModelWeights;
}

export interface TrainOptions {
  /** Resume after this state's epoch. */
  resume?: ResumeState;
  /** Validation users per epoch (the first by index). @default 5000 */
  maxValidationUsers?: number;
  /**
   * Called after each epoch with its record and weights, before the next starts (write a checkpoint, heartbeat).
   * `isBest`: this epoch has the best validation NDCG@10 so far.
   */
  onEpoch?: (record: EpochRecord, weights: ModelWeights, isBest: boolean) => Promise<void>;
  /** Called every few batches while an epoch runs (heartbeat progress); the event loop gets a turn before each call. */
  onProgress?: (epoch: number, batch: number, batches: number) => void;
  /** Stop after this many epochs of this call (benchmarks), whatever `config.epochs` says. */
  maxEpochs?: number;
  /** Train on at most this many positives per epoch (benchmarks). @default all */
  maxPositives?: number;
}

export interface TrainResult {
  /** Weights of the best epoch by validation NDCG@10. */
  weights: ModelWeights;
  bestEpoch: number;
  /** Every finished epoch, the resumed ones included. */
  history: EpochRecord[];
  /** Epochs trained by this call. */
  epochsRun: number;
  stoppedEarly: boolean;
  /** Training samples per second over this call's epochs. */
  samplesPerSec: number;
}

/** A small seeded generator (mulberry32). */
export const seededRandom = mulberry32;

/** One epoch's examples: the positives, their sampled negatives, shuffled. */
export function epochExamples(
  ds: LoadedDataset,
  config: ModelConfig,
  epoch: number,
  maxPositives?: number,
): { users: Int32Array; items: Int32Array; labels: Float32Array } {
  const train = ds.splits.train;
  const nPos = Math.min(train.user.length, maxPositives ?? Infinity);
  const per = 1 + config.negativesPerPositive;
  const n = nPos * per;
  const users = new Int32Array(n);
  const items = new Int32Array(n);
  const labels = new Float32Array(n);
  const rand = seededRandom(config.seed * 7919 + epoch * 104729 + 1);
  const nItems = ds.vocab.items.length;
  for (let p = 0; p < nPos; p++) {
    const u = train.user[p] ?? 0;
    users[p * per] = u;
    items[p * per] = train.item[p] ?? 0;
    labels[p * per] = train.label[p] ?? 1;
    for (let q = 1; q < per; q++) {
      users[p * per + q] = u;
      items[p * per + q] = 1 + Math.floor(rand() * (nItems - 1));
    }
  }
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const [a, b, c] = [users[i] ?? 0, items[i] ?? 0, labels[i] ?? 0];
    users[i] = users[j] ?? 0;
    items[i] = items[j] ?? 0;
    labels[i] = labels[j] ?? 0;
    users[j] = a;
    items[j] = b;
    labels[j] = c;
  }
  return { users, items, labels };
}

/** HR@10 / NDCG@10 of the model on a split (the whole catalog ranked per user, training items excluded). */
export async function rankWithModel(
  model: TwoTowerModel,
  ds: LoadedDataset,
  split: 'validation' | 'test',
  maxUsers?: number,
): Promise<SplitRanking> {
  const nItems = ds.vocab.items.length;
  const itemVecs = tf.tidy(() => model.itemTower(tf.range(0, nItems, 1, 'int32')));
  try {
    return await rankSplit(
      ds,
      ds.splits[split],
      (users) =>
        tf.tidy(
          () =>
            tf.matMul(model.userTower(tf.tensor1d(users, 'int32')), itemVecs, false, true).dataSync() as Float32Array,
        ),
      { k: 10, maxUsers },
    );
  } finally {
    itemVecs.dispose();
  }
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Train (or resume training) a two-tower model on `ds`'s train split, validating on its validation split.
 * The tfjs backend must already be selected (lib/train/backend.ts).
 * @throws {RecflowError} `TrainingDiverged` when the loss becomes NaN or infinite; `InvalidData` when the train or
 *   validation split is empty.
 */
export async function trainTwoTower(
  ds: LoadedDataset,
  config: ModelConfig,
  opts: TrainOptions = {},
): Promise<TrainResult> {
  if (ds.splits.train.user.length === 0)
    throw new RecflowError(ErrorType.InvalidData, `dataset ${ds.manifest.id}: the train split is empty`);
  if (ds.splits.validation.user.length === 0)
    throw new RecflowError(ErrorType.InvalidData, `dataset ${ds.manifest.id}: the validation split is empty`);
  const model = new TwoTowerModel(config, sizesOf(ds), towerFeatures(ds), opts.resume?.weights);
  // tf.train.adam's arithmetic, one kernel per variable on cpu/wasm.
  const optimizer = new FusedAdam(config.learningRate);
  // Only this model's variables: other trainings may run in the same process (the tfjs engine is global).
  const varList = Object.values(model.vars);
  const history: EpochRecord[] = [...(opts.resume?.history ?? [])];
  let bestWeights = opts.resume?.bestWeights;
  let best = history.reduce<EpochRecord | undefined>((b, r) => (!b || r.ndcg10 > b.ndcg10 ? r : b), undefined);
  const first = opts.resume ? opts.resume.epoch + 1 : 0;
  const last = Math.min(config.epochs, opts.maxEpochs !== undefined ? first + opts.maxEpochs : Infinity);
  let epochsRun = 0;
  let stoppedEarly = false;
  let samples = 0;
  let seconds = 0;
  try {
    for (let epoch = first; epoch < last; epoch++) {
      if (best && epoch - best.epoch > config.earlyStoppingPatience) {
        stoppedEarly = true;
        break;
      }
      const learningRate = config.learningRate * config.learningRateDecay ** epoch;
      optimizer.learningRate = learningRate;
      const ex = epochExamples(ds, config, epoch, opts.maxPositives);
      const n = ex.users.length;
      const batches = Math.ceil(n / config.batchSize);
      let lossSum = 0;
      const t0 = performance.now();
      let lastYield = t0;
      for (let b = 0; b < batches; b++) {
        const lo = b * config.batchSize;
        const hi = Math.min(n, lo + config.batchSize);
        const cost = tf.tidy(() => {
          const u = tf.tensor1d(ex.users.subarray(lo, hi), 'int32');
          const i = tf.tensor1d(ex.items.subarray(lo, hi), 'int32');
          const y = tf.tensor1d(ex.labels.subarray(lo, hi), 'float32');
          return optimizer.minimize(() => model.loss(u, i, y), true, varList) ?? tf.scalar(NaN);
        });
        const l = (await cost.data())[0] ?? NaN;
        cost.dispose();
        if (!Number.isFinite(l))
          throw new RecflowError(
            ErrorType.TrainingDiverged,
            `training diverged at epoch ${epoch}, batch ${b}: loss ${l} (learning rate ${learningRate})`,
          );
        lossSum += l * (hi - lo);
        if (performance.now() - lastYield > 200) {
          await yieldToEventLoop();
          opts.onProgress?.(epoch, b + 1, batches);
          lastYield = performance.now();
        }
      }
      const secs = (performance.now() - t0) / 1000;
      await yieldToEventLoop();
      const val = await rankWithModel(model, ds, 'validation', opts.maxValidationUsers ?? 5000);
      const record: EpochRecord = {
        epoch,
        loss: lossSum / n,
        ndcg10: val.ndcg,
        hr10: val.hr,
        learningRate,
        seconds: secs,
        samples: n,
        samplesPerSec: n / secs,
      };
      history.push(record);
      epochsRun++;
      samples += n;
      seconds += secs;
      const weights = model.toWeights();
      const isBest = !best || record.ndcg10 > best.ndcg10;
      if (isBest) {
        best = record;
        bestWeights = weights;
      }
      await opts.onEpoch?.(record, weights, isBest);
    }
    if (!best || !bestWeights) {
      // No epoch ran (resumed after the last one): the current weights are the result.
      bestWeights ??= model.toWeights();
    }
    return {
      weights: bestWeights,
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
