#!/usr/bin/env node
// Regenerate the search encoder's reference fixtures (test/fixtures/search/tokenizer.json, embeddings.json) with
// bench/search_reference.py: Python `tokenizers` ids and a float64 numpy forward of the base model.
//
//   RECFLOW_BENCH_PYTHON=/path/to/python node scripts/make-search-fixtures.mjs [--model DIR]
//
// The Python needs numpy, scipy, safetensors and tokenizers (default `python3`). The model folder is --model, else
// RECFLOW_BASE_MODEL, else .tools/models/all-MiniLM-L6-v2 (installed by `npm run setup`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const i = process.argv.indexOf('--model');
const model = resolve(
  i >= 0 ? process.argv[i + 1] : process.env.RECFLOW_BASE_MODEL || join(root, '.tools', 'models', 'all-MiniLM-L6-v2'),
);
if (!existsSync(join(model, 'model.safetensors'))) {
  console.error(`${model} has no model.safetensors: run \`npm run setup\` or pass --model DIR`);
  process.exit(1);
}
const python = process.env.RECFLOW_BENCH_PYTHON || 'python3';
const out = join(root, 'test', 'fixtures', 'search');
const r = spawnSync(python, [join(root, 'bench', 'search_reference.py'), '--model', model, '--out', out], {
  stdio: 'inherit',
});
if (r.status !== 0) process.exit(r.status ?? 1);
// The repository's formatting (`npm run lint` checks it).
const p = spawnSync(
  process.execPath,
  [
    join(root, 'node_modules', 'prettier', 'bin', 'prettier.cjs'),
    '--write',
    join(out, 'tokenizer.json'),
    join(out, 'embeddings.json'),
  ],
  { stdio: 'inherit' },
);
process.exit(p.status ?? 1);
