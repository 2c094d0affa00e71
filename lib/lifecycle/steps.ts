/**
 * The rollout as data, the Argo Rollouts way: a list of steps, each one of
 * - `{ setWeight: 10 }`: route 10 % of users (sticky, by a per-rollout salted hash) to the canary;
 * - `{ analysis: { duration: '5 minutes' } }`: measure a window of that length and analyse it (pass, fail or
 *   inconclusive; inconclusive extends the window up to `maxExtensions`, then waits for a human or rolls back);
 * - `{ pause: { duration: '1 hour' } }`: wait; `{ pause: {} }`: wait for a human `promote` (or `abort`).
 * After the last step the canary is promoted to stable. Sandbox-safe: the workflow and the CLI parse steps here.
 */
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';

export type RolloutStep =
  { setWeight: number } | { analysis: { duration: Duration } } | { pause: { duration?: Duration } };

/** The first version's step: route `weight` %, then analyse a window of `bake`. */
export interface LegacyCanaryStep {
  weight: number;
  bake: Duration;
}

/**
 * 10 % → 50 % → 95 %, each measured for five minutes (after a pre-rollout window on stable). The CTR decision is
 * made where information grows fastest (50 %, traffic split evenly); the last step keeps a 5 % stable holdback so
 * errors and latency at near-full load are still compared with a concurrent stable (docs/canary-statistics.md).
 */
export const DEFAULT_ROLLOUT_STEPS: RolloutStep[] = [
  { setWeight: 10 },
  { analysis: { duration: '5 minutes' } },
  { setWeight: 50 },
  { analysis: { duration: '5 minutes' } },
  { setWeight: 95 },
  { analysis: { duration: '5 minutes' } },
];

/** A step's kind, for messages and the status. */
export function stepKind(s: RolloutStep): 'setWeight' | 'analysis' | 'pause' {
  return 'setWeight' in s ? 'setWeight' : 'analysis' in s ? 'analysis' : 'pause';
}

/** One line for people: `setWeight 10%`, `analysis 5 minutes`, `pause until promote`. */
export function describeStep(s: RolloutStep): string {
  if ('setWeight' in s) return `setWeight ${s.setWeight}%`;
  if ('analysis' in s) return `analysis ${String(s.analysis.duration)}`;
  return s.pause.duration !== undefined ? `pause ${String(s.pause.duration)}` : 'pause until promote';
}

function durationError(where: string, value: unknown): string | undefined {
  if (typeof value === 'number')
    return Number.isFinite(value) && value >= 0 ? undefined : `${where}: ${value} is not a duration`;
  if (typeof value !== 'string')
    return `${where}: expected a duration such as '5 minutes', got ${JSON.stringify(value)}`;
  try {
    const ms = msToNumber(value as Duration);
    return Number.isFinite(ms) && ms >= 0 ? undefined : `${where}: '${value}' is not a non-negative duration`;
  } catch {
    return `${where}: '${value}' is not a duration (e.g. '30s', '5 minutes', '2 hours')`;
  }
}

/**
 * Check and normalise a list of steps (tagged steps and legacy `{weight, bake}` steps, mixed) into tagged steps.
 * Never throws: returns the problems, each naming the step (`steps[2].setWeight: 120 is outside 0..100`).
 */
export function normalizeSteps(raw: unknown): { steps: RolloutStep[]; errors: string[] } {
  const errors: string[] = [];
  const steps: RolloutStep[] = [];
  if (raw === undefined || raw === null) return { steps: DEFAULT_ROLLOUT_STEPS, errors };
  if (!Array.isArray(raw)) return { steps: [], errors: ['rollout.steps: expected a list of steps'] };
  if (raw.length === 0) return { steps: DEFAULT_ROLLOUT_STEPS, errors };
  raw.forEach((s: unknown, i) => {
    const at = `rollout.steps[${i}]`;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) {
      errors.push(`${at}: expected an object such as {"setWeight": 10}`);
      return;
    }
    const o = s as Record<string, unknown>;
    const keys = Object.keys(o);
    const weightOk = (w: unknown, where: string) => {
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0 || w > 100) {
        errors.push(`${where}: ${JSON.stringify(w)} is outside 0..100`);
        return false;
      }
      return true;
    };
    if ('weight' in o || 'bake' in o) {
      const bad = durationError(`${at}.bake`, o.bake);
      if (bad) errors.push(bad);
      if (weightOk(o.weight, `${at}.weight`) && !bad)
        steps.push({ setWeight: o.weight as number }, { analysis: { duration: o.bake as Duration } });
      return;
    }
    if (keys.length !== 1) {
      errors.push(`${at}: a step has exactly one of setWeight, analysis, pause (got ${keys.join(', ') || 'none'})`);
      return;
    }
    if ('setWeight' in o) {
      if (weightOk(o.setWeight, `${at}.setWeight`)) steps.push({ setWeight: o.setWeight as number });
    } else if ('analysis' in o) {
      const a = o.analysis as Record<string, unknown> | null;
      const bad =
        typeof a === 'object' && a !== null
          ? durationError(`${at}.analysis.duration`, a.duration)
          : `${at}.analysis: expected {"duration": "5 minutes"}`;
      if (bad) errors.push(bad);
      else steps.push({ analysis: { duration: a!.duration as Duration } });
    } else if ('pause' in o) {
      const p = o.pause as Record<string, unknown> | null;
      if (typeof p !== 'object' || p === null) errors.push(`${at}.pause: expected {} or {"duration": "1 hour"}`);
      else if (p.duration === undefined) steps.push({ pause: {} });
      else {
        const bad = durationError(`${at}.pause.duration`, p.duration);
        if (bad) errors.push(bad);
        else steps.push({ pause: { duration: p.duration as Duration } });
      }
    } else errors.push(`${at}: unknown step '${keys[0]}' (use setWeight, analysis or pause)`);
  });
  if (!errors.length && !steps.some((s) => 'setWeight' in s && s.setWeight > 0))
    errors.push('rollout.steps: no step sends traffic to the canary (add a setWeight above 0)');
  return { steps, errors };
}

/**
 * Parse the CLI's `--steps`: comma-separated `WEIGHT:BAKE` (`10:5m`, the first version's form), `pause`,
 * `pause:1h`, or `analysis:5m`. Returns tagged steps or the problems.
 */
export function parseStepsOption(text: string): { steps: RolloutStep[]; errors: string[] } {
  const raw: unknown[] = [];
  const errors: string[] = [];
  text.split(',').forEach((part, i) => {
    const t = part.trim();
    let m: RegExpExecArray | null;
    if ((m = /^(\d{1,3})\s*%?\s*:\s*(.+)$/.exec(t))) raw.push({ weight: Number(m[1]), bake: m[2]!.trim() });
    else if ((m = /^pause(?::(.+))?$/.exec(t))) raw.push({ pause: m[1] ? { duration: m[1].trim() } : {} });
    else if ((m = /^analysis:(.+)$/.exec(t))) raw.push({ analysis: { duration: m[1]!.trim() } });
    else
      errors.push(
        `--steps item ${i + 1} '${t}': expected WEIGHT:BAKE (10:5m), pause, pause:DURATION or analysis:DURATION`,
      );
  });
  if (errors.length) return { steps: [], errors };
  return normalizeSteps(raw);
}
