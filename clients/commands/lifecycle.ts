import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { Option, type Command } from 'commander';
import { ArtifactStore } from '../../lib/artifacts';
import { loadConfig } from '../../lib/config';
import type { SearchEvaluation } from '../../lib/eval/evaluate';
import type { EvaluationArtifact } from '../../activities/evaluate';
import {
  CPU_TASK_QUEUE,
  DEFAULT_MODEL_NAME,
  DEFAULT_SEARCH_FLEET,
  DEFAULT_SEARCH_MODEL_NAME,
  MODEL_NAME_SA,
  defaultModelName,
  lifecycleWorkflowId,
} from '../../lib/constants';
import { ErrorType, RecflowError } from '../../lib/errors';
import { KIND_NAMES, type KindName } from '../../lib/kinds';
import { checkLifecycleInput } from '../../lib/lifecycle/input';
import {
  abortSignal,
  approveUpdate,
  parseActorRequest,
  parseDecision,
  promoteSignal,
  rejectUpdate,
  statusQuery,
} from '../../lib/lifecycle/messages';
import { outcomeEffect } from '../../lib/lifecycle/outcomes';
import { describeStep, parseStepsOption, type RolloutStep } from '../../lib/lifecycle/steps';
import type {
  ApprovalDecision,
  ApprovalState,
  LifecycleInput,
  LifecycleResult,
  LifecycleStatus,
} from '../../lib/lifecycle/types';
import { connectClient, requireTemporalTarget } from '../../lib/temporal/connection';
import type { modelLifecycleWorkflow } from '../../workflows/lifecycle';
import { EXIT } from '../exit';
import { intOption, positiveOption } from '../options';
import { fleetWait, inFlight, progressLine } from '../progress';
import { TerminalConsole } from '../console';
import { watchRun } from '../watch';

/** Connect to the configured Temporal (TEMPORAL_* variables or the embedded dev server `recflow dev` runs). */
export async function lifecycleClient(): Promise<Client> {
  return connectClient(requireTemporalTarget(loadConfig()));
}

/** The answer to a review: accepted (with the approval state) or refused, with a reason a reviewer can act on. */
export type ReviewOutcome = { ok: true; message: string; state: ApprovalState } | { ok: false; message: string };

/**
 * Approve or reject a run's candidate (the Update). The payload is checked here first with the workflow's own rules
 * (lib/lifecycle/messages.ts). A refusal by the workflow's validator comes back with its reason. On a run that has
 * ended, the same decision it recorded is acknowledged (decisions are idempotent); any other is refused with how the
 * run ended.
 */
export async function submitReview(
  client: Client,
  workflowId: string,
  kind: 'approve' | 'reject',
  decision: ApprovalDecision,
): Promise<ReviewOutcome> {
  const parsed = parseDecision(decision, kind);
  if (!parsed.ok) return { ok: false, message: parsed.error };
  const handle = client.workflow.getHandle(workflowId);
  try {
    const state = await handle.executeUpdate(kind === 'approve' ? approveUpdate : rejectUpdate, {
      args: [parsed.value],
    });
    return { ok: true, message: `${state.state} by ${state.reviewer}`, state };
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return { ok: false, message: err.cause?.message ?? err.message };
    const ended = await handle.describe().catch(() => undefined);
    if (!ended) throw err;
    if (ended.status.name === 'RUNNING') throw err;
    let how = ended.status.name.toLowerCase();
    if (ended.status.name === 'COMPLETED') {
      const result = (await handle.result()) as LifecycleResult;
      const a = result.status.approval;
      const same = a.reviewer === parsed.value.reviewer && a.state === (kind === 'approve' ? 'approved' : 'rejected');
      if (same)
        return { ok: true, message: `${a.state} by ${a.reviewer} (already recorded; run ${result.outcome})`, state: a };
      how = `${result.outcome}: ${result.reason}`;
    }
    return { ok: false, message: `run ${workflowId} has ended (${how}); nothing left to ${kind}` };
  }
}

