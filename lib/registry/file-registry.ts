/**
 * The embedded model registry: a directory, every change made under a per-model lock file and written atomically.
 *
 * ```
 * <root>/<model>/versions/v<N>.json   immutable version records (written once)
 * <root>/<model>/state.json           statuses, approvals, aliases, idempotency keys (rewritten atomically)
 * <root>/<model>/events.jsonl         append-only event log
 * <root>/<model>/.lock                the lock (lib/registry/lock.ts)
 * ```
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorType, RecflowError } from '../errors';
import { writeJsonAtomic } from '../fs-atomic';
import { withLock, type LockOptions } from './lock';
import {
  ALIAS_RE,
  assertModelName,
  assertTransition,
  parseModelRef,
  type ChangeContext,
  type ModelRegistry,
  type ModelStatus,
  type ModelSummary,
  type ModelVersion,
  type ModelVersionRecord,
  type RegisterInput,
  type RegistryEvent,
  type VersionState,
} from './types';

interface ModelState {
  model: string;
  latest: number;
  aliases: Record<string, number>;
  versions: Record<string, VersionState>;
  keys: Record<string, number>;
  seq: number;
}

/** Idempotency key of a registration. */
export function registrationKey(bundleContentHash: string, workflowId?: string, runId?: string): string {
  return createHash('sha256')
    .update(`${bundleContentHash}\0${workflowId ?? ''}\0${runId ?? ''}`)
    .digest('hex');
}

/** {@link ModelRegistry} in a local directory (the embedded default). */
export class FileModelRegistry implements ModelRegistry {
  readonly root: string;
  constructor(
    root: string,
    private readonly lockOptions: LockOptions = {},
    private readonly now: () => Date = () => new Date(),
  ) {
    this.root = resolve(root);
  }

  private dir(model: string): string {
    assertModelName(model);
    return join(this.root, model);
  }

