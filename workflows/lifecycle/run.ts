/**
 * One lifecycle run's state and the few things every stage does: the `status` the query returns, the stage and its
 * search attribute, a record per activity, the `abort`/`promote` signals, and the end of the run (the outcome table
 * of lib/lifecycle/outcomes.ts applied in one place, the report written). The stages (./stages.ts), the approval
 * gate (./approval.ts) and the rollout (./canary.ts) work on it.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  isCancellation,
  log,
  metricMeter,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { DEFAULT_MODEL_NAME, MODEL_NAME_SA, OUTCOME_SA, STAGE_SA } from '../../lib/constants';
import { ErrorType } from '../../lib/errors';
import type { RunKind } from '../../lib/kinds';
import { checkLifecycleInput } from '../../lib/lifecycle/input';
import {
  abortSignal,
  parseActorRequest,
  promoteSignal,
  senderOf,
  statusQuery,
  type ActorRequest,
} from '../../lib/lifecycle/messages';
import { outcomeEffect, type EndPhase } from '../../lib/lifecycle/outcomes';
import type { RolloutStep } from '../../lib/lifecycle/steps';
import type {
  LifecycleInput,
  LifecycleOutcome,
  LifecycleResult,
  LifecycleStage,
  LifecycleStatus,
  StepError,
  StepRecord,
} from '../../lib/lifecycle/types';
import { quick } from './activities';

/** Thrown between steps when `abort` arrived before the review: the run ends as `aborted`. */
export class AbortRequested extends Error {
  constructor(readonly by: ActorRequest) {
    super(`aborted by ${by.actor}`);
    this.name = 'AbortRequested';
  }
}

/** The root cause of a failure: the innermost `ApplicationFailure`'s type and message (never a wrapper's). */
export function rootCause(err: unknown): StepError {
  let e: unknown = err;
  let found: ApplicationFailure | undefined;
  for (let depth = 0; e && depth < 10; depth++) {
    if (e instanceof ApplicationFailure) found = e;
    e = e instanceof ActivityFailure || e instanceof ChildWorkflowFailure || e instanceof Error ? e.cause : undefined;
  }
  if (found) return { type: found.type ?? 'Error', message: found.message, nonRetryable: found.nonRetryable === true };
  const message = err instanceof Error ? err.message : String(err);
  return { type: err instanceof Error ? err.name : 'Error', message, nonRetryable: false };
}

export class LifecycleRun {
  readonly status: LifecycleStatus;
  readonly input: LifecycleInput;
  /** The run's kind: `auto` until training chose one (then the chosen kind). */
  kind: RunKind;
  readonly modelName: string;
  readonly rolloutSteps: RolloutStep[];
  readonly workflowId: string;
  /** Where the run is, for the outcome table. */
  phase: EndPhase = 'before-register';
  /** The champion when the run started (`@champion`). */
  champion: { version: number | null; bundleId: string | null; datasetId: string | null } = {
    version: null,
    bundleId: null,
    datasetId: null,
  };
  private abortRequest: ActorRequest | undefined;
  private promoteRequest: ActorRequest | undefined;

  /**
   * Check the input (a bad one fails the run at once, non-retryable, naming every problem) and install the status
   * query and the abort/promote handlers.
   */
  constructor(raw: LifecycleInput) {
    const info = workflowInfo();
    this.workflowId = info.workflowId;
    const checked = checkLifecycleInput(raw);
    const input: LifecycleInput = checked.ok ? checked.value.input : {};
    this.input = input;
    this.kind = checked.ok ? checked.value.kind : 'two-tower';
    this.rolloutSteps = checked.ok ? checked.value.steps : [];
    this.modelName = input.modelName ?? DEFAULT_MODEL_NAME;
    this.status = {
      workflowId: info.workflowId,
      modelName: this.modelName,
      kind: this.kind,
      requestedBy: input.requestedBy ?? 'unknown',
      stage: 'starting',
      steps: [],
      approval: { state: 'not_requested', refused: [] },
    };
    setHandler(statusQuery, () => this.status);
    setHandler(abortSignal, (raw: unknown) => {
      const p = parseActorRequest(raw, 'abort');
      if (!p.ok) return this.refuseSignal('abort', raw, p.error);
      this.abortRequest ??= p.value;
    });
    setHandler(promoteSignal, (raw: unknown) => {
      const p = parseActorRequest(raw, 'promote');
      if (!p.ok) return this.refuseSignal('promote', raw, p.error);
      this.promoteRequest = p.value;
    });
    upsertSearchAttributes([{ key: MODEL_NAME_SA, value: this.modelName }]);
    if (!checked.ok) {
      this.status.stage = 'done';
      this.status.outcome = 'failed';
      this.status.reason = `invalid input: ${checked.errors.join('; ')}`;
      this.status.error = { type: ErrorType.InvalidInput, message: this.status.reason, nonRetryable: true };
      upsertSearchAttributes([
        { key: STAGE_SA, value: 'done' },
        { key: OUTCOME_SA, value: 'failed' },
      ]);
      throw ApplicationFailure.nonRetryable(this.status.reason, ErrorType.InvalidInput);
    }
  }

  private refuseSignal(signal: string, raw: unknown, reason: string): void {
    const at = new Date().toISOString();
    this.status.approval.refused.push({
      reviewer: senderOf(raw, 'actor'),
      reason: `${signal}: ${reason}`,
      at,
      via: 'signal',
    });
    log.warn('signal refused', { signal, reason });
  }

