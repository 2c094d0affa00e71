/** The common part of every kind's checkpoint metadata, as `ModelKind.readCheckpoint` returns it. */
import type { KindName } from '../lib/kinds';
import type { CheckpointSummary, EpochRecord } from './types';

/** What each kind's checkpoint metadata has in common with {@link CheckpointSummary}. */
export interface CheckpointMetaLike {
  config: object;
  datasetId: string;
  backend: string;
  gpu: boolean;
  epoch: number;
  history: ReadonlyArray<object>;
}

/** The summary of a checkpoint of `kind` (the config copied; the per-epoch history as the kind recorded it). */
export function checkpointSummary(kind: KindName, meta: CheckpointMetaLike): CheckpointSummary {
  return {
    kind,
    config: { ...meta.config },
    datasetId: meta.datasetId,
    backend: meta.backend,
    gpu: meta.gpu,
    epoch: meta.epoch,
    history: meta.history as unknown as EpochRecord[],
  };
}
