/**
 * The training loop of the two-tower model (./spec.ts, ./model.ts): next-item prediction over each user's training
 * sequence. For every training interaction after a user's first, the example's history is the user's earlier items
 * up to a random gap before it (uniform up to `historyGap` validation windows), most recent first, at most
 * `historyLength`, `historyDropout` of them left out; its target is the item; the
 * loss is a softmax cross-entropy over the whole catalogue (or, above `sampledItems` items, over the batch's items
 * plus a uniform sample with the sampling correction), the user's earlier items masked out as the evaluation
 * excludes them. Adam with an exponentially decaying learning rate and decoupled weight decay (`l2`), dropout on
 * the user tower's input, item ids hidden at random (`itemIdDropout`).
 *
 * After each epoch: validation NDCG@10 with the whole catalogue ranked (training items excluded), for each weight of
 * the recency log-prior in {@link PRIOR_WEIGHT_GRID}; the best weight's NDCG is the epoch's, and early stopping and
 * the best epoch read it. At the end, Platt calibrations on validation pairs (lib/recsys/calibration.ts): model
 * scores and, for requests without history, prior scores.
 *
 * Everything random is seeded by `(config.seed, epoch)`, so a run resumed at epoch e draws the same examples, order
 * and dropout for the epochs after e as an uninterrupted run. Adam's moments are not checkpointed: a resumed run
 * restarts them at the resume point (documented in docs/training.md).
 */
import * as tf from '@tensorflow/tfjs';
import type { LoadedDataset } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { rankingMetrics } from '../../lib/eval/metrics';
import { fitPlatt, validationPairs, type Calibration } from '../../lib/recsys/calibration';
import { fitRecentPopularity, type RecentPopularityConfig } from '../../lib/recsys/recent-popularity';
import { mulberry32 } from '../../lib/rng';
import { itemsByUser, topK } from '../../lib/train/metrics';
import { MASKED_SCORE } from '../../lib/train/ops';
import { FusedAdam } from '../../lib/train/optimizer';
import type { EpochRecord } from '../types';
import { TwoTowerModel, type StepBatch } from './model';
import {
  DECAYED_WEIGHTS,
  logPrior,
  PRIOR_WEIGHT_GRID,
  sizesOf,
  towerFeatures,
  type ModelConfig,
  type ModelExtras,
  type ModelWeights,
  type TowerFeatures,
} from './spec';

/** One finished epoch (the record every kind reports). */
export type { EpochRecord } from '../types';

/** Where to start from: the last finished epoch and its weights, the best so far, its weights and prior weight. */
export interface ResumeState {
  epoch: number;
  weights: ModelWeights;
  history: EpochRecord[];
  bestWeights: ModelWeights;
  /** The best epoch's prior weight (its checkpoint's `extras.priorWeight`). @default 0 */
  bestPriorWeight?: number;
}

export interface TrainOptions {
  /** Resume after this state's epoch. */
  resume?: ResumeState;
  /** Validation users per epoch (the first by index). @default 5000 */
  maxValidationUsers?: number;
  /**
   * Called after each epoch with its record, weights and extras (uncalibrated), before the next starts (write a
   * checkpoint, heartbeat). `isBest`: this epoch has the best validation NDCG@10 so far.
   */
  onEpoch?: (record: EpochRecord, weights: ModelWeights, extras: ModelExtras, isBest: boolean) => Promise<void>;
  /** Called every few batches while an epoch runs (heartbeat progress); the event loop gets a turn before each call. */
  onProgress?: (epoch: number, batch: number, batches: number) => void;
  /** Stop after this many epochs of this call (benchmarks), whatever `config.epochs` says. */
  maxEpochs?: number;
  /** Train on at most this many examples per epoch (benchmarks). @default all */
  maxPositives?: number;
}

export interface TrainResult {
  /** Weights of the best epoch by validation NDCG@10. */
  weights: ModelWeights;
  /** The best epoch's prior weight, the item gates, the prior and the calibrations. */
  extras: ModelExtras;
  bestEpoch: number;
  /** Every finished epoch, the resumed ones included. */
  history: EpochRecord[];
  /** Epochs trained by this call. */
  epochsRun: number;
  stoppedEarly: boolean;
  /** Training examples per second over this call's epochs. */
  samplesPerSec: number;
}

