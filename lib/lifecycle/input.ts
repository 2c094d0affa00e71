/**
 * The one check of a lifecycle input, shared by the CLI (before it starts a run) and the workflow (at its start, so
 * an input from `temporal workflow start --input` fails the run at once with every problem named, instead of a step
 * failing later or workflow code throwing on a bad shape). Never throws. Sandbox-safe.
 */
import { msToNumber } from '@temporalio/common/lib/time';
import { DEFAULT_KIND, KIND_NAMES, isKindName, type RunKind } from '../kinds';
import { normalizeSteps, type RolloutStep } from './steps';
import type { LifecycleInput } from './types';

/** A checked input: the input as given, plus what the run derives from it. */
export interface CheckedInput {
  input: LifecycleInput;
  kind: RunKind;
  steps: RolloutStep[];
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const TOP = ['modelName', 'kind', 'requestedBy', 'data', 'train', 'gates', 'approval', 'rollout'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Check a workflow input; `errors` names every problem by its field path. */
export function checkLifecycleInput(raw: unknown): { ok: true; value: CheckedInput } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const input = (raw ?? {}) as Obj;
  if (!isObj(input)) return { ok: false, errors: ['the input must be a JSON object'] };
  const keys = (o: Obj, allowed: string[], at: string) => {
    for (const k of Object.keys(o))
      if (!allowed.includes(k)) errors.push(`${at}${k}: unknown field (allowed: ${allowed.join(', ')})`);
  };
  const name = (v: unknown, at: string) => {
    if (v !== undefined && (typeof v !== 'string' || !NAME_RE.test(v) || v.includes('..')))
      errors.push(`${at}: ${JSON.stringify(v)} is not a name ([a-z0-9._-], at most 128 characters)`);
  };
  const str = (v: unknown, at: string) => {
    if (v !== undefined && (typeof v !== 'string' || !v.trim())) errors.push(`${at}: expected a non-empty string`);
  };
  const int = (v: unknown, at: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max))
      errors.push(`${at}: expected an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  };
  const num = (v: unknown, at: string, min: number) => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= min))
      errors.push(`${at}: expected a number above ${min}, got ${JSON.stringify(v)}`);
  };
  const bool = (v: unknown, at: string) => {
    if (v !== undefined && typeof v !== 'boolean') errors.push(`${at}: expected true or false`);
  };
  const duration = (v: unknown, at: string) => {
    if (v === undefined) return;
    try {
      const ms = typeof v === 'number' ? v : typeof v === 'string' ? msToNumber(v) : NaN;
      if (!Number.isFinite(ms) || ms < 0) throw new Error('bad');
    } catch {
      errors.push(`${at}: ${JSON.stringify(v)} is not a duration (e.g. '30s', '5 minutes', '72 hours')`);
    }
  };
  const obj = (v: unknown, at: string): Obj | undefined => {
    if (v === undefined) return undefined;
    if (!isObj(v)) {
      errors.push(`${at}: expected an object`);
      return undefined;
    }
    return v;
  };

  keys(input, TOP, '');
  name(input.modelName, 'modelName');
  if (input.kind !== undefined && input.kind !== 'auto' && !isKindName(input.kind))
    errors.push(`kind: ${JSON.stringify(input.kind)} is not a model kind (auto, ${KIND_NAMES.join(', ')})`);
  str(input.requestedBy, 'requestedBy');

  const data = obj(input.data, 'data');
  if (data) {
    if (data.kind === 'synthetic') {
      keys(data, ['kind', 'seed', 'users', 'items', 'events', 'dirt'], 'data.');
      int(data.seed, 'data.seed', 0);
      for (const k of ['users', 'items', 'events'] as const) int(data[k], `data.${k}`, 1);
      if (data.dirt !== undefined && (typeof data.dirt !== 'number' || !(data.dirt >= 0 && data.dirt <= 0.5)))
        errors.push(`data.dirt: expected a rate in [0, 0.5], got ${JSON.stringify(data.dirt)}`);
    } else if (data.kind === 'shop') {
      keys(data, ['kind', 'id'], 'data.');
      name(data.id, 'data.id');
      if (data.id === undefined) errors.push('data.id: required for a shop source');
    } else if (data.kind === 'dir') {
      keys(data, ['kind', 'path', 'format'], 'data.');
      if (typeof data.path !== 'string' || !data.path.trim()) errors.push('data.path: required for a dir source');
      else if (!data.path.startsWith('/'))
        errors.push(
          `data.path: '${data.path}' is relative; workers resolve paths on their own machine: give an absolute path`,
        );
      if (data.format !== undefined && data.format !== 'recflow' && data.format !== 'movielens')
        errors.push(`data.format: ${JSON.stringify(data.format)} is not recflow or movielens`);
    } else errors.push(`data.kind: ${JSON.stringify(data.kind)} is not synthetic, shop or dir`);
  }

  const train = obj(input.train, 'train');
  if (train) {
    keys(train, ['config', 'seed', 'gpuScheduleToStartTimeout', 'heartbeatTimeout', 'search'], 'train.');
    obj(train.config, 'train.config');
    int(train.seed, 'train.seed', 0);
    duration(train.gpuScheduleToStartTimeout, 'train.gpuScheduleToStartTimeout');
    duration(train.heartbeatTimeout, 'train.heartbeatTimeout');
    const search = obj(train.search, 'train.search');
    if (search) {
      keys(search, ['trials', 'maxParallel', 'seed'], 'train.search.');
      int(search.trials, 'train.search.trials', 0, 1000);
      int(search.maxParallel, 'train.search.maxParallel', 1, 64);
      int(search.seed, 'train.search.seed', 0);
    }
  }
  obj(input.gates, 'gates');

  const approval = obj(input.approval, 'approval');
  if (approval) {
    keys(approval, ['reviewers', 'timeout', 'autoApprove'], 'approval.');
    if (approval.reviewers !== undefined) {
      if (!Array.isArray(approval.reviewers)) errors.push('approval.reviewers: expected a list of names');
      else approval.reviewers.forEach((r, i) => str(r, `approval.reviewers[${i}]`));
    }
    duration(approval.timeout, 'approval.timeout');
    bool(approval.autoApprove, 'approval.autoApprove');
  }

  let steps: RolloutStep[] = [];
  const rollout = obj(input.rollout, 'rollout');
  const normalized = normalizeSteps(rollout?.steps);
  steps = normalized.steps;
  if (rollout) {
    keys(
      rollout,
      [
        'fleet',
        'steps',
        'criteria',
        'precision',
        'maxExtensions',
        'onInconclusive',
        'convergeTimeout',
        'traffic',
        'skip',
        'allowUnchanged',
        'preWindow',
        'feedbackDelay',
      ],
      'rollout.',
    );
    name(rollout.fleet, 'rollout.fleet');
    errors.push(...normalized.errors);
    obj(rollout.criteria, 'rollout.criteria');
    if (rollout.precision !== undefined && rollout.precision !== 'fp32' && rollout.precision !== 'int8')
      errors.push(`rollout.precision: ${JSON.stringify(rollout.precision)} is not fp32 or int8`);
    int(rollout.maxExtensions, 'rollout.maxExtensions', 0, 100);
    if (
      rollout.onInconclusive !== undefined &&
      rollout.onInconclusive !== 'wait' &&
      rollout.onInconclusive !== 'rollback'
    )
      errors.push(`rollout.onInconclusive: ${JSON.stringify(rollout.onInconclusive)} is not wait or rollback`);
    duration(rollout.convergeTimeout, 'rollout.convergeTimeout');
    const traffic = obj(rollout.traffic, 'rollout.traffic');
    if (traffic) {
      keys(traffic, ['rps', 'users', 'seed'], 'rollout.traffic.');
      num(traffic.rps, 'rollout.traffic.rps', 0);
      int(traffic.users, 'rollout.traffic.users', 1);
      int(traffic.seed, 'rollout.traffic.seed', 0);
    }
    bool(rollout.skip, 'rollout.skip');
    bool(rollout.allowUnchanged, 'rollout.allowUnchanged');
    if (rollout.preWindow !== false) duration(rollout.preWindow, 'rollout.preWindow');
    duration(rollout.feedbackDelay, 'rollout.feedbackDelay');
  }
  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    value: { input: input, kind: (input.kind as RunKind | undefined) ?? DEFAULT_KIND, steps },
  };
}
