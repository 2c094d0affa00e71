/**
 * A distilled student of the search encoder: fewer layers, initialised from the teacher's (layers 0, 2, 4 of 6 by
 * default, with the teacher's embeddings), trained in TensorFlow.js to reproduce the teacher's sentence embeddings
 * of the shop's queries and item titles (cosine loss `1 - cos(student, teacher)`, i.e. MSE between the normalised
 * embeddings up to a factor 2). The teacher's embeddings come from its fp32 ONNX graph; the embedding tables stay
 * frozen (they are the teacher's), the student's layers all train. Exported like the teacher (onnx-encoder.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { ErrorType, RecflowError } from '../../lib/errors';
import { mulberry32 } from '../../lib/rng';
import { AdamW, noDecay } from './adamw';
import type { BertConfig, BertWeights } from './base-model';
import { BertEncoder, maskBias } from './encoder';
import type { FineTuneBase } from './fine-tune';
import { HiddenCache } from './hidden-cache';
import { ArrayAdamW, OrtStepRunner } from './ort-train';
import { buildEncoderGraph } from './onnx-encoder';
import { SearchSession } from './session';
import { SearchTokenizer } from './tokenizer';

/** Options of {@link distillStudent}. */
export interface DistillOptions {
  /** The teacher (a fine-tuned or pretrained encoder) and its tokenizer folder. */
  teacher: FineTuneBase;
  /** Teacher layers the student starts from, in order. @default every other layer: [0, 2, 4] for 6 */
  layers?: number[];
  /** @default 2 */
  epochs?: number;
  /** @default 32 */
  batchSize?: number;
  /** Peak learning rate (linear warm-up over 10% of the steps, then linear decay). @default 1e-4 */
  learningRate?: number;
  /** Tokens per text. @default 32 */
  maxLength?: number;
  /** @default 1 */
  seed?: number;
  /** Stop each epoch after this many steps (benchmarks). */
  maxStepsPerEpoch?: number;
  /** Called every few steps (heartbeats); the event loop gets a turn first. */
  onProgress?: (p: { epoch: number; step: number; steps: number; loss: number }) => void | Promise<void>;
  signal?: AbortSignal;
  /**
   * What runs a step: `tfjs`, or `onnxruntime` (kinds/search/ort-train.ts, the same loss and a hand-written backward,
   * about 3x tfjs wasm on CPU; the embedding layer's output is computed once). `auto`: onnxruntime on the wasm and
   * cpu backends. @default 'auto'
   */
  engine?: 'auto' | 'tfjs' | 'onnxruntime';
}

/** The student's weights (Hugging Face layout, layers renumbered 0..n-1) and sizes, and its training record. */
export interface DistillResult {
  weights: BertWeights;
  config: BertConfig;
  /** Teacher layer each student layer started from. */
  layers: number[];
  history: Array<{ epoch: number; loss: number; seconds: number }>;
}

/**
 * Distil the teacher into a smaller student on `texts` (queries and titles). The tfjs backend must be selected.
 * @throws {RecflowError} `InvalidInput` for bad options or no texts; `TrainingDiverged` for a NaN loss.
 */
