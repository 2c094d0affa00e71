/**
 * The model-kind plugin interface: everything the lifecycle needs from one kind of model, behind one object.
 * A kind is a folder `kinds/<name>/` whose `index.ts` exports a {@link ModelKind}; `kinds/index.ts` registers it.
 * The activities (training, export, evaluation), serving and the simulator reach a kind only through this interface,
 * so adding a kind is a new folder plus one line in the registry.
 *
 * Kinds are plain Node code: no Temporal imports (activities wrap them: heartbeats through `onProgress`/`onEpoch`,
 * cancellation through `signal`), so serving and benchmarks use them too.
 */
import type { BundleManifest } from '../lib/bundle';
import type { LoadedDataset } from '../lib/data/dataset';
import type { BaselineFitStore } from '../lib/eval/baselines';
import type { EvaluateOptions, EvaluationReport } from '../lib/eval/evaluate';
import type { Blessing } from '../lib/eval/gates';
import type { ServingHealthOptions } from '../lib/eval/serving-health';
import type { KindName, ModelTask } from '../lib/kinds';

/** One finished epoch (or fit iteration) of a training run. */
export interface EpochRecord {
  epoch: number;
  /** Training loss (kind-specific; 0 where a kind has none). */
  loss: number;
  /** Validation NDCG@10 (the selection metric of every kind). */
  ndcg10: number;
  /** Validation HR@10 (recommenders) or Recall@10 (search). */
  hr10: number;
  learningRate?: number;
  /** Seconds of the epoch's training steps (validation excluded). */
  seconds: number;
  samples: number;
  samplesPerSec: number;
}

/** What a kind's training gets from the activity that runs it. */
export interface TrainContext {
  /** Resume after the epoch checkpoint in `dir` (a previous attempt's, named in its last heartbeat). */
  resume?: { dir: string; epoch: number; bestDir?: string };
  /** Validation users (or queries) per epoch. */
  maxValidationUsers?: number;
  /** A TensorFlow.js backend to force (the config's `tfBackend`); unset: the best present. */
  backend?: string;
  /**
   * After each epoch: the activity writes the epoch's checkpoint with `write(dir)`, heartbeats it as the resume
   * point and throws if the activity was cancelled.
   */
  onEpoch(record: EpochRecord, write: (dir: string) => Promise<void>): Promise<void>;
  /**
   * Progress inside an epoch (heartbeat details); `phase` names work after the epochs (e.g. a distillation), shown
   * instead of the epoch. May throw when the activity was cancelled.
   */
  onProgress(epoch: number, batch: number, batches: number, phase?: string): void;
}

/** What a finished training run hands back. */
export interface TrainOutcome {
  /** Writes the final checkpoint (the best epoch's weights) into a fresh folder. */
  write: (dir: string) => Promise<void>;
  /** Every finished epoch, resumed ones included. */
  history: EpochRecord[];
  bestEpoch: number;
  /** Epochs this call trained. */
  epochsRun: number;
  stoppedEarly: boolean;
  samplesPerSec: number;
  /** Compute backend that trained it (`tensorflow`, `wasm`, `cpu`, `typescript`...), and whether a GPU ran. */
  backend: string;
  gpu: boolean;
}

/** What every checkpoint records about itself, whatever the kind (read back for reuse and lineage). */
export interface CheckpointSummary {
  kind: KindName;
  config: Record<string, unknown>;
  datasetId: string;
  backend: string;
  gpu: boolean;
  /** Last finished epoch (0-based). */
  epoch: number;
  history: EpochRecord[];
}

/** What a kind's export gets. */
export interface ExportInput {
  /** A fresh folder to write the bundle into (the artifact store renames it into place). */
  dir: string;
  checkpointDir: string;
  checkpointId: string;
  ds: LoadedDataset;
  modelName: string;
  datasetId: string;
}

/**
 * One kind of model. `C` is its validated hyperparameter configuration (plain JSON: it travels in workflow inputs
 * and is part of the checkpoint id).
 */
export interface ModelKind<C extends object = object> {
  readonly name: KindName;
  readonly task: ModelTask;
  /** Bump when training changes in a way that must not reuse older checkpoints (part of the checkpoint id). */
  readonly trainerVersion: string;
  /** Bump when export changes (part of the bundle id). */
  readonly exporterVersion: string;
  /**
   * Resolve a partial configuration over the kind's defaults and check every field.
   * @throws {RecflowError} `InvalidInput` naming the field and the bad value.
   */
  resolveConfig(partial: Record<string, unknown> | undefined, seed?: number): C;
  /** Train on a dataset's train split, validating on its validation split. */
  train(ds: LoadedDataset, config: C, ctx: TrainContext): Promise<TrainOutcome>;
  /** What a checkpoint folder of this kind records. */
  readCheckpoint(dir: string): Promise<CheckpointSummary>;
  /** Write a bundle (ONNX graphs, vocabularies, manifest) from a checkpoint. */
  exportBundle(input: ExportInput): Promise<BundleManifest>;
  /** Evaluate a bundle of this kind on a dataset's test split (what is evaluated is what serves). */
  evaluate(
    bundleDir: string,
    ds: LoadedDataset,
    options: EvaluateOptions,
    onProgress: (what: string) => void,
    fits?: BaselineFitStore,
  ): Promise<EvaluationReport>;
  /**
   * The infra blessing of a bundle of this kind (it loads fresh, answers smoke requests, p99 within budget).
   * @default lib/eval/serving-health.ts `checkBundleHealth` (the recommender graphs)
   */
  checkHealth?(bundleDir: string, options: ServingHealthOptions): Promise<Blessing & { p99Ms: number | null }>;
}
