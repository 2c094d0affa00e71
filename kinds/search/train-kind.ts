/**
 * Training of the `search` kind, through the kind interface's callbacks (kinds/types.ts `TrainContext`): the
 * pretrained encoder (kinds/search/base-model.ts) fine-tuned on the train split's (query, item text) pairs with
 * BM25-mined hard negatives (kinds/search/fine-tune.ts), validated after each epoch on the validation split's
 * judged queries ranked over the whole catalogue (graded NDCG@10, the selection metric of every kind), then
 * distilled into a smaller student (kinds/search/distill.ts).
 *
 * Each epoch's checkpoint (the fine-tune's own resume files) goes through `ctx.onEpoch`, so the activity heartbeats
 * it and a retry on another worker resumes from it exactly. `epochs: 0` validates and ships the pretrained encoder.
 */
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadedDataset } from '../../lib/data/dataset';
import { normalizeQuery } from '../../lib/data/preprocess-search';
import { ErrorType, RecflowError } from '../../lib/errors';
import { selectBackend } from '../../lib/train/backend';
import type { EpochRecord, TrainContext, TrainOutcome } from '../types';
import { loadBaseModel, resolveBaseModelDir } from './base-model';
import { catalogueOf, distillationTexts, judgedQueries, requireSearch, trainingPairs, trainRelevance } from './data';
import { distillStudent, type DistillResult } from './distill';
import { evaluateRetrieval, fineTune, type FineTuneEpoch, type ValidationSet } from './fine-tune';
import { bm25Ranker, mineHardNegatives } from './hard-negatives';
import { saveModelFolder } from './model-folder';
import { writeSearchCheckpointMeta, type SearchCheckpointMeta, type SearchKindConfig } from './spec';
import { SearchTokenizer } from './tokenizer';

/** Validation queries as the fine-tune reads them: one pair per distinct text, graded judgements over item texts. */
export function validationSet(ds: LoadedDataset, max: number, corpus: string[]): ValidationSet {
  const s = requireSearch(ds);
  const byText = new Map<string, Map<string, number>>();
  for (const q of judgedQueries(ds, 'validation')) {
    const key = normalizeQuery(q.text);
    let g = byText.get(key);
    if (!g) {
      if (byText.size >= max) continue;
      byText.set(key, (g = new Map()));
    }
    for (const [item, grade] of q.grades) {
      const text = s.itemText[item] ?? '';
      if (text.trim()) g.set(text, Math.max(g.get(text) ?? 0, grade));
    }
  }
  const pairs = [];
  const grades = new Map<string, Map<string, number>>();
  for (const [query, g] of byText) {
    const best = [...g].sort((a, b) => b[1] - a[1])[0];
    if (!best) continue;
    pairs.push({ query, positive: best[0] });
    grades.set(query, g);
  }
  return { pairs, corpus, grades };
}

const toRecord = (e: FineTuneEpoch, batchSize: number): EpochRecord => ({
  epoch: e.epoch - 1,
  loss: e.loss,
  ndcg10: e.validation?.ndcg10 ?? 0,
  hr10: e.validation?.recall10 ?? 0,
  learningRate: e.learningRate,
  seconds: e.seconds,
  samples: e.steps * batchSize,
  samplesPerSec: e.samplesPerSec,
});

/** Student layers: `n` of the teacher's `layers`, evenly spaced from the bottom (0, 2, 4 of 6). */
export function studentLayersOf(layers: number, n: number): number[] {
  const k = n > 0 ? n : Math.ceil(layers / 2);
  if (k > layers)
    throw new RecflowError(ErrorType.InvalidInput, `config.studentLayers = ${n}: the base model has ${layers} layers`);
  return Array.from({ length: k }, (_, i) => Math.floor((i * layers) / k));
}

