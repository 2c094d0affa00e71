#!/usr/bin/env node
// Run the test suite with node:test: every `*.test.ts` under test/ (or under the folders given), one file at a
// time (the integration tests start Temporal servers; 2 cores). Node 20's --test takes no globs, hence this script.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const extra = process.argv.slice(2).filter((a) => a.startsWith('--'));
const files = [];
const walk = (p) => {
  if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  else if (p.endsWith('.test.ts')) files.push(relative(process.cwd(), p));
};
for (const r of roots.length ? roots : ['test']) walk(r);
if (!files.length) {
  console.error('no test files found');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    '--test-timeout=900000',
    '--test-reporter=spec',
    ...extra,
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
