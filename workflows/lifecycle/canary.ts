/**
 * The canary rollout: take the fleet's lock, then run the rollout steps as data (lib/lifecycle/steps.ts), then
 * promote, or roll back by itself. A first deployment (nothing serves yet) goes straight to stable. `abort` rolls
 * back at once; a cancelled or failed run rolls back in a non-cancellable scope; the lock is always released.
 *
 * `analysis` steps measure a window (the replicas' counters before and after, the simulator driving users when
 * asked) and hand it to the `analyzeCanary` activity: pass goes on, fail rolls back, inconclusive extends the window
 * up to `maxExtensions` times, then waits for a human (`promote` or `abort`) or rolls back (`onInconclusive`).
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  log,
  patched,
  setHandler,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import type { ReadFleetStatsResult } from '../../activities/serving';
import type { CanaryAnalysis } from '../../lib/canary/analysis';
import { hash32 } from '../../lib/canary/buckets';
import {
  afterLook,
  DEFAULT_FEEDBACK_DELAY,
  DEFAULT_MAX_EXTENSIONS,
  droppedInWindow,
  RolloutLooks,
  windowPlan,
} from '../../lib/canary/rollout-looks';
import type { Precision } from '../../lib/bundle';
import type { SlotState } from '../../lib/fleet/types';
import type { ActorRequest } from '../../lib/lifecycle/messages';
import { fleetLockGrantedSignal, fleetLockWorkflowId, releaseFleetLockSignal } from '../../lib/fleet/lock';
import { describeStep } from '../../lib/lifecycle/steps';
import type { LifecycleOutcome, RolloutStatus, RolloutStepState } from '../../lib/lifecycle/types';
import { fleetActs, quick, windowActs } from './activities';
import type { LifecycleRun } from './run';

/** How the rollout ended. */
export interface RolloutResult {
  outcome: Extract<LifecycleOutcome, 'promoted' | 'rolled_back' | 'aborted'>;
  reason: string;
}

/** The patch that gave the simulated traffic of a rollout one user panel for all its windows. */
export const CANARY_USER_PANEL = 'canary-user-panel';

type Stats = ReadFleetStatsResult['variants']['stable'];

/** One measured window, and what the load generator and the replicas could not serve during it. */
interface Look {
  stats: ReadFleetStatsResult;
  dropped: number;
}

export class CanaryRollout {
  private readonly rollout: RolloutStatus;
  private readonly fleet: string;
  private readonly convergeMs: number;
  private readonly canarySlot: SlotState;
  private readonly ref: string;
  private granted = false;
  /** The rollout changed the fleet (a failure must put it back). */
  private touched = false;
  /** The human who said go after an inconclusive analysis, or to skip the remaining steps. */
  private humanGo: ActorRequest | undefined;
  /** Stable as measured in the last window that had it (the 100 % step has none). */
  private stableBaseline: Stats | undefined;
  /** The sequential analysis: every step's counts, the pre-rollout window, the test's state (lib/canary). */
  private readonly looks = new RolloutLooks();
  /**
   * The simulator replays one user panel in every window of the rollout (`panelSeed`); decided once, at the first
   * window, so a run started before the patch keeps a new sample per window to its end.
   */
  private userPanel: boolean | undefined;

  constructor(
    private readonly run: LifecycleRun,
    bundle: { path: string; precision: Precision },
  ) {
    const ro = run.input.rollout ?? {};
    this.fleet = ro.fleet ?? 'default';
    this.convergeMs = msToNumber(ro.convergeTimeout ?? '2 minutes');
    this.ref = run.status.registered!.ref;
    this.canarySlot = { version: this.ref, bundlePath: bundle.path, precision: bundle.precision };
    this.rollout = {
      fleet: this.fleet,
      lock: 'waiting',
      currentStepIndex: -1,
      weight: 0,
      salt: run.workflowId,
      steps: run.rolloutSteps.map((s) => ({ ...s, state: 'pending' })),
    };
    run.status.rollout = this.rollout;
    setHandler(fleetLockGrantedSignal, () => {
      this.granted = true;
    });
  }

