import { readFileSync } from 'node:fs';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import { CPU_TASK_QUEUE, DEFAULT_MODEL_NAME, MODEL_NAME_SA, lifecycleWorkflowId } from '../../lib/constants';
import { ErrorType, RecflowError } from '../../lib/errors';
import { connectClient, requireTemporalTarget } from '../../lib/temporal/connection';
import {
  abortSignal,
  approveUpdate,
  promoteSignal,
  type ApprovalDecision,
  type ApprovalState,
  rejectUpdate,
  statusQuery,
  type CanaryStep,
  type LifecycleInput,
  type LifecycleResult,
  type LifecycleStatus,
} from '../../lib/lifecycle/types';
import { EXIT } from '../exit';

/** Connect to the configured Temporal (TEMPORAL_* variables or the embedded dev server `recflow dev` runs). */
export async function lifecycleClient(): Promise<Client> {
  return connectClient(requireTemporalTarget(loadConfig()));
}

/** The answer to a review: accepted (with the approval state) or refused, with a reason a reviewer can act on. */
export type ReviewOutcome = { ok: true; message: string; state: ApprovalState } | { ok: false; message: string };

/**
 * Approve or reject a run's candidate (the Update). A refusal by the workflow's validator comes back with its
 * reason; so does a decision on a run that has already ended (expired, rejected, failed...), with how it ended.
 */
export async function submitReview(
  client: Client,
  workflowId: string,
  kind: 'approve' | 'reject',
  decision: ApprovalDecision,
): Promise<ReviewOutcome> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const state = await handle.executeUpdate(kind === 'approve' ? approveUpdate : rejectUpdate, { args: [decision] });
    return { ok: true, message: `${state.state} by ${state.reviewer}`, state };
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return { ok: false, message: err.cause?.message ?? err.message };
    const ended = await handle.describe().catch(() => undefined);
    if (!ended) throw err;
    if (ended.status.name === 'RUNNING') throw err;
    let how = ended.status.name.toLowerCase();
    if (ended.status.name === 'COMPLETED') {
      const result = (await handle.result()) as LifecycleResult;
      how = `${result.outcome}: ${result.reason}`;
    }
    return { ok: false, message: `run ${workflowId} has ended (${how}); nothing left to ${kind}` };
  }
}

/** Parse `10:5m,25:5m,100:10m` into canary steps. */
export function parseSteps(text: string): CanaryStep[] {
  return text.split(',').map((part, i) => {
    const m = /^\s*(\d{1,3})\s*(?:%?)\s*:\s*(.+?)\s*$/.exec(part);
    const weight = m ? Number(m[1]) : NaN;
    if (!m || !(weight >= 0 && weight <= 100)) {
      throw new RecflowError(
        ErrorType.InvalidInput,
        `--steps item ${i + 1} '${part}': expected WEIGHT:BAKE, e.g. 10:5m`,
      );
    }
    return { weight, bake: m[2]! };
  });
}

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Build the workflow input from CLI options (an `--input` JSON file is the base, options override it). */
export function lifecycleInputFromOptions(o: RunOptions): LifecycleInput {
  const base: LifecycleInput = o.input ? (JSON.parse(readFileSync(o.input, 'utf8')) as LifecycleInput) : {};
  const input: LifecycleInput = { ...base, modelName: o.model ?? base.modelName ?? DEFAULT_MODEL_NAME };
  input.requestedBy = o.requestedBy ?? base.requestedBy ?? process.env.USER ?? 'unknown';
  if (o.data) input.data = { kind: 'dir', path: o.data, format: o.format === 'movielens' ? 'movielens' : 'recflow' };
  else if (o.seed !== undefined || o.users || o.items || o.events)
    input.data = { kind: 'synthetic', seed: o.seed, users: o.users, items: o.items, events: o.events };
  if (o.epochs !== undefined || o.trainSeed !== undefined || o.trials !== undefined) {
    input.train = {
      ...base.train,
      ...(o.epochs !== undefined ? { config: { ...base.train?.config, epochs: o.epochs } } : {}),
      ...(o.trainSeed !== undefined ? { seed: o.trainSeed } : {}),
      ...(o.trials ? { search: { trials: o.trials } } : {}),
    };
  }
  if (o.reviewers || o.approvalTimeout || o.autoApprove) {
    input.approval = {
      ...base.approval,
      ...(o.reviewers ? { reviewers: list(o.reviewers) } : {}),
      ...(o.approvalTimeout ? { timeout: o.approvalTimeout } : {}),
      ...(o.autoApprove ? { autoApprove: true } : {}),
    };
  }
  if (o.fleet || o.steps || o.trafficRps || o.skipRollout) {
    input.rollout = {
      ...base.rollout,
      ...(o.fleet ? { fleet: o.fleet } : {}),
      ...(o.steps ? { steps: parseSteps(o.steps) } : {}),
      ...(o.trafficRps ? { traffic: { rps: o.trafficRps } } : {}),
      ...(o.skipRollout ? { skip: true } : {}),
    };
  }
  return input;
}

