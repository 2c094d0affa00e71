/**
 * HTTP load helpers of the serving benchmarks (bench/serve.ts, bench/serve-search.ts): `wrk` over a Lua script that
 * cycles through POST bodies (its summary as one JSON line), `hey` with a CSV row per request, the CPU time of a
 * server's process tree from /proc, starting the recflow server and a uvicorn peer, waiting for `/readyz`, stopping a
 * child process, interleaved rounds, in-process latency points, medians.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Precision } from '../lib/bundle';
import { REPO } from './peer';

const run = promisify(execFile);

/** One wrk run. */
export interface WrkResult {
  /** Responses in the measured period (every status). */
  requests: number;
  rps: number;
  /** 2xx/3xx answers per second. */
  okRps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  timeouts: number;
  socketErrors: number;
}

/** A wrk Lua script that POSTs `bodies` to `path` in turn and prints its summary as `WRKJSON {...}`. */
export function wrkLua(bodies: string[], path: string): string {
  return `
local bodies = { ${bodies.map((b) => `[==[${b}]==]`).join(',\n')} }
local i = 0
local headers = { ["Content-Type"] = "application/json" }
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "${path}", headers, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p99":%d}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
`;
}

/** `wrk -t1 -c<c> -d<seconds>s --timeout 2s -s <lua>` against `url`. */
export async function wrk(url: string, c: number, seconds: number, lua: string): Promise<WrkResult> {
  const { stdout } = await run('wrk', ['-t1', `-c${c}`, `-d${seconds}s`, '--timeout', '2s', '-s', lua, url], {
    maxBuffer: 1 << 24,
  });
  const line = stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk printed no summary:\n${stdout}`);
  const j = JSON.parse(line.slice(8)) as Record<string, number>;
  const secs = (j.duration_us ?? 1) / 1e6;
  const requests = j.requests ?? 0;
  return {
    requests,
    rps: Math.round(requests / secs),
    okRps: Math.round((requests - (j.status ?? 0)) / secs),
    p50Ms: (j.p50 ?? 0) / 1000,
    p99Ms: (j.p99 ?? 0) / 1000,
    non2xx: j.status ?? 0,
    timeouts: j.timeout ?? 0,
    socketErrors: (j.connect ?? 0) + (j.read ?? 0) + (j.write ?? 0),
  };
}

/** One hey run: {@link WrkResult} plus the latency of the admitted (200) requests apart from the shed ones. */
export interface HeyResult extends WrkResult {
  /** Latency of the admitted (200) requests, steady state (a connection's first request left out). */
  admittedP50Ms: number;
  admittedP99Ms: number;
  /** The same p99 with each connection's first request (its connect) included. */
  admittedP99WithConnectMs: number;
}

/** hey (`-z <seconds>s -c <c> -cpus 1 -t 2 -o csv`) POSTing `body` to `url`, one CSV row per request. */
export async function hey(url: string, c: number, seconds: number, body: string): Promise<HeyResult> {
  const { stdout } = await run(
    'hey',
    [
      '-z',
      `${seconds}s`,
      '-c',
      String(c),
      '-cpus',
      '1',
      '-t',
      '2',
      '-m',
      'POST',
      '-T',
      'application/json',
      '-d',
      body,
      '-o',
      'csv',
      url,
    ],
    { maxBuffer: 1 << 28 },
  );
  // Columns: response-time, DNS+dialup, DNS, request-write, response-delay, response-read, status-code, offset (s).
  // A connection's first request carries its dial time (1024 connects at once): the steady state leaves them out.
  const rows = stdout
    .split('\n')
    .slice(1)
    .map((l) => l.split(','))
    .filter((f) => f.length >= 8)
    .map((f) => ({ ms: Number(f[0]) * 1000, dial: Number(f[1]), status: Number(f[6]) }));
  const steady = rows.filter((r) => r.dial === 0);
  const sorted = (xs: typeof rows) => [...xs].sort((a, b) => a.ms - b.ms);
  const all = sorted(steady);
  const ok = all.filter((r) => r.status === 200);
  const okAll = sorted(rows.filter((r) => r.status === 200));
  const q = (xs: Array<{ ms: number }>, p: number) =>
    Math.round((xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]?.ms ?? NaN) * 1000) / 1000;
  return {
    requests: rows.length,
    rps: Math.round(rows.length / seconds),
    okRps: Math.round(okAll.length / seconds),
    p50Ms: q(all, 0.5),
    p99Ms: q(all, 0.99),
    non2xx: rows.length - okAll.length,
    timeouts: 0,
    socketErrors: 0,
    admittedP50Ms: q(ok, 0.5),
    admittedP99Ms: q(ok, 0.99),
    admittedP99WithConnectMs: q(okAll, 0.99),
  };
}

/**
 * A point of calls timed in this process (no HTTP): `lat` the latencies (ms, sorted here), `seconds` the time they
 * took; every call counts as answered.
 */
export function inProcessResult(lat: number[], seconds: number): WrkResult {
  lat.sort((a, b) => a - b);
  const q = (p: number) => Math.round((lat[Math.floor(p * lat.length)] ?? 0) * 1000) / 1000;
  const rps = Math.round(lat.length / seconds);
  return {
    requests: lat.length,
    rps,
    okRps: rps,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    non2xx: 0,
    timeouts: 0,
    socketErrors: 0,
  };
}

/** utime + stime (ms) of a process and all its descendants (Linux /proc). */
export async function treeCpuMs(root: number): Promise<number> {
  const tick = 100; // USER_HZ on Linux
  const stats = new Map<number, { ppid: number; cpu: number }>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = await readFile(`/proc/${name}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(name), { ppid: Number(f[1]), cpu: ((Number(f[11]) + Number(f[12])) * 1000) / tick });
    } catch {
      /* gone */
    }
  }
  let total = 0;
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    total += stats.get(pid)?.cpu ?? 0;
    for (const [p, s] of stats) if (s.ppid === pid) todo.push(p);
  }
  return total;
}