/** A small seeded generator (mulberry32). */
export const seededRandom = mulberry32;

/** The generator of an epoch's batches (history and id dropout, samples): seeded by `(config.seed, epoch)`. */
export function epochRandom(config: ModelConfig, epoch: number): () => number {
  return seededRandom(config.seed * 15485863 + epoch * 32452843 + 3);
}

/** Each user's training items in time order (the split is sorted by time; one row per pair). */
export interface Sequences {
  ptr: Int32Array;
  items: Int32Array;
  /** Epoch ms of each item's interaction. */
  times: Float64Array;
}

export function trainingSequences(ds: LoadedDataset): Sequences {
  const train = ds.splits.train;
  const users = ds.vocab.users.length;
  const ptr = new Int32Array(users + 1);
  for (const u of train.user) ptr[u + 1]!++;
  for (let u = 0; u < users; u++) ptr[u + 1]! += ptr[u]!;
  const fill = ptr.slice(0, users);
  const items = new Int32Array(train.user.length);
  const times = new Float64Array(train.user.length);
  for (let r = 0; r < train.user.length; r++) {
    const at = fill[train.user[r]!]!++;
    items[at] = train.item[r]!;
    times[at] = train.timestamp[r]!;
  }
  return { ptr, items, times };
}

/** Which items use their id embedding: at least `minItemInteractions` training interactions. */
export function itemGates(ds: LoadedDataset, config: ModelConfig): Uint8Array {
  const counts = new Int32Array(ds.vocab.items.length);
  for (const i of ds.splits.train.item) counts[i]!++;
  return Uint8Array.from(counts, (c, i) => (i > 0 && c >= config.minItemInteractions ? 1 : 0));
}

/**
 * One epoch's examples, shuffled: `(user, position)` pairs, the target being the user's item at that position
 * (positions >= 1, so every example has a history).
 */
export function epochExamples(
  seqs: Sequences,
  config: ModelConfig,
  epoch: number,
  maxExamples?: number,
): { users: Int32Array; positions: Int32Array } {
  const users: number[] = [];
  const positions: number[] = [];
  const nUsers = seqs.ptr.length - 1;
  for (let u = 1; u < nUsers; u++)
    for (let p = 1; p < seqs.ptr[u + 1]! - seqs.ptr[u]!; p++) {
      users.push(u);
      positions.push(p);
    }
  const rand = seededRandom(config.seed * 7919 + epoch * 104729 + 1);
  const n = users.length;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const m = Math.min(n, maxExamples ?? Infinity);
  return {
    users: Int32Array.from({ length: m }, (_, k) => users[order[k]!]!),
    positions: Int32Array.from({ length: m }, (_, k) => positions[order[k]!]!),
  };
}

/** What the batches of a run share ({@link batchContext}). */
export interface BatchContext {
  config: ModelConfig;
  seqs: Sequences;
  items: number;
  hasId: Uint8Array;
  /** Training share of each item (the sampling correction). */
  frequency: Float64Array;
  full: boolean;
  /** Global to local candidate index, -1 when absent (sampled mode; reset after each batch). */
  local: Int32Array;
  /** Longest gap between a training example's history and its target, ms (0: the items just before). */
  gapMs: number;
}

/** The shared state of a run's batches: sequences, item gates, frequencies, full softmax or sampled. */
export function batchContext(ds: LoadedDataset, config: ModelConfig, seqs = trainingSequences(ds)): BatchContext {
  const items = ds.vocab.items.length;
  const frequency = new Float64Array(items);
  for (const i of ds.splits.train.item) frequency[i]! += 1 / ds.splits.train.item.length;
  return {
    config,
    seqs,
    items,
    hasId: itemGates(ds, config),
    frequency,
    full: items <= config.sampledItems,
    local: new Int32Array(items).fill(-1),
    gapMs: config.historyGap * Math.max(0, ds.manifest.split.validationEnd - ds.manifest.split.trainEnd),
  };
}