/** Parse `--steps` (`10:5m,25:5m,100:10m`, `pause`, `analysis:5m`) into rollout steps, or say what is wrong. */
export function parseSteps(text: string): RolloutStep[] {
  const { steps, errors } = parseStepsOption(text);
  if (errors.length) throw new RecflowError(ErrorType.InvalidInput, errors.join('; '));
  return steps;
}

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Resolve `--data` against the caller's directory and check it is a folder, before anything starts. */
export function resolveDataDir(dir: string, cwd = process.cwd()): string {
  const abs = resolve(cwd, dir);
  if (!existsSync(abs)) throw new RecflowError(ErrorType.InvalidInput, `--data ${dir}: ${abs} does not exist`);
  if (!statSync(abs).isDirectory())
    throw new RecflowError(ErrorType.InvalidInput, `--data ${dir}: ${abs} is not a folder of CSV exports`);
  return abs;
}

/** The data format of a folder: recflow exports or MovieLens, else an error naming what is missing. */
export function detectFormat(dir: string): 'recflow' | 'movielens' {
  const has = (f: string) => existsSync(resolve(dir, f));
  if (has('events.csv')) return 'recflow';
  if (has('ratings.dat') || has('ratings.csv')) return 'movielens';
  throw new RecflowError(
    ErrorType.InvalidInput,
    `${dir}: neither recflow exports (events.csv, items.csv) nor MovieLens (ratings.dat or ratings.csv) found`,
  );
}

/** Build the workflow input from CLI options (an `--input` JSON file is the base, options override it). */
export function lifecycleInputFromOptions(o: RunOptions, cwd = process.cwd()): LifecycleInput {
  let base: LifecycleInput = {};
  if (o.input) {
    try {
      base = JSON.parse(readFileSync(resolve(cwd, o.input), 'utf8')) as LifecycleInput;
    } catch (err) {
      throw new RecflowError(ErrorType.InvalidInput, `--input ${o.input}: ${(err as Error).message}`);
    }
  }
  const kind = o.kind ?? base.kind;
  const input: LifecycleInput = { ...base, modelName: o.model ?? base.modelName ?? defaultModelName(kind) };
  if (o.kind) input.kind = o.kind;
  input.requestedBy = o.requestedBy ?? base.requestedBy ?? process.env.USER ?? 'unknown';
  if (o.data) {
    const path = resolveDataDir(o.data, cwd);
    input.data = { kind: 'dir', path, format: o.format ?? detectFormat(path) };
  } else if (o.seed !== undefined || o.users || o.items || o.events || o.queries !== undefined)
    input.data = {
      kind: 'synthetic',
      seed: o.seed,
      users: o.users,
      items: o.items,
      events: o.events,
      ...(o.queries !== undefined ? { queries: o.queries } : {}),
    };
  if (input.data?.kind === 'dir' && !input.data.path.startsWith('/'))
    input.data = { ...input.data, path: resolveDataDir(input.data.path, cwd) };
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
      ...(o.approvalTimeout ? { timeout: o.approvalTimeout as never } : {}),
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
  // A fleet serves one model: a search model rolls out on its own fleet unless told otherwise.
  if ((input.kind ?? 'auto') === 'search' && !input.rollout?.fleet)
    input.rollout = { ...input.rollout, fleet: DEFAULT_SEARCH_FLEET };
  const checked = checkLifecycleInput(input);
  if (!checked.ok) throw new RecflowError(ErrorType.InvalidInput, `invalid run input: ${checked.errors.join('; ')}`);
  return input;
}

