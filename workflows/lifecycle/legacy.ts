/**
 * FROZEN: the first version of `modelLifecycleWorkflow`, kept byte-for-byte in behaviour so that runs started
 * before the `lifecycle-v2` patch (./index.ts) replay and finish unchanged. Do not edit. Once no run started before
 * v2 is open (`temporal workflow list --query 'WorkflowType="modelLifecycleWorkflow" AND ExecutionStatus="Running"'`
 * shows none older than the v2 deployment), replace `patched('lifecycle-v2')` with `deprecatePatch` and delete this
 * file and ./legacy-types.ts.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  executeChild,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  metricMeter,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { RecflowActivities } from '../../activities';
import { CPU_TASK_QUEUE, DEFAULT_MODEL_NAME, OUTCOME_SA, STAGE_SA, MODEL_NAME_SA } from '../../lib/constants';
import { NON_RETRYABLE_ERROR_TYPES } from '../../lib/errors';
import type { SlotState } from '../../lib/fleet/types';
import { fleetLockGrantedSignal, fleetLockWorkflowId, releaseFleetLockSignal } from '../../lib/fleet/lock';
import { onGpuOrCpu } from '../gpu-fallback';
import type { hyperparameterSearchWorkflow } from '../hyperparameter-search';
import {
  abortSignal,
  approveSignal,
  approveUpdate,
  DEFAULT_CANARY_STEPS,
  promoteSignal,
  rejectSignal,
  rejectUpdate,
  statusQuery,
  type ApprovalDecision,
  type CanaryStepState,
  type LifecycleInput,
  type LifecycleOutcome,
  type LifecycleResult,
  type LifecycleStage,
  type LifecycleStatus,
} from './legacy-types';
import { msToNumber as parseDurationMs } from '@temporalio/common/lib/time';

const retry = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 5,
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
};

function acts(options: Partial<ActivityOptions>) {
  return proxyActivities<RecflowActivities>({
    taskQueue: CPU_TASK_QUEUE,
    startToCloseTimeout: '10 minutes',
    retry,
    ...options,
  });
}

const quick = acts({ startToCloseTimeout: '1 minute' });
const data = acts({ startToCloseTimeout: '2 hours', heartbeatTimeout: '2 minutes' });
const heavy = acts({ startToCloseTimeout: '1 hour', heartbeatTimeout: '2 minutes' });

/** Thrown inside the workflow when `abort` arrives before the review: ends the run as `aborted`. */
class AbortedBeforeReview extends Error {
  constructor(readonly by: { actor: string; reason?: string }) {
    super(`aborted by ${by.actor}`);
  }
}

/**
 * The whole life of one candidate model: data -> validation and preprocessing -> (hyperparameter search) -> training
 * on the GPU queue with CPU fallback -> ONNX export with int8 -> evaluation and gates against the champion ->
 * registration -> a reviewer's approval -> canary rollout with automated analysis -> promotion, or rollback.
 *
 * Every step is an idempotent activity keyed by its inputs' hashes, so a re-run with the same input reuses finished
 * work. The `status` query says where the run is; `approve`/`reject` updates (and signal twins) carry the review;
 * `abort` and `promote` signals steer the canary.
 */