  /** Run the rollout to its end: promoted, rolled back (analysis failed) or aborted. */
  async execute(): Promise<RolloutResult> {
    const { run } = this;
    run.setStage('waiting_for_fleet');
    await quick.requestFleetLock({ fleet: this.fleet, purpose: `${this.ref} canary (${run.workflowId})` });
    await condition(() => this.granted);
    this.rollout.lock = 'held';
    run.phase = 'rollout';
    try {
      const before = await quick.getFleetState({ fleet: this.fleet });
      this.rollout.previousStable = before.desired?.stable?.version ?? null;
      if (this.rollout.previousStable && !this.rollout.previousStable.startsWith(`${run.modelName}@`))
        throw ApplicationFailure.nonRetryable(
          `fleet ${this.fleet} serves ${this.rollout.previousStable}, another model than ${run.modelName}: use a fleet per model`,
          'InvalidInput',
        );
      run.setStage('canary');
      if (!before.desired?.stable) return await this.firstDeployment();
      await quick.setAlias({
        model: run.modelName,
        alias: 'canary',
        version: run.status.registered!.version,
        actor: run.workflowId,
      });
      if ((await this.preWindow()) === 'aborted') return await this.abort();
      const result = await this.steps();
      if (result) return result;
      return await this.promote();
    } catch (err) {
      // Cancelled or failed mid-rollout: put the fleet back as it was, even though the run is being cancelled.
      await CancellationScope.nonCancellable(async () => {
        if (this.touched && !this.rollout.firstDeployment)
          await this.rollbackFleet(`run ended during the canary: ${String(err)}`).catch((e: unknown) =>
            log.error('rollback after failure failed', { error: String(e) }),
          );
        await this.releaseLock();
      });
      throw err;
    }
  }

  /** The steps; a result when the rollout ends early (rolled back or aborted), undefined when all passed. */
  private async steps(): Promise<RolloutResult | undefined> {
    const { run } = this;
    for (let i = 0; i < this.rollout.steps.length; i++) {
      if (run.aborted) return this.abort();
      const s = this.rollout.steps[i]!;
      this.rollout.currentStepIndex = i;
      s.state = 'running';
      s.startedAt = new Date().toISOString();
      if ('setWeight' in s) {
        await run.step(
          'applyFleetState',
          () => this.setWeight(s.setWeight, i),
          () => describeStep(s),
        );
        s.state = 'passed';
      } else if ('pause' in s) {
        const resumed = await this.pause(s);
        if (resumed === 'aborted') return this.abort();
        if (resumed === 'full') {
          s.state = 'promoted_by_human';
          this.skipRest(i);
          return undefined;
        }
        s.state = 'passed';
      } else {
        const verdict = await this.analysis(s, i);
        if (verdict.kind === 'aborted') return this.abort();
        if (verdict.kind === 'fail') {
          const failedAt = this.rollout.weight;
          await run.step(
            'applyFleetState',
            () => this.rollbackFleet(verdict.reason),
            () => 'rollback',
          );
          await this.releaseLock();
          return {
            outcome: 'rolled_back',
            reason: `canary analysis failed at ${failedAt}%: ${verdict.reason}`,
          };
        }
        if (verdict.kind === 'promoted') {
          this.skipRest(i);
          return undefined;
        }
      }
      s.endedAt = new Date().toISOString();
    }
    return undefined;
  }

  private skipRest(i: number): void {
    for (const later of this.rollout.steps.slice(i + 1)) later.state = 'skipped';
  }

  private async setWeight(weight: number, i: number): Promise<void> {
    this.touched = true;
    await fleetActs(this.convergeMs).applyFleetState({
      fleet: this.fleet,
      canary: this.canarySlot,
      canaryWeight: weight,
      salt: this.rollout.salt,
      reason: `canary ${this.ref} step ${i + 1}/${this.rollout.steps.length}: setWeight ${weight}% by ${this.run.workflowId}`,
      waitForReplicasMs: this.convergeMs,
    });
    this.rollout.weight = weight;
  }

  /** A timed pause, or one that waits for a human. */
  private async pause(
    s: RolloutStepState & { pause: { duration?: Duration } },
  ): Promise<'resumed' | 'full' | 'aborted'> {
    const { run } = this;
    s.state = 'paused';
    const since = new Date().toISOString();
    run.takePromote(); // a promote sent before this pause does not skip it
    if (s.pause.duration !== undefined) {
      const ms = msToNumber(s.pause.duration);
      this.rollout.pause = { reason: 'PausedStep', since, until: new Date(Date.now() + ms).toISOString() };
      await condition(() => run.aborted !== undefined || run.promoted !== undefined, ms);
    } else {
      this.rollout.pause = { reason: 'PausedStep', since };
      run.setStage('awaiting_decision');
      await condition(() => run.aborted !== undefined || run.promoted !== undefined);
    }
    this.rollout.pause = undefined;
    run.setStage('canary');
    if (run.aborted) return 'aborted';
    const p = run.takePromote();
    if (p?.full) this.humanGo = p;
    return p?.full ? 'full' : 'resumed';
  }

