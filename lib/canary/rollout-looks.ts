/**
 * The per-look bookkeeping of a rollout's sequential analysis: which window belongs to which period (a step: one
 * traffic split), the pre-rollout counts, the test's state carried from look to look, what each window measures
 * (its latency slices, the simulator's seed) and what a look's verdict makes the rollout do next. The rollout
 * workflow (`CanaryRollout`, workflows/lifecycle/canary.ts) and the fleet benchmark (bench/canary.ts) both run
 * their looks through it, so what the benchmark measures is what the workflow decides.
 *
 * Pure and sandbox-safe (no Node built-ins, no I/O): the workflow imports it.
 */
import type { Verdict, WindowCoverage } from './analysis';
import type { LatencySlice, RolloutLookInput, RolloutTestState, SequentialCriteria } from './analyze';
import { BUCKET_FIELDS, type PeriodBuckets, type VariantBuckets } from './buckets';

/** Extensions of an inconclusive analysis step before the rollout waits for a human or rolls back. */
export const DEFAULT_MAX_EXTENSIONS = 2;

/** How long after a window's end its clicks are still counted (`readFleetStats` `feedbackDelayMs`). */
export const DEFAULT_FEEDBACK_DELAY = '2 seconds';

/** One window's per-user-bucket counts, both variants, summed over the replicas (`readFleetStats` `buckets`). */
export interface WindowBuckets {
  /** Number of buckets (the length of every array). */
  count: number;
  stable: VariantBuckets;
  canary: VariantBuckets;
}

/** What one measured window brings to a look. */
export interface WindowLook {
  buckets: WindowBuckets;
  latency?: LatencySlice[];
  coverage?: WindowCoverage;
  /** Requests the load generator dropped or timed out, and the replicas shed, during the window. */
  dropped: number;
}

/** The periods, pre-rollout counts and test state of one rollout, look after look. */
export class RolloutLooks {
  /** Finished periods (steps), oldest first. */
  private readonly periods: PeriodBuckets[] = [];
  /** The period in progress. */
  private period: PeriodBuckets | undefined;
  private pre: VariantBuckets | undefined;
  private state: RolloutTestState | undefined;

  /** Stable's counts over the pre-rollout window (everyone on stable, the rollout's salt). */
  setPre(stable: VariantBuckets): void {
    this.pre = stable;
  }

  /**
   * Add a window measured at `canaryWeight` to its period (a new period starts whenever the weight changed) and
   * return the input of this look's analysis (`analyzeRollout`): every period so far, the last the current one.
   */
  look(canaryWeight: number, w: WindowLook, criteria?: Partial<SequentialCriteria>): RolloutLookInput {
    const period = this.currentPeriod(canaryWeight, w.buckets.count);
    for (const side of ['stable', 'canary'] as const)
      for (const f of BUCKET_FIELDS)
        w.buckets[side][f].forEach((n, b) => (period[side][f][b] = (period[side][f][b] ?? 0) + n));
    return {
      periods: [...this.periods, period],
      pre: this.pre,
      state: this.state,
      latency: w.latency,
      coverage: w.coverage,
      droppedRequests: w.dropped,
      criteria,
    };
  }

  /** Keep the state a look's analysis returned, for the next look. */
  record(state: RolloutTestState): void {
    this.state = state;
  }

  /** Looks analysed so far. */
  get looks(): number {
    return this.state?.looks ?? 0;
  }

  private currentPeriod(canaryWeight: number, buckets: number): PeriodBuckets {
    if (!this.period || this.period.canaryWeight !== canaryWeight) {
      if (this.period) this.periods.push(this.period);
      const zeros = () => new Array<number>(buckets).fill(0);
      const side = () => ({ requests: zeros(), errors: zeros(), impressions: zeros(), clicks: zeros() });
      this.period = { canaryWeight, stable: side(), canary: side() };
    }
    return this.period;
  }
}

/** How one window is measured. */
export interface WindowPlan {
  /** Latency slice length (`readFleetStats` `sliceMs`): a sixth of the window, at least a second. */
  sliceMs: number;
  /** How long the simulator drives traffic: the window and a second (the stats window starts on a slot boundary). */
  trafficMs: number;
  /** The simulator's stream seed: a different request stream per window, reproducible from the rollout's seed. */
  seed: number;
  /**
   * The seed of the rollout's user panel (`SimulateTrafficInput` `panelSeed`): the users the simulator replays are
   * drawn once per rollout and come back in every window (the pre-rollout window, every step and extension), as
   * the same active users do over a real rollout; the per-user adjustment by the pre-rollout window needs them.
   */
  panelSeed: number;
}

/**
 * The plan of the window of step `step` (its index in the steps; -1 for the pre-rollout window), extension
 * `extension` (0 for the step's first window), for traffic seeded with `trafficSeed`.
 */
export function windowPlan(windowMs: number, step: number, extension: number, trafficSeed = 0): WindowPlan {
  return {
    sliceMs: Math.max(1000, Math.floor(windowMs / 6)),
    trafficMs: windowMs + 1000,
    seed: trafficSeed + (step + 1) * 100 + extension,
    panelSeed: trafficSeed,
  };
}

/**
 * What a window could not count: requests the simulator dropped (too many in flight) or abandoned (timed out),
 * and requests the replicas shed; any of them makes the look inconclusive at the default `maxDroppedShare`.
 */
export function droppedInWindow(
  sim: { dropped?: number; timedOut?: number } | undefined,
  shed: number | undefined,
): number {
  return (sim?.dropped ?? 0) + (sim?.timedOut ?? 0) + (shed ?? 0);
}

/**
 * What a look's verdict makes an analysis step do: go on (`pass`), roll back (`fail`), measure another window
 * (`extend`, while `extensions` < `maxExtensions`), or, inconclusive with no extension left, `exhausted` (the
 * rollout then waits for a human or rolls back, as `onInconclusive` says).
 */
export function afterLook(
  verdict: Verdict,
  extensions: number,
  maxExtensions = DEFAULT_MAX_EXTENSIONS,
): 'pass' | 'fail' | 'extend' | 'exhausted' {
  if (verdict === 'pass' || verdict === 'fail') return verdict;
  return extensions < maxExtensions ? 'extend' : 'exhausted';
}
