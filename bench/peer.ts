/**
 * What every benchmark shares: the repository root, command-line arguments, the Python venv of the peers
 * (`.tools/bench-venv`, or `RECFLOW_BENCH_VENV`), made on first use from PyPI, and where results go.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '..');
export const VENV = process.env.RECFLOW_BENCH_VENV || join(REPO, '.tools', 'bench-venv');
/** The peers' Python: `RECFLOW_BENCH_PYTHON` (an existing interpreter, never modified), else the venv's. */
export const PY = process.env.RECFLOW_BENCH_PYTHON || join(VENV, 'bin', 'python');

/** `--name value` from the command line, or `fallback`. */
export function strArg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** A numeric `--name value`, or `fallback`. */
export function numArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Idempotent: create the venv and pip-install `packages` only when one of `modules` does not import. */
export function ensureVenv(modules: string[], packages: string[]): void {
  const ok = existsSync(PY) && spawnSync(PY, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' }).status === 0;
  if (ok) return;
  if (process.env.RECFLOW_BENCH_PYTHON)
    throw new Error(
      `RECFLOW_BENCH_PYTHON=${PY} cannot import ${modules.join(', ')}: install ${packages.join(', ')} there`,
    );
  console.log(`creating ${VENV} (${packages.join(', ')} from PyPI)`);
  if (!existsSync(PY)) execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(PY, ['-m', 'pip', 'install', '-q', ...packages], { stdio: 'inherit' });
}

/** Write `bench/results/<file>`. */
export async function writeResult(file: string, result: unknown): Promise<void> {
  await mkdir(join(REPO, 'bench', 'results'), { recursive: true });
  await writeFile(join(REPO, 'bench', 'results', file), `${JSON.stringify(result, null, 2)}\n`);
}
