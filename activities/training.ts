import { CancelledFailure, Context, log } from '@temporalio/activity';
import { hashInputs, type ArtifactRef } from '../lib/artifacts';
import { loadDataset } from '../lib/data/dataset';
import { ErrorType, RecflowError } from '../lib/errors';
import {
  DEFAULT_MODEL_CONFIG,
  readCheckpoint,
  sizesOf,
  writeCheckpoint,
  type CheckpointMeta,
  type ModelConfig,
} from '../kinds/two-tower/spec';
import { selectBackend, type BackendChoice } from '../lib/train/backend';
import { trainTwoTower, type EpochRecord, type ResumeState } from '../kinds/two-tower/trainer';
import type { ActivityDeps } from './deps';
import { withFailures } from './failures';

/** Bump when a change to the training code should not reuse checkpoints of the previous one. */
export const TRAINER_VERSION = 1;

export interface TrainModelInput {
  datasetId: string;
  /** Hyperparameters over {@link DEFAULT_MODEL_CONFIG}. */
  config?: Partial<ModelConfig>;
  /** Overrides `config.seed`. */
  seed?: number;
  /** A name for logs (a trial number, a run key); not part of the checkpoint id. */
  label?: string;
  /** Validation users per epoch. @default 5000 */
  maxValidationUsers?: number;
}

export interface TrainModelResult {
  /** The best epoch's weights, id = hash of `{datasetId, config, trainerVersion}`: a rerun reuses it. */
  checkpoint: ArtifactRef;
  /** tfjs backend that trained it (`tensorflow`, `wasm`, `cpu`), as recorded in the checkpoint. */
  backend: string;
  gpu: boolean;
  /** Epochs trained in total (all attempts). */
  epochsRun: number;
  bestEpoch: number;
  /** The epoch this attempt resumed after (from the heartbeat of a dead attempt), null when it started fresh. */
  resumedFromEpoch: number | null;
  /** Validation metrics of the best epoch, and its training loss. */
  metrics: { ndcg10: number; hr10: number; loss: number };
  /** Training samples per second of this attempt (0 when the checkpoint was reused). */
  samplesPerSec: number;
  /** True when the checkpoint already existed (nothing trained). */
  reused: boolean;
  config: ModelConfig;
  history: EpochRecord[];
}

/** What `trainModel` heartbeats after each epoch: the resume point of a retry. */
export interface TrainHeartbeat {
  epoch: number;
  checkpointId: string;
  metrics: { ndcg10: number; hr10: number; loss: number };
  /** Progress inside the next epoch (between epoch heartbeats). */
  batch?: number;
  batches?: number;
}

/** Resolve a partial config over the defaults, checking every field. */
export function resolveModelConfig(partial: Partial<ModelConfig> = {}, seed?: number): ModelConfig {
  const config: ModelConfig = { ...DEFAULT_MODEL_CONFIG, ...partial, ...(seed !== undefined ? { seed } : {}) };
  const ints: Array<keyof ModelConfig> = [
    'embeddingDim',
    'featureDim',
    'hiddenUnits',
    'outputDim',
    'epochs',
    'batchSize',
    'negativesPerPositive',
    'earlyStoppingPatience',
    'seed',
  ];
  for (const key of Object.keys(config) as Array<keyof ModelConfig>) {
    if (!(key in DEFAULT_MODEL_CONFIG))
      throw new RecflowError(ErrorType.InvalidInput, `config.${key}: unknown hyperparameter`);
    const v = config[key];
    const positive =
      key !== 'l2' && key !== 'seed' && key !== 'negativesPerPositive' && key !== 'earlyStoppingPatience';
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (positive && v === 0))
      throw new RecflowError(ErrorType.InvalidInput, `config.${key} = ${String(v)}: expected a finite number > 0`);
    if (ints.includes(key) && !Number.isInteger(v))
      throw new RecflowError(ErrorType.InvalidInput, `config.${key} = ${v}: expected an integer`);
  }
  if (config.learningRateDecay > 1)
    throw new RecflowError(ErrorType.InvalidInput, `config.learningRateDecay = ${config.learningRateDecay}: > 1`);
  return config;
}

/** The id every checkpoint of one training run derives from. */
export function trainingRunKey(datasetId: string, config: ModelConfig): string {
  return hashInputs({ datasetId, config, trainerVersion: TRAINER_VERSION });
}

function epochCheckpointId(runKey: string, epoch: number): string {
  return `${runKey.slice(0, 40)}-e${epoch}`;
}

function bestOf(history: EpochRecord[]): EpochRecord | undefined {
  return history.reduce<EpochRecord | undefined>((b, r) => (!b || r.ndcg10 > b.ndcg10 ? r : b), undefined);
}

function metricsOf(r: EpochRecord | undefined): TrainHeartbeat['metrics'] {
  return { ndcg10: r?.ndcg10 ?? 0, hr10: r?.hr10 ?? 0, loss: r?.loss ?? 0 };
}