interface RunOptions {
  input?: string;
  model?: string;
  requestedBy?: string;
  data?: string;
  format?: string;
  seed?: number;
  users?: number;
  items?: number;
  events?: number;
  epochs?: number;
  trainSeed?: number;
  trials?: number;
  reviewers?: string;
  approvalTimeout?: string;
  autoApprove?: boolean;
  fleet?: string;
  steps?: string;
  trafficRps?: number;
  skipRollout?: boolean;
  id?: string;
  wait?: boolean;
  json?: boolean;
}

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new RecflowError(ErrorType.InvalidInput, `${name} '${v}' is not a number`);
  return n;
};

/** Print a status for humans: where the run is, what it decided, and what to type next. */
export function formatStatus(s: LifecycleStatus): string {
  const lines: string[] = [];
  lines.push(`${s.workflowId}  model ${s.modelName}  requested by ${s.requestedBy}`);
  lines.push(`stage: ${s.stage}${s.outcome ? `  outcome: ${s.outcome}` : ''}${s.reason ? `  (${s.reason})` : ''}`);
  for (const st of s.steps) {
    const mark = st.state === 'done' ? 'ok ' : st.state === 'failed' ? 'ERR' : '.. ';
    lines.push(`  ${mark} ${st.name.padEnd(20)} ${st.detail ?? ''}`);
  }
  if (s.training)
    lines.push(
      `training: ${s.training.backend} on ${s.training.placement.taskQueue}${s.training.placement.fellBackToCpu ? ' (GPU fallback)' : ''}, ${Object.entries(
        s.training.metrics,
      )
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ')}`,
    );
  if (s.evaluation) {
    lines.push(`gates: ${s.evaluation.blessed ? 'blessed' : 'NOT blessed'}`);
    for (const g of s.evaluation.gates) lines.push(`  ${g.passed ? 'pass' : 'FAIL'} ${g.name}: ${g.reason}`);
  }
  const a = s.approval;
  if (a.state !== 'not_requested')
    lines.push(
      `approval: ${a.state}${a.reviewer ? ` by ${a.reviewer}` : ''}${a.comment ? ` ("${a.comment}")` : ''}${a.state === 'waiting' && a.deadline ? ` until ${a.deadline}` : ''}`,
    );
  for (const r of a.refused) lines.push(`  refused ${r.reviewer}: ${r.reason}`);
  if (s.rollout) {
    lines.push(
      `rollout on fleet ${s.rollout.fleet} (lock ${s.rollout.lock}, previous stable ${s.rollout.previousStable ?? '-'})`,
    );
    if (s.rollout.firstDeployment)
      lines.push('  first deployment of the fleet: straight to stable, no canary to compare');
    else
      s.rollout.steps.forEach((st, i) => {
        const last = st.analyses.at(-1);
        lines.push(
          `  ${i === s.rollout!.currentStep ? '>' : ' '} ${String(st.weight).padStart(3)}% bake ${st.bake}: ${st.state}${st.extensions ? ` (+${st.extensions} ext)` : ''}${last ? ` - ${last.summary}` : ''}`,
        );
      });
  }
  if (s.reportPath) lines.push(`report: ${s.reportPath}`);
  if (s.stage === 'awaiting_approval')
    lines.push(
      `next: npx recflow approve ${s.workflowId} --as <reviewer>   |   npx recflow reject ${s.workflowId} --as <reviewer> --comment "..."`,
    );
  if (s.stage === 'awaiting_decision')
    lines.push(
      `next: npx recflow promote ${s.workflowId} --as <you>   |   npx recflow abort ${s.workflowId} --as <you>`,
    );
  return lines.join('\n');
}

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await lifecycleClient();
  try {
    return await fn(client);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new RecflowError(ErrorType.InvalidInput, err.message);
    throw err;
  } finally {
    await client.connection.close();
  }
}

