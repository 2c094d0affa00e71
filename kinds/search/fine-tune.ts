/**
 * Fine-tuning the search encoder in TensorFlow.js: a bi-encoder (one shared encoder for queries and item texts)
 * trained with the in-batch softmax contrastive loss of sentence-transformers' `MultipleNegativesRankingLoss`: for a
 * batch of B pairs, each query's positive must outscore every other positive and every hard negative in the batch,
 * `loss = CE(scale * cos(q_i, [p_1..p_B, n_1..n_Bk]), i)` with scale 20 (temperature 0.05).
 *
 * CPU configuration: train only the top N layers (`trainableLayers`); the frozen lower layers' outputs for every
 * training text are computed once with onnxruntime (the fp32 prefix graph) and cached, so a step runs N layers
 * forward and backward only. On CPU such a step runs on onnxruntime by default (`engine`, kinds/search/ort-train.ts:
 * the same math with a hand-written backward, about 3x tfjs wasm's speed); otherwise on tfjs (the whole model, the
 * embeddings, or a GPU backend). AdamW with linear warm-up and decay (sentence-transformers' `WarmupLinear`), no
 * dropout.
 *
 * Seeded (shuffle and negative choice from `seed` and the epoch); batches never hold the same positive or query twice
 * (sentence-transformers' `NoDuplicatesDataLoader`). After each epoch (and every `checkpointEverySteps` steps) the
 * trainable weights and the optimizer moments are written to `checkpointDir` as safetensors with a `resume.json`
 * resume point; `resume: true` continues from it exactly. Validation (retrieval MRR@10 / Recall@10 of each query's
 * positive among the validation corpus) runs before training (zero-shot) and after each epoch, on onnxruntime; the
 * result holds the best epoch's weights.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ErrorType, RecflowError } from '../../lib/errors';
import { writeJsonAtomic } from '../../lib/fs-atomic';
import { mulberry32 } from '../../lib/rng';
import { AdamW, noDecay } from './adamw';
import type { BertConfig, BertWeights } from './base-model';
import { topK } from './bm25';
import { BertEncoder, maskBias } from './encoder';
import { mm } from './layers';
import { searchMetrics } from './metrics';
import { buildEncoderGraph } from './onnx-encoder';
import { ArrayAdamW, OrtStepRunner } from './ort-train';
import { validatePairs, type TrainingPair } from './pairs';
import { readSafetensors, writeSafetensors, type NamedTensor } from './safetensors';
import { HiddenCache } from './hidden-cache';
import { SearchSession } from './session';
import { SearchTokenizer } from './tokenizer';

export type { TrainingPair } from './pairs';

/** The model to start from: weights and sizes, and the folder of its tokenizer. */
export interface FineTuneBase {
  dir: string;
  config: BertConfig;
  weights: BertWeights;
  /** Lineage: the base weights' sha256 (checked on resume). */
  source?: { weightsSha256?: string };
}

/** Validation data: pairs, and optionally more corpus texts (the catalogue) to rank the positives among. */
export interface ValidationSet {
  pairs: TrainingPair[];
  corpus?: string[];
  /**
   * Graded judgements (query -> corpus text -> grade > 0) where known (the search log's relevance); without them a
   * query's positives count as grade 1 and every other text as 0.
   */
  grades?: Map<string, Map<string, number>>;
}

/** Progress of a running fine-tune (heartbeat details). */
export interface FineTuneProgress {
  phase: 'cache' | 'validate' | 'train';
  epoch: number;
  step: number;
  steps: number;
  /** Mean loss of the epoch so far (train phase). */
  loss?: number;
  samplesPerSec?: number;
  /** The last checkpoint written: pass to a retry (`resume: true` finds it in `checkpointDir`). */
  checkpoint?: string;
}

/** Retrieval quality on the validation set. */
export interface ValidationMetrics {
  mrr10: number;
  recall10: number;
  ndcg10: number;
  queries: number;
}

/** One finished epoch. */
export interface FineTuneEpoch {
  epoch: number;
  loss: number;
  steps: number;
  seconds: number;
  /** CPU seconds of the process during the epoch's steps (robust on a busy host). */
  cpuSeconds: number;
  samplesPerSec: number;
  learningRate: number;
  validation?: ValidationMetrics;
}