/** Train a search model (see the module comment). */
export async function trainSearch(
  ds: LoadedDataset,
  config: SearchKindConfig,
  ctx: TrainContext,
): Promise<TrainOutcome> {
  requireSearch(ds);
  const choice = await selectBackend(ctx.backend);
  const baseDir = resolveBaseModelDir(config.baseModel);
  const base = await loadBaseModel(baseDir);
  if (base.source.weightsSha256 !== config.baseModelSha256)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `base model ${baseDir} has weights ${base.source.weightsSha256}, the run's config names ${config.baseModelSha256}: the base model changed on this worker`,
    );
  const L = base.config.numLayers;
  if (config.trainableLayers > L)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `config.trainableLayers = ${config.trainableLayers}: the base model ${base.source.name} has ${L} layers`,
    );
  const studentLayers = config.student ? studentLayersOf(L, config.studentLayers) : [];
  const catalogue = catalogueOf(ds);
  const raw = trainingPairs(ds, config.minGrade, config.maxPairs);
  if (config.epochs > 0 && raw.length < 2)
    throw new RecflowError(
      ErrorType.InvalidData,
      `dataset ${ds.manifest.id}: ${raw.length} training pairs (train queries with an event of grade >= ${config.minGrade}): too few to fine-tune; use epochs 0 for the zero-shot encoder`,
    );
  const pairs =
    config.hardNegatives > 0 && config.epochs > 0
      ? mineHardNegatives(raw, catalogue.texts, bm25Ranker(catalogue.texts), {
          perPair: config.hardNegatives,
          isRelevant: trainRelevance(ds),
        })
      : raw;
  const validation = validationSet(ds, ctx.maxValidationUsers ?? 5000, catalogue.texts);
  const data = {
    pairs: pairs.length,
    negatives: pairs.reduce((a, p) => a + (p.negatives?.length ?? 0), 0),
    validationQueries: validation.pairs.length,
    catalogue: catalogue.texts.length,
  };
  const work = await mkdtemp(join(tmpdir(), 'recflow-search-train-'));
  const ftDir = join(work, 'finetune');
  await mkdir(ftDir, { recursive: true });
  try {
    if (ctx.resume && existsSync(join(ctx.resume.dir, 'finetune', 'resume.json')))
      await cp(join(ctx.resume.dir, 'finetune'), ftDir, { recursive: true });
    let zeroShot: SearchCheckpointMeta['zeroShot'];
    const meta = (epoch: number, history: EpochRecord[], contents: 'final' | 'epoch'): SearchCheckpointMeta => ({
      kind: 'search',
      format: 'recflow-search-checkpoint/1',
      config,
      datasetId: ds.manifest.id,
      backend: choice.backend,
      gpu: choice.gpu,
      epoch,
      history,
      zeroShot,
      base: base.source,
      data,
      contents,
    });
    let weights = base.weights;
    let bertConfig = base.config;
    let history: EpochRecord[] = [];
    let bestEpoch = 0;
    let epochsRun = 0;
    let samplesPerSec = 0;
    let cacheSeconds = 0;
    if (config.epochs === 0) {
      // Zero-shot: the pretrained encoder, validated as the fine-tune would (one record, nothing trained).
      ctx.onProgress(0, 0, 1);
      const t0 = performance.now();
      const tok = SearchTokenizer.load(base.dir, Math.max(config.queryMaxLength, config.itemMaxLength));
      zeroShot = validation.pairs.length
        ? await evaluateRetrieval(
            base.weights,
            base.config,
            tok,
            validation,
            { query: config.queryMaxLength, item: config.itemMaxLength },
            // Encoding the catalogue takes minutes on a small host: heartbeat through it.
            (done, total) => ctx.onProgress(0, done, total, 'validating the pretrained encoder'),
          )
        : undefined;
      history = [
        {
          epoch: 0,
          loss: 0,
          ndcg10: zeroShot?.ndcg10 ?? 0,
          hr10: zeroShot?.recall10 ?? 0,
          seconds: (performance.now() - t0) / 1000,
          samples: 0,
          samplesPerSec: 0,
        },
      ];
    } else {
      const done: EpochRecord[] = [];
      if (ctx.resume) {
        const point = JSON.parse(await readFile(join(ftDir, 'resume.json'), 'utf8').catch(() => '{}')) as {
          history?: FineTuneEpoch[];
        };
        for (const e of point.history ?? []) done.push(toRecord(e, config.batchSize));
      }
      const ft = await fineTune(pairs, {
        base,
        validation: validation.pairs.length ? validation : undefined,
        trainableLayers: config.trainableLayers,
        epochs: config.epochs,
        batchSize: config.batchSize,
        negativesPerPair: config.hardNegatives,
        ...(config.learningRate !== undefined ? { learningRate: config.learningRate } : {}),
        queryMaxLength: config.queryMaxLength,
        itemMaxLength: config.itemMaxLength,
        seed: config.seed,
        engine: config.engine,
        checkpointDir: ftDir,
        resume: ctx.resume !== undefined,
        onProgress: (p) => {
          if (p.phase === 'train') ctx.onProgress(p.epoch - 1, p.step, p.steps);
          else ctx.onProgress(Math.max(0, p.epoch - 1), 0, 0);
        },
        onEpoch: async (e) => {
          const record = toRecord(e, config.batchSize);
          done.push(record);
          const snapshot = [...done];
          await ctx.onEpoch(record, async (dir) => {
            await cp(ftDir, join(dir, 'finetune'), {
              recursive: true,
              // Only the newest step of the fine-tune's own files: the resume point and the best epoch.
              filter: (src) =>
                !/epoch-\d+(-step-\d+)?\.safetensors$/.test(src) || src.endsWith(`epoch-${e.epoch}.safetensors`),
            });
            await writeSearchCheckpointMeta(dir, meta(record.epoch, snapshot, 'epoch'));
          });
        },
      });
      zeroShot = ft.zeroShot;
      weights = ft.weights;
      bertConfig = ft.config;
      history = ft.history.map((e) => toRecord(e, config.batchSize));
      // The fine-tune's best epoch is 1-based, 0 when no epoch beat the pretrained encoder (its weights are kept).
      bestEpoch = Math.max(0, ft.bestEpoch - 1);
      epochsRun = ft.epochsRun;
      samplesPerSec = ft.samplesPerSec;
      cacheSeconds = ft.cacheSeconds;
    }
    let student: DistillResult | undefined;
    if (config.student) {
      student = await distillStudent(distillationTexts(ds, catalogue), {
        teacher: { dir: base.dir, config: bertConfig, weights },
        layers: studentLayers,
        epochs: config.studentEpochs,
        maxLength: Math.max(config.queryMaxLength, Math.min(config.itemMaxLength, 64)),
        seed: config.seed,
        onProgress: (p) => ctx.onProgress(config.epochs, p.step, p.steps, 'distilling the student'),
      });
    }
    const finalMeta: SearchCheckpointMeta = {
      ...meta(bestEpoch, history, 'final'),
      ...(student ? { student: { layers: student.layers, history: student.history } } : {}),
      cacheSeconds,
      samplesPerSec,
    };
    const lineage = { base: base.source, datasetId: ds.manifest.id, config };
    return {
      write: async (dir) => {
        await saveModelFolder(join(dir, 'model'), weights, bertConfig, base.dir, lineage);
        if (student)
          await saveModelFolder(join(dir, 'student'), student.weights, student.config, base.dir, {
            ...lineage,
            distilledFromLayers: student.layers,
          });
        await writeSearchCheckpointMeta(dir, finalMeta);
      },
      history,
      bestEpoch,
      epochsRun,
      stoppedEarly: false,
      samplesPerSec,
      backend: choice.backend,
      gpu: choice.gpu,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