/** Build one step's inputs for examples `[lo, hi)` of an epoch (`rand` seeded per epoch). */
export function buildBatch(
  ctx: BatchContext,
  ex: { users: Int32Array; positions: Int32Array },
  lo: number,
  hi: number,
  rand: () => number,
  training = true,
): StepBatch {
  const c = ctx.config;
  const B = hi - lo;
  const L = c.historyLength;
  const hist: number[][] = [];
  const targets: number[] = [];
  for (let k = lo; k < hi; k++) {
    const u = ex.users[k]!;
    const p = ex.positions[k]!;
    const base = ctx.seqs.ptr[u]!;
    // The history ends a random gap before the target (up to `historyGap` validation windows), as a stored
    // history ends before the window it is used for; at least the item just before the cutoff, else the previous.
    const cutoff = ctx.gapMs > 0 ? ctx.seqs.times[base + p]! - rand() * ctx.gapMs : Infinity;
    let first = p - 1;
    while (first > 0 && ctx.seqs.times[base + first]! >= cutoff) first--;
    const h: number[] = [];
    for (let q = first; q >= 0 && h.length < L; q--) {
      if (training && c.historyDropout > 0 && rand() < c.historyDropout) continue;
      h.push(ctx.seqs.items[base + q]!);
    }
    if (!h.length) h.push(ctx.seqs.items[base + first]!);
    hist.push(h);
    targets.push(ctx.seqs.items[base + p]!);
  }
  // Candidates: the catalogue, or the batch's items plus a uniform sample.
  let candidates: Int32Array;
  let logitOffset: Float32Array;
  const local = ctx.local;
  if (ctx.full) {
    candidates = Int32Array.from({ length: ctx.items }, (_, i) => i);
    logitOffset = new Float32Array(ctx.items);
  } else {
    const list: number[] = [];
    const take = (i: number) => {
      if (local[i]! < 0) {
        local[i] = list.length;
        list.push(i);
      }
    };
    for (const t of targets) take(t);
    for (const h of hist) for (const i of h) take(i);
    const slots = targets.length + hist.reduce((s, h) => s + h.length, 0);
    const S = c.sampledItems;
    for (let s = 0; s < S; s++) take(1 + Math.floor(rand() * (ctx.items - 1)));
    candidates = Int32Array.from(list);
    // Expected appearances of an item among the candidates: uniform draws plus the batch's (popularity-drawn) items.
    logitOffset = Float32Array.from(list, (i) => -Math.log(S / (ctx.items - 1) + slots * ctx.frequency[i]!));
  }
  const W = candidates.length;
  const at = (i: number) => (ctx.full ? i : local[i]!);
  const idGate = Float32Array.from(candidates, (i) =>
    ctx.hasId[i] === 1 && !(training && c.itemIdDropout > 0 && rand() < c.itemIdDropout) ? 1 : 0,
  );
  const history = new Int32Array(B * L);
  const historyValid = new Float32Array(B * L);
  const logitMask = new Float32Array(B * W);
  hist.forEach((h, b) => {
    h.forEach((i, k) => {
      history[b * L + k] = at(i);
      historyValid[b * L + k] = 1;
    });
    const u = ex.users[lo + b]!;
    const p = ex.positions[lo + b]!;
    const base = ctx.seqs.ptr[u]!;
    for (let q = 0; q < p; q++) {
      const j = at(ctx.seqs.items[base + q]!);
      if (j >= 0) logitMask[b * W + j] = MASKED_SCORE;
    }
    if (ctx.full) logitMask[b * W] = MASKED_SCORE;
  });
  const batch: StepBatch = {
    candidates,
    idGate,
    logitOffset,
    users: ex.users.slice(lo, hi),
    history,
    historyValid,
    targets: Int32Array.from(targets, at),
    logitMask,
  };
  if (training && c.dropout > 0) {
    const width = c.outputDim + 2 * c.featureDim;
    const keep = 1 - c.dropout;
    batch.dropout = Float32Array.from({ length: B * width }, () => (rand() < keep ? 1 / keep : 0));
  }
  if (!ctx.full) for (const i of candidates) local[i] = -1;
  return batch;
}

/** The validation (or test) users of a split, their histories and relevant items (the rankSplit protocol). */
interface RankPlan {
  users: number[];
  /** Per user: pooled history, most recent first (empty: cold). */
  histories: number[][];
  seen: Array<Set<number> | undefined>;
  relevant: Array<Set<number>>;
}

