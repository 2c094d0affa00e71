/** Entry of the CPU worker: workflows and every activity on `recflow-cpu`. */
import { runWorkerProcess } from './main';

runWorkerProcess('cpu').catch((err: unknown) => {
  process.stderr.write(`worker-cpu: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
