/**
 * Input, status and result of `modelLifecycleWorkflow`. Plain JSON throughout, so
 * `temporal workflow start --input '...'` works; the workflow, the CLI, the report and the tests share these types.
 * The messages (updates, signals, query) are in ./messages.ts, the rollout steps in ./steps.ts.
 */
import type { Duration } from '@temporalio/common';
import type { CanaryAnalysis, CanaryCriteria } from '../canary/analysis';
import type { SequentialCriteria } from '../canary/analyze';
import type { GateConfig, GateResult } from '../eval/gates';
import type { Precision } from '../bundle';
import type { KindName } from '../kinds';
import type { LegacyCanaryStep, RolloutStep } from './steps';

/** Where a GPU-queue step ran. */
export interface Placement {
  taskQueue: string;
  /** True when no GPU worker took the task in time and it ran on the CPU queue. */
  fellBackToCpu: boolean;
  reason?: string;
}

/** Where the data comes from: a seeded synthetic shop (the default), a shop artifact, or a folder of exports. */
export type LifecycleDataSource =
  | { kind: 'synthetic'; seed?: number; users?: number; items?: number; events?: number; dirt?: number }
  | { kind: 'shop'; id: string }
  | { kind: 'dir'; path: string; format?: 'recflow' | 'movielens' };

export interface LifecycleInput {
  /** Registry model name. @default 'shop-recs' */
  modelName?: string;
  /**
   * Model kind to train and ship (lib/kinds.ts), or `auto`: train each of `train.candidates` within `train.budget`
   * and ship the best by validation NDCG@10 (every candidate's metrics are in the status, the lineage and the
   * report). @default 'auto'
   */
  kind?: KindName | 'auto';
  /** Who asked for the run (the four-eyes rule: they cannot approve it). @default 'unknown' */
  requestedBy?: string;
  /** @default { kind: 'synthetic' } */
  data?: LifecycleDataSource;
  train?: {
    /**
     * Hyperparameters of the kind, partial: the rest are the kind's defaults (validated by the kind). With `auto`
     * they are the two-tower's (the first version's meaning); `configs` sets any candidate's.
     */
    config?: Record<string, unknown>;
    /** Per-kind hyperparameters (`{"als": {"factors": 128}}`), over `config` for the two-tower. */
    configs?: Partial<Record<KindName, Record<string, unknown>>>;
    /** `auto`: the kinds to train and choose from. @default AUTO_CANDIDATES */
    candidates?: KindName[];
    /** `auto`: no new candidate starts after this long (the ones done are chosen from). @default '2 hours' */
    budget?: Duration;
    seed?: number;
    /** How long a GPU worker has to pick training up before the CPU queue does. @default '2 minutes' */
    gpuScheduleToStartTimeout?: Duration;
    /** How soon a dead training worker is noticed (the retry resumes from the last checkpoint). @default '1 minute' */
    heartbeatTimeout?: Duration;
    /** Hyperparameter search before the final training: N trials, best by validation NDCG@10. */
    search?: { trials: number; maxParallel?: number; seed?: number };
  };
  /** Evaluation gates (lib/eval/gates.ts); defaults to DEFAULT_GATES. */
  gates?: GateConfig;
  approval?: {
    /** Who may approve or reject. Empty or absent: anyone but the requester. */
    reviewers?: string[];
    /** How long the run waits for a decision before it ends as expired. @default '72 hours' */
    timeout?: Duration;
    /** Approve without a human (demo, tests); recorded as `auto-approve` in the registry. */
    autoApprove?: boolean;
  };
  rollout?: {
    /** @default 'default' */
    fleet?: string;
    /**
     * The rollout as data (lib/lifecycle/steps.ts): `{setWeight}`, `{analysis}`, `{pause}`. The first version's
     * `{weight, bake}` steps are still accepted (each is a setWeight followed by an analysis of that length).
     * @default DEFAULT_ROLLOUT_STEPS
     */
    steps?: Array<RolloutStep | LegacyCanaryStep>;
    /**
     * Thresholds of the analysis (lib/canary/analyze.ts `SequentialCriteria`; the first version's per-window
     * criteria apply where the replicas report no per-user buckets).
     */
    criteria?: Partial<CanaryCriteria & SequentialCriteria>;
    /**
     * Measure stable over a window before the first step (everyone on stable, the rollout's user buckets): the CTR
     * comparison is adjusted for which users landed on which side, which buys power when users are few.
     * `false` skips it. @default the first analysis step's duration
     */
    // eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents -- Duration is ms's StringValue | number; the linter resolves ms's template type to any
    preWindow?: Duration | false;
    /** How long after a window ends its clicks are still counted (feedback arrives late). @default '2 seconds' */
    feedbackDelay?: Duration;
    /** Precision the fleet serves. @default 'int8' */
    precision?: Precision;
    /** Extra bake periods granted to an inconclusive analysis before a human must decide. @default 2 */
    maxExtensions?: number;
    /** After the extensions: wait for `promote`/`abort` (default) or roll back. */
    onInconclusive?: 'wait' | 'rollback';
    /** How long replicas have to apply a new desired state. @default '2 minutes' */
    convergeTimeout?: Duration;
    /** Drive simulated users at the fleet during each analysis window (demo, tests). */
    traffic?: { rps: number; users?: number; seed?: number };
    /** Skip the rollout: register and approve only. */
    skip?: boolean;
    /**
     * Canary a candidate even when its bundle equals the champion's (A/A tests, game days with fault injection);
     * otherwise such a run ends `unchanged` and registers nothing. @default false
     */
    allowUnchanged?: boolean;
  };
}