function rankPlan(
  ds: LoadedDataset,
  split: 'validation' | 'test',
  seqs: Sequences,
  L: number,
  maxUsers?: number,
): RankPlan {
  const seen = itemsByUser(ds.splits.train);
  const rel = itemsByUser(ds.splits[split]);
  const plan: RankPlan = { users: [], histories: [], seen: [], relevant: [] };
  for (const [u, items] of [...rel.entries()].sort((a, b) => a[0] - b[0])) {
    const prior = seen.get(u);
    const relevant = new Set([...items].filter((i) => i !== 0 && !prior?.has(i)));
    if (!relevant.size) continue;
    const h: number[] = [];
    for (let q = seqs.ptr[u + 1]! - 1; q >= seqs.ptr[u]! && h.length < L; q--) h.push(seqs.items[q]!);
    plan.users.push(u);
    plan.histories.push(h);
    plan.seen.push(prior);
    plan.relevant.push(relevant);
    if (maxUsers !== undefined && plan.users.length >= maxUsers) break;
  }
  return plan;
}

/**
 * Model logits `[n, items]` (`u . v + b`, no prior) of users with the given histories (each non-empty, most recent
 * first), from the catalogue's item side.
 */
function userLogits(
  model: TwoTowerModel,
  cat: { vecs: tf.Tensor2D; bias: tf.Tensor1D },
  users: number[],
  histories: number[][],
  L: number,
): Float32Array {
  return tf.tidy(() => {
    const B = users.length;
    const h = new Int32Array(B * L);
    const valid = new Float32Array(B * L);
    histories.forEach((row, b) =>
      row.forEach((i, k) => {
        h[b * L + k] = i;
        valid[b * L + k] = 1;
      }),
    );
    const u = model.userVectors(
      cat.vecs,
      tf.tensor2d(h, [B, L], 'int32'),
      tf.tensor2d(valid, [B, L], 'float32'),
      tf.tensor1d(Int32Array.from(users), 'int32'),
    );
    const n = cat.bias.shape[0] ?? 0;
    return tf.add(tf.matMul(u, cat.vecs, false, true), tf.reshape(cat.bias, [1, n])).dataSync() as Float32Array;
  });
}