/** Training activities: run on `recflow-gpu` (tfjs-node-gpu) and, as the fallback, on `recflow-cpu`. */
export function createTrainingActivities(deps: ActivityDeps) {
  return {
    /**
     * Train the two-tower model of lib/model-spec.ts on a dataset artifact. Heartbeats `{epoch, checkpointId,
     * metrics}` after each epoch (an epoch checkpoint is written first); a retry after a dead worker resumes from
     * the checkpoint named in the last heartbeat. Idempotent: when the final checkpoint exists it is returned.
     */
    async trainModel(input: TrainModelInput): Promise<TrainModelResult> {
      return withFailures(async () => {
        const config = resolveModelConfig(input.config, input.seed);
        const runKey = trainingRunKey(input.datasetId, config);
        const finalId = runKey;
        const existing = await deps.store.find('checkpoint', finalId);
        if (existing) {
          const { meta } = await readCheckpoint(existing.path);
          const history = meta.history as unknown as EpochRecord[];
          const best = bestOf(history);
          log.info('checkpoint exists, reusing it', { checkpointId: finalId, label: input.label });
          return {
            checkpoint: existing,
            backend: meta.backend,
            gpu: meta.gpu,
            epochsRun: history.length,
            bestEpoch: meta.epoch,
            resumedFromEpoch: null,
            metrics: metricsOf(best),
            samplesPerSec: 0,
            reused: true,
            config,
            history,
          };
        }
        const datasetRef = await deps.store.get('dataset', input.datasetId);
        const ds = await loadDataset(datasetRef.path);
        const choice: BackendChoice = await selectBackend();
        log.info('training backend', {
          backend: choice.backend,
          gpu: choice.gpu,
          reason: choice.reason,
          label: input.label,
        });
        const ctx = Context.current();
        const checkCancelled = (): void => {
          if (ctx.cancellationSignal.aborted) throw new CancelledFailure('training cancelled');
        };
        const meta = (epoch: number, history: EpochRecord[]): CheckpointMeta => ({
          config,
          sizes: sizesOf(ds),
          datasetId: input.datasetId,
          backend: choice.backend,
          gpu: choice.gpu,
          epoch,
          history: history as unknown as Array<Record<string, number>>,
        });

        // Resume from the last heartbeat of a dead attempt.
        let resume: ResumeState | undefined;
        const beat = ctx.info.heartbeatDetails as TrainHeartbeat | undefined;
        const ckRef =
          beat && typeof beat.checkpointId === 'string' && beat.checkpointId.startsWith(runKey.slice(0, 40))
            ? await deps.store.find('checkpoint', beat.checkpointId)
            : undefined;
        if (beat?.checkpointId && !ckRef) {
          log.warn('heartbeat names no usable checkpoint of this run, starting over', {
            checkpointId: beat.checkpointId,
            label: input.label,
          });
        }
        if (ckRef) {
          const ck = await readCheckpoint(ckRef.path);
          const history = ck.meta.history as unknown as EpochRecord[];
          const best = bestOf(history);
          const bestRef =
            best && best.epoch !== ck.meta.epoch
              ? await deps.store.find('checkpoint', epochCheckpointId(runKey, best.epoch))
              : undefined;
          const bestWeights = bestRef ? (await readCheckpoint(bestRef.path)).weights : ck.weights;
          resume = { epoch: ck.meta.epoch, weights: ck.weights, history, bestWeights };
          log.info('resuming training', { checkpointId: ckRef.id, epoch: ck.meta.epoch, label: input.label });
        }

        let last: TrainHeartbeat | undefined = beat && resume ? beat : undefined;
        // Training progress for Prometheus (the worker's Runtime exporter, RECFLOW_WORKER_METRICS): Grafana shows it.
        const tags = { backend: choice.backend, dataset: input.datasetId };
        const epochGauge = ctx.metricMeter.createGauge(
          'recflow_training_epoch',
          'int',
          'last finished epoch (1-based)',
        );
        const ndcgGauge = ctx.metricMeter.createGauge('recflow_training_val_ndcg10', 'float', 'validation NDCG@10');
        const samples = ctx.metricMeter.createCounter('recflow_training_samples', 'samples', 'training samples seen');
        const historySoFar: EpochRecord[] = [];
        const result = await trainTwoTower(ds, config, {
          resume,
          maxValidationUsers: input.maxValidationUsers,
          onProgress: (_epoch, batch, batches) => {
            ctx.heartbeat({ ...(last ?? {}), batch, batches });
            checkCancelled();
          },
          onEpoch: async (record, weights, _isBest) => {
            checkCancelled();
            const id = epochCheckpointId(runKey, record.epoch);
            const done = [...(resume?.history ?? []), ...historySoFar, record];
            historySoFar.push(record);
            await deps.store.put('checkpoint', id, (dir) => writeCheckpoint(dir, meta(record.epoch, done), weights));
            last = { epoch: record.epoch, checkpointId: id, metrics: metricsOf(record) };
            ctx.heartbeat(last);
            epochGauge.set(record.epoch + 1, tags);
            ndcgGauge.set(record.ndcg10, tags);
            samples.add(record.samples, tags);
            checkCancelled();
            log.info('epoch done', { ...record, checkpointId: id, backend: choice.backend, label: input.label });
          },
        });
        const best = bestOf(result.history);
        const ref = await deps.store.put('checkpoint', finalId, (dir) =>
          writeCheckpoint(dir, meta(result.bestEpoch, result.history), result.weights),
        );
        const { reused, ...checkpoint } = ref;
        log.info('training done', {
          checkpointId: finalId,
          bestEpoch: result.bestEpoch,
          ndcg10: best?.ndcg10,
          backend: choice.backend,
          stoppedEarly: result.stoppedEarly,
        });
        return {
          checkpoint,
          backend: choice.backend,
          gpu: choice.gpu,
          epochsRun: result.history.length,
          bestEpoch: result.bestEpoch,
          resumedFromEpoch: resume ? resume.epoch : null,
          metrics: metricsOf(best),
          samplesPerSec: result.samplesPerSec,
          reused,
          config,
          history: result.history,
        };
      });
    },
  };
}
