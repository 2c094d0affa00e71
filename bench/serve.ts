/**
 * Serving benchmark: `/v1/recommend` throughput, latency and overload behaviour of the recflow server against a
 * strong Python peer, loaded by external load generators (not this process):
 * - `recflow`: `recflow serve --bundle` (a child process; one onnxruntime thread, micro-batching, admission control:
 *   the defaults);
 * - `peer1`, `peer2`: bench/serve_peer.py (FastAPI `async def`, pydantic, orjson, uvicorn with uvloop and
 *   httptools, onnxruntime one intra-op thread) with 1 and 2 uvicorn workers, on the SAME bundle and contract
 *   (history exclusion included);
 * - `floor`: a bare Node `http` server answering every request with a canned 503 at once: the host's floor (no
 *   server can answer faster on it, so at c = 1024 it bounds what admission control can achieve here);
 * - `limit` (optional): raw onnxruntime-node `session.run` at batch 1, no HTTP.
 * Load: `wrk` (one thread, keep-alive, a Lua script cycling through 4096 POST bodies of known users, k = 10,
 * `--timeout 2s`) at each concurrency, systems interleaved per concurrency, `--rounds` times (the figures are the
 * medians over rounds; a busy host moves single runs by 2-3x); at c >= 1024 also `hey` (`-o csv`: one row per
 * request with its status) to get the latency of admitted (200) requests apart from shed ones (503). CPU per
 * request is read from /proc for each server's process tree. Linux only.
 *
 *   nice -n 10 node --import tsx bench/serve.ts [--users 50000] [--items 20000] [--seconds 5]
 *     [--conc 1,8,32,1024] [--rounds 3] [--systems recflow,peer1,peer2,floor[,limit]] [--precision fp32]
 *     [--out serve.json]
 *
 * Python: `RECFLOW_BENCH_PYTHON` (needs fastapi uvicorn uvloop httptools orjson pydantic onnxruntime numpy), else
 * the bench venv of bench/peer.ts. Needs `wrk` and `hey` on PATH (Debian: `apt-get install wrk hey`).
 * Results: bench/results/<out>.
 */
import { PY, ensureVenv, numArg, strArg, writeResult } from './peer';
import {
  hey,
  inProcessResult,
  interleavedRounds,
  median,
  spawnPeer,
  spawnRecflow,
  stopProc,
  waitReady,
  wrk,
  wrkLua,
  wrkWithCpu,
  type WrkResult,
} from './http-load';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Precision } from '../lib/bundle';
import { DEFAULT_MODEL_CONFIG } from '../kinds/two-tower/spec';
import { loadBundle } from '../lib/onnx/bundle-io';
import { writeBundle } from '../kinds/two-tower/bundle';
import { sessionOptions } from '../serving/model-slot';
import { randomModel, rng } from '../test/helpers/random-model';

type System = 'recflow' | 'peer1' | 'peer2' | 'floor' | 'limit';

/** A measured point; `non2xx` counts the 503s of admission control among the others. */
interface Point extends WrkResult {
  system: System;
  concurrency: number;
  tool: 'wrk' | 'hey' | 'in-process';
  /** hey only: latency of the admitted (200) requests, steady state (a connection's first request left out). */
  admittedP50Ms?: number;
  admittedP99Ms?: number;
  /** hey only: the same p99 with each connection's first request (its connect) included. */
  admittedP99WithConnectMs?: number;
  /** Server CPU (all its processes) per answered request, ms. */
  cpuMsPerRequest?: number;
}

