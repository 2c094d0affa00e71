import { ApplicationFailure, defineQuery, log, proxyActivities, setHandler } from '@temporalio/workflow';
import type { RecflowActivities } from '../activities';
import type { TrainModelResult } from '../activities/training';
import { NON_RETRYABLE_ERROR_TYPES } from '../lib/errors';
import type { ModelConfig } from '../kinds/two-tower/spec';
import { onGpuOrCpu, type Placement } from './gpu-fallback';
import type { KindName } from '../lib/kinds';
import { mulberry32 } from '../lib/rng';

/** Hyperparameters the search may vary, each with the values to draw from. */
export type SearchSpace = Partial<Record<keyof ModelConfig, number[]>>;

/** The default space: learning rate, embedding width, hidden units and L2. */
export const DEFAULT_SEARCH_SPACE: SearchSpace = {
  learningRate: [0.002, 0.005, 0.01],
  embeddingDim: [16, 32, 64],
  hiddenUnits: [32, 64, 128],
  l2: [0, 1e-6, 1e-5],
};

export interface HyperparameterSearchInput {
  /** Model kind of every trial. @default 'two-tower' (the default space is the two-tower's) */
  kind?: KindName;
  datasetId: string;
  /** Number of trials. */
  trials: number;
  /** Seed of the random draw (and of each trial's training, `seed + trial`). */
  seed: number;
  /** Trials running at once. @default 2 */
  maxParallel?: number;
  /** Values per hyperparameter. @default {@link DEFAULT_SEARCH_SPACE} */
  space?: SearchSpace;
  /** `random`: each trial draws each value (seeded); `grid`: the first `trials` points of the grid. @default 'random' */
  mode?: 'random' | 'grid';
  /** Settings every trial shares (epochs, batch size...). */
  baseConfig?: Partial<ModelConfig>;
  /** Start no new trial after this many seconds (running ones finish). @default no budget */
  budgetSeconds?: number;
  /** How long a GPU worker has to start a trial before it runs on `recflow-cpu`. @default '30 seconds' */
  gpuScheduleToStartTimeout?: string;
  /** Heartbeat timeout of a training attempt: how soon a dead worker's trial is retried. @default '1 minute' */
  heartbeatTimeout?: string;
  /** Validation users per epoch. */
  maxValidationUsers?: number;
}

/** One trial as the `trials` query shows it. */
export interface TrialStatus {
  trial: number;
  config: Partial<ModelConfig>;
  state: 'pending' | 'running' | 'completed' | 'failed' | 'skipped';
  placement?: Placement;
  checkpointId?: string;
  backend?: string;
  metrics?: TrainModelResult['metrics'];
  bestEpoch?: number;
  epochsRun?: number;
  resumedFromEpoch?: number | null;
  error?: string;
}

export interface HyperparameterSearchResult {
  /** The trial with the best validation NDCG@10. */
  best: TrialStatus;
  trials: TrialStatus[];
}

/** The trials of a running or finished search. */
export const trialsQuery = defineQuery<TrialStatus[]>('trials');

const seededRandom = mulberry32;

/** The trial configurations: a seeded random draw, or the first points of the grid. Deterministic. */
export function trialConfigs(
  space: SearchSpace,
  trials: number,
  seed: number,
  mode: 'random' | 'grid',
): Array<Partial<ModelConfig>> {
  const keys = (Object.keys(space) as Array<keyof ModelConfig>).sort();
  for (const k of keys)
    if (!space[k]?.length) throw ApplicationFailure.nonRetryable(`space.${k} has no values`, 'InvalidInput');
  const out: Array<Partial<ModelConfig>> = [];
  if (mode === 'grid') {
    for (let t = 0; t < trials; t++) {
      let rest = t;
      const c: Partial<ModelConfig> = {};
      for (const k of keys) {
        const values = space[k] ?? [];
        c[k] = values[rest % values.length];
        rest = Math.floor(rest / values.length);
      }
      out.push(c);
    }
    return out;
  }
  const rand = seededRandom(seed);
  for (let t = 0; t < trials; t++) {
    const c: Partial<ModelConfig> = {};
    for (const k of keys) {
      const values = space[k] ?? [];
      c[k] = values[Math.floor(rand() * values.length)];
    }
    out.push(c);
  }
  return out;
}

