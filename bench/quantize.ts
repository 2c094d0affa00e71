/**
 * Quantization benchmark, TypeScript int8 export vs onnxruntime's Python `quantize_dynamic` on the SAME fp32 files.
 *
 *   node --import tsx bench/quantize.ts [--users 200000] [--items 50000] [--dim 64]
 *
 * 1. Exports a random two-tower model of realistic size (fp32 and the TS int8 graphs) into a temp folder.
 * 2. Makes `.tools/bench-venv` (onnx, onnxruntime, numpy from PyPI) if needed, and runs bench/quantize_peer.py:
 *    `quantize_dynamic` (default, and per-channel + reduce_range), then every variant's file size, latency of the
 *    score graph at batch 1, 256, 4096 and of the recommend graph (k=10, full catalog) at batch 1 and 256, 1 thread,
 *    and score deltas vs fp32 on 4096 pairs, top-10 overlap with fp32 on 256 users.
 * 3. Measures the same latencies with onnxruntime-node, and writes bench/results/quantize.json.
 */
import { PY, REPO, ensureVenv, numArg, writeResult } from './peer';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { exportGraphs } from '../kinds/two-tower/export';
import { SMALL_CONFIG, randomModel, rng } from '../test/helpers/random-model';

interface Timing {
  medianMs: number;
  p99Ms: number;
  runs: number;
}

async function timed(fn: () => Promise<unknown>, budgetMs = 1500, maxRuns = 2000): Promise<Timing> {
  for (let i = 0; i < 3; i++) await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxRuns && performance.now() - start < budgetMs) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return {
    medianMs: times[Math.floor(times.length / 2)] ?? NaN,
    p99Ms: times[Math.min(times.length - 1, Math.floor(0.99 * times.length))] ?? NaN,
    runs: times.length,
  };
}

const i64 = (xs: ArrayLike<bigint>, dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(xs as bigint[]), dims);

async function main(): Promise<void> {
  const users = numArg('users', 200_000);
  const items = numArg('items', 50_000);
  const dim = numArg('dim', 64);
  const work = await mkdtemp(join(tmpdir(), 'recflow-bench-quantize-'));
  try {
    const m = randomModel({
      seed: 7,
      sizes: { users, items, segments: 12, regions: 30, categories: 200, brands: 2000, tokens: 5000 },
      config: { ...SMALL_CONFIG, embeddingDim: dim, featureDim: 16, hiddenUnits: 128, outputDim: dim },
    });
    const t0 = performance.now();
    const g = exportGraphs(m.weights, m.features, {
      modelName: 'bench',
      datasetId: 'bench',
      checkpointId: 'bench',
      vocabHash: 'bench',
      config: m.config,
      sizes: m.sizes,
      extras: m.extras,
    });
    const exportSeconds = (performance.now() - t0) / 1000;
    for (const p of ['fp32', 'int8'] as const)
      for (const k of ['score', 'recommend'] as const) await writeFile(join(work, `${k}.${p}.onnx`), g[p][k]);
    const r = rng(1);
    const pairs = new BigInt64Array(4096 * 2);
    for (let i = 0; i < 4096; i++) {
      pairs[2 * i] = BigInt(1 + Math.floor(r() * (users - 1)));
      pairs[2 * i + 1] = BigInt(1 + Math.floor(r() * (items - 1)));
    }
    const benchUsers = BigInt64Array.from({ length: 256 }, () => BigInt(1 + Math.floor(r() * (users - 1))));
    await writeFile(join(work, 'pairs.bin'), new Uint8Array(pairs.buffer));
    await writeFile(join(work, 'users.bin'), new Uint8Array(benchUsers.buffer));

    ensureVenv(['onnx', 'onnxruntime', 'numpy'], ['onnx', 'onnxruntime', 'numpy']);
    console.log('running bench/quantize_peer.py');
    execFileSync(PY, [join(REPO, 'bench', 'quantize_peer.py'), work], { stdio: 'inherit' });
    const peer = JSON.parse(await readFile(join(work, 'peer.json'), 'utf8')) as {
      onnxruntime: string;
      quantizeSeconds: number;
      variants: Record<string, unknown>;
    };

    // The same latencies with onnxruntime-node.
    const node: Record<string, { score: Record<string, Timing>; recommend: Record<string, Timing>; bytes: number }> =
      {};
    const opts: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    };
    for (const v of ['fp32', 'int8', 'ort_int8', 'ort_int8_pc']) {
      const score = await ort.InferenceSession.create(join(work, `score.${v}.onnx`), opts);
      const rec = await ort.InferenceSession.create(join(work, `recommend.${v}.onnx`), opts);
      const res = { score: {} as Record<string, Timing>, recommend: {} as Record<string, Timing>, bytes: 0 };
      res.bytes = (await stat(join(work, `score.${v}.onnx`))).size;
      for (const b of [1, 256, 4096]) {
        const u = new BigInt64Array(b);
        const it = new BigInt64Array(b);
        for (let i = 0; i < b; i++) {
          u[i] = pairs[2 * i]!;
          it[i] = pairs[2 * i + 1]!;
        }
        const feeds = { user: i64(u, [b]), items: i64(it, [b, 1]), history: i64(new BigInt64Array(0), [b, 0]) };
        res.score[`batch${b}`] = await timed(() => score.run(feeds));
      }
      for (const b of [1, 256]) {
        const feeds = {
          user: i64(benchUsers.subarray(0, b), [b]),
          k: i64([10n], [1]),
          exclude: new ort.Tensor('int64', new BigInt64Array(0), [b, 0]),
          history: new ort.Tensor('int64', new BigInt64Array(0), [b, 0]),
        };
        res.recommend[`batch${b}`] = await timed(() => rec.run(feeds), 1500, 500);
      }
      node[v] = res;
      console.log(v, JSON.stringify(res));
      await score.release();
      await rec.release();
    }
    const ortVersion = (
      JSON.parse(await readFile(join(REPO, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    const result = {
      command: 'node --import tsx bench/quantize.ts',
      machine: { cpus: 2, note: 'AVX2, no VNNI; 1 intra-op thread' },
      model: { users, items, embeddingDim: dim, featureDim: 16, hiddenUnits: 128, outputDim: dim },
      tsExportSeconds: exportSeconds,
      onnxruntimeNode: ortVersion,
      node,
      python: peer,
      at: new Date().toISOString(),
    };
    await writeResult('quantize.json', result);
    console.log('wrote bench/results/quantize.json');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
