import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { loadConfig, type RecflowConfig } from '../../lib/config';
import { CPU_TASK_QUEUE, lifecycleWorkflowId } from '../../lib/constants';
import { DEFAULT_FLEET } from '../../lib/fleet/types';
import { FleetStore } from '../../lib/fleet/store';
import { approveUpdate, rejectUpdate, statusQuery } from '../../lib/lifecycle/messages';
import { describeStep } from '../../lib/lifecycle/steps';
import type { LifecycleInput, LifecycleResult, LifecycleStatus } from '../../lib/lifecycle/types';
import { createLogger } from '../../lib/log';
import { FileModelRegistry } from '../../lib/registry';
import type { modelLifecycleWorkflow } from '../../workflows/lifecycle';
import { paint, TerminalConsole } from '../console';
import { intOption, positiveOption } from '../options';
import { inFlight, progressLine } from '../progress';
import { startStack } from '../stack';
import { untilSignal } from './dev';
import { formatStatus, parseSteps } from './lifecycle';

interface DemoOptions {
  autoApprove?: boolean;
  small?: boolean;
  users?: number;
  items?: number;
  events?: number;
  epochs?: number;
  steps?: string;
  rps?: number;
  replicas?: number;
  ui?: boolean;
  port?: number;
  reviewer?: string;
}

const REQUESTER = 'ml-engineer';
const BIN = join(__dirname, '..', '..', 'bin', 'recflow.js');