async function main(): Promise<void> {
  const users = numArg('users', 50_000);
  const items = numArg('items', 20_000);
  const seconds = numArg('seconds', 5);
  const historyPerUser = numArg('history', 20);
  const concs = strArg('conc', '1,8,32,1024').split(',').map(Number);
  const systems = strArg('systems', 'recflow,peer1,peer2,floor').split(',') as System[];
  const rounds = numArg('rounds', 3);
  const precision = strArg('precision', 'fp32') as Precision;
  const out = strArg('out', 'serve.json');
  let python = process.env.RECFLOW_BENCH_PYTHON;
  if (!python) {
    ensureVenv(
      ['fastapi', 'uvicorn', 'uvloop', 'httptools', 'orjson', 'pydantic', 'onnxruntime', 'numpy'],
      ['fastapi', 'uvicorn', 'uvloop', 'httptools', 'orjson', 'pydantic', 'onnxruntime', 'numpy'],
    );
    python = PY;
  }
  const work = await mkdtemp(join(tmpdir(), 'recflow-bench-serve-'));
  const bundleDir = join(work, 'bundle');
  await mkdir(bundleDir);
  const config = { ...DEFAULT_MODEL_CONFIG };
  const sizes = { users, items, segments: 8, regions: 20, categories: 50, brands: 500, tokens: 2000 };
  console.log(`model: ${users} users, ${items} items, dim ${config.embeddingDim}/${config.outputDim}`);
  const m = randomModel({ sizes, config, seed: 5 });
  const ids = (p: string, n: number) => ['<unk>', ...Array.from({ length: n - 1 }, (_, i) => `${p}${i + 1}`)];
  const r = rng(9);
  const hu: number[] = [];
  const hi: number[] = [];
  for (let u = 1; u < users; u++)
    for (let j = 0; j < historyPerUser; j++) {
      hu.push(u);
      hi.push(1 + Math.floor(r() * r() * (items - 1)));
    }
  await writeBundle(bundleDir, {
    modelName: 'bench',
    datasetId: 'bench',
    checkpointId: 'bench',
    weights: m.weights,
    features: m.features,
    meta: { config, sizes },
    vocab: { users: ids('u', users), items: ids('i', items) },
    popularity: Float32Array.from({ length: items }, (_, i) => (i ? items - i : 0)),
    history: { user: Int32Array.from(hu), item: Int32Array.from(hi), timestamp: Float64Array.from(hu, (_, i) => i) },
  });
  const bundle = await loadBundle(bundleDir);
  const userIdx = Array.from({ length: 4096 }, () => 1 + Math.floor(r() * (users - 1)));
  const bodies = userIdx.map((u) => JSON.stringify({ userId: `u${u}`, k: 10 }));
  const lua = join(work, 'post.lua');
  await writeFile(lua, wrkLua(bodies, '/v1/recommend'));
  const points: Point[] = [];
  const raw: Array<Point & { round: number }> = [];
  let round = 0;
  const record = (p: Point) => {
    raw.push({ ...p, round });
    console.log(
      `c=${String(p.concurrency).padStart(4)} ${p.system.padEnd(8)} ${p.tool.padEnd(4)} ${String(p.rps).padStart(6)} req/s (200: ${p.okRps})  p50 ${p.p50Ms} ms  p99 ${p.p99Ms} ms` +
        (p.admittedP99Ms !== undefined ? `  admitted p50 ${p.admittedP50Ms} / p99 ${p.admittedP99Ms} ms` : '') +
        (p.non2xx ? `  non-2xx ${p.non2xx}` : '') +
        (p.timeouts ? `  timeouts ${p.timeouts}` : '') +
        (p.socketErrors ? `  socket errors ${p.socketErrors}` : '') +
        (p.cpuMsPerRequest !== undefined ? `  cpu ${p.cpuMsPerRequest} ms/req` : ''),
    );
  };

  if (systems.includes('limit')) {
    const session = await ort.InferenceSession.create(bundle.paths[precision].recommend, sessionOptions({}));
    for (const c of concs.filter((x) => x <= 32)) {
      const lat: number[] = [];
      let stop = false;
      const t0 = performance.now();
      setTimeout(() => (stop = true), seconds * 1000);
      await Promise.all(
        Array.from({ length: c }, async (_, w) => {
          for (let i = 0; !stop; i++) {
            const t = performance.now();
            const u = userIdx[(w * 131 + i) % userIdx.length] ?? 1;
            await session.run({
              user: new ort.Tensor('int64', BigInt64Array.of(BigInt(u)), [1]),
              k: new ort.Tensor('int64', BigInt64Array.of(10n), [1]),
              exclude: new ort.Tensor('int64', new BigInt64Array(0), [1, 0]),
              history: new ort.Tensor('int64', new BigInt64Array(0), [1, 0]),
            });
            lat.push(performance.now() - t);
          }
        }),
      );
      record({
        system: 'limit',
        concurrency: c,
        tool: 'in-process',
        ...inProcessResult(lat, (performance.now() - t0) / 1000),
      });
    }
    await session.release();
  }

  const ports: Record<Exclude<System, 'limit'>, number> = { recflow: 18711, peer1: 18712, peer2: 18713, floor: 18714 };
  const FLOOR = `const body = JSON.stringify({ error: 'Service Unavailable', message: 'overloaded', requestId: 'x' });
require('node:http').createServer((req, res) => {
  if (req.url === '/readyz') return res.end('{"ready":true}');
  res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'retry-after': '1' });
  res.end(body);
}).listen({ port: ${ports.floor}, host: '127.0.0.1', backlog: 4096 });`;
  const start = (s: Exclude<System, 'limit'>): ChildProcess => {
    if (s === 'floor') return spawn(process.execPath, ['-e', FLOOR], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (s === 'recflow') return spawnRecflow(ports[s], bundleDir, precision, work);
    return spawnPeer(python, 'serve_peer:app', ports[s], s === 'peer2' ? 2 : 1, bundleDir, precision);
  };
  const servers = systems.filter((s): s is Exclude<System, 'limit'> => s !== 'limit');
  const url = (s: Exclude<System, 'limit'>) => `http://127.0.0.1:${ports[s]}/v1/recommend`;
  const procs = new Map<string, ChildProcess>();
  try {
    for (const s of servers) {
      const p = start(s);
      procs.set(s, p);
      await waitReady(ports[s], p, s);
      await wrk(url(s), 8, 1, lua); // warm-up
    }
    // Interleave the systems (rotated per concurrency) so a change of the host's load hits them alike.
    await interleavedRounds(servers, concs, rounds, async (s, c, r) => {
      round = r;
      const res = await wrkWithCpu(procs.get(s)!.pid!, url(s), c, seconds, lua);
      record({ system: s, concurrency: c, tool: 'wrk', ...res });
      if (c >= 1024) record({ system: s, concurrency: c, tool: 'hey', ...(await hey(url(s), c, seconds, bodies[0]!)) });
    });
  } finally {
    for (const p of procs.values()) await stopProc(p);
  }
  // One point per (system, concurrency, tool): medians over the rounds (counts summed).
  const groups = new Map<string, Array<Point & { round: number }>>();
  for (const p of raw) {
    const key = `${p.system}|${p.concurrency}|${p.tool}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  for (const g of groups.values()) {
    const first = g[0]!;
    const med = (f: (p: Point) => number | undefined) => {
      const xs = g.map(f).filter((x): x is number => x !== undefined);
      return xs.length ? Math.round(median(xs) * 1000) / 1000 : undefined;
    };
    const sum = (f: (p: Point) => number) => g.reduce((a, p) => a + f(p), 0);
    points.push({
      system: first.system,
      concurrency: first.concurrency,
      tool: first.tool,
      requests: sum((p) => p.requests),
      rps: med((p) => p.rps) ?? 0,
      okRps: med((p) => p.okRps) ?? 0,
      p50Ms: med((p) => p.p50Ms) ?? 0,
      p99Ms: med((p) => p.p99Ms) ?? 0,
      non2xx: sum((p) => p.non2xx),
      timeouts: sum((p) => p.timeouts),
      socketErrors: sum((p) => p.socketErrors),
      ...(first.admittedP99Ms !== undefined
        ? {
            admittedP50Ms: med((p) => p.admittedP50Ms),
            admittedP99Ms: med((p) => p.admittedP99Ms),
            admittedP99WithConnectMs: med((p) => p.admittedP99WithConnectMs),
          }
        : {}),
      ...(first.cpuMsPerRequest !== undefined ? { cpuMsPerRequest: med((p) => p.cpuMsPerRequest) } : {}),
    });
  }

  const wrkPoint = (s: System, c: number) =>
    points.find((p) => p.system === s && p.concurrency === c && p.tool !== 'hey');
  const heyPoint = (s: System, c: number) =>
    points.find((p) => p.system === s && p.concurrency === c && p.tool === 'hey');
  const r2 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? null : Math.round(x * 100) / 100);
  const ratios = concs.map((c) => {
    const me = wrkPoint('recflow', c);
    const p1 = wrkPoint('peer1', c);
    const p2 = wrkPoint('peer2', c);
    return {
      concurrency: c,
      okRpsVsPeer1: r2(me && p1 ? me.okRps / p1.okRps : undefined),
      okRpsVsPeer2: r2(me && p2 ? me.okRps / p2.okRps : undefined),
      p99VsPeer1: r2(me && p1 ? me.p99Ms / p1.p99Ms : undefined),
      p99VsPeer2: r2(me && p2 ? me.p99Ms / p2.p99Ms : undefined),
      cpuPerRequestVsPeer1: r2(
        me?.cpuMsPerRequest && p1?.cpuMsPerRequest ? me.cpuMsPerRequest / p1.cpuMsPerRequest : undefined,
      ),
    };
  });
  const goals = [8, 32]
    .filter((c) => concs.includes(c))
    .flatMap((c) => {
      const x = ratios.find((q) => q.concurrency === c);
      return [
        {
          goal: `c=${c}: >= 2x the 1-worker peer (200 req/s)`,
          value: x?.okRpsVsPeer1 ?? null,
          met: (x?.okRpsVsPeer1 ?? 0) >= 2,
        },
        {
          goal: `c=${c}: >= 1.5x the 2-worker peer`,
          value: x?.okRpsVsPeer2 ?? null,
          met: (x?.okRpsVsPeer2 ?? 0) >= 1.5,
        },
        {
          goal: `c=${c}: p99 <= both peers'`,
          value: wrkPoint('recflow', c)?.p99Ms ?? null,
          met: (x?.p99VsPeer1 ?? Infinity) <= 1 && (x?.p99VsPeer2 ?? Infinity) <= 1,
        },
      ];
    });
  for (const c of concs.filter((x) => x >= 1024)) {
    const h = heyPoint('recflow', c);
    const w = wrkPoint('recflow', c);
    goals.push({
      goal: `c=${c}: p99 of admitted requests <= 50 ms (hey)`,
      value: h?.admittedP99Ms ?? null,
      met: (h?.admittedP99Ms ?? Infinity) <= 50,
    });
    goals.push({ goal: `c=${c}: no client time-outs (wrk, 2 s)`, value: w?.timeouts ?? null, met: w?.timeouts === 0 });
  }
  const hostFloor = concs
    .filter((c) => c >= 1024)
    .map((c) => ({ concurrency: c, wrk: wrkPoint('floor', c), hey: heyPoint('floor', c) }))
    .filter((x) => x.wrk || x.hey)
    .map((x) => ({
      concurrency: x.concurrency,
      note: 'a bare Node http server answering a canned 503 at once: no server answers faster on this host',
      wrkP50Ms: x.wrk?.p50Ms ?? null,
      wrkP99Ms: x.wrk?.p99Ms ?? null,
      heyP99Ms: x.hey?.p99Ms ?? null,
    }));
  const result = {
    createdAt: new Date().toISOString(),
    command: `nice -n 10 node --import tsx bench/serve.ts --users ${users} --items ${items} --seconds ${seconds} --history ${historyPerUser} --conc ${concs.join(',')} --rounds ${rounds} --systems ${systems.join(',')} --precision ${precision} --out ${out}`,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, loadavgAtStart: loadavg(), node: process.version },
    model: {
      users,
      items,
      embeddingDim: config.embeddingDim,
      hiddenUnits: config.hiddenUnits,
      outputDim: config.outputDim,
      historyPerUser,
    },
    bundleBytes: bundle.manifest.sizes,
    setup:
      'servers are child processes, defaults (recflow: 1 onnxruntime thread, micro-batching, admission budget 50 ms, at least 64 in flight; peers: ' +
      'FastAPI async def + pydantic + orjson, uvicorn uvloop/httptools, 1 intra-op thread, 1 or 2 workers); wrk -t1 --timeout 2s, ' +
      'a Lua script cycling 4096 POST /v1/recommend bodies {userId known, k: 10}; hey -cpus 1 -t 2 -o csv at c >= 1024 for the ' +
      "admitted (200) latency (steady state: a connection's first request, which carries its connect, left out); " +
      'systems interleaved per concurrency and rotated per round, medians over rounds; same host as the servers (2 cores, shared)',
    secondsPerPoint: seconds,
    rounds,
    points,
    raw,
    ratios,
    goals,
    hostFloor,
  };
  console.table(ratios);
  console.table(goals);
  await writeResult(out, result);
  console.log(`wrote bench/results/${out}`);
  await rm(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
