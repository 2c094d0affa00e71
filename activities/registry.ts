import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { BundleManifest } from '../lib/bundle';
import { ErrorType, RecflowError } from '../lib/errors';
import { kindOf } from '../kinds';
import { FileModelRegistry, type Lineage, type ModelRegistry, type ModelStatus } from '../lib/registry';
import type { ActivityDeps } from './deps';
import type { EvaluationArtifact } from './evaluate';

export interface RegisterModelInput {
  modelName: string;
  bundleId: string;
  /** The `evaluation` artifact whose metrics and blessing go into the lineage. */
  evaluationId?: string;
  /** Defaults to the calling workflow's id and run id (the idempotency key with the bundle's content hash). */
  workflowId?: string;
  runId?: string;
  /** Training configuration to record beside the checkpoint's (e.g. the training workflow input). */
  config?: Record<string, unknown>;
  /** @default 'candidate' */
  status?: ModelStatus;
}

export interface RegisterModelResult {
  model: string;
  version: number;
  /** `model@vN` */
  ref: string;
  status: ModelStatus;
  /** False when the same bundle was already registered by the same workflow run. */
  created: boolean;
}

export interface SetModelStatusInput {
  model: string;
  version: number;
  status: ModelStatus;
  actor?: string;
  reason?: string;
}
export interface SetModelStatusResult {
  model: string;
  version: number;
  status: ModelStatus;
}

export interface SetAliasInput {
  model: string;
  alias: string;
  /** null removes the alias. */
  version: number | null;
  actor?: string;
}
export interface SetAliasResult {
  previous: number | null;
}

export interface GetAliasInput {
  model: string;
  alias: string;
}
export interface GetAliasResult {
  version: number | null;
  bundleId: string | null;
  /** Dataset the version was trained on (the nightly run compares new data with it). */
  datasetId: string | null;
  status: ModelStatus | null;
}

export interface SweepAbandonedVersionsInput {
  model: string;
}
export interface SweepAbandonedVersionsResult {
  /** Versions moved out of `candidate`/`pending_approval`/`approved` because their run ended without a decision. */
  swept: Array<{ version: number; from: ModelStatus; to: ModelStatus; run: string; runStatus: string }>;
}

export interface RecordApprovalInput {
  model: string;
  version: number;
  approved: boolean;
  approver: string;
  comment?: string;
}
export interface RecordApprovalResult {
  status: ModelStatus;
  approver: string;
}

