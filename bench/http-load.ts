/**
 * HTTP load helpers of the serving benchmarks: `wrk` over a Lua script that cycles through POST bodies (its summary
 * as one JSON line), the CPU time of a server's process tree from /proc, waiting for `/readyz`, stopping a child
 * process, medians. bench/serve-search.ts uses them (bench/serve.ts has its own copies of the same).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { promisify } from 'node:util';

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
