/**
 * The two-tower neural recommender as a model kind: tfjs training (GPU queue with the CPU fallback), the checkpoint
 * format of ./spec.ts (`recflow-two-tower/3`: weights plus the fitted prior, item gates, prior weight and
 * calibrations), the ONNX export of ./export.ts (graphs with the `history` input) and the recommender evaluation
 * every recommender kind shares.
 */
import { ErrorType, RecflowError } from '../../lib/errors';
import { evaluateBundle } from '../../lib/eval/evaluate';
import { selectBackend } from '../../lib/train/backend';
import type { CheckpointSummary, EpochRecord, ModelKind, TrainOutcome } from '../types';
import { checkpointSummary } from '../summary';
import { writeBundle } from './bundle';
import { EXPORTER_VERSION } from './export';
import {
  DEFAULT_MODEL_CONFIG,
  readCheckpoint,
  sizesOf,
  towerFeatures,
  writeCheckpoint,
  type CheckpointMeta,
  type ModelConfig,
  type ModelExtras,
} from './spec';
import { trainTwoTower, type ResumeState } from './trainer';

const INTEGER_FIELDS: ReadonlyArray<keyof ModelConfig> = [
  'embeddingDim',
  'featureDim',
  'hiddenUnits',
  'outputDim',
  'historyLength',
  'epochs',
  'batchSize',
  'minItemInteractions',
  'sampledItems',
  'earlyStoppingPatience',
  'seed',
];
const MAY_BE_ZERO: ReadonlyArray<keyof ModelConfig> = [
  'l2',
  'seed',
  'earlyStoppingPatience',
  'dropout',
  'historyDropout',
  'historyGap',
  'itemIdDropout',
  'maxPriorWeight',
];
const RATES: ReadonlyArray<keyof ModelConfig> = ['dropout', 'historyDropout', 'itemIdDropout'];

/**
 * Resolve a partial two-tower config over {@link DEFAULT_MODEL_CONFIG}, checking every field.
 * @throws {RecflowError} `InvalidInput` naming the field and its bad value.
 */
export function resolveModelConfig(partial: Partial<ModelConfig> = {}, seed?: number): ModelConfig {
  const config: ModelConfig = { ...DEFAULT_MODEL_CONFIG, ...partial, ...(seed !== undefined ? { seed } : {}) };
  for (const key of Object.keys(config) as Array<keyof ModelConfig>) {
    if (!(key in DEFAULT_MODEL_CONFIG))
      throw new RecflowError(ErrorType.InvalidInput, `config.${key}: unknown hyperparameter of kind two-tower`);
    const v = config[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!MAY_BE_ZERO.includes(key) && v === 0))
      throw new RecflowError(ErrorType.InvalidInput, `config.${key} = ${String(v)}: expected a finite number > 0`);
    if (INTEGER_FIELDS.includes(key) && !Number.isInteger(v))
      throw new RecflowError(ErrorType.InvalidInput, `config.${key} = ${v}: expected an integer`);
  }
  if (config.learningRateDecay > 1)
    throw new RecflowError(ErrorType.InvalidInput, `config.learningRateDecay = ${config.learningRateDecay}: > 1`);
  for (const key of RATES)
    if (config[key] >= 1)
      throw new RecflowError(ErrorType.InvalidInput, `config.${key} = ${config[key]}: a rate must be below 1`);
  if (config.l2 * config.learningRate >= 1)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `config.l2 = ${config.l2}: weight decay times the learning rate (${config.learningRate}) must be below 1`,
    );
  return config;
}

const summary = (meta: CheckpointMeta): CheckpointSummary => checkpointSummary('two-tower', meta);

export const twoTowerKind: ModelKind<ModelConfig> = {
  name: 'two-tower',
  task: 'recommend',
  trainerVersion: 'two-tower-3',
  // `+history`: bundles carry the users' training histories (history.bin); older bundles are not reused.
  exporterVersion: `${EXPORTER_VERSION}+history`,

  resolveConfig: (partial, seed) => resolveModelConfig(partial, seed),

  async train(ds, config, ctx): Promise<TrainOutcome> {
    const choice = await selectBackend(ctx.backend);
    let resume: ResumeState | undefined;
    if (ctx.resume) {
      const ck = await readCheckpoint(ctx.resume.dir);
      const best = ctx.resume.bestDir ? await readCheckpoint(ctx.resume.bestDir) : ck;
      resume = {
        epoch: ck.meta.epoch,
        weights: ck.weights,
        history: ck.meta.history as unknown as EpochRecord[],
        bestWeights: best.weights,
        bestPriorWeight: best.meta.extras.priorWeight,
      };
    }
    const meta = (epoch: number, history: EpochRecord[], extras: ModelExtras): CheckpointMeta => ({
      config,
      sizes: sizesOf(ds),
      datasetId: ds.manifest.id,
      backend: choice.backend,
      gpu: choice.gpu,
      epoch,
      history: history as unknown as Array<Record<string, number>>,
      extras,
    });
    const done: EpochRecord[] = [...(resume?.history ?? [])];
    const result = await trainTwoTower(ds, config, {
      resume,
      maxValidationUsers: ctx.maxValidationUsers,
      onProgress: (epoch, batch, batches) => ctx.onProgress(epoch, batch, batches),
      onEpoch: async (record, weights, extras) => {
        done.push(record);
        const history = [...done];
        await ctx.onEpoch(record, (dir) => writeCheckpoint(dir, meta(record.epoch, history, extras), weights));
      },
    });
    return {
      write: (dir) => writeCheckpoint(dir, meta(result.bestEpoch, result.history, result.extras), result.weights),
      history: result.history,
      bestEpoch: result.bestEpoch,
      epochsRun: result.epochsRun,
      stoppedEarly: result.stoppedEarly,
      samplesPerSec: result.samplesPerSec,
      backend: choice.backend,
      gpu: choice.gpu,
    };
  },

  async readCheckpoint(dir) {
    return summary((await readCheckpoint(dir)).meta);
  },

  async exportBundle(input) {
    const { meta, weights } = await readCheckpoint(input.checkpointDir);
    if (meta.datasetId !== input.datasetId)
      throw new RecflowError(
        ErrorType.InvalidInput,
        `checkpoint ${input.checkpointId} was trained on dataset ${meta.datasetId}, not ${input.datasetId}`,
      );
    return writeBundle(input.dir, {
      modelName: input.modelName,
      datasetId: input.datasetId,
      checkpointId: input.checkpointId,
      weights,
      features: towerFeatures(input.ds),
      meta,
      vocab: input.ds.vocab,
      popularity: input.ds.items.popularity,
      history: input.ds.splits.train,
    });
  },

  evaluate: (bundleDir, ds, options, onProgress, fits) => evaluateBundle(bundleDir, ds, options, onProgress, fits),
};
