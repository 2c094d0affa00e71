/**
 * Preprocessing benchmark: recflow's validation + danfojs preprocessing vs pandas doing the same steps, on the SAME
 * synthetic shop export, side by side in one run.
 *
 *   node --import tsx bench/preprocess.ts [--events 1000000] [--users 50000] [--items 10000] [--seed 1]
 *
 * 1. Generates the shop (streamed) into a temp folder and times it.
 * 2. Runs lib/data (validateSource with collect, then preprocess) in a child process, so its peak RSS is its own.
 * 3. Runs bench/preprocess_peer.py with the Python in `RECFLOW_BENCH_PYTHON` (it needs pandas and numpy), or else
 *    makes `.tools/bench-venv` (pandas, numpy from PyPI) if needed and uses it.
 * 4. Prints rows/s and peak memory of both and the ratio; writes bench/results/preprocess.json.
 */
import { PY, ensureVenv, numArg, writeResult } from './peer';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateShop } from '../lib/data/generator';
import { preprocess } from '../lib/data/preprocess';
import { validateSource } from '../lib/data/validate';

interface Run {
  impl: string;
  seconds: number;
  inputRows: number;
  rowsPerSecond: number;
  peakRssMB: number;
  rows: Record<string, number>;
  events: number;
}

/** The child: validate + preprocess one shop, print one JSON line. */
async function child(shop: string, out: string): Promise<void> {
  const t0 = performance.now();
  const { report, data } = await validateSource(shop, { collect: true });
  if (!data) throw new Error('no data');
  const tValidate = (performance.now() - t0) / 1000;
  const m = await preprocess(data, out, { id: 'bench', source: { kind: 'synthetic', dir: shop, inputsHash: 'bench' } });
  const seconds = (performance.now() - t0) / 1000;
  const run: Run & { validateSeconds: number } = {
    impl: `recflow (byte scanner + danfojs-node ${(require('danfojs-node/package.json') as { version: string }).version})`,
    seconds,
    validateSeconds: tValidate,
    inputRows: report.rows.events ?? 0,
    rowsPerSecond: (report.rows.events ?? 0) / seconds,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    rows: { train: m.counts.train, validation: m.counts.validation, test: m.counts.test },
    events: m.counts.events,
  };
  console.log(JSON.stringify(run));
}

function lastJson<T>(stdout: string): T {
  const line = stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) throw new Error(`no JSON in output:\n${stdout}`);
  return JSON.parse(line) as T;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3] ?? '', process.argv[4] ?? '');
  const events = numArg('events', 1_000_000);
  const users = numArg('users', 50_000);
  const items = numArg('items', 10_000);
  const seed = numArg('seed', 1);
  const work = await mkdtemp(join(tmpdir(), 'recflow-bench-preprocess-'));
  try {
    const shop = join(work, 'shop');
    const t0 = performance.now();
    const counts = await generateShop(shop, { events, users, items, seed, dirt: 0.01 });
    const generateSeconds = (performance.now() - t0) / 1000;
    console.log(`shop: ${counts.events} event rows, ${users} users, ${items} items in ${generateSeconds.toFixed(1)} s`);

    const loadBefore = loadavg()[0];
    const ts = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', shop, join(work, 'ts-out')], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (ts.status !== 0) throw new Error(`recflow run failed:\n${ts.stderr}`);
    const recflow = lastJson<Run>(ts.stdout);

    const python = process.env.RECFLOW_BENCH_PYTHON || PY;
    if (!process.env.RECFLOW_BENCH_PYTHON) ensureVenv(['pandas', 'numpy'], ['pandas', 'numpy']);
    const py = spawnSync(python, [join(__dirname, 'preprocess_peer.py'), shop, join(work, 'py-out')], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (py.status !== 0) throw new Error(`pandas run failed:\n${py.stderr}`);
    const pandas = lastJson<Run>(py.stdout);

    const ratio = pandas.rowsPerSecond / recflow.rowsPerSecond;
    const line = (r: Run) =>
      `${r.impl.padEnd(44)} ${r.seconds.toFixed(2).padStart(7)} s  ${Math.round(r.rowsPerSecond).toLocaleString('en').padStart(10)} rows/s  peak ${Math.round(r.peakRssMB)} MB  -> ${JSON.stringify(r.rows)}`;
    console.log(line(recflow));
    console.log(line(pandas));
    console.log(
      `pandas is ${ratio.toFixed(2)}x recflow's throughput; recflow peak memory is ${(recflow.peakRssMB / pandas.peakRssMB).toFixed(2)}x pandas'`,
    );
    const result = {
      command: 'node --import tsx bench/preprocess.ts',
      machine: {
        cpus: cpus().length,
        model: cpus()[0]?.model,
        node: process.version,
        // 1-minute load average before the two runs and after them (a shared machine: ratios only).
        loadavg: { before: loadBefore, after: loadavg()[0] },
      },
      shop: { events, users, items, seed, dirt: 0.01, eventRows: counts.events, generateSeconds },
      recflow,
      pandas,
      ratio: { pandasOverRecflowThroughput: ratio, recflowOverPandasPeakMemory: recflow.peakRssMB / pandas.peakRssMB },
      date: new Date().toISOString(),
    };
    await writeResult('preprocess.json', result);
    console.log('wrote bench/results/preprocess.json');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
