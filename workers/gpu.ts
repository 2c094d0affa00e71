/** Entry of the GPU worker: training on `recflow-gpu` (tfjs-node-gpu when present, else the best CPU backend). */
import { runWorkerProcess } from './main';

runWorkerProcess('gpu').catch((err: unknown) => {
  process.stderr.write(`worker-gpu: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
