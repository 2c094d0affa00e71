/**
 * Serving benchmark: throughput and p50/p99 latency of `/v1/recommend` at several concurrencies, side by side:
 * - `limit`:   raw onnxruntime-node `session.run` on the same inputs (batch 1, `c` concurrent calls), no HTTP;
 * - `limit-batched`: one `session.run` on a batch of `c` users at a time (what perfect batching could reach);
 * - `recflow`: the recflow server (`recflow serve --bundle`, a child process, micro-batching on);
 * - `peer`:    a Python FastAPI + onnxruntime server (bench/serve_peer.py) on the SAME ONNX file, batch 1.
 * Both servers and the raw sessions use 1 intra-op thread. fp32 and int8. Closed-loop load generator (this process,
 * keep-alive HTTP), `c` workers, known users, k = 10.
 *
 *   node --import tsx bench/serve.ts [--users 50000] [--items 20000] [--seconds 3] [--conc 1,8,32]
 *     [--systems limit,recflow,peer[,recflow-nobatch]] [--precisions fp32,int8] [--out serve.json]
 * (`recflow-nobatch`: the recflow server with `--max-batch 1`, to see what micro-batching adds.)
 *
 * The Python venv is `.tools/bench-venv` (fastapi, uvicorn[standard], onnxruntime, numpy from PyPI), made if
 * missing; `RECFLOW_BENCH_VENV` points elsewhere. Results: bench/results/serve.json.
 */
import { PY, REPO, ensureVenv, strArg, writeResult } from './peer';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Precision } from '../lib/bundle';
import { DEFAULT_MODEL_CONFIG } from '../kinds/two-tower/spec';
import { loadBundle } from '../lib/onnx/bundle-io';
import { writeBundle } from '../kinds/two-tower/bundle';
import { randomModel, rng } from '../test/helpers/random-model';

interface Point {
  system: 'limit' | 'limit-batched' | 'recflow' | 'recflow-nobatch' | 'peer';
  precision: Precision;
  concurrency: number;
  requests: number;
  errors: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

function summarize(lat: number[], errors: number, ms: number): Omit<Point, 'system' | 'precision' | 'concurrency'> {
  lat.sort((a, b) => a - b);
  const q = (p: number) => Math.round((lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN) * 1000) / 1000;
  return { requests: lat.length, errors, rps: Math.round((lat.length / ms) * 1000), p50Ms: q(0.5), p99Ms: q(0.99) };
}

/** Closed loop: `c` workers each awaiting `fn` back to back for `ms` (after `warmMs` unmeasured). */
async function closedLoop(c: number, ms: number, fn: (w: number, i: number) => Promise<boolean>, warmMs = 500) {
  const lat: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const worker = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const t = performance.now();
      const ok = await fn(w, i).catch(() => false);
      if (!measuring) continue;
      if (ok) lat.push(performance.now() - t);
      else errors++;
    }
  };
  const all = Promise.all(Array.from({ length: c }, (_, w) => worker(w)));
  await new Promise((r) => setTimeout(r, warmMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  stop = true;
  const elapsed = performance.now() - t0;
  measuring = false;
  await all;
  return summarize(lat, errors, elapsed);
}

function httpPost(agent: http.Agent, port: number, path: string, body: string): Promise<boolean> {
  return new Promise((res, rej) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (r) => {
        r.resume();
        r.on('end', () => res(r.statusCode === 200));
        r.on('error', rej);
      },
    );
    req.on('error', rej);
    req.end(body);
  });
}

