/**
 * The model registry's domain: immutable versions `<model>@v<N>` pointing at content-addressed bundle artifacts,
 * movable aliases (`champion`, `canary`), a status with allowed transitions, lineage, and an append-only event log.
 * Sandbox-safe (no Node imports): workflows may import the constants and types.
 */
import { ErrorType, RecflowError } from '../errors';

export const MODEL_STATUSES = [
  'candidate',
  'pending_approval',
  'approved',
  'rejected',
  'production',
  'rolled_back',
  'archived',
] as const;
export type ModelStatus = (typeof MODEL_STATUSES)[number];

/** Allowed status transitions (MLflow-like life cycle with an approval step and rollbacks). */
export const STATUS_TRANSITIONS: Record<ModelStatus, readonly ModelStatus[]> = {
  candidate: ['pending_approval', 'rejected', 'archived'],
  pending_approval: ['approved', 'rejected', 'archived'],
  approved: ['production', 'rolled_back', 'archived'],
  rejected: ['archived'],
  production: ['rolled_back', 'archived'],
  rolled_back: ['production', 'archived'],
  // A rollback may bring an archived version (a former champion) back.
  archived: ['production'],
};

/** Well-known aliases; others matching {@link ALIAS_RE} are allowed too. */
export const ALIASES = { champion: 'champion', canary: 'canary' } as const;
export const ALIAS_RE = /^[a-z][a-z0-9-]{0,31}$/;

/** Where a version came from. */
export interface Lineage {
  datasetId: string;
  /** Content hash of the dataset artifact. */
  datasetHash: string;
  checkpointId: string;
  /** Git sha of the code that made it, when known. */
  codeVersion?: string;
  /** Model configuration (hyperparameters, vocabulary sizes). */
  config?: Record<string, unknown>;
  /** tfjs backend that trained it (`tensorflow`, `wasm`, `cpu`) and whether a GPU ran. */
  trainingBackend?: string;
  gpu?: boolean;
  evaluationId?: string;
  /** Headline metrics of the evaluation. */
  metrics?: Record<string, number>;
  /** Blessing summaries: which gates passed. */
  blessing?: { blessed: boolean; gates: Array<{ name: string; passed: boolean; reason: string }> };
  /** Temporal workflow that registered it. */
  workflowId?: string;
  runId?: string;
}

/** An immutable version record. */
export interface ModelVersionRecord {
  model: string;
  version: number;
  /** The bundle artifact, content-addressed. */
  bundle: { id: string; contentHash: string };
  lineage: Lineage;
  createdAt: string;
  /** Key that makes registration idempotent (bundle content hash + workflow run). */
  idempotencyKey: string;
}

/** Mutable state of a version. */
export interface VersionState {
  status: ModelStatus;
  approver?: string;
  approvalComment?: string;
  updatedAt: string;
}

/** A version with its current state and the aliases pointing at it. */
export interface ModelVersion extends ModelVersionRecord, VersionState {
  aliases: string[];
}

export interface RegistryEvent {
  seq: number;
  at: string;
  model: string;
  type: 'registered' | 'status' | 'alias' | 'approval';
  version?: number;
  from?: string | number | null;
  to?: string | number | null;
  actor?: string;
  workflowId?: string;
  reason?: string;
}

export interface ModelSummary {
  model: string;
  versions: number;
  latest: number;
  aliases: Record<string, number>;
  production: number[];
}

export interface RegisterInput {
  model: string;
  bundle: { id: string; contentHash: string };
  lineage: Lineage;
  /** Idempotency: the same bundle registered by the same workflow run gets the same version. */
  workflowId?: string;
  runId?: string;
  /** @default 'candidate' */
  status?: ModelStatus;
}

export interface ChangeContext {
  actor?: string;
  reason?: string;
  workflowId?: string;
}

/** The registry, behind an interface so a shared store (database, object store) can replace the directory. */
export interface ModelRegistry {
  register(input: RegisterInput): Promise<{ version: ModelVersion; created: boolean }>;
  /** Resolve `model`, `model@v3`, `model@3` or `model@champion`. */
  get(ref: string): Promise<ModelVersion>;
  find(ref: string): Promise<ModelVersion | undefined>;
  listModels(): Promise<ModelSummary[]>;
  listVersions(model: string): Promise<ModelVersion[]>;
  setStatus(model: string, version: number, status: ModelStatus, ctx?: ChangeContext): Promise<ModelVersion>;
  /** Point an alias at a version, or remove it (`version` null). Returns the previous target. */
  setAlias(model: string, alias: string, version: number | null, ctx?: ChangeContext): Promise<number | null>;
  recordApproval(
    model: string,
    version: number,
    decision: { approved: boolean; approver: string; comment?: string },
    ctx?: ChangeContext,
  ): Promise<ModelVersion>;
  events(model: string): Promise<RegistryEvent[]>;
}

/** Parsed `model[@vN|@N|@alias]`. */
export interface ParsedRef {
  model: string;
  version?: number;
  alias?: string;
}

const MODEL_RE = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/** Validate a model name (no path separators, no `..`). */
export function assertModelName(name: string): void {
  if (!MODEL_RE.test(name) || name.includes('..'))
    throw new RecflowError(
      ErrorType.InvalidInput,
      `invalid model name '${name}': use [a-z0-9._-], at most 128 characters`,
    );
}

/** Parse a model reference. @throws {RecflowError} `InvalidInput` */
export function parseModelRef(ref: string): ParsedRef {
  const at = ref.indexOf('@');
  const model = at < 0 ? ref : ref.slice(0, at);
  assertModelName(model);
  if (at < 0) return { model };
  const rest = ref.slice(at + 1);
  const v = /^v?([1-9][0-9]{0,8})$/.exec(rest);
  if (v) return { model, version: Number(v[1]) };
  if (ALIAS_RE.test(rest)) return { model, alias: rest };
  throw new RecflowError(
    ErrorType.InvalidInput,
    `invalid model reference '${ref}': use model, model@vN or model@alias`,
  );
}

/** @throws {RecflowError} `InvalidInput` when the transition is not allowed. */
export function assertTransition(from: ModelStatus, to: ModelStatus, where: string): void {
  if (!(MODEL_STATUSES as readonly string[]).includes(to))
    throw new RecflowError(ErrorType.InvalidInput, `unknown status '${to}': one of ${MODEL_STATUSES.join(', ')}`);
  if (from === to) return;
  if (!STATUS_TRANSITIONS[from].includes(to))
    throw new RecflowError(
      ErrorType.InvalidInput,
      `${where}: cannot go from ${from} to ${to} (allowed: ${STATUS_TRANSITIONS[from].join(', ') || 'none'})`,
    );
}
