import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/log';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import type { smokeWorkflow } from '../../workflows/smoke';
import { intOption } from '../options';
import { startStack } from '../stack';

/**
 * Wait for Ctrl-C or SIGTERM. `keepAlive` (the default: `dev`, `serve`) holds the process open meanwhile even with
 * nothing else to do; without it (`demo`) the process still ends when its work is done.
 */
export function untilSignal(opts: { keepAlive?: boolean } = {}): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const keepAlive = opts.keepAlive === false ? undefined : setInterval(() => undefined, 1 << 30);
    const on = (sig: NodeJS.Signals) => {
      if (keepAlive) clearInterval(keepAlive);
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** `recflow dev` (embedded server and workers, foreground) and `recflow doctor` (a smoke run through them). */
export function registerDevCommands(program: Command): void {
  program
    .command('dev')
    .description('run the embedded Temporal dev server and the CPU and GPU-queue workers until Ctrl-C')
    .option('--ui', 'serve the Temporal Web UI')
    .option('--port <port>', 'gRPC port of the embedded server', intOption(0, 65535))
    .option('--no-workers', 'the server only')
    .action(async (opts: { ui?: boolean; port?: number; workers: boolean }) => {
      const config = loadConfig();
      const logger = createLogger('dev', config);
      const stack = await startStack(config, logger, { ui: opts.ui, port: opts.port, workers: opts.workers });
      console.log(`Temporal: ${stack.target.connectionOptions.address} (namespace ${stack.target.namespace})`);
      if (stack.embedded?.adopted)
        console.log('          (adopted: an earlier recflow process that was killed left this server running)');
      if (stack.embedded?.uiUrl) console.log(`Web UI:   ${stack.embedded.uiUrl}`);
      if (config.logFormat === 'pretty')
        console.log(`logs:     ${config.logFile} (JSON lines; --log-format json prints them here)`);
      console.log('Ctrl-C to stop.');
      const sig = await untilSignal();
      logger.info({ signal: sig }, 'stopping');
      await stack.stop();
    });

  program
    .command('doctor')
    .description('check the installation: start (or reach) Temporal and the workers, run a smoke workflow')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const logger = createLogger('doctor', config);
      const stack = await startStack(config, logger, { port: 0 });
      try {
        const result = await stack.client.workflow.execute<typeof smokeWorkflow>('smokeWorkflow', {
          taskQueue: CPU_TASK_QUEUE,
          workflowId: `recflow-doctor-${Date.now()}`,
          args: [{ requestedBy: 'recflow doctor', gpuScheduleToStartTimeout: '5 seconds' }],
        });
        if (opts.json) console.log(JSON.stringify({ temporal: stack.embedded?.cliVersion, ...result }, null, 2));
        else {
          console.log(`Temporal:   ${stack.embedded?.cliVersion ?? stack.target.connectionOptions.address}`);
          console.log(`CPU worker: ${result.cpu.host} pid ${result.cpu.pid}, node ${result.cpu.node}`);
          console.log(
            `GPU queue:  ${result.gpuPlacement.taskQueue}${result.gpuPlacement.fellBackToCpu ? ' (fell back to CPU)' : ''}`,
          );
          for (const [pkg, v] of Object.entries(result.cpu.packages)) console.log(`  ${pkg.padEnd(32)} ${v ?? '-'}`);
        }
      } finally {
        await stack.stop();
      }
    });
}
