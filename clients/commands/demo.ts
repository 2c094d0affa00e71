import { createInterface } from 'node:readline/promises';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import { CPU_TASK_QUEUE, lifecycleWorkflowId } from '../../lib/constants';
import { DEFAULT_FLEET } from '../../lib/fleet/types';
import { createLogger } from '../../lib/log';
import { FileModelRegistry } from '../../lib/registry';
import type { RunningServer, startServer as StartServer } from '../../serving/server';
import { approveUpdate, rejectUpdate, statusQuery } from '../../lib/lifecycle/messages';
import { describeStep } from '../../lib/lifecycle/steps';
import type { LifecycleInput, LifecycleResult, LifecycleStatus } from '../../lib/lifecycle/types';
import { inFlight, progressLine as activityProgress } from '../progress';
import { intOption, positiveOption } from '../options';
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

/**
 * `npm run demo` / `npx recflow demo`: the whole mission on one machine. Starts (or reaches) the embedded Temporal
 * dev server, the CPU and GPU-queue workers, two serving replicas; runs a first lifecycle that becomes the champion
 * (the first deployment of the fleet), then a second one on fresher data that must beat it: gates, a reviewer's
 * approval (prompted, or `--auto-approve`), a canary with simulated users clicking from the shop's ground truth, and
 * promotion or rollback. Ctrl-C cancels the run in flight (which rolls the fleet back) and stops everything.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the whole lifecycle twice on a synthetic shop: champion, then a challenger with a canary')
    .option('--auto-approve', 'approve without asking (recorded as auto-approve in the registry)')
    .option('--small', 'a small shop and short bakes (CI, a quick look)')
    .option('--users <n>', 'shop users', intOption(1))
    .option('--items <n>', 'shop items', intOption(1))
    .option('--events <n>', 'shop events', intOption(1))
    .option('--epochs <n>', 'training epochs', intOption(1))
    .option('--steps <list>', 'canary steps WEIGHT:BAKE (default 10:20s,50:20s,100:20s)')
    .option('--rps <n>', 'simulated requests per second during each bake', positiveOption)
    .option('--replicas <n>', 'serving replicas to start', intOption(1, 16), 2)
    .option('--reviewer <name>', 'reviewer name for the prompt', 'reviewer')
    .option('--ui', 'serve the Temporal Web UI')
    .option('--port <port>', 'gRPC port of the embedded server (0: any free port)', intOption(0, 65535))
    .action(async (o: DemoOptions) => runDemo(o));
}

async function runDemo(o: DemoOptions): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('demo', config.logLevel);
  const say = (msg: string) => process.stdout.write(`${msg}\n`);
  const small = o.small ?? false;
  const shop = {
    users: o.users ?? (small ? 600 : 3000),
    items: o.items ?? (small ? 300 : 1500),
    events: o.events ?? (small ? 30_000 : 200_000),
  };
  const steps = parseSteps(o.steps ?? (small ? '20:8s,100:8s' : '10:20s,50:20s,100:20s'));
  const rps = o.rps ?? (small ? 60 : 80);

  say('recflow demo: embedded Temporal, CPU + GPU-queue workers, serving fleet, two lifecycle runs');
  const stack = await startStack(config, logger, { ui: o.ui, port: o.port });
  const servers: RunningServer[] = [];
  let current: WorkflowHandle | undefined;
  let stopping = false;
  const stopAll = async () => {
    for (const s of servers.splice(0)) await s.close().catch(() => undefined);
    await stack.stop();
  };
  const onSignal = untilSignal().then(async (sig) => {
    stopping = true;
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
    const { startServer } = require('../../serving/server') as { startServer: typeof StartServer };
    for (let i = 0; i < (o.replicas ?? 2); i++) {
      servers.push(
        await startServer({
          port: 0,
          registryDir: config.registryDir,
          fleet: DEFAULT_FLEET,
          replicaId: `demo-${i + 1}`,
          pollMs: 500,
          logger: false,
          model: { bundleRoots: [config.artifactsDir] },
        }),
      );
    }
    say(`Serving:   ${servers.map((s) => s.url).join('  ')}  (metrics at /metrics)`);
    say(`Store:     ${config.artifactsDir}\nRegistry:  ${config.registryDir}\n`);

    const registry = new FileModelRegistry(config.registryDir);
    const modelName = 'shop-recs';
    const champion = await registry.find(`${modelName}@champion`).catch(() => undefined);
    const common: LifecycleInput = {
      modelName,
      requestedBy: REQUESTER,
      train: o.epochs ? { config: { epochs: o.epochs } } : undefined,
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
      current = await stack.client.workflow.start('modelLifecycleWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId,
        args: [input],
      });
      say(`\n== ${label}: ${workflowId}`);
      say(`   npx recflow status ${workflowId}`);
      const handle = current;
      const progress = watch(handle, say);
      if (interactive) void reviewPrompt(handle, o.reviewer ?? 'reviewer', say, () => stopping);
      const result = (await handle.result()) as LifecycleResult;
      progress.stop();
      current = undefined;
      say(`\n${formatStatus(result.status)}`);
      return result;
    };

    if (!champion) {
      await run(
        'champion',
        {
          ...common,
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
        // Fresher data: the same shop, more events (a new day's log).
        data: { kind: 'synthetic', seed: 1, ...shop, events: Math.round(shop.events * 1.25) },
        train: { ...common.train, seed: 7 },
        approval: { autoApprove: o.autoApprove ?? false, reviewers: [] },
      },
      !o.autoApprove,
    );
    const fleet = await stack.client.workflow
      .getHandle(challenger.status.workflowId)
      .query(statusQuery)
      .catch(() => challenger.status);
    say(`\nresult: ${challenger.outcome} - ${challenger.reason}`);
    say(`fleet ${DEFAULT_FLEET}: previous stable ${fleet.rollout?.previousStable ?? '-'}`);
    say(`models: npx recflow models list    fleet: npx recflow fleet status`);
  } finally {
    if (!stopping) await stopAll();
  }
}

/** Print each new step and stage of a run as it happens. */
function watch(handle: WorkflowHandle, say: (m: string) => void): { stop(): void } {
  const printed = new Set<number>();
  let lastStage = '';
  let lastCanary = '';
  let lastProgress = '';
  const timer = setInterval(() => {
    handle
      .query(statusQuery)
      .then((s: LifecycleStatus) => {
        s.steps.forEach((st, i) => {
          if (st.state === 'running' || printed.has(i)) return;
          printed.add(i);
          say(`   ${st.name}: ${st.detail ?? st.state}`);
        });
        if (s.stage !== lastStage) {
          lastStage = s.stage;
          say(`   [${s.stage}]`);
        }
        void progressLine(handle).then((line) => {
          if (line && line !== lastProgress) {
            lastProgress = line;
            say(`   ${line}`);
          }
        });
        const step = s.rollout?.steps[s.rollout.currentStepIndex];
        const last = step?.analyses?.at(-1);
        const c = step ? `${describeStep(step)}: ${step.state}${last ? ` - ${last.summary}` : ''}` : '';
        if (c && c !== lastCanary) {
          lastCanary = c;
          say(`   canary ${c}`);
        }
      })
      .catch(() => undefined);
  }, 1000);
  return { stop: () => clearInterval(timer) };
}