  /** One analysis step: windows until a verdict (extensions on inconclusive), or a human's decision. */
  private async analysis(
    s: RolloutStepState & { analysis: { duration: Duration } },
    i: number,
  ): Promise<{ kind: 'pass' | 'promoted' | 'aborted' } | { kind: 'fail'; reason: string }> {
    const { run } = this;
    const ro = run.input.rollout ?? {};
    const windowMs = msToNumber(s.analysis.duration);
    s.extensions = 0;
    s.analyses = [];
    for (;;) {
      s.state = 'running';
      run.setStage('canary');
      const look = await this.measure(windowMs, i, s.extensions);
      if (look === 'aborted') return { kind: 'aborted' };
      const analysis = await this.analyze(look, i);
      s.analyses.push(analysis);
      const next = afterLook(analysis.verdict, s.extensions, ro.maxExtensions ?? DEFAULT_MAX_EXTENSIONS);
      if (next === 'pass') {
        s.state = 'passed';
        return { kind: 'pass' };
      }
      if (next === 'fail') {
        s.state = 'failed';
        return { kind: 'fail', reason: analysis.summary };
      }
      s.state = 'inconclusive';
      if (next === 'extend') {
        s.extensions++;
        log.info('canary inconclusive: extending the window', { step: i, extensions: s.extensions });
        continue;
      }
      if (ro.onInconclusive === 'rollback') {
        s.state = 'failed';
        return { kind: 'fail', reason: `inconclusive after ${s.extensions} extensions: ${analysis.summary}` };
      }
      run.setStage('awaiting_decision');
      this.rollout.pause = { reason: 'InconclusiveAnalysis', since: new Date().toISOString() };
      log.warn('canary inconclusive: waiting for a human promote or abort', { step: i });
      await condition(() => run.aborted !== undefined || run.promoted !== undefined);
      this.rollout.pause = undefined;
      if (run.aborted) return { kind: 'aborted' };
      this.humanGo = run.takePromote();
      s.state = 'promoted_by_human';
      return { kind: 'promoted' };
    }
  }

  /**
   * Analyse a window. With the replicas' per-user buckets: one look of the rollout-wide sequential test over every
   * step's counts so far (the window is added to its step's period). Without them (older replicas): the first
   * version's per-window comparison.
   */
  private async analyze(look: Look, i: number): Promise<CanaryAnalysis> {
    const ro = this.run.input.rollout ?? {};
    const { stats } = look;
    if (stats.buckets) {
      const input = this.looks.look(
        this.rollout.weight,
        { buckets: stats.buckets, latency: stats.latency, coverage: stats.coverage, dropped: look.dropped },
        ro.criteria,
      );
      const result = await quick.analyzeRollout({ ...input, step: i });
      this.looks.record(result.state);
      return result.analysis;
    }
    // At 100 % no user sees stable: compare with stable as measured in the last window that had it.
    const stableWindow =
      this.rollout.weight >= 100 && this.stableBaseline && stats.variants.stable.requests === 0
        ? this.stableBaseline
        : stats.variants.stable;
    if (stats.variants.stable.requests > 0) this.stableBaseline = stats.variants.stable;
    return quick.analyzeCanary({
      stable: stableWindow,
      canary: stats.variants.canary,
      criteria: ro.criteria,
      coverage: stats.coverage,
      stableFromEarlierWindow: stableWindow !== stats.variants.stable,
      step: i,
    });
  }

  /**
   * The window before the first step: the canary loaded at weight 0 under the rollout's salt, everyone on stable,
   * so the per-user buckets of the rollout see each user's baseline (the CTR adjustment of lib/canary/estimators.ts).
   */
  private async preWindow(): Promise<'aborted' | undefined> {
    const ro = this.run.input.rollout ?? {};
    const first = this.rollout.steps.find((x) => 'analysis' in x) as { analysis: { duration: Duration } } | undefined;
    if (ro.preWindow === false || !first) return undefined;
    const windowMs = msToNumber(ro.preWindow ?? first.analysis.duration);
    await this.run.step(
      'applyFleetState',
      () => this.setWeight(0, -1),
      () => 'canary loaded at 0% for the pre-rollout window',
    );
    const look = await this.measure(windowMs, -1, 0);
    if (look === 'aborted') return 'aborted';
    if (look.stats.buckets) this.looks.setPre(look.stats.buckets.stable);
    return undefined;
  }