/** Options of {@link fineTune}. */
export interface FineTuneOptions {
  /** The pretrained model (kinds/search/base-model.ts `loadBaseModel`). */
  base: FineTuneBase;
  validation?: ValidationSet;
  /** Layers trained, counted from the top; the rest are frozen. @default 2 */
  trainableLayers?: number;
  /**
   * Cache the frozen part's outputs per text, computed once with onnxruntime: the frozen layers', or the embedding
   * layer's when every layer trains and the embeddings do not. @default true
   */
  cacheFrozen?: boolean;
  /** Train the embedding tables too (only when every layer trains). @default false */
  trainEmbeddings?: boolean;
  /** @default 1 */
  epochs?: number;
  /** Pairs per step. @default 32 */
  batchSize?: number;
  /** Hard negatives per pair taken from `negatives` (seeded choice). @default 1 */
  negativesPerPair?: number;
  /** Peak learning rate. @default 5e-5 with frozen layers, 2e-5 for the whole model */
  learningRate?: number;
  /** Fraction of the steps spent warming up linearly. @default 0.1 */
  warmupFraction?: number;
  /** @default 0.01 */
  weightDecay?: number;
  /** Similarity scale (1 / temperature). @default 20 */
  scale?: number;
  /** Tokens per query. @default 32 */
  queryMaxLength?: number;
  /** Tokens per item text. @default 64 */
  itemMaxLength?: number;
  /** Pad every batch to the maximum lengths (benchmarks against a twin). @default false */
  fixedLengths?: boolean;
  /** @default 1 */
  seed?: number;
  /** Stop each epoch after this many steps (benchmarks). */
  maxStepsPerEpoch?: number;
  /** Write checkpoints and `resume.json` here. */
  checkpointDir?: string;
  /** Also checkpoint every this many steps inside an epoch. @default none */
  checkpointEverySteps?: number;
  /** Continue from `checkpointDir/resume.json` when it exists. @default false */
  resume?: boolean;
  /** Called at most every `progressEverySteps` steps and at phase changes; the event loop gets a turn first. */
  onProgress?: (p: FineTuneProgress) => void | Promise<void>;
  /** @default 10 */
  progressEverySteps?: number;
  /** Called after each epoch (and its checkpoint). */
  onEpoch?: (e: FineTuneEpoch) => void | Promise<void>;
  /** Abort between steps (activity cancellation). */
  signal?: AbortSignal;
  /**
   * What runs a step: `tfjs` (the selected tfjs backend: wasm on CPU, tfjs-node-gpu on a GPU), or `onnxruntime`
   * (kinds/search/ort-train.ts: the same forward, loss and a hand-written backward as one ONNX graph; about 3x faster
   * than tfjs wasm on CPU; needs frozen layers with the cache, embeddings frozen). `auto`: `onnxruntime` when the
   * frozen-layer cache is used and the tfjs backend is `wasm` or `cpu`, else `tfjs`. @default 'auto'
   */
  engine?: 'auto' | 'tfjs' | 'onnxruntime';
  /** onnxruntime intra-op threads of the `onnxruntime` engine. @default 1 */
  engineThreads?: number;
}

