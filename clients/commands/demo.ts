import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { loadConfig, type RecflowConfig } from '../../lib/config';
import {
  CPU_TASK_QUEUE,
  DEFAULT_SEARCH_FLEET,
  DEFAULT_SEARCH_MODEL_NAME,
  lifecycleWorkflowId,
} from '../../lib/constants';
import { DEFAULT_GATES, SEARCH_GATES } from '../../lib/eval/gates';
import { DEFAULT_FLEET } from '../../lib/fleet/types';
import { FleetStore } from '../../lib/fleet/store';
import type { LifecycleInput, LifecycleResult } from '../../lib/lifecycle/types';
import { createLogger } from '../../lib/log';
import { FileModelRegistry } from '../../lib/registry';
import type { modelLifecycleWorkflow } from '../../workflows/lifecycle';
import { paint, TerminalConsole } from '../console';
import { intOption, positiveOption } from '../options';
import { startStack } from '../stack';
import { watchRun } from '../watch';
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
  /** `--no-search`: leave out the product-search lifecycle. @default true */
  search?: boolean;
}

const REQUESTER = 'ml-engineer';
const BIN = join(__dirname, '..', '..', 'bin', 'recflow.js');

/**
 * `npm run demo` / `npx recflow demo`: the whole mission on one machine. Starts (or reaches) the embedded Temporal
 * dev server, the workflow (CPU-queue) worker, and as their own processes the training (GPU-queue) worker and the
 * serving replicas (the production shape: training never holds the workflow worker's event loop, and the canary's
 * latency is measured on serving, not on the training host); runs a first lifecycle that becomes the
 * champion (the first deployment of the fleet), then a second one on fresher data that must beat it: gates, a
 * reviewer's approval (prompted, or `--auto-approve`), a canary with simulated users clicking from the shop's
 * ground truth, and promotion or rollback. Then product search goes the same way on its own fleet (`--no-search`
 * leaves it out): the zero-shot MiniLM encoder first (beside BM25), then the encoder fine-tuned on the shop's search
 * log, its canary driven by simulated searchers. Ctrl-C cancels the run in flight (which rolls the fleet back) and stops
 * everything. The terminal shows readable progress; the structured logs go to the log file it names.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'run the whole lifecycle on a synthetic shop: champion, then a challenger with a canary; then the same for product search',
    )
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
    .option('--no-search', 'leave out the product-search lifecycle (fine-tuned MiniLM beside BM25)')
    .action(async (o: DemoOptions) => runDemo(o));
}

/**
 * The champion gate of `--small` (recommender and search): a few hundred test users or queries cannot show "no worse
 * than the champion by 2 %" (the bound alone is wider), so the small demo lets the canary decide.
 */
const SMALL_CHAMPION_GATE = { metric: 'ndcg@10', maxRelativeDrop: 0.5, confidence: 0.9 } as const;

/** How long a stopping child process gets to finish its work before it is killed. */
const CHILD_GRACE_MS = 15_000;

/** Stop a child process: SIGTERM, then SIGKILL after {@link CHILD_GRACE_MS}. */
async function stopChild(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), CHILD_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * The GPU-queue worker (training, with the CPU fallback) as a child process of the demo, against the demo's embedded
 * Temporal (found through `RECFLOW_HOME`). Its structured logs go to the same log file; its stderr is shown dimmed.
 */
function startGpuWorker(config: RecflowConfig, ui: TerminalConsole): { proc: ChildProcess; stop(): Promise<void> } {
  const proc = spawn(process.execPath, [BIN, 'worker', '--queue', 'gpu'], {
    env: { ...process.env, RECFLOW_HOME: config.home },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc.stderr?.on('data', (d: Buffer) => {
    for (const line of d.toString('utf8').split('\n')) if (line.trim()) ui.line(paint.dim(`[gpu-worker] ${line}`));
  });
  proc.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGKILL')
      ui.line(paint.warn(`[gpu-worker] exited (${signal ?? `code ${code}`}): training waits for a worker`));
  });
  return { proc, stop: () => stopChild(proc) };
}