/** `run`, `status`, `approve`, `reject`, `abort`, `promote`: the lifecycle from the command line. */
export function registerLifecycleCommands(program: Command): void {
  program
    .command('run')
    .description('start a model lifecycle run (modelLifecycleWorkflow) on the configured Temporal')
    .option('--input <file>', 'workflow input as a JSON file (options below override it)')
    .option('--model <name>', 'registry model name', DEFAULT_MODEL_NAME)
    .option('--requested-by <who>', 'who asks (cannot approve it: four-eyes rule); default $USER')
    .option('--data <dir>', 'folder of CSV exports (events.csv, items.csv, users.csv) instead of a synthetic shop')
    .option('--format <format>', 'recflow or movielens (with --data)')
    .option('--seed <n>', 'synthetic shop seed', num('--seed'))
    .option('--users <n>', 'synthetic shop users', num('--users'))
    .option('--items <n>', 'synthetic shop items', num('--items'))
    .option('--events <n>', 'synthetic shop events', num('--events'))
    .option('--epochs <n>', 'training epochs', num('--epochs'))
    .option('--train-seed <n>', 'training seed', num('--train-seed'))
    .option('--trials <n>', 'hyperparameter search trials before the final training', num('--trials'))
    .option('--reviewers <list>', 'comma-separated reviewers allowed to approve')
    .option('--approval-timeout <duration>', "how long to wait for a review (default '72 hours')")
    .option('--auto-approve', 'approve without a human (recorded as auto-approve)')
    .option('--fleet <name>', 'serving fleet to roll out to')
    .option('--steps <list>', 'canary steps WEIGHT:BAKE, e.g. 10:5m,50:5m,100:5m')
    .option('--traffic-rps <n>', 'drive simulated users at the fleet during each bake', num('--traffic-rps'))
    .option('--skip-rollout', 'stop after the approval')
    .option('--id <workflowId>', 'workflow id (default recflow-lifecycle-<model>-<time>)')
    .option('--wait', 'wait for the run to end and print its result')
    .option('--json', 'machine-readable output')
    .action(async (o: RunOptions) => {
      const input = lifecycleInputFromOptions(o);
      const modelName = input.modelName ?? DEFAULT_MODEL_NAME;
      const workflowId =
        o.id ?? lifecycleWorkflowId(modelName, new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, ''));
      await withClient(async (client) => {
        const handle = await client.workflow.start('modelLifecycleWorkflow', {
          taskQueue: CPU_TASK_QUEUE,
          workflowId,
          args: [input],
          typedSearchAttributes: [{ key: MODEL_NAME_SA, value: modelName }],
          memo: { requestedBy: input.requestedBy, source: 'recflow run' },
        });
        if (!o.json) {
          console.log(`started ${workflowId}`);
          console.log(`  status:  npx recflow status ${workflowId}`);
          console.log(`  approve: npx recflow approve ${workflowId} --as <reviewer>`);
        }
        if (!o.wait) {
          if (o.json) console.log(JSON.stringify({ workflowId, runId: handle.firstExecutionRunId }));
          return;
        }
        const result = (await handle.result()) as LifecycleResult;
        if (o.json) console.log(JSON.stringify(result, null, 2));
        else console.log(`\n${formatStatus(result.status)}`);
        process.exitCode = result.outcome === 'promoted' || result.outcome === 'approved' ? EXIT.ok : EXIT.refused;
      });
    });

  program
    .command('status <workflowId>')
    .description('where a lifecycle run is: steps, metrics, gates, approval, canary')
    .option('--json', 'machine-readable output')
    .action(async (workflowId: string, o: { json?: boolean }) => {
      await withClient(async (client) => {
        const s = await client.workflow.getHandle(workflowId).query(statusQuery);
        console.log(o.json ? JSON.stringify(s, null, 2) : formatStatus(s));
      });
    });

  for (const kind of ['approve', 'reject'] as const) {
    program
      .command(`${kind} <workflowId>`)
      .description(`${kind} the candidate of a run awaiting approval (an Update: refused with the reason, exit 3)`)
      .requiredOption('--as <reviewer>', 'your reviewer name')
      .option('--comment <text>', kind === 'reject' ? 'why (required)' : 'a note for the registry')
      .action(async (workflowId: string, o: { as: string; comment?: string }) => {
        await withClient(async (client) => {
          const r = await submitReview(client, workflowId, kind, { reviewer: o.as, comment: o.comment });
          if (r.ok) console.log(`${workflowId}: ${r.message}`);
          else {
            console.error(`refused: ${r.message}`);
            process.exitCode = EXIT.refused;
          }
        });
      });
  }

  for (const [name, signal, what] of [
    ['abort', abortSignal, 'abort the canary: immediate rollback, no analysis'],
    ['promote', promoteSignal, 'promote a canary whose analysis was inconclusive'],
  ] as const) {
    program
      .command(`${name} <workflowId>`)
      .description(what)
      .requiredOption('--as <who>', 'your name (recorded)')
      .option('--reason <text>', 'why')
      .action(async (workflowId: string, o: { as: string; reason?: string }) => {
        await withClient(async (client) => {
          await client.workflow.getHandle(workflowId).signal(signal, { actor: o.as, reason: o.reason });
          console.log(`${name} sent to ${workflowId}`);
        });
      });
  }
}