  /** The `abort` request, if one arrived. */
  get aborted(): ActorRequest | undefined {
    return this.abortRequest;
  }

  /** The latest `promote` request; {@link takePromote} consumes it. */
  get promoted(): ActorRequest | undefined {
    return this.promoteRequest;
  }

  /** Consume a `promote` (each resumes one pause). */
  takePromote(): ActorRequest | undefined {
    const p = this.promoteRequest;
    this.promoteRequest = undefined;
    return p;
  }

  setStage(stage: LifecycleStage): void {
    if (this.status.stage === stage) return;
    this.status.stage = stage;
    upsertSearchAttributes([{ key: STAGE_SA, value: stage }]);
  }

  /**
   * Run one activity (or child workflow) as a recorded step of `stage`: its record names the activity, holds a
   * one-line detail on success and the root cause on failure. An `abort` that arrived before the review stops the
   * run before the step starts.
   */
  async step<T>(name: string, run: () => Promise<T>, detail?: (r: T) => string): Promise<T> {
    if (this.abortRequest && this.phase === 'before-register') throw new AbortRequested(this.abortRequest);
    const rec: StepRecord = { name, stage: this.status.stage, state: 'running', startedAt: new Date().toISOString() };
    this.status.steps.push(rec);
    try {
      const r = await run();
      rec.state = 'done';
      rec.endedAt = new Date().toISOString();
      if (detail) rec.detail = detail(r);
      return r;
    } catch (err) {
      rec.state = 'failed';
      rec.endedAt = new Date().toISOString();
      if (!isCancellation(err)) {
        rec.error = rootCause(err);
        rec.detail = rec.error.message;
      }
      throw err;
    }
  }

  /**
   * End the run: apply the outcome's registry effects (status, aliases; the rollout has already put the fleet
   * back where the table says so), set the search attributes, count it, write the report.
   */
  async end(outcome: LifecycleOutcome, reason: string): Promise<LifecycleResult> {
    const effect = outcomeEffect(outcome, this.phase);
    const version = this.status.registered?.version;
    const actor = this.workflowId;
    const registry = async () => {
      if (version === undefined) return;
      if (effect.champion) {
        await quick.setAlias({ model: this.modelName, alias: 'champion', version, actor });
      }
      if (effect.clearCanary) await quick.setAlias({ model: this.modelName, alias: 'canary', version: null, actor });
      if (effect.status)
        await quick.setModelStatus({ model: this.modelName, version, status: effect.status, actor, reason });
      if (effect.champion && this.champion.version !== null && this.champion.version !== version) {
        await quick
          .setModelStatus({
            model: this.modelName,
            version: this.champion.version,
            status: 'archived',
            actor,
            reason: `replaced by ${this.status.registered?.ref}`,
          })
          .catch((e: unknown) => log.warn('could not archive the previous champion', { error: String(e) }));
      }
    };
    // The registry must follow the outcome even when the run is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      try {
        await registry();
      } catch (err) {
        log.error('registry update at the end of the run failed', { outcome, error: String(err) });
        if (outcome !== 'failed' && outcome !== 'cancelled') throw err;
      }
      this.status.outcome = outcome;
      this.status.reason = reason;
      this.status.stage = 'done';
      upsertSearchAttributes([
        { key: STAGE_SA, value: 'done' },
        { key: OUTCOME_SA, value: outcome },
      ]);
      log.info('lifecycle finished', { outcome, reason, kind: this.kind });
      metricMeter.createCounter('recflow_lifecycle_outcomes', 'runs', 'lifecycle runs by outcome').add(1, {
        model: this.modelName,
        kind: this.kind,
        outcome,
      });
      // The report is for people: its failure never changes the outcome.
      try {
        const report = await quick.writeRunReport({ status: this.status });
        this.status.reportId = report.report.id;
        this.status.reportPath = report.html;
      } catch (err) {
        log.warn('run report failed', { error: String(err) });
      }
    });
    return { outcome, reason, version: this.status.registered?.ref, status: this.status };
  }

  /**
   * Run the stages; turn an early abort into the `aborted` outcome, a cancellation into `cancelled`, and a failure
   * into `failed` with its root cause in the status, then fail the run with that cause (type and message).
   */
  async execute(body: () => Promise<LifecycleResult>): Promise<LifecycleResult> {
    try {
      return await body();
    } catch (err) {
      if (err instanceof AbortRequested) {
        const r = err.by.reason ? `: ${err.by.reason}` : '';
        return this.end('aborted', `aborted by ${err.by.actor} before the review${r}`);
      }
      if (isCancellation(err)) {
        await this.end('cancelled', 'the run was cancelled');
        throw err;
      }
      const cause = rootCause(err);
      const failed = this.status.steps.filter((s) => s.state === 'failed').at(-1);
      this.status.error = { ...cause, ...(failed ? { step: failed.name } : {}) };
      await this.end('failed', `${failed ? `${failed.name}: ` : ''}${cause.message}`);
      throw ApplicationFailure.create({
        message: this.status.reason ?? cause.message,
        type: cause.type,
        nonRetryable: true,
        cause: err instanceof Error ? err : undefined,
      });
    }
  }
}