/** Serving replicas as child processes of the demo, following the fleet's desired state. */
async function startReplicas(
  config: RecflowConfig,
  n: number,
  ui: TerminalConsole,
  fleet = DEFAULT_FLEET,
): Promise<{ procs: ChildProcess[]; urls: string[]; stop(): Promise<void> }> {
  const procs: ChildProcess[] = [];
  const prefix = fleet === DEFAULT_FLEET ? 'demo' : `demo-${fleet}`;
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
  for (const id of ids) {
    const p = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--fleet', fleet, '--replica-id', id, '--poll-ms', '500', '--threads', '1'],
      { env: { ...process.env, RECFLOW_HOME: config.home }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    p.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n')) if (line.trim()) ui.line(paint.dim(`[${id}] ${line}`));
    });
    procs.push(p);
  }
  const store = new FleetStore(config.registryDir, fleet);
  const end = Date.now() + 60_000;
  for (;;) {
    const live = (await store.readReports({ liveWithinMs: 5000 })).filter((r) => ids.includes(r.replicaId));
    if (live.length === n) {
      return {
        procs,
        urls: live.map((r) => r.url),
        async stop() {
          await Promise.all(procs.map(stopChild));
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

  say(
    paint.bold(
      `recflow demo: embedded Temporal, a workflow worker, a training (GPU-queue) worker process, serving replicas, two lifecycle runs${o.search === false ? '' : ' per task (recommendations, then search)'}`,
    ),
  );
  if (config.logFormat === 'pretty')
    say(`logs:      ${config.logFile} (JSON lines; --log-format json prints them here)`);
  // Training runs in its own worker process (`recflow worker --queue gpu`, the production shape): a fine-tune's
  // synchronous steps would otherwise hold the event loop of the workflow worker and of this terminal's watcher.
  const stack = await startStack(config, logger, { ui: o.ui, port: o.port, gpuWorker: false });
  const gpuWorker = startGpuWorker(config, ui);
  let replicas: Awaited<ReturnType<typeof startReplicas>> | undefined;
  let searchReplicas: Awaited<ReturnType<typeof startReplicas>> | undefined;
  let current: WorkflowHandle | undefined;
  let stopping = false;
  const stopAll = async () => {
    await replicas?.stop().catch(() => undefined);
    await searchReplicas?.stop().catch(() => undefined);
    await gpuWorker.stop().catch(() => undefined);
    await stack.stop();
  };
  // Ctrl-C cancels the run in flight; no keep-alive: the demo ends when its runs are done.
  const onSignal = untilSignal({ keepAlive: false }).then(async (sig) => {
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
    // --small: about 250 test users cannot show "no worse than the champion" within 2 % (the bound alone is wider),
    // nor do two kinds' AUCs compare: the small demo lets the canary decide; the default size keeps the defaults.
    const recommenderGates = small ? { ...DEFAULT_GATES, champion: [SMALL_CHAMPION_GATE] } : undefined;
    const common: LifecycleInput = {
      modelName,
      requestedBy: REQUESTER,
      rollout: {
        fleet: DEFAULT_FLEET,
        steps,
        // Requests from the whole user base, each user as often as their activity in the shop (no `users` panel):
        // a panel of a few hundred heavy users makes the canary's CTR depend on which of them it got
        // (docs/canary-statistics.md, "On the real fleet").
        traffic: { rps },
        convergeTimeout: '1 minute',
        criteria: small ? { minRequests: 30, minImpressions: 200 } : undefined,
        maxExtensions: 2,
        onInconclusive: o.autoApprove ? 'rollback' : 'wait',
      },
    };
    const run = async (label: string, input: LifecycleInput, interactive: boolean): Promise<LifecycleResult> => {
      const workflowId = lifecycleWorkflowId(input.modelName ?? modelName, `${label}-${Date.now()}`);
      current = await stack.client.workflow.start<typeof modelLifecycleWorkflow>('modelLifecycleWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId,
        args: [input],
      });
      say(`\n${paint.bold(`== ${label}: ${workflowId}`)}`);
      say(paint.dim(`   npx recflow status ${workflowId} --watch`));
      const handle = current;
      const watcher = watchRun(handle, ui, interactive ? (o.reviewer ?? 'reviewer') : undefined, () => stopping);
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
        ...(recommenderGates ? { gates: recommenderGates } : {}),
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

    if (o.search !== false) {
      // Product search, the same lifecycle on its own fleet: the zero-shot encoder first, then the fine-tuned one.
      searchReplicas = await startReplicas(config, o.replicas ?? 2, ui, DEFAULT_SEARCH_FLEET);
      say(`\nSearch serving: ${searchReplicas.urls.join('  ')}  (fleet ${DEFAULT_SEARCH_FLEET}, POST /v1/search)`);
      const searchModel = DEFAULT_SEARCH_MODEL_NAME;
      const searchChampion = await registry.find(`${searchModel}@champion`).catch(() => undefined);
      // A bounded number of pairs: minutes on two CPU cores. All six layers at the default size (validation NDCG@10
      // on this shop: top two layers +3.5 % over the pretrained encoder, all six +8.5 %); the top two, no student, on
      // --small.
      const searchConfig = small ? { maxPairs: 400, student: false } : { maxPairs: 3000, trainableLayers: 6 };
      const search: LifecycleInput = {
        ...common,
        modelName: searchModel,
        kind: 'search',
        // --small: a few hundred test queries cannot show "no worse by 2 %" either; the canary decides.
        ...(small ? { gates: { ...SEARCH_GATES, champion: [SMALL_CHAMPION_GATE] } } : {}),
        // The champion's shop with a larger search log (queries.csv, search_events.csv): about 900 test queries, so
        // the champion gate's 95 % bound can tell "no worse by 2 %" (with the default log's ~270 it is about ±3 %).
        data: { kind: 'synthetic', seed: 1, ...shop, ...(small ? {} : { queries: 10_000 }) },
        rollout: { ...common.rollout, fleet: DEFAULT_SEARCH_FLEET },
      };
      if (!searchChampion)
        await run(
          'search-champion',
          {
            ...search,
            train: { config: { ...searchConfig, epochs: 0 } },
            approval: { autoApprove: true },
          },
          false,
        );
      else say(`search champion: ${searchModel}@v${searchChampion.version} (from an earlier demo run)`);
      const searched = await run(
        'search-challenger',
        {
          ...search,
          train: { seed: 7, config: { ...searchConfig, epochs: o.epochs ?? 1 } },
          approval: { autoApprove: o.autoApprove ?? false, reviewers: [] },
        },
        !o.autoApprove,
      );
      const smark = searched.outcome === 'promoted' ? paint.ok : paint.warn;
      say(`\nsearch result: ${smark(searched.outcome)} - ${searched.reason}`);
      if (searched.status.reportPath) say(`search report: ${searched.status.reportPath}`);
    }
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
