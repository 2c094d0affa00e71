/**
 * The kind registry: every model kind a worker can train, export and evaluate, by wire name (lib/kinds.ts).
 * Adding a kind: a folder `kinds/<name>/` exporting a {@link ModelKind}, its name in `KIND_NAMES`, one line here.
 */
import { ErrorType, RecflowError } from '../lib/errors';
import { KIND_NAMES, isKindName, type KindName } from '../lib/kinds';
import { alsKind } from './als';
import { easeKind } from './ease';
import { searchKind } from './search';
import { sequentialKind } from './sequential';
import { twoTowerKind } from './two-tower';
import type { ModelKind } from './types';

const REGISTRY: Partial<Record<KindName, ModelKind>> = {
  'two-tower': twoTowerKind,
  als: alsKind,
  ease: easeKind,
  sequential: sequentialKind,
  search: searchKind,
};

/** Kinds this build can run. */
export function availableKinds(): KindName[] {
  return KIND_NAMES.filter((k) => REGISTRY[k] !== undefined);
}

/**
 * The kind registered under `name`.
 * @throws {RecflowError} `InvalidInput` for an unknown kind, or one this build does not include.
 */
export function kindOf(name: unknown): ModelKind {
  const k = isKindName(name) ? REGISTRY[name] : undefined;
  if (!k)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `model kind '${String(name)}' is not available: use one of ${availableKinds().join(', ')}`,
    );
  return k;
}

export type { ModelKind } from './types';