export async function legacyLifecycleWorkflow(input: LifecycleInput = {}): Promise<LifecycleResult> {
  const info = workflowInfo();
  const modelName = input.modelName ?? DEFAULT_MODEL_NAME;
  const requestedBy = input.requestedBy ?? 'unknown';
  const reviewers = input.approval?.reviewers ?? [];
  const status: LifecycleStatus = {
    workflowId: info.workflowId,
    modelName,
    requestedBy,
    stage: 'starting',
    steps: [],
    approval: { state: 'not_requested', refused: [] },
  };
  let aborted: { actor: string; reason?: string } | undefined;
  let promotedByHuman: { actor: string; reason?: string } | undefined;
  // Read through a function: TypeScript cannot see that handlers change `aborted` between awaits.
  const currentAbort = () => aborted;
  const earlySignals: Array<{ d: ApprovalDecision; kind: 'approve' | 'reject' }> = [];

  setHandler(statusQuery, () => status);

  // ---- approval handlers ------------------------------------------------------------------------------------------
  const refusal = (d: ApprovalDecision, kind: 'approve' | 'reject'): string | undefined => {
    if (!d || typeof d.reviewer !== 'string' || d.reviewer.trim() === '') return 'a reviewer name is required';
    const a = status.approval;
    // Idempotent: the same decision by the same reviewer is accepted again (and changes nothing).
    const same = (a.state === 'approved' && kind === 'approve') || (a.state === 'rejected' && kind === 'reject');
    if (same && a.reviewer === d.reviewer) return undefined;
    if (a.state !== 'waiting')
      return `the run is not awaiting approval (approval is ${a.state}, stage ${status.stage})`;
    if (d.reviewer === requestedBy) return `four-eyes rule: ${d.reviewer} requested this run and cannot review it`;
    if (reviewers.length > 0 && !reviewers.includes(d.reviewer))
      return `${d.reviewer} is not a reviewer of ${modelName} (reviewers: ${reviewers.join(', ')})`;
    if (kind === 'reject' && !d.comment?.trim()) return 'a rejection needs a comment saying why';
    return undefined;
  };
  const decide = (d: ApprovalDecision, kind: 'approve' | 'reject', via: 'update' | 'signal') => {
    if (status.approval.state !== 'waiting') return status.approval; // idempotent repeat
    status.approval = {
      ...status.approval,
      state: kind === 'approve' ? 'approved' : 'rejected',
      reviewer: d.reviewer,
      comment: d.comment,
      via,
      decidedAt: new Date().toISOString(),
    };
    log.info('review decision', { decision: status.approval.state, reviewer: d.reviewer, via });
    return status.approval;
  };
  for (const [update, kind] of [
    [approveUpdate, 'approve'],
    [rejectUpdate, 'reject'],
  ] as const) {
    setHandler(update, (d) => decide(d, kind, 'update'), {
      validator: (d) => {
        const why = refusal(d, kind);
        if (why) throw new Error(why);
      },
    });
  }
  for (const [signal, kind] of [
    [approveSignal, 'approve'],
    [rejectSignal, 'reject'],
  ] as const) {
    setHandler(signal, (d) => {
      // A signal sent before the review opens (e.g. right after `temporal workflow start`) waits for it.
      if (status.approval.state === 'not_requested') {
        earlySignals.push({ d, kind });
        return;
      }
      const why = refusal(d, kind);
      if (why) {
        status.approval.refused.push({ reviewer: String(d?.reviewer), reason: why, at: new Date().toISOString() });
        log.warn('review refused', { reviewer: d?.reviewer, reason: why });
        return;
      }
      decide(d, kind, 'signal');
    });
  }
  setHandler(abortSignal, (a) => {
    aborted ??= a;
  });
  setHandler(promoteSignal, (p) => {
    promotedByHuman ??= p;
  });

  // ---- helpers ----------------------------------------------------------------------------------------------------
  const setStage = (stage: LifecycleStage) => {
    status.stage = stage;
    upsertSearchAttributes([{ key: STAGE_SA, value: stage }]);
  };
  const step = async <T>(name: string, run: () => Promise<T>, detail?: (r: T) => string): Promise<T> => {
    // `abort` before the review: stop before the next step (the rollout handles abort itself).
    if (aborted && status.approval.state === 'not_requested') throw new AbortedBeforeReview(aborted);
    const rec = {
      name,
      state: 'running',
      startedAt: new Date().toISOString(),
    } as LifecycleStatus['steps'][number];
    status.steps.push(rec);
    try {
      const r = await run();
      rec.state = 'done';
      rec.endedAt = new Date().toISOString();
      if (detail) rec.detail = detail(r);
      return r;
    } catch (err) {
      rec.state = 'failed';
      rec.endedAt = new Date().toISOString();
      rec.detail = err instanceof Error ? err.message : String(err);
      throw err;
    }
  };
  const finish = async (outcome: LifecycleOutcome, reason: string): Promise<LifecycleResult> => {
    status.outcome = outcome;
    status.reason = reason;
    status.stage = 'done';
    upsertSearchAttributes([
      { key: STAGE_SA, value: 'done' },
      { key: OUTCOME_SA, value: outcome },
    ]);
    log.info('lifecycle finished', { outcome, reason });
    metricMeter.createCounter('recflow_lifecycle_outcomes', 'runs', 'lifecycle runs by outcome').add(1, {
      model: modelName,
      outcome,
    });
    // The run report is for people: its failure never changes the outcome.
    try {
      // Cast only: the report reads both status shapes.
      const report = await quick.writeRunReport({ status: status as never });
      status.reportId = report.report.id;
      status.reportPath = report.html;
    } catch (err) {
      log.warn('run report failed', { error: String(err) });
    }
    return { outcome, reason, version: status.registered?.ref, status };
  };

  upsertSearchAttributes([{ key: MODEL_NAME_SA, value: modelName }]);

  try {
    // ---- data ---------------------------------------------------------------------------------------------------
    setStage('data');
    const source = input.data ?? { kind: 'synthetic' as const };
    let shopId: string | undefined;
    let dataSource: { kind: 'shop'; id: string } | { kind: 'dir'; path: string; format?: 'recflow' | 'movielens' };
    if (source.kind === 'synthetic') {
      const { kind: _kind, ...params } = source;
      const shop = await step(
        'generate-shop',
        () => data.generateShop(params),
        (r) => `shop ${r.shop.id}`,
      );
      shopId = shop.shop.id;
      dataSource = { kind: 'shop', id: shopId };
    } else {
      if (source.kind === 'shop') shopId = source.id;
      dataSource = source;
    }
    const champion = await quick.getAlias({ model: modelName, alias: 'champion' });
    status.champion = { version: champion.version, bundleId: champion.bundleId };
    const prepared = await step(
      'prepare-dataset',
      () => data.prepareDataset({ source: dataSource }),
      (r) => `dataset ${r.dataset.id}: ${r.rows.train}/${r.rows.validation}/${r.rows.test} rows`,
    );
    const datasetId = prepared.dataset.id;
    status.data = { shopId, datasetId, rows: prepared.rows };
    if (champion.datasetId && champion.datasetId !== datasetId) {
      const drift = await step('compare-datasets', () =>
        quick.compareDatasets({ baseId: champion.datasetId!, candidateId: datasetId }),
      );
      status.data.drift = { ...drift };
    }

    // ---- training -------------------------------------------------------------------------------------------------
    setStage('train');
    let config = input.train?.config;
    let trainSeed = input.train?.seed;
    const search = input.train?.search;
    if (search && search.trials > 0) {
      const searchId = `${info.workflowId}-search`;
      const searchSeed = search.seed ?? input.train?.seed ?? 0;
      status.search = { workflowId: searchId, trials: search.trials };
      const found = await step(
        'hyperparameter-search',
        () =>
          executeChild<typeof hyperparameterSearchWorkflow>('hyperparameterSearchWorkflow', {
            workflowId: searchId,
            taskQueue: CPU_TASK_QUEUE,
            args: [
              {
                datasetId,
                trials: search.trials,
                maxParallel: search.maxParallel,
                seed: searchSeed,
                baseConfig: config,
                gpuScheduleToStartTimeout: input.train?.gpuScheduleToStartTimeout,
              },
            ],
          }),
        (r) => `best trial ${r.best.trial}: ndcg@10 ${r.best.metrics?.ndcg10.toFixed(4) ?? '-'}`,
      );
      // The final training repeats the best trial's inputs, so it reuses that trial's checkpoint (idempotent).
      config = { ...config, ...found.best.config };
      trainSeed = searchSeed + found.best.trial;
    }
    const trained = await step(
      'train',
      () =>
        onGpuOrCpu('trainModel', (taskQueue) =>
          acts({
            taskQueue,
            scheduleToStartTimeout: input.train?.gpuScheduleToStartTimeout ?? '2 minutes',
            startToCloseTimeout: '6 hours',
            heartbeatTimeout: '5 minutes',
            cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
          }).trainModel({ datasetId, config, seed: trainSeed, label: info.workflowId }),
        ),
      (r) =>
        `${r.result.backend} on ${r.placement.taskQueue}${r.placement.fellBackToCpu ? ' (GPU fallback)' : ''}: ndcg@10 ${r.result.metrics.ndcg10.toFixed(4)}`,
    );
    status.training = {
      checkpointId: trained.result.checkpoint.id,
      backend: trained.result.backend,
      placement: trained.placement,
      metrics: { ...trained.result.metrics },
      epochsRun: trained.result.epochsRun,
      resumedFromEpoch: trained.result.resumedFromEpoch,
    };

    // ---- export + quantize ----------------------------------------------------------------------------------------
    setStage('export');
    const exported = await step(
      'export-onnx-int8',
      () => heavy.exportModel({ checkpointId: trained.result.checkpoint.id, datasetId, modelName }),
      (r) => `bundle ${r.bundle.id}${r.reused ? ' (reused)' : ''}`,
    );
    status.bundle = { id: exported.bundle.id, path: exported.bundle.path, sizes: exported.sizes };

    // ---- evaluate + gates -----------------------------------------------------------------------------------------
    setStage('evaluate');
    const evaluation = await step(
      'evaluate',
      () =>
        heavy.evaluateModel({
          bundleId: exported.bundle.id,
          datasetId,
          championBundleId: champion.bundleId ?? undefined,
          gates: input.gates,
        }),
      (r) =>
        r.blessed
          ? 'blessed'
          : `not blessed: ${r.gates
              .filter((g) => !g.passed)
              .map((g) => g.name)
              .join(', ')}`,
    );
    status.evaluation = {
      id: evaluation.evaluation.id,
      blessed: evaluation.blessed,
      gates: evaluation.gates,
      headline: evaluation.headline,
    };
    const infra = await step(
      'infra-blessing',
      () => heavy.checkServingHealth({ bundleId: exported.bundle.id }),
      (r) => (r.blessed ? `p99 ${r.p99Ms?.toFixed(2)} ms` : 'failed'),
    );
    status.infra = { blessed: infra.blessed, p99Ms: infra.p99Ms, gates: infra.gates };

    // ---- register ---------------------------------------------------------------------------------------------------
    setStage('register');
    const registered = await step(
      'register',
      () =>
        quick.registerModel({
          modelName,
          bundleId: exported.bundle.id,
          evaluationId: evaluation.evaluation.id,
          config: { train: input.train ?? {}, placement: trained.placement, backend: trained.result.backend },
        }),
      (r) => r.ref,
    );
    status.registered = { model: registered.model, version: registered.version, ref: registered.ref };
    const version = registered.version;

    if (!evaluation.blessed || !infra.blessed) {
      const failed = [...evaluation.gates, ...infra.gates].filter((g) => !g.passed);
      const reason = `gates refused ${registered.ref}: ${failed.map((g) => `${g.name} (${g.reason})`).join('; ')}`;
      await quick.setModelStatus({ model: modelName, version, status: 'rejected', actor: 'gates', reason });
      return finish('gate_failed', reason);
    }

    // ---- approval ---------------------------------------------------------------------------------------------------
    await quick.setModelStatus({ model: modelName, version, status: 'pending_approval', actor: 'recflow' });
    setStage('awaiting_approval');
    const timeoutMs = parseDurationMs(input.approval?.timeout ?? '72 hours');
    status.approval = {
      ...status.approval,
      state: 'waiting',
      deadline: new Date(Date.now() + timeoutMs).toISOString(),
    };
    if (input.approval?.autoApprove) {
      status.approval = {
        ...status.approval,
        state: 'approved',
        reviewer: 'auto-approve',
        comment: `auto-approved (requested by ${requestedBy})`,
        via: 'auto',
        decidedAt: new Date().toISOString(),
      };
    }
    for (const { d, kind } of earlySignals.splice(0)) {
      const why = refusal(d, kind);
      if (why)
        status.approval.refused.push({ reviewer: String(d?.reviewer), reason: why, at: new Date().toISOString() });
      else decide(d, kind, 'signal');
    }
    const decided = await condition(() => status.approval.state !== 'waiting' || aborted !== undefined, timeoutMs);
    if (aborted && status.approval.state === 'waiting') {
      const why = `aborted by ${aborted.actor} while awaiting approval${aborted.reason ? `: ${aborted.reason}` : ''}`;
      status.approval.state = 'skipped';
      await quick.setModelStatus({ model: modelName, version, status: 'rejected', actor: aborted.actor, reason: why });
      return finish('aborted', why);
    }
    if (!decided) {
      status.approval.state = 'expired';
      const reason = `no review within ${input.approval?.timeout ?? '72 hours'}`;
      await quick.setModelStatus({ model: modelName, version, status: 'rejected', actor: 'recflow', reason });
      return finish('expired', reason);
    }
    const approval = status.approval;
    await step('record-review', () =>
      quick.recordApproval({
        model: modelName,
        version,
        approved: approval.state === 'approved',
        approver: approval.reviewer!,
        comment: approval.comment,
      }),
    );
    if (approval.state === 'rejected') {
      return finish('rejected', `rejected by ${approval.reviewer}: ${approval.comment ?? ''}`);
    }
    if (input.rollout?.skip) return finish('approved', `approved by ${approval.reviewer}; rollout skipped`);
    if (aborted) {
      const why = `aborted by ${aborted.actor} before the rollout${aborted.reason ? `: ${aborted.reason}` : ''}`;
      await quick.setModelStatus({ model: modelName, version, status: 'archived', actor: aborted.actor, reason: why });
      return finish('aborted', why);
    }

    // ---- canary rollout ---------------------------------------------------------------------------------------------
    const fleet = input.rollout?.fleet ?? 'default';
    const stepsIn = input.rollout?.steps?.length ? input.rollout.steps : DEFAULT_CANARY_STEPS;
    const rollout: NonNullable<LifecycleStatus['rollout']> = {
      fleet,
      lock: 'waiting',
      currentStep: -1,
      steps: stepsIn.map((s) => ({ ...s, state: 'pending', extensions: 0, analyses: [] }) satisfies CanaryStepState),
    };
    status.rollout = rollout;
    setStage('waiting_for_fleet');
    let granted = false;
    setHandler(fleetLockGrantedSignal, () => {
      granted = true;
    });
    await quick.requestFleetLock({ fleet, purpose: `${registered.ref} canary (${info.workflowId})` });
    await condition(() => granted);
    rollout.lock = 'held';
    const releaseLock = async () => {
      if (rollout.lock !== 'held') return;
      rollout.lock = 'released';
      await getExternalWorkflowHandle(fleetLockWorkflowId(fleet)).signal(releaseFleetLockSignal, {
        workflowId: info.workflowId,
      });
    };

    const canarySlot: SlotState = {
      version: registered.ref,
      bundlePath: exported.bundle.path,
      precision: input.rollout?.precision ?? 'int8',
    };
    const convergeMs = parseDurationMs(input.rollout?.convergeTimeout ?? '2 minutes');
    const fleetActs = acts({ startToCloseTimeout: convergeMs + 60_000, heartbeatTimeout: '30 seconds' });
    const rollback = async (why: string): Promise<void> => {
      setStage('rolling_back');
      await fleetActs.applyFleetState({
        fleet,
        canary: null,
        canaryWeight: 0,
        reason: `rollback of ${registered.ref} by ${info.workflowId}: ${why}`,
        waitForReplicasMs: convergeMs,
      });
      await quick.setAlias({ model: modelName, alias: 'canary', version: null, actor: info.workflowId });
      await quick.setModelStatus({ model: modelName, version, status: 'rolled_back', actor: 'recflow', reason: why });
    };

    try {
      const before = await quick.getFleetState({ fleet });
      rollout.previousStable = before.desired?.stable?.version ?? null;
      if (rollout.previousStable && !rollout.previousStable.startsWith(`${modelName}@`)) {
        throw ApplicationFailure.nonRetryable(
          `fleet ${fleet} serves ${rollout.previousStable}, another model than ${modelName}: use a fleet per model`,
          'InvalidInput',
        );
      }
      setStage('canary');
      if (!before.desired?.stable) {
        // Nothing serves yet: the first deployment has nothing to compare with, so it goes straight to stable.
        rollout.firstDeployment = true;
        setStage('promoting');
        await step('first-deployment', () =>
          fleetActs.applyFleetState({
            fleet,
            stable: canarySlot,
            canary: null,
            canaryWeight: 0,
            reason: `first deployment of ${registered.ref} by ${info.workflowId}`,
            waitForReplicasMs: convergeMs,
          }),
        );
        await promoteInRegistry();
        await releaseLock();
        return finish('promoted', `${registered.ref} is the first model of fleet ${fleet}`);
      }
      await quick.setAlias({ model: modelName, alias: 'canary', version, actor: info.workflowId });

      let verdictReason = '';
      let stableBaseline: Awaited<ReturnType<typeof quick.readFleetStats>>['variants']['stable'] | undefined;
      for (let i = 0; i < rollout.steps.length && !aborted && !promotedByHuman; i++) {
        const s = rollout.steps[i]!;
        rollout.currentStep = i;
        await step(`canary-${s.weight}%`, () =>
          fleetActs.applyFleetState({
            fleet,
            canary: canarySlot,
            canaryWeight: s.weight,
            reason: `canary ${registered.ref} step ${i + 1}/${rollout.steps.length} at ${s.weight}% by ${info.workflowId}`,
            waitForReplicasMs: convergeMs,
          }),
        );
        const bakeMs = parseDurationMs(s.bake);
        for (;;) {
          s.state = 'baking';
          setStage('canary');
          // The bake is the measurement window: the stats activity counts what the replicas serve during it
          // (and the simulator, when asked, drives users at them meanwhile). `abort` cancels both at once.
          const traffic = input.rollout?.traffic;
          const windowActs = acts({ startToCloseTimeout: bakeMs + 120_000, heartbeatTimeout: '30 seconds' });
          const bakeScope = new CancellationScope();
          const statsP = bakeScope.run(() => windowActs.readFleetStats({ fleet, windowMs: bakeMs }));
          const simP = traffic
            ? bakeScope.run(() =>
                windowActs.simulateTraffic({
                  fleet,
                  shopId,
                  durationMs: bakeMs,
                  rps: traffic.rps,
                  users: traffic.users,
                  seed: (traffic.seed ?? 0) + i * 100 + s.extensions,
                }),
              )
            : undefined;
          const interrupted = await condition(() => aborted !== undefined, bakeMs);
          if (interrupted) {
            bakeScope.cancel();
            await Promise.allSettled([statsP, simP]);
            break;
          }
          s.state = 'analyzing';
          const stats = await statsP;
          await simP?.catch((e: unknown) => log.warn('traffic simulation failed', { error: String(e) }));
          // At 100 % no user sees stable: compare with stable as measured in the last window that had it.
          const stableWindow =
            s.weight >= 100 && stableBaseline && stats.variants.stable.requests === 0
              ? stableBaseline
              : stats.variants.stable;
          if (stats.variants.stable.requests > 0) stableBaseline = stats.variants.stable;
          const analysis = await quick.analyzeCanary({
            stable: stableWindow,
            canary: stats.variants.canary,
            criteria: input.rollout?.criteria,
            coverage: stats.coverage,
            stableFromEarlierWindow: stableWindow !== stats.variants.stable,
            step: i,
          });
          s.analyses.push(analysis);
          if (analysis.verdict === 'pass') {
            s.state = 'passed';
            break;
          }
          if (analysis.verdict === 'fail') {
            s.state = 'failed';
            verdictReason = analysis.summary;
            break;
          }
          s.state = 'inconclusive';
          if (s.extensions < (input.rollout?.maxExtensions ?? 2)) {
            s.extensions++;
            log.info('canary inconclusive: extending the bake', { step: i, extensions: s.extensions });
            continue;
          }
          if (input.rollout?.onInconclusive === 'rollback') {
            verdictReason = `inconclusive after ${s.extensions} extensions: ${analysis.summary}`;
            s.state = 'failed';
            break;
          }
          setStage('awaiting_decision');
          log.warn('canary inconclusive: waiting for a human promote or abort', { step: i });
          await condition(() => aborted !== undefined || promotedByHuman !== undefined);
          if (promotedByHuman) s.state = 'promoted_by_human';
          break;
        }
        if (aborted) break;
        if (s.state === 'failed') {
          await step('rollback', () => rollback(verdictReason));
          await releaseLock();
          return finish('rolled_back', `canary analysis failed at ${s.weight}%: ${verdictReason}`);
        }
      }
      const abortedBy = currentAbort();
      if (abortedBy) {
        const why = `aborted by ${abortedBy.actor}${abortedBy.reason ? `: ${abortedBy.reason}` : ''}`;
        await step('rollback', () => rollback(why));
        await releaseLock();
        return finish('aborted', why);
      }

      setStage('promoting');
      await step('promote', () =>
        fleetActs.applyFleetState({
          fleet,
          stable: canarySlot,
          canary: null,
          canaryWeight: 0,
          reason: `promote ${registered.ref} by ${info.workflowId}${promotedByHuman ? ` (go from ${promotedByHuman.actor})` : ''}`,
          waitForReplicasMs: convergeMs,
        }),
      );
      await promoteInRegistry();
      await releaseLock();
      return finish(
        'promoted',
        promotedByHuman
          ? `promoted by ${promotedByHuman.actor} after an inconclusive analysis`
          : `canary passed ${rollout.steps.length} steps`,
      );
    } catch (err) {
      // Cancelled or failed mid-rollout: put the fleet back as it was, even though the run is being cancelled.
      await CancellationScope.nonCancellable(async () => {
        if (rollout.lock === 'held' && !rollout.firstDeployment) {
          await rollback(isCancellation(err) ? 'run cancelled during the canary' : `run failed: ${String(err)}`).catch(
            (e: unknown) => log.error('rollback after failure failed', { error: String(e) }),
          );
        }
        await releaseLock();
      });
      throw err;
    }

    async function promoteInRegistry(): Promise<void> {
      await quick.setAlias({ model: modelName, alias: 'champion', version, actor: info.workflowId });
      await quick.setAlias({ model: modelName, alias: 'canary', version: null, actor: info.workflowId });
      await quick.setModelStatus({ model: modelName, version, status: 'production', actor: info.workflowId });
      if (champion.version !== null && champion.version !== version) {
        await quick
          .setModelStatus({
            model: modelName,
            version: champion.version,
            status: 'archived',
            actor: info.workflowId,
            reason: `replaced by ${registered.ref}`,
          })
          .catch((e: unknown) => log.warn('could not archive the previous champion', { error: String(e) }));
      }
    }
  } catch (err) {
    if (err instanceof AbortedBeforeReview) {
      const why = `aborted by ${err.by.actor} before the review${err.by.reason ? `: ${err.by.reason}` : ''}`;
      if (status.registered)
        await quick.setModelStatus({
          model: modelName,
          version: status.registered.version,
          status: 'rejected',
          actor: err.by.actor,
          reason: why,
        });
      return finish('aborted', why);
    }
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => finish('cancelled', 'the run was cancelled'));
      throw err;
    }
    await finish('failed', err instanceof Error ? err.message : String(err));
    throw err;
  }
}
