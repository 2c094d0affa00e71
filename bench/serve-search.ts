/**
 * Search serving benchmark: `/v1/search` end to end (HTTP, JSON validation, tokenizer, the search graph with the item
 * index inside, the response) of the recflow server against a strong Python peer, loaded by `wrk` (not this process):
 * - `recflow`: `recflow serve --bundle` on a search bundle (a child process; one onnxruntime thread, micro-batching,
 *   admission control: the defaults; every response signs a feedback token);
 * - `peer1`, `peer2`: bench/serve_search_peer.py (FastAPI `async def`, pydantic, orjson, uvicorn with uvloop and
 *   httptools, Hugging Face `tokenizers`, onnxruntime one intra-op thread) with 1 and 2 uvicorn workers, on the SAME
 *   bundle, graph and contract;
 * - `limit`: the bundle's own `search` in this process (tokenizer + session.run, no HTTP), at c = 1: the model's
 *   floor.
 * The bundle is the pretrained MiniLM (`npm run setup`) exported over the stand-in shop's catalogue
 * (bench/search-shop.ts; `--items` titles) by kinds/search/export.ts (fp32 and int8-dynamic); queries are the shop's
 * test queries, k = 10. Before timing, the answers of every server are compared (same top-10 ids). Load: `wrk` (one
 * thread, keep-alive, a Lua script cycling through the query bodies, `--timeout 2s`) at each concurrency, systems
 * interleaved and rotated per round, medians over `--rounds`; CPU per request from /proc. Linux only.
 *
 *   nice -n 10 node --import tsx bench/serve-search.ts [--items 3000] [--seconds 5] [--conc 1,8] [--rounds 3]
 *     [--systems recflow,peer1,peer2,limit] [--precision int8] [--hybrid 0.6] [--out serve-search.json]
 *
 * `--hybrid w` writes the bundle with dense weight `w` for both variants (kinds/search/served.ts: recflow then
 * serves BM25 + dense over the whole catalogue); the peers serve dense only, so compare them without it.
 *
 * Python: `RECFLOW_BENCH_PYTHON` (needs fastapi uvicorn uvloop httptools orjson pydantic onnxruntime numpy tokenizers),
 * else the bench venv of bench/peer.ts. Needs `wrk` on PATH (Debian: `apt-get install wrk`).
 * Results: bench/results/<out>.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBaseModel, resolveBaseModelDir } from '../kinds/search/base-model';
import { loadSearchVariant, readSearchBundle } from '../kinds/search/bundle';
import type { Precision } from '../lib/bundle';
import { writeSearchBundle } from '../test/helpers/search-bundle';
import {
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
import { PY, ensureVenv, numArg, strArg, writeResult } from './peer';
import { makeSearchShop } from './search-shop';

type System = 'recflow' | 'peer1' | 'peer2' | 'limit';
type Server = Exclude<System, 'limit'>;

interface Point extends WrkResult {
  system: System;
  concurrency: number;
  tool: 'wrk' | 'in-process';
  /** Server CPU (all its processes) per answered request, ms. */
  cpuMsPerRequest?: number;
}

interface SearchAnswer {
  items: Array<{ itemId: string; score: number }>;
}

async function postSearch(port: number, body: string): Promise<SearchAnswer> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/search`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  if (!res.ok) throw new Error(`port ${port}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as SearchAnswer;
}