export async function distillStudent(texts: readonly string[], opts: DistillOptions): Promise<DistillResult> {
  const { teacher } = opts;
  const n = teacher.config.numLayers;
  const layers = opts.layers ?? Array.from({ length: Math.ceil(n / 2) }, (_, i) => 2 * i);
  const unique = [...new Set(texts.filter((t) => typeof t === 'string' && t.trim()))];
  if (unique.length < 2)
    throw new RecflowError(ErrorType.InvalidInput, `distillation needs texts, got ${unique.length}`);
  const bs = opts.batchSize ?? 32;
  const epochs = opts.epochs ?? 2;
  const maxLength = opts.maxLength ?? 32;
  const tok = SearchTokenizer.load(teacher.dir, maxLength);

  // The teacher's embeddings, once.
  const session = await SearchSession.create(buildEncoderGraph(teacher.weights, teacher.config), tok);
  let target: Float32Array;
  try {
    target = await session.encode(unique, { maxLength });
  } finally {
    await session.release();
  }
  const D = teacher.config.hiddenSize;
  const student = BertEncoder.fromWeights(teacher.weights, teacher.config, { layers, trainableLayers: layers.length });
  const named = new Map([...student.variablesByName()].filter(([, v]) => v.trainable));
  const byTfName = new Map([...named].map(([k, v]) => [v.name, k]));
  const opt = new AdamW(named);
  const perEpoch = Math.floor(unique.length / bs);
  const steps = Math.min(perEpoch, opts.maxStepsPerEpoch ?? Infinity);
  const total = steps * epochs;
  const warmup = Math.floor(0.1 * total);
  const peak = opts.learningRate ?? 1e-4;
  const lrAt = (s: number) =>
    s < warmup ? (peak * (s + 1)) / Math.max(1, warmup) : (peak * (total - s)) / Math.max(1, total - warmup);
  const history: DistillResult['history'] = [];
  const engine =
    (opts.engine ?? 'auto') === 'auto'
      ? ['wasm', 'cpu'].includes(tf.getBackend())
        ? 'onnxruntime'
        : 'tfjs'
      : opts.engine;
  let runner: OrtStepRunner | undefined;
  let cache: HiddenCache | undefined;
  let arrayOpt: ArrayAdamW | undefined;
  const ortName = (k: string) => k.replace(/^layer\.(\d+)\./, 'l$1.');
  const params = new Map<string, { shape: number[]; data: Float32Array }>();
  try {
    if (engine === 'onnxruntime') {
      // The embedding layer's output (no layers), once per text; the student's layers train on onnxruntime.
      cache = await HiddenCache.build(teacher, tok, 0, [{ key: 't', texts: unique, maxLength }], async () => {});
      for (const [k, v] of named) params.set(ortName(k), { shape: v.shape, data: v.dataSync<'float32'>().slice() });
      runner = await OrtStepRunner.distill(
        student.config,
        layers.map((_, i) => i),
        params,
      );
      arrayOpt = new ArrayAdamW((n) => !noDecay(n));
    }
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const rand = mulberry32((opts.seed ?? 1) * 7919 + epoch * 104729 + 5);
      const order = unique.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const t0 = performance.now();
      let lossSum = 0;
      for (let s = 0; s < steps; s++) {
        opts.signal?.throwIfAborted();
        const idx = order.slice(s * bs, (s + 1) * bs);
        const want = new Float32Array(idx.length * D);
        idx.forEach((i, r) => want.set(target.subarray(i * D, (i + 1) * D), r * D));
        const lr = lrAt((epoch - 1) * steps + s);
        let loss: number;
        if (runner && cache && arrayOpt) {
          const r = await runner.runDistill(
            cache.arrays(
              idx.map((i) => unique[i]!),
              't',
            ),
            want,
            D,
          );
          loss = r.loss;
          if (Number.isFinite(loss)) arrayOpt.apply(params, r.grads, lr);
        } else {
          const b = tok.encodeBatch(
            idx.map((i) => unique[i]!),
            { maxLength },
          );
          const { ids, mask } = BertEncoder.batchTensors(b);
          const teacherEmb = tf.tensor2d(want, [idx.length, D]);
          const { value, grads } = tf.variableGrads(() => {
            const e = student.pool(student.layersRange(student.embed(ids), maskBias(mask)), mask);
            return tf.sub<tf.Scalar>(1, tf.mean(tf.sum(tf.mul(e, teacherEmb), 1)));
          }, [...named.values()]);
          const byName = new Map<string, tf.Tensor>();
          for (const [k, g] of Object.entries(grads)) byName.set(byTfName.get(k) ?? k, g);
          opt.apply(byName, lr);
          loss = (await value.data())[0] ?? NaN;
          tf.dispose([value, ids, mask, teacherEmb, ...Object.values(grads)]);
        }
        if (!Number.isFinite(loss)) {
          throw new RecflowError(
            ErrorType.TrainingDiverged,
            `distillation diverged at epoch ${epoch}, step ${s}: loss ${loss}`,
          );
        }
        lossSum += loss;
        if ((s + 1) % 10 === 0 || s + 1 === steps) {
          await new Promise((resolve) => setImmediate(resolve));
          await opts.onProgress?.({ epoch, step: s + 1, steps, loss: lossSum / (s + 1) });
        }
      }
      history.push({ epoch, loss: steps ? lossSum / steps : NaN, seconds: (performance.now() - t0) / 1000 });
    }
    if (arrayOpt) {
      tf.tidy(() => {
        for (const [k, v] of named) v.assign(tf.tensor(params.get(ortName(k))!.data, v.shape));
      });
    }
    return { weights: student.toWeights(), config: student.config, layers, history };
  } finally {
    await runner?.release();
    opt.dispose();
    student.dispose();
  }
}