/** NDCG@10 and HR@10 of each prior weight of the grid; cold users get the prior itself. */
async function rankGrid(
  model: TwoTowerModel,
  plan: RankPlan,
  hasId: Uint8Array,
  prior: Float32Array,
  grid: readonly number[],
  L: number,
): Promise<Array<{ priorWeight: number; ndcg: number; hr: number }>> {
  const lp = logPrior(prior);
  const n = prior.length;
  const cases: Array<Array<{ ranking: number[]; relevant: Set<number> }>> = grid.map(() => []);
  const cat = model.catalogue(hasId);
  try {
    const batch = 256;
    for (let lo = 0; lo < plan.users.length; lo += batch) {
      const idx = Array.from({ length: Math.min(batch, plan.users.length - lo) }, (_, k) => lo + k);
      const warm = idx.filter((k) => plan.histories[k]!.length > 0);
      const logits = warm.length
        ? userLogits(
            model,
            cat,
            warm.map((k) => plan.users[k]!),
            warm.map((k) => plan.histories[k]!),
            L,
          )
        : new Float32Array(0);
      const row = new Float32Array(n);
      for (const k of idx) {
        const w = warm.indexOf(k);
        grid.forEach((beta, g) => {
          if (w < 0) row.set(prior);
          else for (let i = 0; i < n; i++) row[i] = logits[w * n + i]! + beta * lp[i]!;
          cases[g]!.push({ ranking: topK(row, 10, plan.seen[k]), relevant: plan.relevant[k]! });
        });
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    cat.vecs.dispose();
    cat.bias.dispose();
  }
  return grid.map((priorWeight, g) => {
    const m = rankingMetrics(cases[g]!, 10);
    return { priorWeight, ndcg: Number.isNaN(m.ndcg) ? 0 : m.ndcg, hr: Number.isNaN(m.hitRate) ? 0 : m.hitRate };
  });
}

/** Platt calibrations on validation pairs: model scores for users with a history, prior scores for the others. */
export function calibrate(
  model: TwoTowerModel,
  ds: LoadedDataset,
  seqs: Sequences,
  extras: Pick<ModelExtras, 'itemHasId' | 'prior' | 'priorWeight'>,
  L: number,
): { model: Calibration; prior: Calibration } {
  const pairs = validationPairs(ds);
  const lp = logPrior(extras.prior);
  const byUser = new Map<number, number[]>();
  pairs.users.forEach((u, k) => {
    let ks = byUser.get(u);
    if (!ks) byUser.set(u, (ks = []));
    ks.push(k);
  });
  const modelS: number[] = [];
  const modelL: number[] = [];
  const priorS: number[] = [];
  const priorL: number[] = [];
  const warm: number[] = [];
  const hists: number[][] = [];
  for (const u of byUser.keys()) {
    const h: number[] = [];
    for (let q = seqs.ptr[u + 1]! - 1; q >= seqs.ptr[u]! && h.length < L; q--) h.push(seqs.items[q]!);
    if (h.length) {
      warm.push(u);
      hists.push(h);
    } else
      for (const k of byUser.get(u)!) {
        priorS.push(extras.prior[pairs.items[k]!]!);
        priorL.push(pairs.labels[k]!);
      }
  }
  const cat = model.catalogue(extras.itemHasId);
  const n = extras.prior.length;
  try {
    for (let lo = 0; lo < warm.length; lo += 256) {
      const us = warm.slice(lo, lo + 256);
      const logits = userLogits(model, cat, us, hists.slice(lo, lo + 256), L);
      us.forEach((u, b) => {
        for (const k of byUser.get(u)!) {
          const i = pairs.items[k]!;
          modelS.push(logits[b * n + i]! + extras.priorWeight * lp[i]!);
          modelL.push(pairs.labels[k]!);
        }
      });
    }
  } finally {
    cat.vecs.dispose();
    cat.bias.dispose();
  }
  // Cold validation users are often few: calibrate the prior on every validation pair when they are.
  if (priorS.length < 500) {
    priorS.length = 0;
    priorL.length = 0;
    pairs.items.forEach((i, k) => {
      priorS.push(extras.prior[i]!);
      priorL.push(pairs.labels[k]!);
    });
  }
  return { model: fitScaled(modelS, modelL), prior: fitScaled(priorS, priorL) };
}

/**
 * Platt scaling of scores of any range: fitted on standardized scores (Newton's method from `a = 1` diverges on
 * logits spread over tens of units), then mapped back, `sigmoid(a' (s - mean) / sd + b') = sigmoid(a s + b)`.
 */
export function fitScaled(scores: number[], labels: number[]): Calibration {
  const n = scores.length;
  if (!n) return fitPlatt(scores, labels);
  const mean = scores.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / n) || 1;
  const c = fitPlatt(
    scores.map((s) => (s - mean) / sd),
    labels,
  );
  return { a: c.a / sd, b: c.b - (c.a * mean) / sd };
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The prior the run uses: recent popularity with the window chosen on validation. */
export async function fitPrior(
  ds: LoadedDataset,
  maxValidationUsers?: number,
): Promise<{ prior: Float32Array; priorConfig: RecentPopularityConfig }> {
  const fit = await fitRecentPopularity(ds, undefined, maxValidationUsers);
  return { prior: fit.scores, priorConfig: fit.config };
}

/**
 * Train (or resume training) a two-tower model on `ds`'s train split, validating on its validation split.
 * The tfjs backend must already be selected (lib/train/backend.ts).
 * @throws {RecflowError} `TrainingDiverged` when the loss becomes NaN or infinite; `InvalidData` when the train or
 *   validation split is empty or no user has two training interactions.
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
  const seqs = trainingSequences(ds);
  const ctx = batchContext(ds, config, seqs);
  const hasId = ctx.hasId;
  const { prior, priorConfig } = await fitPrior(ds, opts.maxValidationUsers ?? 5000);
  const L = config.historyLength;
  const features: TowerFeatures = towerFeatures(ds);
  const model = new TwoTowerModel(config, sizesOf(ds), features, opts.resume?.weights);
  const optimizer = new FusedAdam(config.learningRate);
  // Only this model's variables: other trainings may run in the same process (the tfjs engine is global).
  const varList = Object.values(model.vars);
  const decayed = Object.entries(model.vars)
    .filter(([name]) => DECAYED_WEIGHTS.has(name as never))
    .map(([, v]) => v);
  const plan = rankPlan(ds, 'validation', seqs, L, opts.maxValidationUsers ?? 5000);
  const extrasOf = (priorWeight: number): ModelExtras => ({
    itemHasId: hasId,
    prior,
    priorConfig,
    priorWeight,
    calibration: { model: { a: 1, b: 0 }, prior: { a: 1, b: 0 } },
  });
  const history: EpochRecord[] = [...(opts.resume?.history ?? [])];
  let bestWeights = opts.resume?.bestWeights;
  let best = history.reduce<EpochRecord | undefined>((b, r) => (!b || r.ndcg10 > b.ndcg10 ? r : b), undefined);
  let bestPriorWeight = opts.resume?.bestPriorWeight ?? 0;
  const first = opts.resume ? opts.resume.epoch + 1 : 0;
  const last = Math.min(config.epochs, opts.maxEpochs !== undefined ? first + opts.maxEpochs : Infinity);
  let epochsRun = 0;
  let stoppedEarly = false;
  let samples = 0;
  let seconds = 0;
  try {
    let examples = 0;
    for (let u = 1; u + 1 < seqs.ptr.length; u++) examples += Math.max(0, seqs.ptr[u + 1]! - seqs.ptr[u]! - 1);
    if (!examples)
      throw new RecflowError(
        ErrorType.InvalidData,
        `dataset ${ds.manifest.id}: no user has two training interactions, so there is no next item to learn`,
      );
    for (let epoch = first; epoch < last; epoch++) {
      if (best && epoch - best.epoch > config.earlyStoppingPatience) {
        stoppedEarly = true;
        break;
      }
      const learningRate = config.learningRate * config.learningRateDecay ** epoch;
      optimizer.learningRate = learningRate;
      const decay = 1 - learningRate * config.l2;
      const ex = epochExamples(seqs, config, epoch, opts.maxPositives);
      const rand = epochRandom(config, epoch);
      const n = ex.users.length;
      const batches = Math.ceil(n / config.batchSize);
      let lossSum = 0;
      const t0 = performance.now();
      let lastYield = t0;
      for (let b = 0; b < batches; b++) {
        const lo = b * config.batchSize;
        const hi = Math.min(n, lo + config.batchSize);
        const batch = buildBatch(ctx, ex, lo, hi, rand);
        const cost = tf.tidy(() => optimizer.minimize(() => model.loss(batch), true, varList) ?? tf.scalar(NaN));
        if (decay < 1) tf.tidy(() => decayed.forEach((v) => v.assign(tf.mul(v, decay))));
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
      const grid = await rankGrid(model, plan, hasId, prior, PRIOR_WEIGHT_GRID, L);
      const top = grid.reduce((a, g) => (g.ndcg > a.ndcg ? g : a));
      const record: EpochRecord = {
        epoch,
        loss: lossSum / n,
        ndcg10: top.ndcg,
        hr10: top.hr,
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
        bestPriorWeight = top.priorWeight;
      }
      await opts.onEpoch?.(record, weights, extrasOf(top.priorWeight), isBest);
    }
    bestWeights ??= model.toWeights();
    model.setWeights(bestWeights);
    const extras = extrasOf(bestPriorWeight);
    extras.calibration = calibrate(model, ds, seqs, extras, L);
    return {
      weights: bestWeights,
      extras,
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

/** Test-split ranking of a trained model in JS (the evaluation's protocol; benchmarks and tests). */
export async function rankTest(
  ds: LoadedDataset,
  config: ModelConfig,
  weights: ModelWeights,
  extras: ModelExtras,
  split: 'validation' | 'test' = 'test',
): Promise<{ ndcg: number; hr: number; users: number }> {
  const seqs = trainingSequences(ds);
  const model = new TwoTowerModel(config, sizesOf(ds), towerFeatures(ds), weights);
  try {
    const plan = rankPlan(ds, split, seqs, config.historyLength);
    const [r] = await rankGrid(model, plan, extras.itemHasId, extras.prior, [extras.priorWeight], config.historyLength);
    return { ndcg: r!.ndcg, hr: r!.hr, users: plan.users.length };
  } finally {
    model.dispose();
  }
}
