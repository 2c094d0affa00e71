import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { EphemeralServerExecutable } from '@temporalio/testing';

/** Project root: lib/temporal/ is two levels down. */
export const PROJECT_ROOT = resolve(__dirname, '..', '..');

/** What `npm run setup` (scripts/setup.mjs) found, from `.tools/temporal.json`. */
export interface TemporalBinaries {
  cli?: { path: string; source: string; version?: string };
  testServer?: { path: string; source: string };
}

/**
 * Locate the Temporal binaries: `TEMPORAL_CLI_PATH` / `TEMPORAL_TEST_SERVER_PATH` first, then what set-up recorded.
 * Returns empty fields when none is known; the SDK's download is then the fallback (see {@link devServerExecutable}).
 */
export function findTemporalBinaries(env: Record<string, string | undefined> = process.env): TemporalBinaries {
  const found: TemporalBinaries = {};
  const file = join(PROJECT_ROOT, '.tools', 'temporal.json');
  if (existsSync(file)) {
    const recorded = JSON.parse(readFileSync(file, 'utf8')) as {
      cli: TemporalBinaries['cli'] | null;
      testServer: TemporalBinaries['testServer'] | null;
    };
    if (recorded.cli && existsSync(recorded.cli.path)) found.cli = recorded.cli;
    if (recorded.testServer && existsSync(recorded.testServer.path)) found.testServer = recorded.testServer;
  }
  if (env.TEMPORAL_CLI_PATH) found.cli = { path: env.TEMPORAL_CLI_PATH, source: 'TEMPORAL_CLI_PATH' };
  if (env.TEMPORAL_TEST_SERVER_PATH) {
    found.testServer = { path: env.TEMPORAL_TEST_SERVER_PATH, source: 'TEMPORAL_TEST_SERVER_PATH' };
  }
  return found;
}

/** The dev server executable for `@temporalio/testing`: the installed CLI, else the SDK's cached download. */
export function devServerExecutable(bins = findTemporalBinaries()): EphemeralServerExecutable {
  return bins.cli ? { type: 'existing-path', path: bins.cli.path } : { type: 'cached-download' };
}

/** The time-skipping test server executable: the installed one, else the SDK's cached download. */
export function testServerExecutable(bins = findTemporalBinaries()): EphemeralServerExecutable {
  return bins.testServer ? { type: 'existing-path', path: bins.testServer.path } : { type: 'cached-download' };
}