/**
 * Where a run is. Values are search attribute values (`RecflowStage`): renaming one breaks saved queries.
 * The data, train, export, evaluate and register stages each run the activities named in ./stages.ts.
 */
export type LifecycleStage =
  | 'starting'
  | 'data'
  | 'train'
  | 'export'
  | 'evaluate'
  | 'register'
  | 'awaiting_approval'
  | 'waiting_for_fleet'
  | 'canary'
  | 'awaiting_decision'
  | 'promoting'
  | 'rolling_back'
  | 'done';

/** How a run ended (`RecflowOutcome`). */
export type LifecycleOutcome =
  | 'promoted'
  | 'rolled_back'
  | 'aborted'
  | 'rejected'
  | 'expired'
  | 'gate_failed'
  | 'unchanged'
  | 'approved'
  | 'failed'
  | 'cancelled';

/** The root cause of a failed step: the `ApplicationFailure`'s type and message, never a wrapper's. */
export interface StepError {
  type: string;
  message: string;
  nonRetryable: boolean;
}

/** One activity (or child workflow) the run called, by its wire name. */
export interface StepRecord {
  /** The activity's name (`trainModel`, `exportModel`...): one name per step in status, report and history. */
  name: string;
  stage: LifecycleStage;
  state: 'running' | 'done' | 'failed';
  startedAt: string;
  endedAt?: string;
  detail?: string;
  error?: StepError;
}

export interface ApprovalDecision {
  reviewer: string;
  comment?: string;
}

export interface ApprovalState {
  state: 'not_requested' | 'waiting' | 'approved' | 'rejected' | 'expired' | 'skipped';
  deadline?: string;
  reviewer?: string;
  comment?: string;
  via?: 'update' | 'signal' | 'auto';
  decidedAt?: string;
  /** Decisions refused (signals cannot be refused to the sender, so they are listed here), with the reason. */
  refused: Array<{ reviewer: string; reason: string; at: string; via?: 'update' | 'signal' }>;
}

/** One rollout step as the status shows it. */
export type RolloutStepState = RolloutStep & {
  state: 'pending' | 'running' | 'paused' | 'passed' | 'failed' | 'inconclusive' | 'promoted_by_human' | 'skipped';
  /** Analyses only: extra windows granted after an inconclusive one, and every window's result. */
  extensions?: number;
  analyses?: CanaryAnalysis[];
  startedAt?: string;
  endedAt?: string;
};

/** Why a rollout is paused (Argo Rollouts' pause conditions). */
export interface PauseCondition {
  reason: 'PausedStep' | 'InconclusiveAnalysis';
  since: string;
  /** A timed pause resumes by itself at this time; otherwise a human `promote` (or `abort`) resumes it. */
  until?: string;
}

export interface RolloutStatus {
  fleet: string;
  lock: 'waiting' | 'held' | 'released';
  /** Index into `steps` of the step in progress (-1 before the first). */
  currentStepIndex: number;
  /** Percent of users the canary serves now. */
  weight: number;
  steps: RolloutStepState[];
  pause?: PauseCondition;
  previousStable?: string | null;
  firstDeployment?: boolean;
  /** Salt of the sticky user hash for this rollout (a fresh split per rollout). */
  salt?: string;
}

/** One candidate of an `auto` run (or the one kind of the run). */
export interface CandidateRecord {
  kind: KindName;
  state: 'trained' | 'skipped' | 'failed';
  checkpointId?: string;
  /** Validation metrics of its best epoch (NDCG@10, HR@10, loss). */
  metrics?: Record<string, number>;
  backend?: string;
  seconds?: number;
  /** Why it was skipped or failed. */
  reason?: string;
  chosen?: boolean;
}

export interface LifecycleStatus {
  workflowId: string;
  modelName: string;
  /** The kind that ships (for `auto`, the chosen candidate once training is done). */
  kind: KindName | 'auto';
  /** Every kind trained (or skipped) and how it scored on validation; the chosen one marked. */
  candidates?: CandidateRecord[];
  requestedBy: string;
  stage: LifecycleStage;
  steps: StepRecord[];
  data?: { shopId?: string; datasetId: string; rows?: Record<string, number>; drift?: Record<string, unknown> };
  training?: {
    checkpointId: string;
    backend: string;
    placement: Placement;
    metrics: Record<string, number>;
    epochsRun?: number;
    resumedFromEpoch?: number | null;
  };
  search?: { workflowId: string; trials: number };
  bundle?: { id: string; path: string; sizes?: unknown };
  evaluation?: { id: string; blessed: boolean; gates: GateResult[]; headline: Record<string, number> };
  infra?: { blessed: boolean; p99Ms: number | null; gates: GateResult[] };
  champion?: { version: number | null; bundleId: string | null };
  registered?: { model: string; version: number; ref: string };
  approval: ApprovalState;
  rollout?: RolloutStatus;
  outcome?: LifecycleOutcome;
  reason?: string;
  /** The root cause when the run failed. */
  error?: StepError & { step?: string };
  reportId?: string;
  /** The HTML run report (artifact store path). */
  reportPath?: string;
}

export interface LifecycleResult {
  outcome: LifecycleOutcome;
  reason: string;
  version?: string;
  status: LifecycleStatus;
}