interface RunOptions {
  input?: string;
  model?: string;
  kind?: KindName | 'auto';
  requestedBy?: string;
  data?: string;
  format?: 'recflow' | 'movielens';
  seed?: number;
  users?: number;
  items?: number;
  events?: number;
  queries?: number;
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

/**
 * A search model's rankers on the test queries as text lines (`recflow status` prints them when the evaluation
 * artifact is in the local store): NDCG@10, MRR@10, Recall@100, ms per search at batch 1, bytes, what serves, the
 * export's reason for the int8 choice, and the ranker each precision serves (hybrid at its dense weight, or dense).
 */
export function searchRankerLines(search: SearchEvaluation): string[] {
  const f = (v: number | undefined, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '-');
  const lines = [
    `search: ${search.queries} test queries`,
    `  ${'ranker'.padEnd(22)} ${'ndcg@10'.padStart(7)} ${'mrr@10'.padStart(7)} ${'rec@100'.padStart(7)} ${'ms@1'.padStart(7)} ${'MB'.padStart(7)}  serves`,
  ];
  for (const r of search.rankers)
    lines.push(
      `  ${r.name.padEnd(22)} ${f(r.overall['ndcg@10'], 4).padStart(7)} ${f(r.overall['mrr@10'], 4).padStart(7)} ${f(
        r.overall['recall@100'],
        4,
      ).padStart(
        7,
      )} ${f(r.latencyMs?.['1'], 2).padStart(7)} ${f(r.bytes !== undefined ? r.bytes / 1e6 : undefined, 1).padStart(7)}  ${
        r.serves?.join(', ') ?? (r.role === 'variant' ? '' : r.role)
      }`,
    );
  lines.push(`  int8 serves ${search.choice.variant}: ${search.choice.reason}`);
  // What /v1/search answers with (and the gates judged): the hybrid at the variant's weight, or dense alone.
  for (const p of ['int8', 'fp32'] as const) {
    const v = search.served?.[p];
    if (v)
      lines.push(
        `  serves (${p}): ${v.weight < 1 ? `hybrid, ${v.variant} encoder, dense weight ${v.weight.toFixed(2)}` : `dense, ${v.variant} encoder`}`,
      );
  }
  return lines;
}

/** The search section of a run's evaluation, when its artifact is in this machine's store (else nothing). */
async function localSearchLines(s: LifecycleStatus): Promise<string[]> {
  if (!s.evaluation?.id || s.kind !== 'search') return [];
  try {
    const ref = await new ArtifactStore(loadConfig().artifactsDir).find('evaluation', s.evaluation.id);
    if (!ref) return [];
    const art = JSON.parse(readFileSync(resolve(ref.path, 'evaluation.json'), 'utf8')) as EvaluationArtifact;
    return art.candidate.search ? searchRankerLines(art.candidate.search) : [];
  } catch {
    return [];
  }
}

/** A step for people, whatever the status' version (the first version's steps were `{weight, bake}`). */
function stepLabel(st: object): string {
  const legacy = st as { weight?: number; bake?: string };
  if (legacy.weight !== undefined) return `${legacy.weight}% for ${legacy.bake}`;
  return describeStep(st as RolloutStep);
}

/** Print a status for humans: where the run is, what it decided, and what to type next. */
export function formatStatus(s: LifecycleStatus, live: string[] = []): string {
  const lines: string[] = [];
  lines.push(`${s.workflowId}  model ${s.modelName}${s.kind ? ` (${s.kind})` : ''}  requested by ${s.requestedBy}`);
  lines.push(`stage: ${s.stage}${s.outcome ? `  outcome: ${s.outcome}` : ''}${s.reason ? `  (${s.reason})` : ''}`);
  for (const st of s.steps) {
    const mark = st.state === 'done' ? 'ok ' : st.state === 'failed' ? 'ERR' : '.. ';
    const detail = st.error ? `${st.error.type}: ${st.error.message}` : (st.detail ?? '');
    lines.push(`  ${mark} ${(st.stage ?? '').padEnd(8)} ${st.name.padEnd(28)} ${detail}`);
  }
  for (const l of live) lines.push(`  >> ${l}`);
  if (s.error) lines.push(`error: ${s.error.type}: ${s.error.message}${s.error.step ? ` (in ${s.error.step})` : ''}`);
  if (s.training)
    lines.push(
      `training: ${s.training.backend} on ${s.training.placement.taskQueue}${s.training.placement.fellBackToCpu ? ' (GPU fallback)' : ''}, ${Object.entries(
        s.training.metrics,
      )
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ')}`,
    );
  if (s.evaluation) {
    const h = Object.entries(s.evaluation.headline ?? {});
    if (h.length)
      lines.push(
        `evaluation: ${h.map(([k, v]) => `${k} ${Number.isInteger(v) ? String(v) : v.toFixed(4)}`).join(', ')}`,
      );
    lines.push(`gates: ${s.evaluation.blessed ? 'blessed' : 'NOT blessed'}`);
    for (const g of [...s.evaluation.gates, ...(s.infra?.gates ?? [])])
      lines.push(`  ${g.passed ? 'pass' : 'FAIL'} ${g.name}: ${g.reason}`);
  }
  const a = s.approval;
  if (a.state !== 'not_requested')
    lines.push(
      `approval: ${a.state}${a.reviewer ? ` by ${a.reviewer}` : ''}${a.comment ? ` ("${a.comment}")` : ''}${a.state === 'waiting' && a.deadline ? ` until ${a.deadline}` : ''}`,
    );
  for (const r of a.refused) lines.push(`  refused ${r.reviewer}: ${r.reason}`);
  if (s.rollout) {
    const r = s.rollout;
    const current = r.currentStepIndex ?? (r as unknown as { currentStep?: number }).currentStep ?? -1;
    lines.push(
      `rollout on fleet ${r.fleet} (lock ${r.lock}, previous stable ${r.previousStable ?? '-'}${r.weight !== undefined ? `, canary at ${r.weight}%` : ''})`,
    );
    if (r.firstDeployment) lines.push('  first deployment of the fleet: straight to stable, no canary to compare');
    else
      r.steps.forEach((st, i) => {
        const last = st.analyses?.at(-1);
        lines.push(
          `  ${i === current ? '>' : ' '} ${String(i).padStart(2)} ${stepLabel(st).padEnd(22)} ${st.state}${st.extensions ? ` (+${st.extensions} ext)` : ''}${last ? ` - ${last.summary}` : ''}`,
        );
      });
    if (r.pause)
      lines.push(
        `  paused (${r.pause.reason}) since ${r.pause.since}${r.pause.until ? `, resumes at ${r.pause.until}` : ': waiting for promote or abort'}`,
      );
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

/** The live lines of a running run: the activity in flight with its progress, why it waits. */
export async function liveLines(client: Client, handle: WorkflowHandle, s: LifecycleStatus): Promise<string[]> {
  if (s.stage === 'done') return [];
  const lines = (await inFlight(handle)).map(progressLine);
  const wait = await fleetWait(client, s);
  if (wait) lines.push(wait);
  return lines;
}

/** A failed run's cause in one line (type and message of the root `ApplicationFailure`), no stack trace. */
export function failureLine(err: WorkflowFailedError): string {
  let e: unknown = err.cause;
  let msg = err.message;
  let type: string | undefined;
  for (let i = 0; e && i < 10; i++) {
    const f = e as { message?: string; type?: string; cause?: unknown };
    if (f.message) msg = f.message;
    if (f.type) type = f.type;
    e = f.cause;
  }
  return `${type ? `${type}: ` : ''}${msg}`;
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
    .option(
      '--model <name>',
      `registry model name (default ${DEFAULT_MODEL_NAME}; ${DEFAULT_SEARCH_MODEL_NAME} with --kind search)`,
    )
    .addOption(
      new Option('--kind <kind>', 'model kind to train and ship, or auto: the best candidate on validation').choices([
        'auto',
        ...KIND_NAMES,
      ]),
    )
    .option('--requested-by <who>', 'who asks (cannot approve it: four-eyes rule); default $USER')
    .option('--data <dir>', 'folder of exports (recflow CSVs or MovieLens) instead of a synthetic shop')
    .addOption(
      new Option('--format <format>', 'format of --data (default: detected)').choices(['recflow', 'movielens']),
    )
    .option('--seed <n>', 'synthetic shop seed', intOption(0))
    .option('--users <n>', 'synthetic shop users', intOption(1))
    .option('--items <n>', 'synthetic shop items', intOption(1))
    .option('--events <n>', 'synthetic shop events', intOption(1))
    .option('--queries <n>', 'synthetic shop search queries (the search log --kind search trains on)', intOption(0))
    .option('--epochs <n>', 'training epochs', intOption(1))
    .option('--train-seed <n>', 'training seed', intOption(0))
    .option('--trials <n>', 'hyperparameter search trials before the final training', intOption(0))
    .option('--reviewers <list>', 'comma-separated reviewers allowed to approve')
    .option('--approval-timeout <duration>', "how long to wait for a review (default '72 hours')")
    .option('--auto-approve', 'approve without a human (recorded as auto-approve)')
    .option(
      '--fleet <name>',
      `serving fleet to roll out to (default: default; ${DEFAULT_SEARCH_FLEET} with --kind search)`,
    )
    .option(
      '--steps <list>',
      'rollout steps: WEIGHT:BAKE (10:5m), pause, pause:1h, analysis:5m; e.g. 10:5m,50:5m,100:5m',
    )
    .option('--traffic-rps <n>', 'drive simulated users at the fleet during each analysis', positiveOption)
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
        const handle = await client.workflow.start<typeof modelLifecycleWorkflow>('modelLifecycleWorkflow', {
          taskQueue: CPU_TASK_QUEUE,
          workflowId,
          args: [input],
          typedSearchAttributes: [{ key: MODEL_NAME_SA, value: modelName }],
          memo: { requestedBy: input.requestedBy, source: 'recflow run' },
        });
        if (!o.json) {
          console.log(`started ${workflowId}`);
          console.log(`  status:  npx recflow status ${workflowId} --watch`);
          console.log(`  approve: npx recflow approve ${workflowId} --as <reviewer>`);
        }
        if (!o.wait) {
          if (o.json) console.log(JSON.stringify({ workflowId, runId: handle.firstExecutionRunId }));
          return;
        }
        let result: LifecycleResult;
        // A person waiting sees the run go by (steps, looks, the step in flight); --json stays machine-readable.
        const ui = o.json ? undefined : new TerminalConsole();
        const watcher = ui ? watchRun(handle, ui, undefined, () => false) : undefined;
        try {
          result = await handle.result();
          await watcher?.stop();
        } catch (err) {
          await watcher?.stop();
          if (!(err instanceof WorkflowFailedError)) throw err;
          const s = await handle.query(statusQuery).catch(() => undefined);
          if (o.json) console.log(JSON.stringify({ workflowId, failed: failureLine(err), status: s ?? null }, null, 2));
          else {
            if (s) console.log(`\n${formatStatus(s)}`);
            console.error(`\nrun failed: ${failureLine(err)}`);
          }
          process.exitCode = EXIT.failure;
          return;
        }
        if (o.json) console.log(JSON.stringify(result, null, 2));
        else console.log(`\n${formatStatus(result.status)}`);
        process.exitCode = EXIT[outcomeEffect(result.outcome, 'rollout').exit];
      });
    });

  program
    .command('status <workflowId>')
    .description('where a lifecycle run is: steps and their progress, metrics, gates, approval, rollout')
    .option('--json', 'machine-readable output')
    .option('--watch', 'refresh every 2 seconds until the run ends')
    .action(async (workflowId: string, o: { json?: boolean; watch?: boolean }) => {
      await withClient(async (client) => {
        const handle = client.workflow.getHandle(workflowId);
        for (;;) {
          const s = await handle.query(statusQuery);
          const live = await liveLines(client, handle, s);
          if (o.json) console.log(JSON.stringify({ ...s, inFlight: live }, null, 2));
          else {
            if (o.watch && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
            console.log(formatStatus(s, live));
            for (const l of await localSearchLines(s)) console.log(l);
          }
          if (!o.watch || s.stage === 'done') return;
          await new Promise((r) => setTimeout(r, 2000));
        }
      });
    });

  for (const kind of ['approve', 'reject'] as const) {
    program
      .command(`${kind} <workflowId>`)
      .description(`${kind} the candidate of a run awaiting approval (an Update: refused with the reason, exit 3)`)
      .requiredOption('--as <reviewer>', 'your reviewer name')
      .option('--comment <text>', kind === 'reject' ? 'why (required)' : 'a note for the registry')
      .action(async (workflowId: string, o: { as: string; comment?: string }) => {
        const decision = { reviewer: o.as, ...(o.comment !== undefined ? { comment: o.comment } : {}) };
        const parsed = parseDecision(decision, kind);
        if (!parsed.ok) throw new RecflowError(ErrorType.InvalidInput, parsed.error);
        await withClient(async (client) => {
          const r = await submitReview(client, workflowId, kind, parsed.value);
          if (r.ok) console.log(`${workflowId}: ${r.message}`);
          else {
            console.error(`refused: ${r.message}`);
            process.exitCode = EXIT.refused;
          }
        });
      });
  }

  for (const [name, signal, what] of [
    [
      'abort',
      abortSignal,
      'abort the run: before the review it stops, during the rollout the canary rolls back at once',
    ],
    ['promote', promoteSignal, 'a human go: resume an indefinite pause, or promote after an inconclusive analysis'],
  ] as const) {
    const cmd = program
      .command(`${name} <workflowId>`)
      .description(what)
      .requiredOption('--as <who>', 'your name (recorded)')
      .option('--reason <text>', 'why');
    if (name === 'promote') cmd.option('--full', 'at a pause: skip the remaining steps and promote now');
    cmd.action(async (workflowId: string, o: { as: string; reason?: string; full?: boolean }) => {
      const parsed = parseActorRequest({ actor: o.as, reason: o.reason, ...(o.full ? { full: true } : {}) }, name);
      if (!parsed.ok) throw new RecflowError(ErrorType.InvalidInput, parsed.error);
      await withClient(async (client) => {
        await client.workflow.getHandle(workflowId).signal(signal, parsed.value);
        console.log(`${name} sent to ${workflowId}`);
      });
    });
  }
}
