import { CancelledFailure, Context, log } from '@temporalio/activity';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { kindOf } from '../kinds';
import type { EpochRecord } from '../kinds/types';
import { hashInputs, type ArtifactRef } from '../lib/artifacts';
import { loadDataset } from '../lib/data/dataset';
import { LEGACY_KIND, type KindName } from '../lib/kinds';
import type { ActivityDeps } from './deps';

export type { EpochRecord } from '../kinds/types';

export interface TrainModelInput {
  /** Model kind (lib/kinds.ts). @default 'two-tower' */
  kind?: KindName;
  datasetId: string;
  /** Hyperparameters over the kind's defaults (each kind validates its own). */
  config?: Record<string, unknown>;
  /** Overrides `config.seed`. */
  seed?: number;
  /** A name for logs (a trial number, a run key); not part of the checkpoint id. */
  label?: string;
  /** Validation users per epoch. @default 5000 */
  maxValidationUsers?: number;
}

export interface TrainModelResult {
  kind: KindName;
  /** The best epoch's weights, id = hash of `{kind, datasetId, config, trainerVersion}`: a rerun reuses it. */
  checkpoint: ArtifactRef;
  /** Backend that trained it (`tensorflow`, `wasm`, `cpu`, `typescript`), as recorded in the checkpoint. */
  backend: string;
  gpu: boolean;
  /** Epochs trained in total (all attempts). */
  epochsRun: number;
  bestEpoch: number;
  /** The epoch this attempt resumed after (a dead attempt's checkpoint), null when it started fresh. */
  resumedFromEpoch: number | null;
  /** Validation metrics of the best epoch, and its training loss. */
  metrics: { ndcg10: number; hr10: number; loss: number };
  /** Training samples per second of this attempt (0 when the checkpoint was reused). */
  samplesPerSec: number;
  /** True when the checkpoint already existed (nothing trained). */
  reused: boolean;
  config: Record<string, unknown>;
  history: EpochRecord[];
}

/** What `trainModel` heartbeats: after each epoch the resume point, between epochs the progress inside one. */
export interface TrainHeartbeat {
  kind?: KindName;
  epoch: number;
  /** Epochs planned (for progress bars). */
  epochs?: number;
  checkpointId: string;
  metrics: { ndcg10: number; hr10: number; loss: number };
  /** Progress inside the next epoch. */
  batch?: number;
  batches?: number;
  /** Work after the epochs that the batches count (e.g. `distilling the student`). */
  phase?: string;
  backend?: string;
}

