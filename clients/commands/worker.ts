import type { Command } from 'commander';
import { ErrorType, RecflowError } from '../../lib/errors';
import type { runWorkerProcess as RunWorkerProcess } from '../../workers/main';

/** `recflow worker --queue cpu|gpu`: one worker process against the configured Temporal (docker-compose uses it). */
export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run a worker for recflow-cpu (workflows and CPU activities) or recflow-gpu (training)')
    .option('--queue <queue>', 'cpu or gpu', 'cpu')
    .action(async (o: { queue: string }) => {
      if (o.queue !== 'cpu' && o.queue !== 'gpu')
        throw new RecflowError(ErrorType.InvalidInput, `--queue ${o.queue}: expected cpu or gpu`);
      // Loaded here so other commands do not pay for the activities' libraries.
      const { runWorkerProcess } = require('../../workers/main') as { runWorkerProcess: typeof RunWorkerProcess };
      await runWorkerProcess(o.queue);
    });
}
