/**
 * FROZEN: the input, status and messages of the first version of `modelLifecycleWorkflow`, kept with
 * ./legacy.ts so runs started before `lifecycle-v2` replay unchanged. Do not edit; delete with legacy.ts.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CanaryAnalysis, CanaryCriteria } from '../../lib/canary/analysis';
import type { GateConfig, GateResult } from '../../lib/eval/gates';
import type { Precision } from '../../lib/bundle';
import type { ModelConfig } from '../../kinds/two-tower/spec';

/** Where a GPU-queue step ran. */
export interface Placement {
  taskQueue: string;
  /** True when no GPU worker took the task in time and it ran on the CPU queue. */
  fellBackToCpu: boolean;
  reason?: string;
}

/** Where the data comes from: a seeded synthetic shop (the default) or a folder of CSV exports. */
export type LifecycleDataSource =
  | { kind: 'synthetic'; seed?: number; users?: number; items?: number; events?: number; dirt?: number }
  | { kind: 'shop'; id: string }
  | { kind: 'dir'; path: string; format?: 'recflow' | 'movielens' };

/** One canary step: route `weight` % of users to the canary, then bake for `bake` before the analysis. */
export interface CanaryStep {
  weight: number;
  /** Duration, e.g. `'5 minutes'` or `'30s'`. */
  bake: string;
}

export const DEFAULT_CANARY_STEPS: CanaryStep[] = [
  { weight: 10, bake: '5 minutes' },
  { weight: 25, bake: '5 minutes' },
  { weight: 50, bake: '5 minutes' },
  { weight: 100, bake: '5 minutes' },
];

export interface LifecycleInput {
  /** Registry model name. @default 'shop-recs' */
  modelName?: string;
  /** Who asked for the run (the four-eyes rule: they cannot approve it). @default 'unknown' */
  requestedBy?: string;
  /** @default { kind: 'synthetic' } */
  data?: LifecycleDataSource;
  train?: {
    /** Hyperparameters (lib/model-spec.ts ModelConfig), partial: the rest are defaults. */
    config?: Partial<ModelConfig>;
    seed?: number;
    /** How long a GPU worker has to pick training up before the CPU queue does. @default '2 minutes' */
    gpuScheduleToStartTimeout?: string;
    /** Hyperparameter search before the final training: N trials, best by validation NDCG@10. */
    search?: { trials: number; maxParallel?: number; seed?: number };
  };
  /** Evaluation gates (lib/eval/gates.ts); defaults to DEFAULT_GATES. */
  gates?: GateConfig;
  approval?: {
    /** Who may approve or reject. Empty or absent: anyone but the requester. */
    reviewers?: string[];
    /** How long the run waits for a decision before it ends as expired. @default '72 hours' */
    timeout?: string;
    /** Approve without a human (demo, tests); recorded as `auto-approve` in the registry. */
    autoApprove?: boolean;
  };
  rollout?: {
    /** @default 'default' */
    fleet?: string;
    /** @default DEFAULT_CANARY_STEPS */
    steps?: CanaryStep[];
    criteria?: Partial<CanaryCriteria>;
    /** Precision the fleet serves. @default 'int8' */
    precision?: Precision;
    /** Extra bake periods granted to an inconclusive step before a human must decide. @default 2 */
    maxExtensions?: number;
    /** After the extensions: wait for `promote`/`abort` (default) or roll back. */
    onInconclusive?: 'wait' | 'rollback';
    /** How long replicas have to apply a new desired state. @default '2 minutes' */
    convergeTimeout?: string;
    /** Drive simulated users at the fleet during each bake (demo, tests). */
    traffic?: { rps: number; users?: number; seed?: number };
    /** Skip the rollout: register and approve only. */
    skip?: boolean;
  };
}

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

export type LifecycleOutcome =
  'promoted' | 'rolled_back' | 'aborted' | 'rejected' | 'expired' | 'gate_failed' | 'approved' | 'failed' | 'cancelled';

export interface StepRecord {
  name: string;
  state: 'running' | 'done' | 'failed';
  startedAt: string;
  endedAt?: string;
  detail?: string;
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
  /** Decisions refused (signals cannot be refused to the sender, so they are listed here). */
  refused: Array<{ reviewer: string; reason: string; at: string }>;
}

export interface CanaryStepState extends CanaryStep {
  state: 'pending' | 'baking' | 'analyzing' | 'passed' | 'failed' | 'inconclusive' | 'promoted_by_human';
  extensions: number;
  analyses: CanaryAnalysis[];
}

export interface LifecycleStatus {
  workflowId: string;
  modelName: string;
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
  rollout?: {
    fleet: string;
    lock: 'waiting' | 'held' | 'released';
    currentStep: number;
    steps: CanaryStepState[];
    previousStable?: string | null;
    firstDeployment?: boolean;
  };
  outcome?: LifecycleOutcome;
  reason?: string;
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

/** Approve the run's candidate (validated: allow-list, four-eyes, only while awaiting approval). Idempotent. */
export const approveUpdate = defineUpdate<ApprovalState, [ApprovalDecision]>('approve');
/** Reject the candidate; a comment is required. Idempotent. */
export const rejectUpdate = defineUpdate<ApprovalState, [ApprovalDecision]>('reject');
/** Signal twins of the updates for tools that can only signal; refused decisions are listed in the status. */
export const approveSignal = defineSignal<[ApprovalDecision]>('approveSignal');
export const rejectSignal = defineSignal<[ApprovalDecision]>('rejectSignal');
/** Abort the canary: immediate rollback, no analysis. */
export const abortSignal = defineSignal<[{ actor: string; reason?: string }]>('abort');
/** A human's go for an inconclusive canary: promote now. */
export const promoteSignal = defineSignal<[{ actor: string; reason?: string }]>('promote');
export const statusQuery = defineQuery<LifecycleStatus>('status');
