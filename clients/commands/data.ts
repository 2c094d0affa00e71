import { existsSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ArtifactStore } from '../../lib/artifacts';
import { loadConfig } from '../../lib/config';
import { generateShop } from '../../lib/data/generator';
import { compareDatasets, prepareDataset, validateData, type DataSource } from '../../lib/data/pipeline';
import { ErrorType, RecflowError } from '../../lib/errors';

function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new RecflowError(ErrorType.InvalidInput, `--${name} ${v}: expected an integer >= 0`);
    return n;
  };
}

function source(dir: string, format?: string): DataSource {
  if (format !== undefined && format !== 'recflow' && format !== 'movielens') {
    throw new RecflowError(ErrorType.InvalidInput, `--format ${format}: expected recflow or movielens`);
  }
  return { kind: 'dir', path: resolve(dir), format: format };
}

const store = () => new ArtifactStore(loadConfig().artifactsDir);

/** `recflow shop generate` and `recflow data validate|prepare|compare`. */
export function registerDataCommands(program: Command): void {
  const shop = program.command('shop').description('the seeded synthetic shop');
  shop
    .command('generate')
    .description('write users.csv, items.csv, events.csv and ground-truth/ into a new folder')
    .requiredOption('--out <dir>', 'output folder (must not exist or be empty)')
    .option('--users <n>', 'users', int('users'))
    .option('--items <n>', 'items', int('items'))
    .option('--events <n>', 'clean events (dirt rows come on top)', int('events'))
    .option('--queries <n>', 'search queries (0: no search log)', int('queries'))
    .option('--seed <n>', 'seed', int('seed'))
    .option('--dirt <rate>', 'share of dirty rows in [0, 0.5]', Number)
    .action(
      async (opts: {
        out: string;
        users?: number;
        items?: number;
        events?: number;
        queries?: number;
        seed?: number;
        dirt?: number;
      }) => {
        const out = resolve(opts.out);
        if (existsSync(out) && (await readdir(out)).length) {
          throw new RecflowError(ErrorType.InvalidInput, `--out ${out} exists and is not empty`);
        }
        const tmp = `${out}.tmp-${process.pid}`;
        try {
          const t0 = Date.now();
          const counts = await generateShop(tmp, opts, (p) => {
            process.stderr.write(`\r${p.events}/${p.total} events`);
          });
          if (existsSync(out)) await rm(out, { recursive: true });
          await rename(tmp, out);
          process.stderr.write('\n');
          console.log(JSON.stringify({ out, ...counts, seconds: (Date.now() - t0) / 1000 }, null, 2));
        } catch (err) {
          await rm(tmp, { recursive: true, force: true });
          throw err;
        }
      },
    );

  const data = program.command('data').description('validate and prepare interaction data');
  data
    .command('validate <dir>')
    .description('run the validation gate on a folder of CSV exports (exit 1 on hard anomalies)')
    .option('--format <format>', 'recflow (events.csv, items.csv, users.csv) or movielens (ratings.csv)')
    .option('--json', 'print the whole report as JSON')
    .action(async (dir: string, opts: { format?: string; json?: boolean }) => {
      try {
        const res = await validateData(store(), { source: source(dir, opts.format) });
        if (opts.json) return console.log(JSON.stringify(res.details, null, 2));
        console.log(
          `ok: ${JSON.stringify(res.rows)}; ${res.soft} soft anomalies; report ${res.report.path}/report.json`,
        );
        for (const a of res.details.soft) console.log(`  soft: ${a.message}`);
      } catch (err) {
        if (err instanceof RecflowError && err.type === ErrorType.InvalidData) {
          process.stderr.write(`recflow: invalid data: ${err.message}\n`);
          process.exitCode = 1;
          return;
        }
        throw err;
      }
    });

  data
    .command('prepare <dir>')
    .description('validate and preprocess a folder into a dataset artifact; prints the dataset id')
    .option('--format <format>', 'recflow or movielens')
    .option('--previous <datasetId>', 'previous dataset, for the volume check')
    .action(async (dir: string, opts: { format?: string; previous?: string }) => {
      const res = await prepareDataset(store(), { source: source(dir, opts.format), previousDatasetId: opts.previous });
      process.stderr.write(
        `${res.reused ? 'reused' : 'prepared'} ${res.dataset.path}: ${JSON.stringify(res.rows)}, ${res.validation.soft} soft anomalies\n`,
      );
      console.log(res.dataset.id);
    });

  data
    .command('compare <baseId> <candidateId>')
    .description('drift between two datasets: PSI per feature, new user and item rates')
    .action(async (baseId: string, candidateId: string) => {
      console.log(JSON.stringify(await compareDatasets(store(), { baseId, candidateId }), null, 2));
    });
}