/** The configured code version (`RECFLOW_CODE_VERSION`), else the git sha of the working directory, when known. */
export function codeVersion(configured?: string): string | undefined {
  if (configured) return configured;
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function workflowOf(): { workflowId?: string; runId?: string } {
  try {
    const w = Context.current().info.workflowExecution as { workflowId?: string; runId?: string } | undefined;
    return { workflowId: w?.workflowId, runId: w?.runId };
  } catch {
    return {};
  }
}

/** Registry activities. `registry` defaults to the embedded {@link FileModelRegistry} at `config.registryDir`. */
export function createRegistryActivities(
  deps: ActivityDeps,
  registry: ModelRegistry = new FileModelRegistry(deps.config.registryDir),
) {
  return {
    /** Register a bundle as a new immutable version with its lineage. Idempotent per bundle and workflow run. */
    async registerModel(input: RegisterModelInput): Promise<RegisterModelResult> {
      const bundle = await deps.store.get('bundle', input.bundleId);
      const manifest = JSON.parse(await readFile(join(bundle.path, 'bundle.json'), 'utf8')) as BundleManifest;
      const dataset = await deps.store.get('dataset', manifest.datasetId);
      const ck = await deps.store.find('checkpoint', manifest.checkpointId);
      const kind = manifest.kind ?? 'two-tower';
      const ckMeta = ck ? await kindOf(kind).readCheckpoint(ck.path) : undefined;
      let evaluation: EvaluationArtifact | undefined;
      if (input.evaluationId) {
        const ev = await deps.store.get('evaluation', input.evaluationId);
        evaluation = JSON.parse(await readFile(join(ev.path, 'evaluation.json'), 'utf8')) as EvaluationArtifact;
        if (evaluation.bundleId !== input.bundleId)
          throw new RecflowError(
            ErrorType.InvalidInput,
            `evaluation ${input.evaluationId} is of bundle ${evaluation.bundleId}, not ${input.bundleId}`,
          );
      }
      const metrics: Record<string, number> = {};
      for (const [p, m] of Object.entries(evaluation?.candidate.models ?? {}))
        for (const [k, v] of Object.entries(m.overall)) if (Number.isFinite(v)) metrics[`${p}.${k}`] = v;
      // Search models: every ranker of the report too (each variant, the hybrid, BM25, the zero-shot encoder).
      for (const r of evaluation?.candidate.search?.rankers ?? [])
        for (const [k, v] of Object.entries(r.overall)) if (Number.isFinite(v)) metrics[`search.${r.name}.${k}`] = v;
      const lineage: Lineage = {
        datasetId: manifest.datasetId,
        datasetHash: dataset.contentHash,
        checkpointId: manifest.checkpointId,
        codeVersion: codeVersion(deps.config.codeVersion),
        config: {
          kind,
          task: manifest.task ?? 'recommend',
          ...(ckMeta ? { model: ckMeta.config } : {}),
          ...input.config,
        },
        trainingBackend: ckMeta?.backend,
        gpu: ckMeta?.gpu,
        evaluationId: input.evaluationId,
        ...(evaluation
          ? {
              metrics,
              blessing: {
                blessed: evaluation.blessing.blessed,
                gates: evaluation.blessing.gates.map((g) => ({ name: g.name, passed: g.passed, reason: g.reason })),
              },
            }
          : {}),
      };
      const wf = workflowOf();
      const { version, created } = await registry.register({
        model: input.modelName,
        bundle: { id: bundle.id, contentHash: bundle.contentHash },
        lineage,
        workflowId: input.workflowId ?? wf.workflowId,
        runId: input.runId ?? wf.runId,
        status: input.status,
      });
      log.info('registered model', {
        model: input.modelName,
        version: version.version,
        created,
        bundleId: bundle.id,
      });
      return {
        model: version.model,
        version: version.version,
        ref: `${version.model}@v${version.version}`,
        status: version.status,
        created,
      };
    },

    /** Move a version to a status (allowed transitions only; idempotent when already there). */
    async setModelStatus(input: SetModelStatusInput): Promise<SetModelStatusResult> {
      const v = await registry.setStatus(input.model, input.version, input.status, {
        actor: input.actor,
        reason: input.reason,
        workflowId: workflowOf().workflowId,
      });
      return { model: v.model, version: v.version, status: v.status };
    },

    /** Point an alias (`champion`, `canary`) at a version, or remove it. Idempotent. */
    async setAlias(input: SetAliasInput): Promise<SetAliasResult> {
      return {
        previous: await registry.setAlias(input.model, input.alias, input.version, {
          actor: input.actor,
          workflowId: workflowOf().workflowId,
        }),
      };
    },

    /** The version an alias points at, with its bundle (nulls when the alias is not set). */
    async getAlias(input: GetAliasInput): Promise<GetAliasResult> {
      const v = await registry.find(`${input.model}@${input.alias}`);
      return v
        ? { version: v.version, bundleId: v.bundle.id, datasetId: v.lineage.datasetId, status: v.status }
        : { version: null, bundleId: null, datasetId: null, status: null };
    },

    /**
     * Versions whose lifecycle run ended without finishing them (terminated, timed out: no cleanup runs then) would
     * stay `pending_approval` (or `candidate`, `approved`) forever. Move each to `rejected` (`archived` if approved),
     * naming the run and how it ended. Versions of running runs, and of the calling run, are left alone.
     */
    async sweepAbandonedVersions(input: SweepAbandonedVersionsInput): Promise<SweepAbandonedVersionsResult> {
      const ctx = Context.current();
      const self = workflowOf().workflowId;
      const open: ModelStatus[] = ['candidate', 'pending_approval', 'approved'];
      const swept: SweepAbandonedVersionsResult['swept'] = [];
      const versions = await registry.listVersions(input.model).catch((err: unknown) => {
        if (err instanceof RecflowError && err.type === ErrorType.ModelNotFound) return [];
        throw err;
      });
      for (const v of versions) {
        const run = v.lineage.workflowId;
        if (!open.includes(v.status) || !run || run === self) continue;
        let runStatus: string;
        try {
          runStatus = (await ctx.client.workflow.getHandle(run).describe()).status.name;
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
          runStatus = 'NOT_FOUND';
        }
        if (runStatus === 'RUNNING') continue;
        const to: ModelStatus = v.status === 'approved' ? 'archived' : 'rejected';
        await registry.setStatus(input.model, v.version, to, {
          actor: 'recflow',
          reason: `its run ${run} ended (${runStatus}) without a decision`,
          workflowId: self,
        });
        swept.push({ version: v.version, from: v.status, to, run, runStatus });
      }
      if (swept.length) log.warn('swept versions of ended runs', { model: input.model, swept });
      return { swept };
    },

    /** Record a reviewer's decision: approved or rejected, with who and why. Idempotent for the same decision. */
    async recordApproval(input: RecordApprovalInput): Promise<RecordApprovalResult> {
      const v = await registry.recordApproval(
        input.model,
        input.version,
        { approved: input.approved, approver: input.approver, comment: input.comment },
        { workflowId: workflowOf().workflowId },
      );
      return { status: v.status, approver: v.approver ?? input.approver };
    },
  };
}