/**
 * Hyperparameter search: `trials` training runs (`trainModel` on `recflow-gpu`, falling back to `recflow-cpu` when no
 * GPU worker starts one in time), at most `maxParallel` at once, within an optional time budget. The best trial is
 * the one with the highest validation NDCG@10. The `trials` query shows every trial's state while it runs.
 */
export async function hyperparameterSearchWorkflow(
  input: HyperparameterSearchInput,
): Promise<HyperparameterSearchResult> {
  if (!Number.isInteger(input.trials) || input.trials < 1)
    throw ApplicationFailure.nonRetryable(`trials = ${input.trials}: expected an integer >= 1`, 'InvalidInput');
  const maxParallel = Math.max(1, input.maxParallel ?? 2);
  const configs = trialConfigs(input.space ?? DEFAULT_SEARCH_SPACE, input.trials, input.seed, input.mode ?? 'random');
  const trials: TrialStatus[] = configs.map((config, trial) => ({ trial, config, state: 'pending' }));
  setHandler(trialsQuery, () => trials);
  const started = Date.now();

  const runTrial = async (t: TrialStatus): Promise<void> => {
    if (input.budgetSeconds !== undefined && (Date.now() - started) / 1000 > input.budgetSeconds) {
      t.state = 'skipped';
      t.error = `time budget of ${input.budgetSeconds} s spent`;
      return;
    }
    t.state = 'running';
    try {
      const { result, placement } = await onGpuOrCpu('trainModel', (taskQueue) =>
        proxyActivities<RecflowActivities>({
          taskQueue,
          scheduleToStartTimeout: input.gpuScheduleToStartTimeout ?? '30 seconds',
          startToCloseTimeout: '6 hours',
          heartbeatTimeout: input.heartbeatTimeout ?? '1 minute',
          retry: { maximumAttempts: 5, initialInterval: '1 second', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
        }).trainModel({
          ...(input.kind ? { kind: input.kind } : {}),
          datasetId: input.datasetId,
          config: { ...input.baseConfig, ...t.config },
          seed: input.seed + t.trial,
          label: `trial-${t.trial}`,
          maxValidationUsers: input.maxValidationUsers,
        }),
      );
      Object.assign(t, {
        state: 'completed',
        placement,
        checkpointId: result.checkpoint.id,
        backend: result.backend,
        metrics: result.metrics,
        bestEpoch: result.bestEpoch,
        epochsRun: result.epochsRun,
        resumedFromEpoch: result.resumedFromEpoch,
      });
      log.info('trial done', { trial: t.trial, ndcg10: result.metrics.ndcg10, taskQueue: placement.taskQueue });
    } catch (err) {
      t.state = 'failed';
      const cause = (err as Error & { cause?: Error }).cause;
      t.error = cause?.message ?? (err as Error).message;
      log.warn('trial failed', { trial: t.trial, error: t.error });
    }
  };

  // A pool of `maxParallel` runners taking the next pending trial.
  let next = 0;
  const runners: Array<Promise<void>> = [];
  for (let r = 0; r < Math.min(maxParallel, trials.length); r++) {
    runners.push(
      (async () => {
        while (next < trials.length) {
          const t = trials[next++];
          if (!t) break;
          await runTrial(t);
        }
      })(),
    );
  }
  await Promise.all(runners);

  const done = trials.filter((t) => t.state === 'completed');
  const best = done.reduce<TrialStatus | undefined>(
    (b, t) => (!b || (t.metrics?.ndcg10 ?? -1) > (b.metrics?.ndcg10 ?? -1) ? t : b),
    undefined,
  );
  if (!best)
    throw ApplicationFailure.nonRetryable(
      `every trial failed: ${trials.map((t) => `#${t.trial}: ${t.error ?? t.state}`).join('; ')}`,
      'TrainingFailed',
    );
  return { best, trials };
}