/** What {@link fineTune} returns. */
export interface FineTuneResult {
  /** The whole encoder's weights (Hugging Face layout) of the best epoch by validation MRR@10 (or the last). */
  weights: BertWeights;
  config: BertConfig;
  bestEpoch: number;
  /** Validation before any training (the pretrained model). */
  zeroShot?: ValidationMetrics;
  history: FineTuneEpoch[];
  /** Seconds spent computing the frozen-layer cache. */
  cacheSeconds: number;
  /** Training pairs per second over this call's steps. */
  samplesPerSec: number;
  /** Epochs trained by this call (a resumed call trains fewer). */
  epochsRun: number;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Retrieval quality of `weights` on a validation set (onnxruntime, fp32). `onProgress(done, total)` after each batch
 * of texts encoded (the corpus, then the queries): a caller in an activity heartbeats from it, since encoding a
 * catalogue with a 6-layer encoder takes minutes on a small host.
 */
export async function evaluateRetrieval(
  weights: BertWeights,
  config: BertConfig,
  tok: SearchTokenizer,
  validation: ValidationSet,
  lengths: { query?: number; item?: number } = {},
  onProgress?: (done: number, total: number) => void,
): Promise<ValidationMetrics> {
  const corpus = [
    ...new Set([
      ...(validation.corpus ?? []),
      ...validation.pairs.flatMap((p) => [p.positive, ...(p.negatives ?? [])]),
    ]),
  ];
  const row = new Map(corpus.map((t, i) => [t, i]));
  const byQuery = new Map<string, Map<number, number>>();
  for (const p of validation.pairs) {
    let g = byQuery.get(p.query);
    if (!g) byQuery.set(p.query, (g = new Map()));
    const judged = validation.grades?.get(p.query);
    if (judged) {
      for (const [text, grade] of judged) if (grade > 0 && row.has(text)) g.set(row.get(text)!, grade);
    }
    if (!g.has(row.get(p.positive) ?? -1)) g.set(row.get(p.positive) ?? -1, 1);
  }
  const queries = [...byQuery.keys()];
  const session = await SearchSession.create(buildEncoderGraph(weights, config), tok);
  try {
    const D = session.dim;
    const total = corpus.length + queries.length;
    const docs = await session.encode(corpus, {
      maxLength: lengths.item ?? 64,
      onBatch: (done) => onProgress?.(done, total),
    });
    const q = await session.encode(queries, {
      maxLength: lengths.query ?? 32,
      onBatch: (done) => onProgress?.(corpus.length + done, total),
    });
    const cases = queries.map((query, i) => {
      const s = new Float32Array(corpus.length);
      for (let j = 0; j < corpus.length; j++) {
        let acc = 0;
        for (let d = 0; d < D; d++) acc += (q[i * D + d] ?? 0) * (docs[j * D + d] ?? 0);
        s[j] = acc;
      }
      return { ranking: topK(s, 10).map((h) => h.doc), grades: byQuery.get(query) ?? new Map<number, number>() };
    });
    const m = searchMetrics(cases, { ndcg: 10, mrr: 10, recall: 10 });
    return { mrr10: m.mrr, recall10: m.recall, ndcg10: m.ndcg, queries: m.queries };
  } finally {
    await session.release();
  }
}

interface Batch {
  queries: string[];
  docs: string[];
}

/**
 * One epoch's batches: shuffled, no positive or query twice in a batch (a pair that would repeat one waits for the
 * next batch), `neg` negatives per pair; a last batch of a single pair is skipped.
 */
export function epochBatches(
  pairs: readonly TrainingPair[],
  batchSize: number,
  neg: number,
  seed: number,
  epoch: number,
): Batch[] {
  const rand = mulberry32(seed * 7919 + epoch * 104729 + 17);
  const order = pairs.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const batches: Batch[] = [];
  let pending: number[] = [];
  let queue = order;
  while (queue.length) {
    const used = new Set<string>();
    const take: number[] = [];
    const rest: number[] = [];
    for (const i of queue) {
      const p = pairs[i]!;
      if (take.length < batchSize && !used.has(`q\u0000${p.query}`) && !used.has(`p\u0000${p.positive}`)) {
        take.push(i);
        used.add(`q\u0000${p.query}`);
        used.add(`p\u0000${p.positive}`);
      } else rest.push(i);
    }
    if (take.length < 2) break;
    const positives = take.map((i) => pairs[i]!.positive);
    const negatives: string[] = [];
    for (const i of take) {
      const ns = pairs[i]!.negatives ?? [];
      for (let k = 0; k < neg && ns.length; k++) negatives.push(ns[Math.floor(rand() * ns.length)]!);
    }
    batches.push({ queries: take.map((i) => pairs[i]!.query), docs: [...positives, ...negatives] });
    pending = rest;
    queue = pending;
  }
  return batches;
}

interface ResumePoint {
  checkpoint: string;
  epoch: number;
  /** Steps of `epoch` done (0 at an epoch boundary, then `epoch` is the last finished one). */
  step: number;
  finished: boolean;
  history: FineTuneEpoch[];
  bestEpoch: number;
  bestMrr: number;
  zeroShot?: ValidationMetrics;
  trainableLayers: number;
  baseWeightsSha256?: string;
  optimizerStep: number;
}

/**
 * Fine-tune the encoder on `pairs` (see the module comment). The tfjs backend must already be selected
 * (lib/train/backend.ts `selectBackend`).
 * @throws {RecflowError} `InvalidData` for malformed pairs; `InvalidInput` for bad options or a checkpoint of another
 *   configuration; `TrainingDiverged` when the loss becomes NaN.
 */
export async function fineTune(pairs: readonly TrainingPair[], opts: FineTuneOptions): Promise<FineTuneResult> {
  validatePairs(pairs, 'training pairs');
  if (opts.validation) validatePairs(opts.validation.pairs, 'validation pairs');
  const { base } = opts;
  const L = base.config.numLayers;
  const trainable = opts.trainableLayers ?? 2;
  const first = L - trainable;
  // Frozen: the layers below `first` and, unless they train, the embeddings (with every layer training, the cache
  // holds the embedding layer's output).
  const useCache = (opts.cacheFrozen ?? true) && !(first === 0 && opts.trainEmbeddings);
  const bs = opts.batchSize ?? 32;
  const neg = opts.negativesPerPair ?? 1;
  const epochs = opts.epochs ?? 1;
  const scale = opts.scale ?? 20;
  const qLen = opts.queryMaxLength ?? 32;
  const dLen = opts.itemMaxLength ?? 64;
  const seed = opts.seed ?? 1;
  const lrPeak = opts.learningRate ?? (first > 0 ? 5e-5 : 2e-5);
  const every = opts.progressEverySteps ?? 10;
  if (!Number.isInteger(bs) || bs < 2)
    throw new RecflowError(ErrorType.InvalidInput, `batchSize ${bs} must be an integer >= 2`);
  if (!Number.isInteger(epochs) || epochs < 1)
    throw new RecflowError(ErrorType.InvalidInput, `epochs ${epochs} must be >= 1`);
  if (pairs.length < 2)
    throw new RecflowError(ErrorType.InvalidData, `training pairs: ${pairs.length} pairs, need at least 2`);
  const canOrt = useCache;
  const engine =
    (opts.engine ?? 'auto') === 'auto'
      ? canOrt && ['wasm', 'cpu'].includes(tf.getBackend())
        ? 'onnxruntime'
        : 'tfjs'
      : opts.engine;
  if (engine === 'onnxruntime' && !canOrt) {
    throw new RecflowError(
      ErrorType.InvalidInput,
      "engine 'onnxruntime' trains layers over the cached output of the frozen part: set cacheFrozen true and leave the embeddings frozen (trainEmbeddings false)",
    );
  }

  const tok = SearchTokenizer.load(base.dir, Math.max(qLen, dLen));
  const enc = BertEncoder.fromWeights(base.weights, base.config, {
    trainableLayers: trainable,
    trainEmbeddings: opts.trainEmbeddings,
  });
  const named = new Map([...enc.variablesByName()].filter(([, v]) => v.trainable));
  const byTfName = new Map([...named].map(([k, v]) => [v.name, k]));
  const opt = new AdamW(named, { weightDecay: opts.weightDecay ?? 0.01 });
  const report = async (p: FineTuneProgress) => {
    await yieldToEventLoop();
    await opts.onProgress?.(p);
  };

  let runner: OrtStepRunner | undefined;
  try {
    // Resume point.
    let state: ResumePoint | undefined;
    const resumeFile = opts.checkpointDir ? join(opts.checkpointDir, 'resume.json') : undefined;
    if (opts.resume && resumeFile && existsSync(resumeFile)) {
      state = JSON.parse(await readFile(resumeFile, 'utf8')) as ResumePoint;
      if (state.trainableLayers !== trainable || state.baseWeightsSha256 !== base.source?.weightsSha256) {
        throw new RecflowError(
          ErrorType.InvalidInput,
          `${resumeFile}: checkpoint of another configuration (trainableLayers ${state.trainableLayers}, base ${state.baseWeightsSha256 ?? '?'})`,
        );
      }
      const ck = await readSafetensors(join(opts.checkpointDir!, state.checkpoint));
      restore(ck.tensors, named, opt);
      opt.step = state.optimizerStep;
    }
    const history: FineTuneEpoch[] = state ? [...state.history] : [];
    let bestEpoch = state?.bestEpoch ?? 0;
    let bestMrr = state?.bestMrr ?? -Infinity;
    let bestWeights: Map<string, Float32Array> | undefined;
    if (state && opts.checkpointDir && existsSync(join(opts.checkpointDir, 'best.safetensors'))) {
      const b = await readSafetensors(join(opts.checkpointDir, 'best.safetensors'));
      bestWeights = new Map([...b.tensors].map(([k, t]) => [k, t.data as Float32Array]));
    }

    let zeroShot = state?.zeroShot;
    if (opts.validation && !state) {
      await report({ phase: 'validate', epoch: 0, step: 0, steps: 0 });
      zeroShot = await evaluateRetrieval(
        base.weights,
        base.config,
        tok,
        opts.validation,
        { query: qLen, item: dLen },
        (done, total) => void opts.onProgress?.({ phase: 'validate', epoch: 0, step: done, steps: total }),
      );
      bestMrr = zeroShot.mrr10;
    }

    // Frozen-layer cache.
    let cache: HiddenCache | undefined;
    const t0 = performance.now();
    if (useCache) {
      cache = await HiddenCache.build(
        base,
        tok,
        first,
        [
          { key: 'q', texts: pairs.map((p) => p.query), maxLength: qLen },
          { key: 'd', texts: pairs.flatMap((p) => [p.positive, ...(p.negatives ?? [])]), maxLength: dLen },
        ],
        async (done, total) => {
          if (done === total || done % (64 * every) === 0)
            await report({ phase: 'cache', epoch: 0, step: done, steps: total });
        },
      );
    }
    const cacheSeconds = (performance.now() - t0) / 1000;

    // The onnxruntime engine: parameters and AdamW moments as arrays, synchronised with the tfjs variables (which
    // validation, checkpoints and the result read) by syncToTf.
    const ortName = (k: string) => k.replace(/^layer\.(\d+)\./, 'l$1.');
    let arrayOpt: ArrayAdamW | undefined;
    const params = new Map<string, { shape: number[]; data: Float32Array }>();
    if (engine === 'onnxruntime') {
      for (const [k, v] of named) params.set(ortName(k), { shape: v.shape, data: v.dataSync<'float32'>().slice() });
      const layers = Array.from({ length: trainable }, (_, i) => first + i);
      runner = await OrtStepRunner.create(base.config, layers, scale, params, opts.engineThreads ?? 1);
      arrayOpt = new ArrayAdamW((n) => !noDecay(n), { weightDecay: opts.weightDecay ?? 0.01 });
      arrayOpt.step = opt.step;
      for (const k of named.keys()) {
        arrayOpt.m.set(ortName(k), opt.m.get(k)!.dataSync<'float32'>().slice());
        arrayOpt.v.set(ortName(k), opt.v.get(k)!.dataSync<'float32'>().slice());
      }
    }
    const syncToTf = () => {
      if (!arrayOpt) return;
      tf.tidy(() => {
        for (const [k, v] of named) {
          v.assign(tf.tensor(params.get(ortName(k))!.data, v.shape));
          opt.m.get(k)!.assign(tf.tensor(arrayOpt.m.get(ortName(k))!, v.shape));
          opt.v.get(k)!.assign(tf.tensor(arrayOpt.v.get(ortName(k))!, v.shape));
        }
      });
      opt.step = arrayOpt.step;
    };

    const side = (texts: string[], key: 'q' | 'd'): tf.Tensor2D => {
      const maxLen = key === 'q' ? qLen : dLen;
      if (cache) {
        const { hidden, mask } = cache.batch(texts, key, opts.fixedLengths ? maxLen : undefined);
        const bias = maskBias(mask);
        const out = enc.pool(enc.layersRange(hidden, bias, first), mask);
        return out;
      }
      const b = tok.encodeBatch(texts, { maxLength: maxLen, padTo: opts.fixedLengths ? maxLen : 'longest' });
      const { ids, mask } = BertEncoder.batchTensors(b);
      return enc.pool(enc.layersRange(enc.embed(ids), maskBias(mask)), mask);
    };

    const perEpoch = epochBatches(pairs, bs, neg, seed, 0).length;
    const stepsPerEpoch = Math.min(perEpoch, opts.maxStepsPerEpoch ?? Infinity);
    const totalSteps = stepsPerEpoch * epochs;
    const warmup = Math.floor((opts.warmupFraction ?? 0.1) * totalSteps);
    const lrAt = (step: number) =>
      step < warmup
        ? (lrPeak * (step + 1)) / Math.max(1, warmup)
        : (lrPeak * Math.max(0, totalSteps - step)) / Math.max(1, totalSteps - warmup);

    const startEpoch = state ? (state.finished ? state.epoch + 1 : state.epoch) : 1;
    let resumeStep = state && !state.finished ? state.step : 0;
    let samples = 0;
    let trainSeconds = 0;
    let epochsRun = 0;
    let lastCheckpoint: string | undefined = state?.checkpoint;

    const writeCheckpoint = async (epoch: number, step: number, finished: boolean): Promise<string | undefined> => {
      if (!opts.checkpointDir) return undefined;
      syncToTf();
      const name = finished ? `epoch-${epoch}.safetensors` : `epoch-${epoch}-step-${step}.safetensors`;
      await writeSafetensors(join(opts.checkpointDir, name), snapshot(named, opt), {
        epoch: String(epoch),
        step: String(step),
      });
      const point: ResumePoint = {
        checkpoint: name,
        epoch,
        step,
        finished,
        history,
        bestEpoch,
        bestMrr,
        zeroShot,
        trainableLayers: trainable,
        baseWeightsSha256: base.source?.weightsSha256,
        optimizerStep: opt.step,
      };
      await writeJsonAtomic(join(opts.checkpointDir, 'resume.json'), point);
      lastCheckpoint = name;
      return name;
    };

    for (let epoch = startEpoch; epoch <= epochs; epoch++) {
      const batches = epochBatches(pairs, bs, neg, seed, epoch).slice(0, stepsPerEpoch);
      let lossSum = 0;
      let steps = 0;
      let epochSamples = 0;
      const e0 = performance.now();
      const c0 = process.cpuUsage();
      for (let s = resumeStep; s < batches.length; s++) {
        opts.signal?.throwIfAborted();
        const b = batches[s]!;
        const lr = lrAt((epoch - 1) * stepsPerEpoch + s);
        let loss: number;
        if (runner && arrayOpt && cache) {
          const fixed = opts.fixedLengths;
          const r = await runner.run(
            cache.arrays(b.queries, 'q', fixed ? qLen : undefined),
            cache.arrays(b.docs, 'd', fixed ? dLen : undefined),
            base.config.hiddenSize,
          );
          loss = r.loss;
          if (Number.isFinite(loss)) arrayOpt.apply(params, r.grads, lr);
        } else {
          const { value, grads } = tf.variableGrads(() => {
            const q = side(b.queries, 'q');
            const d = side(b.docs, 'd');
            const logits = tf.mul<tf.Tensor2D>(mm(q, tf.transpose(d)), scale);
            const labels = tf.oneHot(tf.range(0, b.queries.length, 1, 'int32'), b.docs.length) as tf.Tensor2D;
            return tf.losses.softmaxCrossEntropy<tf.Tensor2D, tf.Scalar>(labels, logits);
          }, [...named.values()]);
          const byName = new Map<string, tf.Tensor>();
          for (const [k, g] of Object.entries(grads)) byName.set(byTfName.get(k) ?? k, g);
          opt.apply(byName, lr);
          loss = (await value.data())[0] ?? NaN;
          tf.dispose([value, ...Object.values(grads)]);
        }
        if (!Number.isFinite(loss)) {
          throw new RecflowError(
            ErrorType.TrainingDiverged,
            `fine-tune diverged at epoch ${epoch}, step ${s}: loss ${loss} (learning rate ${lr})`,
          );
        }
        lossSum += loss;
        steps++;
        epochSamples += b.queries.length;
        const done = s + 1;
        if (opts.checkpointEverySteps && done % opts.checkpointEverySteps === 0 && done < batches.length) {
          await writeCheckpoint(epoch, done, false);
        }
        if (done % every === 0 || done === batches.length) {
          const secs = (performance.now() - e0) / 1000;
          await report({
            phase: 'train',
            epoch,
            step: done,
            steps: batches.length,
            loss: lossSum / steps,
            samplesPerSec: epochSamples / secs,
            checkpoint: lastCheckpoint,
          });
        }
      }
      resumeStep = 0;
      syncToTf();
      const seconds = (performance.now() - e0) / 1000;
      const cpu = process.cpuUsage(c0);
      trainSeconds += seconds;
      samples += epochSamples;
      const record: FineTuneEpoch = {
        epoch,
        loss: steps ? lossSum / steps : NaN,
        steps,
        seconds,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        samplesPerSec: seconds > 0 ? epochSamples / seconds : 0,
        learningRate: lrAt(epoch * stepsPerEpoch - 1),
      };
      if (opts.validation) {
        await report({ phase: 'validate', epoch, step: steps, steps });
        record.validation = await evaluateRetrieval(
          enc.toWeights(),
          enc.config,
          tok,
          opts.validation,
          { query: qLen, item: dLen },
          (done, total) => void opts.onProgress?.({ phase: 'validate', epoch, step: done, steps: total }),
        );
        if (record.validation.mrr10 > bestMrr) {
          bestMrr = record.validation.mrr10;
          bestEpoch = epoch;
          bestWeights = new Map([...named].map(([k, v]) => [k, v.dataSync() as Float32Array]));
          if (opts.checkpointDir) {
            const t = new Map([...bestWeights].map(([k, d]) => [k, { shape: named.get(k)!.shape, data: d }]));
            await writeSafetensors(join(opts.checkpointDir, 'best.safetensors'), t, { epoch: String(epoch) });
          }
        }
      } else {
        bestEpoch = epoch;
        bestWeights = undefined;
      }
      history.push(record);
      epochsRun++;
      await writeCheckpoint(epoch, 0, true);
      await opts.onEpoch?.(record);
    }

    // The best epoch's weights (or the pretrained ones when no epoch beat zero-shot).
    if (opts.validation && bestEpoch === 0) {
      return {
        weights: base.weights,
        config: base.config,
        bestEpoch,
        zeroShot,
        history,
        cacheSeconds,
        samplesPerSec: trainSeconds ? samples / trainSeconds : 0,
        epochsRun,
      };
    }
    if (bestWeights)
      for (const [k, d] of bestWeights) tf.tidy(() => named.get(k)!.assign(tf.tensor(d, named.get(k)!.shape)));
    return {
      weights: enc.toWeights(),
      config: enc.config,
      bestEpoch,
      zeroShot,
      history,
      cacheSeconds,
      samplesPerSec: trainSeconds ? samples / trainSeconds : 0,
      epochsRun,
    };
  } finally {
    await runner?.release();
    opt.dispose();
    enc.dispose();
  }
}

function snapshot(named: Map<string, tf.Variable>, opt: AdamW): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [k, v] of named) {
    out.set(k, { dtype: 'F32', shape: v.shape, data: v.dataSync<'float32'>() });
    out.set(`adam.m.${k}`, { dtype: 'F32', shape: v.shape, data: opt.m.get(k)!.dataSync<'float32'>() });
    out.set(`adam.v.${k}`, { dtype: 'F32', shape: v.shape, data: opt.v.get(k)!.dataSync<'float32'>() });
  }
  return out;
}

function restore(tensors: Map<string, NamedTensor>, named: Map<string, tf.Variable>, opt: AdamW): void {
  const put = (v: tf.Variable, name: string) => {
    const t = tensors.get(name);
    if (!t || t.shape.join() !== v.shape.join()) {
      throw new RecflowError(ErrorType.InvalidInput, `checkpoint: tensor '${name}' missing or of another shape`);
    }
    tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array, v.shape)));
  };
  for (const [k, v] of named) {
    put(v, k);
    put(opt.m.get(k)!, `adam.m.${k}`);
    put(opt.v.get(k)!, `adam.v.${k}`);
  }
}