async function waitReady(port: number, proc: ChildProcess, what: string): Promise<void> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after 60 s`);
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

async function main(): Promise<void> {
  const users = Number(strArg('users', '50000'));
  const items = Number(strArg('items', '20000'));
  const seconds = Number(strArg('seconds', '3'));
  const concs = strArg('conc', '1,8,32').split(',').map(Number);
  const systems = new Set(strArg('systems', 'limit,recflow,peer').split(','));
  const precisions = strArg('precisions', 'fp32,int8').split(',') as Precision[];
  const out = strArg('out', 'serve.json');
  ensureVenv(['fastapi', 'uvicorn', 'onnxruntime', 'numpy'], ['fastapi', 'uvicorn[standard]', 'onnxruntime', 'numpy']);
  const work = await mkdtemp(join(tmpdir(), 'recflow-bench-serve-'));
  const bundleDir = join(work, 'bundle');
  await mkdir(bundleDir);
  const config = { ...DEFAULT_MODEL_CONFIG };
  const sizes = { users, items, segments: 8, regions: 20, categories: 50, brands: 500, tokens: 2000 };
  console.log(`model: ${users} users, ${items} items, dim ${config.embeddingDim}/${config.outputDim}`);
  const m = randomModel({ sizes, config, seed: 5 });
  const ids = (p: string, n: number) => ['<unk>', ...Array.from({ length: n - 1 }, (_, i) => `${p}${i + 1}`)];
  await writeBundle(bundleDir, {
    modelName: 'bench',
    datasetId: 'bench',
    checkpointId: 'bench',
    weights: m.weights,
    features: m.features,
    meta: { config, sizes },
    vocab: { users: ids('u', users), items: ids('i', items) },
    popularity: Float32Array.from({ length: items }, (_, i) => (i ? items - i : 0)),
  });
  const bundle = await loadBundle(bundleDir);
  const r = rng(9);
  const userIdx = Array.from({ length: 4096 }, () => 1 + Math.floor(r() * (users - 1)));
  const bodies = userIdx.map((u) => JSON.stringify({ userId: `u${u}`, k: 10 }));
  const ms = seconds * 1000;
  const points: Point[] = [];
  const record = (p: Point) => {
    points.push(p);
    console.log(
      `${p.precision} c=${String(p.concurrency).padStart(2)} ${p.system.padEnd(13)} ${String(p.rps).padStart(6)} req/s  p50 ${p.p50Ms} ms  p99 ${p.p99Ms} ms${p.errors ? `  errors ${p.errors}` : ''}`,
    );
  };

  for (const precision of precisions) {
    // The limit: raw session.run, 1 thread, same inputs.
    const session = await ort.InferenceSession.create(bundle.paths[precision].recommend, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    const feeds = (us: number[]) => ({
      user: new ort.Tensor('int64', BigInt64Array.from(us, BigInt), [us.length]),
      k: new ort.Tensor('int64', BigInt64Array.of(10n), [1]),
      exclude: new ort.Tensor('int64', new BigInt64Array(0), [us.length, 0]),
      history: new ort.Tensor('int64', new BigInt64Array(0), [us.length, 0]),
    });
    for (const c of systems.has('limit') ? concs : []) {
      const one = await closedLoop(c, ms, async (w, i) => {
        await session.run(feeds([userIdx[(w * 131 + i) % userIdx.length] ?? 1]));
        return true;
      });
      record({ system: 'limit', precision, concurrency: c, ...one });
      if (c > 1) {
        const lat: number[] = [];
        const end = performance.now() + ms;
        let n = 0;
        const t0 = performance.now();
        for (let i = 0; performance.now() < end; i++) {
          const t = performance.now();
          await session.run(feeds(Array.from({ length: c }, (_, j) => userIdx[(i * c + j) % userIdx.length] ?? 1)));
          const d = performance.now() - t;
          for (let j = 0; j < c; j++) lat.push(d);
          n += c;
        }
        const s = summarize(lat, 0, performance.now() - t0);
        record({ system: 'limit-batched', precision, concurrency: c, ...s, requests: n });
      }
    }
    await session.release();

    const recflow = (system: 'recflow' | 'recflow-nobatch', port: number) => ({
      system,
      port,
      start: () =>
        spawn(
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
            '--threads',
            '1',
            '--max-batch',
            system === 'recflow' ? '64' : '1',
          ],
          {
            stdio: ['ignore', 'ignore', 'inherit'],
            env: { ...process.env, RECFLOW_HOME: work, RECFLOW_LOG_LEVEL: 'warn' },
          },
        ),
    });
    const servers: Array<{
      system: 'recflow' | 'recflow-nobatch' | 'peer';
      port: number;
      start: () => ChildProcess;
    }> = [
      recflow('recflow', 18711),
      recflow('recflow-nobatch', 18713),
      {
        system: 'peer',
        port: 18712,
        start: () =>
          spawn(PY, [join(REPO, 'bench', 'serve_peer.py'), bundleDir, precision, '18712', '1'], {
            stdio: ['ignore', 'ignore', 'inherit'],
          }),
      },
    ];
    for (const s of servers.filter((x) => systems.has(x.system))) {
      const proc = s.start();
      try {
        await waitReady(s.port, proc, s.system);
        for (const c of concs) {
          const agent = new http.Agent({ keepAlive: true, maxSockets: c });
          const res = await closedLoop(c, ms, (w, i) =>
            httpPost(agent, s.port, '/v1/recommend', bodies[(w * 131 + i) % bodies.length] ?? '{}'),
          );
          agent.destroy();
          record({ system: s.system, precision, concurrency: c, ...res });
        }
      } finally {
        await stopProc(proc);
      }
    }
  }

  const ratios = points
    .filter((p) => p.system === 'recflow')
    .map((p) => {
      const find = (sys: Point['system']) =>
        points.find((q) => q.system === sys && q.precision === p.precision && q.concurrency === p.concurrency);
      const peer = find('peer');
      const limit = find('limit');
      const r2 = (x: number | undefined) => (x === undefined ? null : Math.round(x * 100) / 100);
      return {
        precision: p.precision,
        concurrency: p.concurrency,
        rpsVsPeer: r2(peer ? p.rps / peer.rps : undefined),
        p50VsPeer: r2(peer ? p.p50Ms / peer.p50Ms : undefined),
        p99VsPeer: r2(peer ? p.p99Ms / peer.p99Ms : undefined),
        rpsVsLimit: r2(limit ? p.rps / limit.rps : undefined),
      };
    });
  const result = {
    createdAt: new Date().toISOString(),
    command: `node --import tsx bench/serve.ts --users ${users} --items ${items} --seconds ${seconds} --conc ${concs.join(',')} --systems ${[...systems].join(',')} --precisions ${precisions.join(',')} --out ${out}`,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, loadavgAtStart: loadavg(), node: process.version },
    model: {
      users,
      items,
      embeddingDim: config.embeddingDim,
      hiddenUnits: config.hiddenUnits,
      outputDim: config.outputDim,
    },
    bundleBytes: bundle.manifest.sizes,
    setup:
      'closed loop, keep-alive HTTP from this process; servers are child processes; 1 intra-op thread everywhere; ' +
      'POST /v1/recommend {userId known, k: 10}; limit = raw session.run batch 1 with c concurrent calls; ' +
      'limit-batched = session.run on c users at once (latency = batch latency)',
    secondsPerPoint: seconds,
    points,
    ratios,
  };
  console.table(ratios);
  await writeResult(out, result);
  console.log(`wrote bench/results/${out}`);
  await rm(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
