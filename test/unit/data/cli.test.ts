import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { loadDataset } from '../../../lib/data/dataset';
import { tempHome } from '../../helpers/temporal';

const BIN = resolve(__dirname, '../../../bin/recflow.js');
const cli = (args: string[], env: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });

describe('CLI: shop generate, data prepare', () => {
  it('generates a shop into a new folder, prepares it and prints the dataset id; refuses a non-empty --out', () => {
    const home = tempHome();
    const out = join(home, 'shop');
    const gen = cli(
      [
        'shop',
        'generate',
        '--out',
        out,
        '--users',
        '200',
        '--items',
        '100',
        '--events',
        '3000',
        '--queries',
        '150',
        '--seed',
        '3',
      ],
      {},
    );
    assert.equal(gen.status, 0, gen.stderr);
    const counts = JSON.parse(gen.stdout) as { cleanEvents: number; queries: number };
    assert.equal(counts.cleanEvents, 3000);
    assert.equal(counts.queries, 150);
    assert.deepEqual(readdirSync(out).sort(), [
      'events.csv',
      'ground-truth',
      'items.csv',
      'queries.csv',
      'search_events.csv',
      'users.csv',
    ]);
    assert.deepEqual(
      readdirSync(home).filter((f) => f.includes('.tmp-')),
      [],
    );
    const again = cli(['shop', 'generate', '--out', out], {});
    assert.equal(again.status, 2);
    assert.match(again.stderr, /exists and is not empty/);
    const prep = cli(['data', 'prepare', out], { RECFLOW_HOME: home });
    assert.equal(prep.status, 0, prep.stderr);
    const id = prep.stdout.trim();
    assert.match(id, /^ds-[0-9a-f]{24}$/);
    assert.ok(existsSync(join(home, 'artifacts', 'dataset', id, 'manifest.json')));
    return loadDataset(join(home, 'artifacts', 'dataset', id)).then((ds) => {
      assert.equal(ds.vocab.users.length, 201);
      const q = ds.search?.splits;
      assert.ok(q, 'the dataset has search tables');
      // Queries with an empty text (dirt) are dropped; the rest are split by time.
      const n = q.train.ids.length + q.validation.ids.length + q.test.ids.length;
      assert.ok(n > 140 && n <= 150, `${n} queries`);
    });
  });
});