/**
 * `npm run demo` / `npx recflow demo`: the whole mission on one machine. Starts (or reaches) the embedded Temporal
 * dev server and the CPU and GPU-queue workers, and serving replicas as their own processes (the production shape:
 * the canary's latency is measured on serving, not on the training host); runs a first lifecycle that becomes the
 * champion (the first deployment of the fleet), then a second one on fresher data that must beat it: gates, a
 * reviewer's approval (prompted, or `--auto-approve`), a canary with simulated users clicking from the shop's
 * ground truth, and promotion or rollback. Ctrl-C cancels the run in flight (which rolls the fleet back) and stops
 * everything. The terminal shows readable progress; the structured logs go to the log file it names.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the whole lifecycle twice on a synthetic shop: champion, then a challenger with a canary')
    .option('--auto-approve', 'approve without asking (recorded as auto-approve in the registry)')
    .option('--small', 'a small shop and short windows (CI, a quick look)')
    .option('--users <n>', 'shop users', intOption(1))
    .option('--items <n>', 'shop items', intOption(1))
    .option('--events <n>', 'shop events', intOption(1))
    .option('--epochs <n>', 'training epochs', intOption(1))
    .option('--steps <list>', 'rollout steps WEIGHT:BAKE (default 10:20s,50:20s,95:20s)')
    .option('--rps <n>', 'simulated requests per second during each analysis window', positiveOption)
    .option('--replicas <n>', 'serving replicas to start (processes)', intOption(1, 16), 2)
    .option('--reviewer <name>', 'reviewer name for the prompt', 'reviewer')
    .option('--ui', 'serve the Temporal Web UI')
    .option('--port <port>', 'gRPC port of the embedded server (0: any free port)', intOption(0, 65535))
    .action(async (o: DemoOptions) => runDemo(o));
}

/** Serving replicas as child processes of the demo, following the fleet's desired state. */
async function startReplicas(
  config: RecflowConfig,
  n: number,
  ui: TerminalConsole,
): Promise<{ procs: ChildProcess[]; urls: string[]; stop(): Promise<void> }> {
  const procs: ChildProcess[] = [];
  const ids = Array.from({ length: n }, (_, i) => `demo-${i + 1}`);
  for (const id of ids) {
    const p = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--fleet', DEFAULT_FLEET, '--replica-id', id, '--poll-ms', '500', '--threads', '1'],
      { env: { ...process.env, RECFLOW_HOME: config.home }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    p.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n')) if (line.trim()) ui.line(paint.dim(`[${id}] ${line}`));
    });
    procs.push(p);
  }
  const store = new FleetStore(config.registryDir, DEFAULT_FLEET);
  const end = Date.now() + 60_000;
  for (;;) {
    const live = (await store.readReports({ liveWithinMs: 5000 })).filter((r) => ids.includes(r.replicaId));
    if (live.length === n) {
      return {
        procs,
        urls: live.map((r) => r.url),
        async stop() {
          for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
          await Promise.all(
            procs.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : Promise.resolve())),
          );
        },
      };
    }
    const dead = procs.find((p) => p.exitCode !== null);
    if (dead || Date.now() > end) {
      for (const p of procs) p.kill('SIGKILL');
      throw new Error(
        `the serving replicas did not come up (${dead ? `one exited with ${dead.exitCode}` : 'timeout'})`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function runDemo(o: DemoOptions): Promise<void> {
  const config = loadConfig();
  const ui = new TerminalConsole();
  const logger = createLogger('demo', config);
  const say = (msg: string) => ui.line(msg);
  const small = o.small ?? false;
  const shop = {
    users: o.users ?? (small ? 600 : 3000),
    items: o.items ?? (small ? 300 : 1500),
    events: o.events ?? (small ? 30_000 : 200_000),
  };
  const steps = parseSteps(o.steps ?? (small ? '20:8s,95:8s' : '10:20s,50:20s,95:20s'));
  const rps = o.rps ?? (small ? 60 : 80);

  say(paint.bold('recflow demo: embedded Temporal, CPU + GPU-queue workers, serving replicas, two lifecycle runs'));
  if (config.logFormat === 'pretty')
    say(`logs:      ${config.logFile} (JSON lines; --log-format json prints them here)`);
  const stack = await startStack(config, logger, { ui: o.ui, port: o.port });
  let replicas: Awaited<ReturnType<typeof startReplicas>> | undefined;
  let current: WorkflowHandle | undefined;
  let stopping = false;
  const stopAll = async () => {
    await replicas?.stop().catch(() => undefined);
    await stack.stop();
  };
  const onSignal = untilSignal().then(async (sig) => {
    stopping = true;
    ui.settle();
    say(`\n${sig}: stopping${current ? `; cancelling ${current.workflowId} (its cleanup rolls the fleet back)` : ''}`);
    if (current) {
      await current.cancel().catch(() => undefined);
      await current.result().catch(() => undefined);
    }
    await stopAll();
    process.exit(130);
  });
  void onSignal;

  try {
    say(
      `Temporal:  ${stack.target.connectionOptions.address}${stack.embedded?.uiUrl ? `  UI ${stack.embedded.uiUrl}` : ''}`,
    );
    replicas = await startReplicas(config, o.replicas ?? 2, ui);
    say(`Serving:   ${replicas.urls.join('  ')}  (one process each; metrics at /metrics)`);
    say(`Store:     ${config.artifactsDir}\nRegistry:  ${config.registryDir}\n`);

    const registry = new FileModelRegistry(config.registryDir);
    const modelName = 'shop-recs';
    const champion = await registry.find(`${modelName}@champion`).catch(() => undefined);
    const common: LifecycleInput = {
      modelName,
      requestedBy: REQUESTER,
      rollout: {
        fleet: DEFAULT_FLEET,
        steps,
        traffic: { rps, users: small ? 150 : 400 },
        convergeTimeout: '1 minute',
        criteria: small ? { minRequests: 30, minImpressions: 200 } : undefined,
        maxExtensions: 1,
        onInconclusive: o.autoApprove ? 'rollback' : 'wait',
      },
    };
    const run = async (label: string, input: LifecycleInput, interactive: boolean): Promise<LifecycleResult> => {
      const workflowId = lifecycleWorkflowId(modelName, `${label}-${Date.now()}`);
      current = await stack.client.workflow.start<typeof modelLifecycleWorkflow>('modelLifecycleWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId,
        args: [input],
      });
      say(`\n${paint.bold(`== ${label}: ${workflowId}`)}`);
      say(paint.dim(`   npx recflow status ${workflowId} --watch`));
      const handle = current;
      const watcher = watch(handle, ui, interactive ? (o.reviewer ?? 'reviewer') : undefined, () => stopping);
      const result = (await handle.result()) as LifecycleResult;
      await watcher.stop();
      current = undefined;
      say(`\n${formatStatus(result.status)}`);
      return result;
    };

    if (!champion) {
      await run(
        'champion',
        {
          ...common,
          // Today's production model: a quickly trained two-tower (what a team starts with).
          kind: 'two-tower',
          train: { config: { epochs: o.epochs ?? 2 } },
          data: { kind: 'synthetic', seed: 1, ...shop },
          approval: { autoApprove: true },
        },
        false,
      );
    } else {
      say(`champion: ${modelName}@v${champion.version} (from an earlier demo run)`);
    }
    const challenger = await run(
      'challenger',
      {
        ...common,
        // Fresher data (the same shop, a new day's log), and every kind trained: the best on validation ships.
        kind: 'auto',
        data: { kind: 'synthetic', seed: 1, ...shop, events: Math.round(shop.events * 1.25) },
        train: { seed: 7, ...(o.epochs ? { config: { epochs: o.epochs } } : {}) },
        approval: { autoApprove: o.autoApprove ?? false, reviewers: [] },
      },
      !o.autoApprove,
    );
    const mark = challenger.outcome === 'promoted' ? paint.ok : paint.warn;
    say(`\nresult: ${mark(challenger.outcome)} - ${challenger.reason}`);
    say(`fleet ${DEFAULT_FLEET}: previous stable ${challenger.status.rollout?.previousStable ?? '-'}`);
    if (challenger.status.reportPath) say(`report: ${challenger.status.reportPath}`);
    say(`models: npx recflow models list    fleet: npx recflow fleet status`);
  } finally {
    if (!stopping) await stopAll();
  }
}

/**
 * Follow a run on the terminal: a line per finished step and per stage, a live progress line for the activity in
 * flight (training epochs and batches, data rows, the open analysis window), a line per analysis window as it
 * closes, and the review prompt (when `reviewer` is given) with nothing else printed in the middle of it.
 */
function watch(
  handle: WorkflowHandle,
  ui: TerminalConsole,
  reviewer: string | undefined,
  stopped: () => boolean,
): { stop(): Promise<void> } {
  const printed = new Set<number>();
  const windows = new Set<string>();
  let lastStage = '';
  let prompting = false;
  let done = false;
  const tick = async () => {
    const s: LifecycleStatus | undefined = await handle.query(statusQuery).catch(() => undefined);
    if (!s) return;
    s.steps.forEach((st, i) => {
      if (st.state === 'running' || printed.has(i)) return;
      printed.add(i);
      const mark = st.state === 'done' ? paint.ok('ok ') : paint.bad('ERR');
      const detail = st.error ? `${st.error.type}: ${st.error.message}` : (st.detail ?? '');
      ui.line(`   ${mark} ${st.name.padEnd(26)} ${detail}`);
    });
    if (s.stage !== lastStage) {
      lastStage = s.stage;
      ui.line(paint.dim(`   [${s.stage}]`));
    }
    s.rollout?.steps.forEach((st, i) =>
      (st.analyses ?? []).forEach((a, k) => {
        const key = `${i}.${k}`;
        if (windows.has(key)) return;
        windows.add(key);
        const v =
          a.verdict === 'pass'
            ? paint.ok(a.verdict)
            : a.verdict === 'fail'
              ? paint.bad(a.verdict)
              : paint.warn(a.verdict);
        ui.line(`   window ${describeStep(st)}${k ? ` +${k}` : ''} at ${s.rollout!.weight}%: ${v} - ${a.summary}`);
      }),
    );
    const live = (await inFlight(handle))[0];
    ui.progress(live ? `   ${progressLine(live)}` : '');
    if (reviewer && !prompting && s.stage === 'awaiting_approval' && !stopped()) {
      prompting = true;
      void review(handle, reviewer, ui);
    }
  };
  const timer = setInterval(() => {
    if (!done) void tick();
  }, 1000);
  return {
    async stop() {
      done = true;
      clearInterval(timer);
      await tick();
      ui.settle();
    },
  };
}

/** Ask on the terminal; the same decision can come from another terminal with `npx recflow approve`. */
async function review(handle: WorkflowHandle, reviewer: string, ui: TerminalConsole): Promise<void> {
  ui.line(`\n   The candidate awaits review. From another terminal:`);
  ui.line(`     npx recflow approve ${handle.workflowId} --as <reviewer> [--comment "..."]`);
  ui.line(`     npx recflow reject  ${handle.workflowId} --as <reviewer> --comment "why"`);
  if (!process.stdin.isTTY) {
    ui.line('   (no terminal: waiting for that command)');
    return;
  }
  try {
    const answer = (await ui.ask(`   Approve as '${reviewer}'? [y/n] `)).toLowerCase();
    const approve = answer === 'y' || answer === 'yes';
    const comment = approve ? 'approved in the demo prompt' : (await ui.ask('   Why? ')) || 'rejected in the demo';
    await handle.executeUpdate(approve ? approveUpdate : rejectUpdate, { args: [{ reviewer, comment }] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) ui.line(`   refused: ${err.cause?.message}`);
  }
}