/** Progress of the activity in flight, from its last heartbeat (clients/progress.ts). */
async function progressLine(handle: WorkflowHandle): Promise<string | undefined> {
  const a = (await inFlight(handle))[0];
  return a ? activityProgress(a) : undefined;
}

/** Ask on the terminal; the same decision can come from another terminal with `npx recflow approve`. */
async function reviewPrompt(
  handle: WorkflowHandle,
  reviewer: string,
  say: (m: string) => void,
  stopped: () => boolean,
): Promise<void> {
  for (;;) {
    if (stopped()) return;
    const s = await handle.query(statusQuery).catch(() => undefined);
    if (!s || s.stage === 'done') return;
    if (s.stage === 'awaiting_approval') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  say(`\n   The candidate awaits review. From another terminal:`);
  say(`     npx recflow approve ${handle.workflowId} --as <reviewer> [--comment "..."]`);
  say(`     npx recflow reject  ${handle.workflowId} --as <reviewer> --comment "why"`);
  if (!process.stdin.isTTY) {
    say('   (no terminal: waiting for that command)');
    return;
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = (await rl.question(`   Approve as '${reviewer}'? [y/n] `)).trim().toLowerCase();
    const approve = answer === 'y' || answer === 'yes';
    const comment = approve
      ? 'approved in the demo prompt'
      : (await rl.question('   Why? ')).trim() || 'rejected in the demo';
    await handle.executeUpdate(approve ? approveUpdate : rejectUpdate, { args: [{ reviewer, comment }] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) say(`   refused: ${err.cause?.message}`);
  } finally {
    rl.close();
  }
}
