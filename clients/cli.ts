/**
 * `npx recflow`: the command line of recflow. Each command group lives in clients/commands/ and registers itself
 * here. Exit codes: 0 success, 1 failure, 2 bad usage or input, 3 a gate or reviewer said no.
 */
import { Command, CommanderError, Option } from 'commander';
import { RecflowError } from '../lib/errors';
import { registerLifecycleCommands } from './commands/lifecycle';
import { registerWorkerCommand } from './commands/worker';
import { EXIT } from './exit';
import { registerDemoCommand } from './commands/demo';
import { registerDataCommands } from './commands/data';
import { registerDevCommands } from './commands/dev';
import { registerModelsCommands } from './commands/models';
import { registerRollbackCommand } from './commands/rollback';
import { registerScheduleCommands } from './commands/schedule';
import { registerServeCommands } from './commands/serve';

export { EXIT };

export function buildProgram(): Command {
  const program = new Command('recflow')
    .description('The life of a recommendation model as durable Temporal workflows.')
    .version((require('../package.json') as { version: string }).version)
    .showHelpAfterError()
    .exitOverride()
    .addOption(
      new Option(
        '--log-format <format>',
        'logs: pretty (readable terminal, JSON to the log file) or json (JSON lines on stderr)',
      ).choices(['pretty', 'json']),
    )
    .hook('preAction', (cmd) => {
      // Settings come from the environment (lib/config.ts): the global option is one more way to set one.
      const format = cmd.opts<{ logFormat?: string }>().logFormat;
      if (format) process.env.RECFLOW_LOG_FORMAT = format;
    });
  registerDevCommands(program);
  registerDemoCommand(program);
  registerLifecycleCommands(program);
  registerWorkerCommand(program);
  registerModelsCommands(program);
  registerServeCommands(program);
  registerScheduleCommands(program);
  registerRollbackCommand(program);
  registerDataCommands(program);
  return program;
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof RecflowError) {
      process.stderr.write(`recflow: ${err.message}\n`);
      return err.type === 'InvalidInput' || err.type === 'InvalidData' ? EXIT.usage : EXIT.failure;
    }
    throw err;
  }
}