/** The id every checkpoint of one training run derives from. */
export function trainingRunKey(kind: KindName, datasetId: string, config: object, trainerVersion: string): string {
  return hashInputs({ kind, datasetId, config, trainerVersion });
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
  /**
   * The newest epoch checkpoint of a run in the store: a retry on another queue (the CPU fallback after a GPU
   * worker died) has no heartbeat of the dead attempt, but the checkpoints it wrote are in the shared store.
   */
  const newestEpochCheckpoint = async (runKey: string): Promise<{ id: string; epoch: number } | undefined> => {
    const prefix = `${runKey.slice(0, 40)}-e`;
    const names = await readdir(join(deps.store.root, 'checkpoint')).catch(() => [] as string[]);
    let best: { id: string; epoch: number } | undefined;
    for (const n of names) {
      if (!n.startsWith(prefix)) continue;
      const epoch = Number(n.slice(prefix.length));
      if (Number.isInteger(epoch) && (!best || epoch > best.epoch) && (await deps.store.find('checkpoint', n)))
        best = { id: n, epoch };
    }
    return best;
  };

  return {
    /**
     * Train a model of any kind (kinds/) on a dataset artifact. Heartbeats `{epoch, checkpointId, metrics}` after
     * each epoch (the epoch checkpoint is written first) and the batch progress between; a retry resumes from the
     * checkpoint named in the last heartbeat, or from the newest epoch checkpoint of the same run in the store.
     * Idempotent: when the final checkpoint exists it is returned.
     */
    async trainModel(input: TrainModelInput): Promise<TrainModelResult> {
      const kindName = input.kind ?? LEGACY_KIND;
      const kind = kindOf(kindName);
      const config = kind.resolveConfig(input.config, input.seed) as Record<string, unknown>;
      const runKey = trainingRunKey(kindName, input.datasetId, config, kind.trainerVersion);
      const finalId = runKey;
      const existing = await deps.store.find('checkpoint', finalId);
      if (existing) {
        const meta = await kind.readCheckpoint(existing.path);
        log.info('checkpoint exists, reusing it', { kind: kindName, checkpointId: finalId, label: input.label });
        return {
          kind: kindName,
          checkpoint: existing,
          backend: meta.backend,
          gpu: meta.gpu,
          epochsRun: meta.history.length,
          bestEpoch: meta.epoch,
          resumedFromEpoch: null,
          metrics: metricsOf(bestOf(meta.history)),
          samplesPerSec: 0,
          reused: true,
          config,
          history: meta.history,
        };
      }
      const datasetRef = await deps.store.get('dataset', input.datasetId);
      const ds = await loadDataset(datasetRef.path);
      const ctx = Context.current();
      const checkCancelled = (): void => {
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('training cancelled');
      };

      // Resume point: the dead attempt's last heartbeat, else the newest epoch checkpoint of this run.
      const beat = ctx.info.heartbeatDetails as TrainHeartbeat | undefined;
      const fromBeat =
        beat && typeof beat.checkpointId === 'string' && beat.checkpointId.startsWith(runKey.slice(0, 40))
          ? beat.checkpointId
          : undefined;
      const newest = await newestEpochCheckpoint(runKey);
      const resumeId = fromBeat ?? newest?.id;
      const resumeRef = resumeId ? await deps.store.find('checkpoint', resumeId) : undefined;
      let resume: { dir: string; epoch: number; bestDir?: string } | undefined;
      let resumedHistory: EpochRecord[] = [];
      if (resumeRef) {
        const meta = await kind.readCheckpoint(resumeRef.path);
        const best = bestOf(meta.history);
        const bestRef =
          best && best.epoch !== meta.epoch
            ? await deps.store.find('checkpoint', epochCheckpointId(runKey, best.epoch))
            : undefined;
        resume = { dir: resumeRef.path, epoch: meta.epoch, bestDir: bestRef?.path };
        resumedHistory = meta.history;
        log.info('resuming training', {
          kind: kindName,
          checkpointId: resumeRef.id,
          epoch: meta.epoch,
          from: fromBeat ? 'heartbeat' : 'store',
          label: input.label,
        });
      } else if (beat?.checkpointId) {
        log.warn('heartbeat names no usable checkpoint of this run, starting over', {
          checkpointId: beat.checkpointId,
          label: input.label,
        });
      }

      const epochs = typeof config.epochs === 'number' ? config.epochs : undefined;
      let last: TrainHeartbeat | undefined = resume
        ? {
            kind: kindName,
            epoch: resume.epoch,
            epochs,
            checkpointId: resumeRef!.id,
            metrics: metricsOf(bestOf(resumedHistory)),
          }
        : undefined;
      // Training progress for Prometheus (the worker's Runtime exporter, RECFLOW_WORKER_METRICS): Grafana shows it.
      const tags = { kind: kindName, dataset: input.datasetId };
      const epochGauge = ctx.metricMeter.createGauge('recflow_training_epoch', 'int', 'last finished epoch (1-based)');
      const ndcgGauge = ctx.metricMeter.createGauge('recflow_training_val_ndcg10', 'float', 'validation NDCG@10');
      const samples = ctx.metricMeter.createCounter('recflow_training_samples', 'samples', 'training samples seen');
      const outcome = await kind.train(ds, config, {
        resume,
        maxValidationUsers: input.maxValidationUsers,
        backend: deps.config.tfBackend,
        onProgress: (epoch, batch, batches, phase) => {
          ctx.heartbeat({
            ...(last ?? { kind: kindName, epochs, checkpointId: '', metrics: metricsOf(undefined) }),
            epoch,
            batch,
            batches,
            ...(phase ? { phase } : {}),
          });
          checkCancelled();
        },
        onEpoch: async (record, write) => {
          checkCancelled();
          const id = epochCheckpointId(runKey, record.epoch);
          await deps.store.put('checkpoint', id, write);
          last = { kind: kindName, epoch: record.epoch, epochs, checkpointId: id, metrics: metricsOf(record) };
          ctx.heartbeat(last);
          epochGauge.set(record.epoch + 1, tags);
          ndcgGauge.set(record.ndcg10, tags);
          samples.add(record.samples, tags);
          checkCancelled();
          log.info('epoch done', { kind: kindName, ...record, checkpointId: id, label: input.label });
        },
      });
      const ref = await deps.store.put('checkpoint', finalId, outcome.write);
      const best = bestOf(outcome.history);
      const { reused, ...checkpoint } = ref;
      log.info('training done', {
        kind: kindName,
        checkpointId: finalId,
        bestEpoch: outcome.bestEpoch,
        ndcg10: best?.ndcg10,
        backend: outcome.backend,
        stoppedEarly: outcome.stoppedEarly,
      });
      return {
        kind: kindName,
        checkpoint,
        backend: outcome.backend,
        gpu: outcome.gpu,
        epochsRun: outcome.history.length,
        bestEpoch: outcome.bestEpoch,
        resumedFromEpoch: resume ? resume.epoch : null,
        metrics: metricsOf(best),
        samplesPerSec: outcome.samplesPerSec,
        reused,
        config,
        history: outcome.history,
      };
    },
  };
}