  /** Measure one window; `abort` interrupts it (the stats and the simulator are cancelled together). */
  private async measure(windowMs: number, i: number, extension: number): Promise<Look | 'aborted'> {
    const { run } = this;
    const ro = run.input.rollout ?? {};
    const traffic = ro.traffic;
    const feedbackDelayMs = msToNumber(ro.feedbackDelay ?? DEFAULT_FEEDBACK_DELAY);
    const w = windowActs(windowMs + feedbackDelayMs);
    const scope = new CancellationScope();
    const plan = windowPlan(windowMs, i, extension, traffic?.seed);
    const panel = traffic !== undefined && (this.userPanel ??= patched(CANARY_USER_PANEL));
    const statsP = scope.run(() =>
      w.readFleetStats({ fleet: this.fleet, windowMs, feedbackDelayMs, sliceMs: plan.sliceMs }),
    );
    const simP = traffic
      ? scope.run(() =>
          w.simulateTraffic({
            fleet: this.fleet,
            shopId: run.status.data?.shopId,
            durationMs: plan.trafficMs,
            rps: traffic.rps,
            users: traffic.users,
            seed: plan.seed,
            // Without a traffic seed, the panel follows the rollout's salt: each rollout replays its own users.
            ...(panel
              ? {
                  panelSeed:
                    traffic.seed !== undefined ? plan.panelSeed : hash32(this.rollout.salt ?? this.run.workflowId),
                }
              : {}),
          }),
        )
      : undefined;
    if (await condition(() => run.aborted !== undefined, windowMs)) {
      scope.cancel();
      await Promise.allSettled([statsP, simP]);
      return 'aborted';
    }
    const stats = await statsP;
    const sim = await simP?.catch((e: unknown) => {
      log.warn('traffic simulation failed', { error: String(e) });
      return undefined;
    });
    return { stats, dropped: droppedInWindow(sim, stats.shed) };
  }

  private async firstDeployment(): Promise<RolloutResult> {
    const { run } = this;
    this.rollout.firstDeployment = true;
    run.setStage('promoting');
    await run.step(
      'applyFleetState',
      () =>
        fleetActs(this.convergeMs).applyFleetState({
          fleet: this.fleet,
          stable: this.canarySlot,
          canary: null,
          canaryWeight: 0,
          reason: `first deployment of ${this.ref} by ${run.workflowId}`,
          waitForReplicasMs: this.convergeMs,
        }),
      () => 'first deployment: stable',
    );
    this.rollout.weight = 100;
    await this.releaseLock();
    return { outcome: 'promoted', reason: `${this.ref} is the first model of fleet ${this.fleet}` };
  }

  private async promote(): Promise<RolloutResult> {
    const { run } = this;
    run.setStage('promoting');
    const human = this.humanGo;
    await run.step(
      'applyFleetState',
      () =>
        fleetActs(this.convergeMs).applyFleetState({
          fleet: this.fleet,
          stable: this.canarySlot,
          canary: null,
          canaryWeight: 0,
          reason: `promote ${this.ref} by ${run.workflowId}${human ? ` (go from ${human.actor})` : ''}`,
          waitForReplicasMs: this.convergeMs,
        }),
      () => 'promote: canary becomes stable',
    );
    this.rollout.weight = 100;
    await this.releaseLock();
    const analyses = this.rollout.steps.filter((s) => 'analysis' in s).length;
    return {
      outcome: 'promoted',
      reason: human
        ? `promoted by ${human.actor}${human.reason ? ` (${human.reason})` : ''} before the analysis steps were done`
        : `canary passed ${analyses} analysis step${analyses === 1 ? '' : 's'}`,
    };
  }

  private async abort(): Promise<RolloutResult> {
    const { run } = this;
    const by = run.aborted!;
    const why = `aborted by ${by.actor}${by.reason ? `: ${by.reason}` : ''}`;
    await run.step(
      'applyFleetState',
      () => this.rollbackFleet(why),
      () => 'rollback',
    );
    await this.releaseLock();
    return { outcome: 'aborted', reason: why };
  }

  /** Empty the canary slot; the registry follows in `LifecycleRun.end` (outcome table). */
  private async rollbackFleet(why: string): Promise<void> {
    this.run.setStage('rolling_back');
    await fleetActs(this.convergeMs).applyFleetState({
      fleet: this.fleet,
      canary: null,
      canaryWeight: 0,
      reason: `rollback of ${this.ref} by ${this.run.workflowId}: ${why}`,
      waitForReplicasMs: this.convergeMs,
    });
    this.rollout.weight = 0;
  }

  private async releaseLock(): Promise<void> {
    if (this.rollout.lock !== 'held') return;
    this.rollout.lock = 'released';
    await getExternalWorkflowHandle(fleetLockWorkflowId(this.fleet)).signal(releaseFleetLockSignal, {
      workflowId: this.run.workflowId,
    });
  }
}
