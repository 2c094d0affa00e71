import { Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { CPU_TASK_QUEUE } from '../lib/constants';
import {
  analyzeWindow,
  type CanaryAnalysis,
  type CanaryCriteria,
  type VariantWindowStats,
  type WindowCoverage,
} from '../lib/canary/analysis';
import { ErrorType, RecflowError } from '../lib/errors';
import { DEFAULT_FLEET } from '../lib/fleet/types';
import {
  acquireFleetLockSignal,
  FLEET_LOCK_WORKFLOW_TYPE,
  fleetLockWorkflowId,
  type FleetLockInput,
  type FleetLockRequest,
} from '../lib/fleet/lock';
import {
  analyzeRolloutLook,
  type LatencySlice,
  type RolloutLookResult,
  type RolloutTestState,
  type SequentialCriteria,
} from '../lib/canary/analyze';
import type { PeriodBuckets, VariantBuckets } from '../lib/canary/buckets';
import type { ActivityDeps } from './deps';

/** One look of a rollout's sequential analysis (lib/canary/analyze.ts); the workflow carries `state` between looks. */
export interface AnalyzeRolloutInput {
  /** Per step that ran (the last is the current one): its own per-user-bucket counts, summed over replicas. */
  periods: PeriodBuckets[];
  /** Stable's counts over the window before the first step (everyone on stable), when measured. */
  pre?: VariantBuckets;
  /** The previous look's state; absent at the rollout's first look. */
  state?: RolloutTestState;
  /** This look's latency, slice by slice. */
  latency?: LatencySlice[];
  coverage?: WindowCoverage;
  /** Requests dropped, timed out or shed during the look's window. */
  droppedRequests?: number;
  criteria?: Partial<SequentialCriteria>;
  /** For the log line. */
  step?: number;
}

export interface AnalyzeCanaryInput {
  stable: VariantWindowStats;
  canary: VariantWindowStats;
  criteria?: Partial<CanaryCriteria>;
  /** Which replicas the window covers (readFleetStats); a window missing one is inconclusive. */
  coverage?: WindowCoverage;
  /** `stable` was measured in an earlier window (the 100 % step): latency is held to the SLO only. */
  stableFromEarlierWindow?: boolean;
  /** For the log line: which rollout step this window belongs to. */
  step?: number;
}

export interface IsWorkflowRunningResult {
  running: boolean;
  /** RUNNING, COMPLETED, TERMINATED, ... or NOT_FOUND. */
  status: string;
}

export interface RequestFleetLockInput {
  fleet?: string;
  /** What asks; defaults to the calling workflow. */
  workflowId?: string;
  purpose?: string;
}

/** Rollout activities: canary analysis and the per-fleet rollout lock. */
export function createRolloutActivities(_deps: ActivityDeps) {
  return {
    /** Whether a workflow (its latest run) is still running: the fleet lock's check on a silent holder. */
    async isWorkflowRunning(input: { workflowId: string }): Promise<IsWorkflowRunningResult> {
      try {
        const d = await Context.current().client.workflow.getHandle(input.workflowId).describe();
        return { running: d.status.name === 'RUNNING', status: d.status.name };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { running: false, status: 'NOT_FOUND' };
        throw err;
      }
    },

    /**
     * One look of the rollout-wide sequential analysis (users as the unit, the repeated looks controlled):
     * pass, fail or inconclusive per check, and the state for the next look.
     */
    async analyzeRollout(input: AnalyzeRolloutInput): Promise<RolloutLookResult> {
      const { step, ...look } = input;
      const result = analyzeRolloutLook(look);
      log.info('canary analysis', { step, verdict: result.analysis.verdict, summary: result.analysis.summary });
      return result;
    },

    /** Compare canary with stable over one bake window (lib/canary/analysis.ts): pass, fail or inconclusive. */
    async analyzeCanary(input: AnalyzeCanaryInput): Promise<CanaryAnalysis> {
      const result = analyzeWindow(input.stable, input.canary, input.criteria, {
        coverage: input.coverage,
        stableFromEarlierWindow: input.stableFromEarlierWindow,
      });
      log.info('canary analysis', { step: input.step, verdict: result.verdict, summary: result.summary });
      return result;
    },

    /**
     * Ask for the fleet's rollout lock: signal-with-start of `fleetLockWorkflow`. The lock answers the calling
     * workflow with the `fleetLockGranted` signal when it is its turn. Idempotent (the lock ignores a repeat).
     */
    async requestFleetLock(input: RequestFleetLockInput): Promise<{ lockWorkflowId: string }> {
      const ctx = Context.current();
      const fleet = input.fleet ?? DEFAULT_FLEET;
      const workflowId = input.workflowId ?? ctx.info.workflowExecution?.workflowId;
      if (!workflowId)
        throw new RecflowError(
          ErrorType.InvalidInput,
          'requestFleetLock: no workflowId and not called from a workflow',
        );
      const lockWorkflowId = fleetLockWorkflowId(fleet);
      const request: FleetLockRequest = { workflowId, purpose: input.purpose, requestedAt: new Date().toISOString() };
      await ctx.client.workflow.signalWithStart(FLEET_LOCK_WORKFLOW_TYPE, {
        workflowId: lockWorkflowId,
        taskQueue: CPU_TASK_QUEUE,
        args: [{ fleet } satisfies FleetLockInput],
        signal: acquireFleetLockSignal,
        signalArgs: [request],
      });
      return { lockWorkflowId };
    },
  };
}