async function main(): Promise<void> {
  const nItems = numArg('items', 3000);
  const seconds = numArg('seconds', 5);
  const concs = strArg('conc', '1,8').split(',').map(Number);
  const systems = strArg('systems', 'recflow,peer1,peer2,limit').split(',') as System[];
  const rounds = numArg('rounds', 3);
  const precision = strArg('precision', 'int8') as Precision;
  const out = strArg('out', 'serve-search.json');
  const hybridArg = strArg('hybrid', '');
  const hybrid = hybridArg ? Number(hybridArg) : undefined;
  let python = process.env.RECFLOW_BENCH_PYTHON;
  const modules = ['fastapi', 'uvicorn', 'uvloop', 'httptools', 'orjson', 'pydantic', 'onnxruntime', 'numpy'];
  if (!python) {
    ensureVenv([...modules, 'tokenizers'], [...modules, 'tokenizers']);
    python = PY;
  }

  const work = await mkdtemp(join(tmpdir(), 'recflow-bench-serve-search-'));
  const bundleDir = join(work, 'bundle');
  const shop = makeSearchShop({ items: nItems, seed: 3 });
  const base = await loadBaseModel(resolveBaseModelDir());
  const t0 = performance.now();
  await writeSearchBundle(bundleDir, {
    weights: base.weights,
    config: base.config,
    tokenizerDir: base.dir,
    items: shop.items.map((i) => ({ id: i.id, text: i.title })),
    queryMaxLength: 32,
    itemMaxLength: 64,
    ...(hybrid !== undefined ? { hybridWeights: { fp32: hybrid, 'int8-dynamic': hybrid } } : {}),
  });
  console.log(`bundle: MiniLM zero-shot over ${shop.items.length} titles in ${Math.round(performance.now() - t0)} ms`);
  const queries = [...shop.test, ...shop.validation].map((q) => q.text);
  const bodies = queries.map((query, i) => JSON.stringify({ query, k: 10, userId: `u${i % 5000}` }));
  const lua = join(work, 'search.lua');
  await writeFile(lua, wrkLua(bodies, '/v1/search'));

  const points: Point[] = [];
  const raw: Array<Point & { round: number }> = [];
  let round = 0;
  const record = (p: Point) => {
    raw.push({ ...p, round });
    console.log(
      `c=${String(p.concurrency).padStart(3)} ${p.system.padEnd(8)} ${String(p.rps).padStart(6)} req/s  p50 ${p.p50Ms} ms  p99 ${p.p99Ms} ms` +
        (p.non2xx ? `  non-2xx ${p.non2xx}` : '') +
        (p.timeouts ? `  timeouts ${p.timeouts}` : '') +
        (p.socketErrors ? `  socket errors ${p.socketErrors}` : '') +
        (p.cpuMsPerRequest !== undefined ? `  cpu ${p.cpuMsPerRequest} ms/req` : ''),
    );
  };

  if (systems.includes('limit')) {
    const { model } = await loadSearchVariant(await readSearchBundle(bundleDir), precision);
    for (let i = 0; i < 50; i++) await model.search(queries[i % queries.length]!, 10); // warm-up
    for (round = 1; round <= rounds; round++) {
      const lat: number[] = [];
      const end = performance.now() + seconds * 1000;
      for (let i = 0; performance.now() < end; i++) {
        const t = performance.now();
        await model.search(queries[i % queries.length]!, 10);
        lat.push(performance.now() - t);
      }
      record({ system: 'limit', concurrency: 1, tool: 'in-process', ...inProcessResult(lat, seconds) });
    }
    await model.session.release();
  }

  const ports: Record<Server, number> = { recflow: 18721, peer1: 18722, peer2: 18723 };
  const start = (s: Server): ChildProcess => {
    if (s === 'recflow') return spawnRecflow(ports[s], bundleDir, precision, work);
    return spawnPeer(python, 'serve_search_peer:app', ports[s], s === 'peer2' ? 2 : 1, bundleDir, precision);
  };
  const servers = systems.filter((s): s is Server => s !== 'limit');
  const url = (s: Server) => `http://127.0.0.1:${ports[s]}/v1/search`;
  const procs = new Map<Server, ChildProcess>();
  const parity: Record<string, { queries: number; sameTop10: number; maxScoreDelta: number }> = {};
  try {
    for (const s of servers) {
      const p = start(s);
      procs.set(s, p);
      await waitReady(ports[s], p, s);
    }
    // The same answers from every server (the same graph and tokenizer): compared with recflow's.
    const ref = servers[0];
    if (ref)
      for (const s of servers.slice(1)) {
        const stat = { queries: 0, sameTop10: 0, maxScoreDelta: 0 };
        for (const body of bodies.slice(0, 100)) {
          const [a, b] = [await postSearch(ports[ref], body), await postSearch(ports[s], body)];
          stat.queries++;
          if (a.items.map((x) => x.itemId).join() === b.items.map((x) => x.itemId).join()) stat.sameTop10++;
          a.items.forEach((x, i) => {
            stat.maxScoreDelta = Math.max(stat.maxScoreDelta, Math.abs(x.score - (b.items[i]?.score ?? NaN)) || 0);
          });
        }
        parity[`${ref}-vs-${s}`] = stat;
        console.log(
          `parity ${ref} vs ${s}: ${stat.sameTop10}/${stat.queries} same top 10, max |score delta| ${stat.maxScoreDelta}`,
        );
      }
    // Warm-up (JIT of the tokenizer and the handlers, onnxruntime's first batches): the first round ran ~40 % more
    // CPU per request for recflow with a 1 s warm-up.
    for (const s of servers) {
      await wrk(url(s), 8, 3, lua);
      await wrk(url(s), 1, 2, lua);
    }
    // Interleave the systems (rotated per concurrency and round) so a change of the host's load hits them alike.
    await interleavedRounds(servers, concs, rounds, async (s, c, r) => {
      round = r;
      const res = await wrkWithCpu(procs.get(s)!.pid!, url(s), c, seconds, lua);
      record({ system: s, concurrency: c, tool: 'wrk', ...res });
    });
  } finally {
    for (const p of procs.values()) await stopProc(p);
  }

  // One point per (system, concurrency): medians over the rounds (counts summed).
  const groups = new Map<string, Array<Point & { round: number }>>();
  for (const p of raw) {
    const key = `${p.system}|${p.concurrency}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  for (const g of groups.values()) {
    const m = (f: (p: Point) => number | undefined) => median(g.map((p) => f(p) ?? NaN));
    const first = g[0]!;
    points.push({
      system: first.system,
      concurrency: first.concurrency,
      tool: first.tool,
      requests: g.reduce((a, p) => a + p.requests, 0),
      rps: Math.round(m((p) => p.rps)),
      okRps: Math.round(m((p) => p.okRps)),
      p50Ms: m((p) => p.p50Ms),
      p99Ms: m((p) => p.p99Ms),
      non2xx: g.reduce((a, p) => a + p.non2xx, 0),
      timeouts: g.reduce((a, p) => a + p.timeouts, 0),
      socketErrors: g.reduce((a, p) => a + p.socketErrors, 0),
      ...(first.cpuMsPerRequest !== undefined ? { cpuMsPerRequest: m((p) => p.cpuMsPerRequest) } : {}),
    });
  }
  const at = (s: System, c: number) => points.find((p) => p.system === s && p.concurrency === c);
  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && b > 0 ? Math.round((a / b) * 100) / 100 : null;
  const ratios = concs.flatMap((c) =>
    (['peer1', 'peer2'] as const)
      .filter((peer) => at(peer, c) && at('recflow', c))
      .map((peer) => ({
        concurrency: c,
        versus: peer,
        /** recflow throughput / peer throughput (> 1: recflow answers more). */
        throughput: ratio(at('recflow', c)?.rps, at(peer, c)?.rps),
        /** recflow latency / peer latency (< 1: recflow is faster). */
        p50: ratio(at('recflow', c)?.p50Ms, at(peer, c)?.p50Ms),
        p99: ratio(at('recflow', c)?.p99Ms, at(peer, c)?.p99Ms),
        cpuPerRequest: ratio(at('recflow', c)?.cpuMsPerRequest, at(peer, c)?.cpuMsPerRequest),
      })),
  );
  const result = {
    bench: 'serve-search',
    createdAt: new Date().toISOString(),
    host: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
    command: `node --import tsx bench/serve-search.ts ${process.argv.slice(2).join(' ')}`.trim(),
    model: {
      base: base.source.upstream ?? 'all-MiniLM-L6-v2',
      precision,
      items: shop.items.length,
      queryMaxLength: 32,
      ...(hybrid !== undefined ? { hybridWeight: hybrid } : {}),
      note: 'pretrained MiniLM exported zero-shot (serving speed does not depend on fine-tuning)',
    },
    peer: 'bench/serve_search_peer.py: FastAPI async def + pydantic + orjson, uvicorn uvloop/httptools, tokenizers, onnxruntime 1 intra-op thread, 1 or 2 workers, one query per session.run, no feedback token',
    method:
      'wrk -t1 --timeout 2s over the shop test queries (k = 10); systems interleaved per concurrency and rotated per round, medians over rounds; same host as the servers (2 cores, shared)',
    secondsPerPoint: seconds,
    rounds,
    parity,
    points,
    raw,
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
