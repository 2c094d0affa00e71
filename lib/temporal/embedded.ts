import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { RecflowConfig } from '../config';
import { SEARCH_ATTRIBUTE_KEYS } from '../constants';
import { writeJsonAtomic } from '../fs-atomic';
import { devServerExecutable, findTemporalBinaries } from './binaries';

/** What a running embedded server tells other recflow processes (`<temporalDir>/server.json`). */
export interface EmbeddedServerState {
  address: string;
  namespace: string;
  pid: number;
  uiUrl?: string;
  cliVersion?: string;
  dbFile: string;
  startedAt: string;
}

export interface EmbeddedTemporal {
  address: string;
  namespace: string;
  uiUrl?: string;
  /** `temporal --version` of the binary that runs, when known. */
  cliVersion?: string;
  env: TestWorkflowEnvironment;
  /** Stop the server; its SQLite file stays, so the runs survive. */
  stop(): Promise<void>;
}

function stateFile(config: RecflowConfig): string {
  return join(config.temporalDir, 'server.json');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The embedded server another recflow process runs, if any is alive. */
export function readEmbeddedServerState(config: RecflowConfig): EmbeddedServerState | undefined {
  const file = stateFile(config);
  if (!existsSync(file)) return undefined;
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as EmbeddedServerState;
    return alive(state.pid) ? state : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a TCP connection to `host:port` opens within `timeoutMs`. */
export function isReachable(address: string, timeoutMs = 1000): Promise<boolean> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i);
  const port = Number(address.slice(i + 1));
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Start the local Temporal dev server from the installed `temporal` binary (or the SDK's download where none is
 * installed), persisting to `<temporalDir>/temporal.sqlite` so runs survive a restart, with recflow's search
 * attributes registered. Other recflow processes find it through `<temporalDir>/server.json`.
 */
export async function startEmbeddedTemporal(
  config: RecflowConfig,
  opts: { port?: number; ui?: boolean; uiPort?: number; logLevel?: string; persist?: boolean } = {},
): Promise<EmbeddedTemporal> {
  await mkdir(config.temporalDir, { recursive: true });
  const bins = findTemporalBinaries();
  const persist = opts.persist ?? true;
  const dbFile = join(config.temporalDir, 'temporal.sqlite');
  const port = opts.port ?? config.temporal.embeddedPort;
  const ui = opts.ui ?? config.temporal.ui;
  const uiPort = opts.uiPort ?? config.temporal.uiPort;
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: devServerExecutable(bins),
      namespace: config.temporal.namespace,
      ip: '127.0.0.1',
      port: port === 0 ? undefined : port,
      ui,
      uiPort: ui ? uiPort : undefined,
      dbFilename: persist ? dbFile : undefined,
      searchAttributes: SEARCH_ATTRIBUTE_KEYS,
      log: { format: 'json', level: opts.logLevel ?? 'error' },
    },
  });
  const uiUrl = ui ? `http://127.0.0.1:${uiPort}` : undefined;
  const state: EmbeddedServerState = {
    address: env.address,
    namespace: config.temporal.namespace,
    pid: process.pid,
    uiUrl,
    cliVersion: bins.cli?.version,
    dbFile,
    startedAt: new Date().toISOString(),
  };
  if (persist) await writeJsonAtomic(stateFile(config), state);
  return {
    address: env.address,
    namespace: config.temporal.namespace,
    uiUrl,
    cliVersion: bins.cli?.version,
    env,
    async stop() {
      if (persist) rmSync(stateFile(config), { force: true });
      await env.teardown();
    },
  };
}