/** {@link wrk}, with the CPU (ms) the process tree of `pid` spent per request meanwhile. */
export async function wrkWithCpu(
  pid: number,
  url: string,
  c: number,
  seconds: number,
  lua: string,
): Promise<WrkResult & { cpuMsPerRequest: number }> {
  const cpu0 = await treeCpuMs(pid);
  const res = await wrk(url, c, seconds, lua);
  const cpu = (await treeCpuMs(pid)) - cpu0;
  return { ...res, cpuMsPerRequest: Math.round((cpu / Math.max(1, res.requests)) * 1000) / 1000 };
}

/**
 * `recflow serve --bundle <bundleDir>` on `port` (a child process; the defaults otherwise), its home in `home`, logging
 * warnings only.
 */
export function spawnRecflow(port: number, bundleDir: string, precision: Precision, home: string): ChildProcess {
  return spawn(
    process.execPath,
    [
      join(REPO, 'bin', 'recflow.js'),
      'serve',
      '--port',
      String(port),
      '--bundle',
      bundleDir,
      '--precision',
      precision,
      '--model-version',
      'bench',
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, RECFLOW_HOME: home, RECFLOW_LOG_LEVEL: 'warn' },
    },
  );
}

/**
 * A Python peer: `uvicorn <app>` (a module of bench/, e.g. `serve_peer:app`) on `port` with `workers` workers, uvloop
 * and httptools, serving `bundleDir` at `precision` with one onnxruntime thread.
 */
export function spawnPeer(
  python: string,
  app: string,
  port: number,
  workers: number,
  bundleDir: string,
  precision: Precision,
): ChildProcess {
  return spawn(
    python,
    [
      '-m',
      'uvicorn',
      app,
      '--app-dir',
      join(REPO, 'bench'),
      '--port',
      String(port),
      '--workers',
      String(workers),
      '--loop',
      'uvloop',
      '--http',
      'httptools',
      '--no-access-log',
      '--log-level',
      'warning',
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, PEER_BUNDLE: bundleDir, PEER_PRECISION: precision, PEER_THREADS: '1' },
    },
  );
}

/**
 * Rounds of load: in each round, every concurrency, and at each the servers in turn, rotated per concurrency and
 * round so that a change of the host's load hits them alike; `each` measures one (server, concurrency), then 1 s of
 * rest.
 */
export async function interleavedRounds<S>(
  servers: S[],
  concs: number[],
  rounds: number,
  each: (server: S, c: number, round: number) => Promise<void>,
): Promise<void> {
  for (let round = 1; round <= rounds; round++)
    for (const [ci, c] of concs.entries()) {
      const order = servers.map((_, i) => servers[(i + ci + round) % servers.length]!);
      for (const s of order) {
        await each(s, c, round);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
}

/** Wait until `GET /readyz` answers 200 (or the process exits, or 120 s pass). */
export async function waitReady(port: number, proc: ChildProcess, what: string): Promise<void> {
  const end = Date.now() + 120_000;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} not ready after 120 s`);
}

/** SIGTERM, then SIGKILL after 5 s. */
export async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** Median of the finite values (NaN when none). */
export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? (v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2) : NaN;
}
