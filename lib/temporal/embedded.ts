import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { RecflowConfig } from '../config';
import { SEARCH_ATTRIBUTE_KEYS } from '../constants';
import { ErrorType, RecflowError } from '../errors';
import { writeJsonAtomic } from '../fs-atomic';
import { findTemporalBinaries } from './binaries';

/** What a running embedded server tells other recflow processes (`<temporalDir>/server.json`). */
export interface EmbeddedServerState {
  address: string;
  namespace: string;
  /** The recflow process that owns the server (stops it on exit). */
  pid: number;
  /** The `temporal` server process itself: it outlives an owner killed with SIGKILL, and is adopted then. */
  serverPid?: number;
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
  /** True when this process adopted a server an earlier recflow process left running. */
  adopted: boolean;
  /** Stop the server; its SQLite file stays, so the runs survive. */
  stop(): Promise<void>;
}

function stateFile(config: RecflowConfig): string {
  return join(config.temporalDir, 'server.json');
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readState(config: RecflowConfig): EmbeddedServerState | undefined {
  const file = stateFile(config);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as EmbeddedServerState;
  } catch {
    return undefined;
  }
}

/**
 * The embedded server of this home, if one runs: its owner is alive, or the owner died (SIGKILL) and the `temporal`
 * process it started still runs (the next `recflow dev` adopts it).
 */
export function readEmbeddedServerState(config: RecflowConfig): EmbeddedServerState | undefined {
  const state = readState(config);
  return state && (alive(state.pid) || alive(state.serverPid)) ? state : undefined;
}

/** A server of this home whose owner died (SIGKILL) while the `temporal` process lives on: to be adopted. */
export function isOrphanedServer(config: RecflowConfig): boolean {
  const state = readState(config);
  return !!state && !alive(state.pid) && alive(state.serverPid);
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

/** A port nothing listens on now (bind 0, read, close). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stop a process: SIGTERM, then SIGKILL after `graceMs`. */
async function terminate(pid: number, graceMs = 10_000): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await sleep(100);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Start the local Temporal dev server from the installed `temporal` binary (or the SDK's download where none is
 * installed), persisting to `<temporalDir>/temporal.sqlite` so runs survive a restart, with recflow's search
 * attributes registered. Other recflow processes find it through `<temporalDir>/server.json`.
 *
 * A server an earlier recflow process left running (it was killed with SIGKILL) is adopted, not doubled. A port
 * taken by anything else is a clear error, never a server that "started" on someone else's port.
 * @throws {RecflowError} `InvalidInput` when the port is in use; `TemporalUnavailable` when the server does not start.
 */
export async function startEmbeddedTemporal(
  config: RecflowConfig,
  opts: { port?: number; ui?: boolean; uiPort?: number; logLevel?: string; persist?: boolean } = {},
): Promise<EmbeddedTemporal> {
  await mkdir(config.temporalDir, { recursive: true });
  const bins = findTemporalBinaries();
  const persist = opts.persist ?? true;
  const dbFile = join(config.temporalDir, 'temporal.sqlite');
  const namespace = config.temporal.namespace;
  const ui = opts.ui ?? config.temporal.ui;

  const previous = persist ? readState(config) : undefined;
  if (previous && !alive(previous.pid) && alive(previous.serverPid) && (await isReachable(previous.address))) {
    const state: EmbeddedServerState = { ...previous, pid: process.pid };
    await writeJsonAtomic(stateFile(config), state);
    return handle(config, state, true, async () => terminate(previous.serverPid!));
  }

  const requested = opts.port ?? config.temporal.embeddedPort;
  if (requested !== 0 && (await isReachable(`127.0.0.1:${requested}`)))
    throw new RecflowError(
      ErrorType.InvalidInput,
      `port ${requested} is already in use by another process (not this home's embedded server): stop it, or set RECFLOW_TEMPORAL_PORT to another port (0: any free one)`,
    );
  const port = requested === 0 ? await freePort() : requested;
  const uiPort = ui ? (opts.uiPort ?? config.temporal.uiPort) : undefined;
  const uiUrl = uiPort ? `http://127.0.0.1:${uiPort}` : undefined;
  const address = `127.0.0.1:${port}`;

  if (!bins.cli) {
    // No binary installed: the SDK downloads one (needs internet) and manages the process.
    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'cached-download' },
        namespace,
        ip: '127.0.0.1',
        port,
        ui,
        uiPort,
        dbFilename: persist ? dbFile : undefined,
        searchAttributes: SEARCH_ATTRIBUTE_KEYS,
        log: { format: 'json', level: opts.logLevel ?? 'error' },
      },
    });
    const state: EmbeddedServerState = {
      address: env.address,
      namespace,
      pid: process.pid,
      uiUrl,
      dbFile,
      startedAt: new Date().toISOString(),
    };
    if (persist) await writeJsonAtomic(stateFile(config), state);
    return handle(config, state, false, () => env.teardown(), persist);
  }

  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--namespace', namespace];
  args.push('--log-format', 'json', '--log-level', opts.logLevel ?? 'error');
  if (persist) args.push('--db-filename', dbFile);
  if (uiPort) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  for (const sa of SEARCH_ATTRIBUTE_KEYS) args.push('--search-attribute', `${sa.name}=${searchAttributeType(sa.type)}`);
  const child: ChildProcess = spawn(bins.cli.path, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const deadline = Date.now() + 60_000;
  while (!(await isReachable(address, 500))) {
    if (exited !== undefined || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new RecflowError(
        ErrorType.TemporalUnavailable,
        `the embedded Temporal dev server did not start (${exited !== undefined ? `exit ${exited}` : 'no answer in 60 s'}): ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}`,
      );
    }
    await sleep(100);
  }
  const state: EmbeddedServerState = {
    address,
    namespace,
    pid: process.pid,
    serverPid: child.pid,
    uiUrl,
    cliVersion: bins.cli.version,
    dbFile,
    startedAt: new Date().toISOString(),
  };
  if (persist) await writeJsonAtomic(stateFile(config), state);
  return handle(
    config,
    state,
    false,
    async () => {
      if (child.exitCode === null && child.pid) await terminate(child.pid);
    },
    persist,
  );
}

function handle(
  config: RecflowConfig,
  state: EmbeddedServerState,
  adopted: boolean,
  stopServer: () => Promise<void>,
  persist = true,
): EmbeddedTemporal {
  return {
    address: state.address,
    namespace: state.namespace,
    uiUrl: state.uiUrl,
    cliVersion: state.cliVersion,
    adopted,
    async stop() {
      // Only this process's own record: a newer server's server.json is not ours to delete.
      if (persist && readState(config)?.pid === process.pid) rmSync(stateFile(config), { force: true });
      await stopServer();
    },
  };
}

/** The CLI's name of a search attribute type (`--search-attribute Name=Keyword`). */
function searchAttributeType(type: string): string {
  const names: Record<string, string> = {
    KEYWORD: 'Keyword',
    TEXT: 'Text',
    INT: 'Int',
    DOUBLE: 'Double',
    BOOL: 'Bool',
    DATETIME: 'Datetime',
    KEYWORD_LIST: 'KeywordList',
  };
  return names[type] ?? type;
}