  private async readState(model: string): Promise<ModelState | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir(model), 'state.json'), 'utf8')) as ModelState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private async readRecord(model: string, version: number): Promise<ModelVersionRecord> {
    return JSON.parse(
      await readFile(join(this.dir(model), 'versions', `v${version}.json`), 'utf8'),
    ) as ModelVersionRecord;
  }

  private view(record: ModelVersionRecord, state: ModelState): ModelVersion {
    const s = state.versions[String(record.version)];
    if (!s) throw new RecflowError(ErrorType.ModelNotFound, `${record.model}@v${record.version}: no state`);
    const aliases = Object.entries(state.aliases)
      .filter(([, v]) => v === record.version)
      .map(([a]) => a)
      .sort();
    return { ...record, ...s, aliases };
  }

  /** Run a change under the model's lock with its current state; persist the state it returns. */
  private async change<T>(
    model: string,
    fn: (state: ModelState, emit: (e: Omit<RegistryEvent, 'seq' | 'at' | 'model'>) => void) => Promise<T>,
  ): Promise<T> {
    const dir = this.dir(model);
    await mkdir(join(dir, 'versions'), { recursive: true });
    return withLock(
      join(dir, '.lock'),
      async () => {
        const state = (await this.readState(model)) ?? {
          model,
          latest: 0,
          aliases: {},
          versions: {},
          keys: {},
          seq: 0,
        };
        const events: RegistryEvent[] = [];
        const at = this.now().toISOString();
        const result = await fn(state, (e) => events.push({ seq: ++state.seq, at, model, ...e }));
        if (events.length) {
          await writeJsonAtomic(join(dir, 'state.json'), state);
          // The log is appended after the state is durable; a crash in between loses an event line, never state.
          await appendFile(join(dir, 'events.jsonl'), events.map((e) => `${JSON.stringify(e)}\n`).join(''));
        }
        return result;
      },
      this.lockOptions,
    );
  }

  async register(input: RegisterInput): Promise<{ version: ModelVersion; created: boolean }> {
    const key = registrationKey(input.bundle.contentHash, input.workflowId, input.runId);
    return this.change(input.model, async (state, emit) => {
      const existing = state.keys[key];
      if (existing !== undefined)
        return { version: this.view(await this.readRecord(input.model, existing), state), created: false };
      const version = state.latest + 1;
      const at = this.now().toISOString();
      const record: ModelVersionRecord = {
        model: input.model,
        version,
        bundle: input.bundle,
        lineage: { ...input.lineage, workflowId: input.workflowId, runId: input.runId },
        createdAt: at,
        idempotencyKey: key,
      };
      await writeJsonAtomic(join(this.dir(input.model), 'versions', `v${version}.json`), record);
      state.latest = version;
      state.keys[key] = version;
      state.versions[String(version)] = { status: input.status ?? 'candidate', updatedAt: at };
      emit({ type: 'registered', version, to: input.status ?? 'candidate', workflowId: input.workflowId });
      return { version: this.view(record, state), created: true };
    });
  }

  private resolveIn(state: ModelState, ref: string): number {
    const p = parseModelRef(ref);
    const v = p.version ?? (p.alias ? state.aliases[p.alias] : state.latest);
    if (v === undefined || !state.versions[String(v)])
      throw new RecflowError(ErrorType.ModelNotFound, `model ${ref} not found in the registry ${this.root}`);
    return v;
  }

  async find(ref: string): Promise<ModelVersion | undefined> {
    const { model } = parseModelRef(ref);
    const state = await this.readState(model);
    if (!state) return undefined;
    try {
      return this.view(await this.readRecord(model, this.resolveIn(state, ref)), state);
    } catch (err) {
      if (err instanceof RecflowError && err.type === ErrorType.ModelNotFound) return undefined;
      throw err;
    }
  }

  async get(ref: string): Promise<ModelVersion> {
    const v = await this.find(ref);
    if (!v) throw new RecflowError(ErrorType.ModelNotFound, `model ${ref} not found in the registry ${this.root}`);
    return v;
  }

  async listModels(): Promise<ModelSummary[]> {
    const names = await readdir(this.root, { withFileTypes: true }).catch(() => []);
    const out: ModelSummary[] = [];
    for (const e of names.filter((n) => n.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (!/^[a-z0-9][a-z0-9._-]{0,127}$/.test(e.name) || e.name.includes('..')) continue;
      const state = await this.readState(e.name);
      if (!state) continue;
      out.push({
        model: state.model,
        versions: Object.keys(state.versions).length,
        latest: state.latest,
        aliases: { ...state.aliases },
        production: Object.entries(state.versions)
          .filter(([, s]) => s.status === 'production')
          .map(([v]) => Number(v)),
      });
    }
    return out;
  }

  async listVersions(model: string): Promise<ModelVersion[]> {
    const state = await this.readState(model);
    if (!state) return [];
    const out: ModelVersion[] = [];
    for (const v of Object.keys(state.versions)
      .map(Number)
      .sort((a, b) => a - b))
      out.push(this.view(await this.readRecord(model, v), state));
    return out;
  }

  async setStatus(model: string, version: number, status: ModelStatus, ctx: ChangeContext = {}): Promise<ModelVersion> {
    return this.change(model, async (state, emit) => {
      const v = this.resolveIn(state, `${model}@v${version}`);
      const s = state.versions[String(v)]!;
      assertTransition(s.status, status, `${model}@v${v}`);
      if (s.status !== status) {
        const at = this.now().toISOString();
        if (status === 'production') {
          // One production version at a time: the previous one is archived.
          for (const [other, os] of Object.entries(state.versions)) {
            if (Number(other) === v || os.status !== 'production') continue;
            emit({
              type: 'status',
              version: Number(other),
              from: os.status,
              to: 'archived',
              ...ctx,
              reason: `replaced by v${v}`,
            });
            state.versions[other] = { ...os, status: 'archived', updatedAt: at };
          }
        }
        emit({ type: 'status', version: v, from: s.status, to: status, ...ctx });
        state.versions[String(v)] = { ...s, status, updatedAt: at };
      }
      return this.view(await this.readRecord(model, v), state);
    });
  }

  async setAlias(
    model: string,
    alias: string,
    version: number | null,
    ctx: ChangeContext = {},
  ): Promise<number | null> {
    if (!ALIAS_RE.test(alias) || alias === 'latest')
      throw new RecflowError(ErrorType.InvalidInput, `invalid alias '${alias}': use [a-z][a-z0-9-]*, not 'latest'`);
    return this.change(model, async (state, emit) => {
      const prev = state.aliases[alias] ?? null;
      if (version !== null) this.resolveIn(state, `${model}@v${version}`);
      if (prev === version) return prev;
      if (version === null) delete state.aliases[alias];
      else state.aliases[alias] = version;
      emit({ type: 'alias', version: version ?? undefined, from: prev, to: version, ...ctx, reason: alias });
      return prev;
    });
  }

  async recordApproval(
    model: string,
    version: number,
    decision: { approved: boolean; approver: string; comment?: string },
    ctx: ChangeContext = {},
  ): Promise<ModelVersion> {
    if (!decision.approver.trim()) throw new RecflowError(ErrorType.InvalidInput, 'approval: approver is required');
    return this.change(model, async (state, emit) => {
      const v = this.resolveIn(state, `${model}@v${version}`);
      const s = state.versions[String(v)]!;
      const to: ModelStatus = decision.approved ? 'approved' : 'rejected';
      if (s.status === to && s.approver === decision.approver) return this.view(await this.readRecord(model, v), state);
      assertTransition(s.status, to, `${model}@v${v}`);
      emit({
        type: 'approval',
        version: v,
        from: s.status,
        to,
        actor: decision.approver,
        workflowId: ctx.workflowId,
        reason: decision.comment,
      });
      state.versions[String(v)] = {
        ...s,
        status: to,
        approver: decision.approver,
        ...(decision.comment ? { approvalComment: decision.comment } : {}),
        updatedAt: this.now().toISOString(),
      };
      return this.view(await this.readRecord(model, v), state);
    });
  }

  async events(model: string): Promise<RegistryEvent[]> {
    const text = await readFile(join(this.dir(model), 'events.jsonl'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as RegistryEvent);
  }
}
