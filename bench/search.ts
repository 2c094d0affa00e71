/**
 * Search benchmark: the encoder's latency, size and quality per precision, the distilled student, BM25 and hybrid
 * ranking, and the fine-tuning step against a PyTorch CPU twin, side by side in one run.
 *
 *   npx tsx bench/search.ts [--sections latency,quality,train,scale] [--items 3000] [--queries 5000]
 *     [--pairs 4000] [--scale-pairs 20000] [--train-steps 8] [--runs 200]
 *
 * - latency: ONNX encoders on onnxruntime-node with one intra-op thread: fp32, int8 weight-only, int8 dynamic
 *   (per-row activation scales; weights +-127 and +-63), int8 static (calibrated), the 3-layer student (fp32 and
 *   int8 dynamic); batch 1 (a short query, and 16 tokens) and 64 (test queries, padded to the longest); file sizes.
 * - quality: the stand-in shop (bench/search-shop.ts) until the shop's search log exists: BM25, the pretrained
 *   encoder zero-shot, the fine-tune (top 2 layers, frozen layers cached, BM25 hard negatives), each int8 variant,
 *   the student, and the hybrid (weight tuned on validation queries): NDCG@10, MRR@10, Recall@100 on test queries
 *   (graded relevance, kinds/search/metrics.ts), and each compressed encoder's top-10 overlap with fp32.
 * - train: seconds per fine-tuning step, tfjs (wasm, one thread) and the onnxruntime engine (kinds/search/ort-train.ts,
 *   one thread) vs bench/search_train_peer.py (PyTorch CPU, 1 and 2 threads) on the same batches (batch 32, one hard
 *   negative each, queries 16 and items 32 tokens), the same weights and trainable layers: the whole model
 *   (embeddings included, tfjs only) and the top 2 layers (frozen outputs cached in both).
 *   The first step's loss is compared (same weights, same batch: the twin computes the same thing).
 * - scale: a fine-tune of `--scale-pairs` pairs in the CPU configuration (top 2 layers, cache, one epoch), timed end
 *   to end (cache, training, validation).
 * Python: RECFLOW_BENCH_PYTHON (default python3) with torch and safetensors. Results: bench/results/search.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { numArg, strArg, writeResult, REPO } from './peer';
import { makeSearchShop, type SearchShop, type ShopQuery } from './search-shop';
import { selectBackend } from '../lib/train/backend';
import { loadBaseModel, type BaseModel, type BertConfig, type BertWeights } from '../kinds/search/base-model';
import { Bm25Index, topK } from '../kinds/search/bm25';
import { calibrateStaticScales } from '../kinds/search/calibrate';
import { distillStudent } from '../kinds/search/distill';
import { epochBatches, fineTune, type FineTuneOptions, type TrainingPair } from '../kinds/search/fine-tune';
import { bm25Ranker, mineHardNegatives } from '../kinds/search/hard-negatives';
import { hybridRank, tuneHybridWeight } from '../kinds/search/hybrid';
import { searchMetrics, type SearchMetrics } from '../kinds/search/metrics';
import { buildEncoderGraph, type EncoderGraphOptions, type EncoderPrecision } from '../kinds/search/onnx-encoder';
import { SearchSession } from '../kinds/search/session';
import { SearchTokenizer } from '../kinds/search/tokenizer';

const PYTHON = process.env.RECFLOW_BENCH_PYTHON || 'python3';
const sections = new Set(strArg('sections', 'latency,quality,train').split(','));
const result: Record<string, unknown> = {
  machine: { note: 'shared 2-core host under load from other sessions: compare ratios from one run' },
  python: process.env.RECFLOW_BENCH_PYTHON ? '$RECFLOW_BENCH_PYTHON' : 'python3',
};

const command = `npx tsx bench/search.ts ${process.argv.slice(2).join(' ')}`.trim();

/** A section's run: when and by which command (sections of bench/results/search.json may come from several runs). */
const ran = () => ({ ranAt: new Date().toISOString(), command });

/** Merge this run's sections into bench/results/search.json (sections not run now are kept, with their own `run`). */
async function save(): Promise<void> {
  const file = join(REPO, 'bench', 'results', 'search.json');
  const old = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  await writeResult('search.json', { ...old, ...result });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

interface Variant {
  name: string;
  weights: BertWeights;
  config: BertConfig;
  graph: EncoderGraphOptions;
}

/** Scores of every item for each query: row-major [queries, items]. */
function scoreMatrix(q: Float32Array, items: Float32Array, d: number): Float32Array {
  const nq = q.length / d;
  const ni = items.length / d;
  const out = new Float32Array(nq * ni);
  for (let i = 0; i < nq; i++)
    for (let j = 0; j < ni; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += (q[i * d + k] ?? 0) * (items[j * d + k] ?? 0);
      out[i * ni + j] = s;
    }
  return out;
}

function rankAll(scores: Float32Array, nq: number, k: number): number[][] {
  const ni = scores.length / nq;
  return Array.from({ length: nq }, (_, i) => topK(scores.subarray(i * ni, (i + 1) * ni), k).map((h) => h.doc));
}

function metricsOf(rankings: number[][], queries: ShopQuery[]): SearchMetrics {
  return searchMetrics(queries.map((q, i) => ({ ranking: rankings[i]!, grades: q.grades })));
}

function overlap10(a: number[][], b: number[][]): number {
  let s = 0;
  a.forEach((r, i) => {
    const set = new Set(b[i]!.slice(0, 10));
    s += r.slice(0, 10).filter((x) => set.has(x)).length / 10;
  });
  return s / a.length;
}

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
const fmt = (m: SearchMetrics) => ({
  ndcg10: round(m.ndcg),
  mrr10: round(m.mrr),
  recall100: round(m.recall),
  queries: m.queries,
});

/** Graded judgements by text for fineTune's validation: query -> title -> grade. */
function gradesByText(shop: SearchShop, queries: ShopQuery[]): Map<string, Map<string, number>> {
  return new Map(
    queries.map((q) => {
      const m = new Map<string, number>();
      for (const [row, g] of q.grades) {
        const t = shop.items[row]!.title;
        m.set(t, Math.max(g, m.get(t) ?? 0));
      }
      return [q.text, m];
    }),
  );
}

/** Training pairs from the shop's training queries: a grade-3 (or 2) item each, BM25 hard negatives. */
function shopPairs(shop: SearchShop, queries: ShopQuery[], n: number, seed: number): TrainingPair[] {
  const titles = shop.items.map((i) => i.title);
  const pairs: TrainingPair[] = [];
  let r = seed;
  const rand = () => (r = (r * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let round = 0; pairs.length < n && round < 50; round++) {
    for (const q of queries) {
      if (pairs.length >= n) break;
      const best = [...q.grades].filter(([, g]) => g >= 2).map(([row]) => row);
      if (!best.length) continue;
      pairs.push({ query: q.text, positive: titles[best[Math.floor(rand() * best.length)]!]! });
    }
  }
  const byText = new Map(queries.map((q) => [q.text, q]));
  const rowOf = new Map(titles.map((t, i) => [t, i]));
  return mineHardNegatives(pairs, titles, bm25Ranker(titles), {
    perPair: 1,
    isRelevant: (query, text) => (byText.get(query)?.grades.get(rowOf.get(text) ?? -1) ?? 0) >= 2,
  });
}

async function latencySection(base: BaseModel, variants: Variant[], queries: string[], runs: number): Promise<void> {
  const tok = SearchTokenizer.load(base.dir, 32);
  const rows: Array<Record<string, unknown>> = [];
  const short = 'crimson trainers for men';
  const b1 = tok.encodeBatch([short]);
  const b16 = tok.encodeBatch([short], { padTo: 16 });
  const b64 = tok.encodeBatch(queries.slice(0, 64));
  // Every session open at once, then rounds over the variants (a slice of calls each), so a change of load on the
  // host during the run falls on every variant alike. Per call: the median wall time, and the mean CPU time (robust
  // on a busy host: other processes' time is not ours).
  const open = await Promise.all(
    variants.map(async (v) => {
      const bytes = buildEncoderGraph(v.weights, v.config, v.graph);
      const s = await SearchSession.create(bytes, tok, { intraOpThreads: 1 });
      return { v, bytes, s, acc: new Map<string, { wall: number[]; cpu: number; n: number }>() };
    }),
  );
  const shapes: Array<[string, typeof b1, number]> = [
    ['batch1', b1, runs],
    ['batch1Seq16', b16, runs],
    ['batch64', b64, Math.max(10, runs / 10)],
  ];
  for (const o of open) for (const [, b] of shapes) for (let i = 0; i < 5; i++) await o.s.encodeTokens(b);
  const rounds = 5;
  for (let r = 0; r < rounds; r++) {
    for (const o of open) {
      for (const [key, b, n] of shapes) {
        const a = o.acc.get(key) ?? { wall: [], cpu: 0, n: 0 };
        o.acc.set(key, a);
        const c0 = process.cpuUsage();
        for (let i = 0; i < Math.ceil(n / rounds); i++) {
          const t0 = performance.now();
          await o.s.encodeTokens(b);
          a.wall.push(performance.now() - t0);
          a.n++;
        }
        const c = process.cpuUsage(c0);
        a.cpu += (c.user + c.system) / 1000;
      }
    }
  }
  for (const o of open) {
    const cpu = (k: string) => o.acc.get(k)!.cpu / o.acc.get(k)!.n;
    const wall = (k: string) => median(o.acc.get(k)!.wall);
    await o.s.release();
    rows.push({
      name: o.v.name,
      layers: o.v.config.numLayers,
      megabytes: round(o.bytes.length / 1e6, 1),
      tokensBatch1: b1.seqLen,
      msBatch1: round(cpu('batch1'), 3),
      msBatch1Seq16: round(cpu('batch1Seq16'), 3),
      seqBatch64: b64.seqLen,
      msBatch64: round(cpu('batch64'), 2),
      queriesPerCpuSecBatch64: round((64 / cpu('batch64')) * 1000, 0),
      wallMedianMs: {
        batch1: round(wall('batch1'), 3),
        batch1Seq16: round(wall('batch1Seq16'), 3),
        batch64: round(wall('batch64'), 2),
      },
    });
    console.log(JSON.stringify(rows[rows.length - 1]));
  }

  const get = (n: string) => rows.find((r) => r.name === n) as Record<string, number> | undefined;
  const fp32 = get('fp32')!;
  const ratios: Record<string, unknown> = {};
  for (const r of rows) {
    if (r.name === 'fp32') continue;
    ratios[String(r.name)] = {
      speedupBatch1: round(fp32.msBatch1! / (r.msBatch1 as number), 2),
      speedupBatch1Seq16: round(fp32.msBatch1Seq16! / (r.msBatch1Seq16 as number), 2),
      speedupBatch64: round(fp32.msBatch64! / (r.msBatch64 as number), 2),
      smaller: round(fp32.megabytes! / (r.megabytes as number), 2),
    };
  }
  const t0 = performance.now();
  for (let i = 0; i < 2000; i++) tok.encode(queries[i % queries.length]!);
  result.latency = {
    run: ran(),
    threads: 1,
    timing: 'ms: CPU time per call (process.cpuUsage over the runs / runs); wallMedianMs: median wall time per call',
    rows,
    vsFp32: ratios,
    tokenizerMicrosPerQuery: round(((performance.now() - t0) / 2000) * 1000, 1),
  };
}

async function encodeWith(v: Variant, tok: SearchTokenizer, texts: string[], maxLength: number): Promise<Float32Array> {
  const s = await SearchSession.create(buildEncoderGraph(v.weights, v.config, v.graph), tok);
  try {
    return await s.encode(texts, { maxLength, batchSize: 64 });
  } finally {
    await s.release();
  }
}

async function main(): Promise<void> {
  await selectBackend(process.env.RECFLOW_TF_BACKEND || 'wasm');
  const base = await loadBaseModel();
  const shop = makeSearchShop({ items: numArg('items', 3000), queries: numArg('queries', 5000) });
  const titles = shop.items.map((i) => i.title);
  const tok = SearchTokenizer.load(base.dir, 64);
  result.base = { ...base.source, dir: undefined };
  result.shop = {
    items: shop.items.length,
    train: shop.train.length,
    validation: shop.validation.length,
    test: shop.test.length,
  };
  const calibrationTexts = [...titles.slice(0, 300), ...shop.train.slice(0, 300).map((q) => q.text)];
  let teacher: Variant = { name: 'fp32', weights: base.weights, config: base.config, graph: { precision: 'fp32' } };
  let student: Variant | undefined;

  if (sections.has('quality')) {
    const test = shop.test;
    const testTexts = test.map((q) => q.text);
    const quality: Record<string, unknown> = {};
    const bm25 = new Bm25Index(titles);
    const bmScores = testTexts.map((q) => bm25.scores(q));
    quality.bm25 = fmt(
      metricsOf(
        bmScores.map((s) => topK(s, 100).map((h) => h.doc)),
        test,
      ),
    );
    const D = base.config.hiddenSize;
    const denseRank = async (v: Variant, index?: Float32Array) => {
      const items = index ?? (await encodeWith(v, tok, titles, 64));
      const q = await encodeWith(v, tok, testTexts, 32);
      return { items, q, rankings: rankAll(scoreMatrix(q, items, D), test.length, 100) };
    };
    const zero = await denseRank(teacher);
    quality.zeroShot = fmt(metricsOf(zero.rankings, test));
    console.log('bm25', quality.bm25, 'zero-shot', quality.zeroShot);

    const nPairs = numArg('pairs', 4000);
    const pairs = shopPairs(shop, shop.train, nPairs, 1);
    const valPairs = shopPairs(shop, shop.validation, 400, 2);
    const t0 = performance.now();
    const ft = await fineTune(pairs, {
      base,
      validation: { pairs: valPairs, corpus: titles, grades: gradesByText(shop, shop.validation) },
      trainableLayers: 2,
      epochs: 1,
      batchSize: 32,
      onProgress: (p) => {
        if (p.step % 50 === 0 || p.phase !== 'train') console.log('fine-tune', JSON.stringify(p));
      },
    });
    const ftSeconds = (performance.now() - t0) / 1000;
    const tuned: Variant = { name: 'fp32', weights: ft.weights, config: ft.config, graph: { precision: 'fp32' } };
    teacher = tuned;
    const fine = await denseRank(tuned);
    quality.fineTuned = {
      ...fmt(metricsOf(fine.rankings, test)),
      pairs: pairs.length,
      trainableLayers: 2,
      engine: 'auto (onnxruntime on CPU)',
      seconds: round(ftSeconds, 1),
      cacheSeconds: round(ft.cacheSeconds, 1),
      zeroShotValidation: ft.zeroShot,
      history: ft.history,
    };
    console.log('fine-tuned', quality.fineTuned);

    // Hybrid: the weight tuned on validation queries with the fine-tuned encoder.
    const val = shop.validation;
    const valQ = await encodeWith(
      tuned,
      tok,
      val.map((q) => q.text),
      32,
    );
    const valDense = scoreMatrix(valQ, fine.items, D);
    const ni = titles.length;
    const tuning = tuneHybridWeight(
      val.map((q, i) => ({
        bm25: bm25.scores(q.text),
        dense: valDense.subarray(i * ni, (i + 1) * ni),
        grades: q.grades,
      })),
    );
    const testDense = scoreMatrix(fine.q, fine.items, D);
    const hybrid = test.map((_, i) =>
      hybridRank(bmScores[i]!, testDense.subarray(i * ni, (i + 1) * ni), tuning.weight, 100),
    );
    quality.hybrid = {
      ...fmt(metricsOf(hybrid, test)),
      weight: tuning.weight,
      validationNdcg10: round(tuning.metrics.ndcg),
    };

    // Compression of the fine-tuned encoder.
    const scales = await calibrateStaticScales(tuned.weights, tuned.config, tok, calibrationTexts);
    const compressed: Variant[] = [
      {
        name: 'int8-weight-only',
        weights: tuned.weights,
        config: tuned.config,
        graph: { precision: 'int8-weight-only' },
      },
      { name: 'int8-dynamic', weights: tuned.weights, config: tuned.config, graph: { precision: 'int8-dynamic' } },
      {
        name: 'int8-dynamic-q63',
        weights: tuned.weights,
        config: tuned.config,
        graph: { precision: 'int8-dynamic', weightQmax: 63 },
      },
      {
        name: 'int8-static',
        weights: tuned.weights,
        config: tuned.config,
        graph: { precision: 'int8-static', staticScales: scales },
      },
    ];
    const rows: Record<string, unknown> = {};
    const fpNdcg = (quality.fineTuned as { ndcg10: number }).ndcg10;
    for (const v of compressed) {
      // Queries by the int8 encoder against the fp32 item index (what kinds/search/export.ts ships), and against an
      // index the int8 encoder built itself.
      const r = await denseRank(v, fine.items);
      const m = metricsOf(r.rankings, test);
      const self = await denseRank(v);
      const ms = metricsOf(self.rankings, test);
      rows[v.name] = {
        ...fmt(m),
        top10OverlapWithFp32: round(overlap10(r.rankings, fine.rankings)),
        ndcgVsFp32: round(m.ndcg / fpNdcg, 4),
        ownIndex: { ndcg10: round(ms.ndcg), top10OverlapWithFp32: round(overlap10(self.rankings, fine.rankings)) },
      };
      console.log(v.name, rows[v.name]);
    }
    // The student: 3 layers from the fine-tuned teacher's 0, 2, 4, distilled on training queries and titles.
    const t1 = performance.now();
    const st = await distillStudent([...shop.train.map((q) => q.text), ...titles], {
      teacher: { dir: base.dir, config: tuned.config, weights: tuned.weights },
      layers: [0, 2, 4],
      epochs: numArg('student-epochs', 2),
      batchSize: 32,
      learningRate: 2e-4,
      onProgress: (p) => {
        if (p.step % 50 === 0) console.log('distill', JSON.stringify(p));
      },
    });
    student = { name: 'student-fp32', weights: st.weights, config: st.config, graph: { precision: 'fp32' } };
    for (const v of [
      student,
      { ...student, name: 'student-int8-dynamic', graph: { precision: 'int8-dynamic' as EncoderPrecision } },
    ]) {
      const r = await denseRank(v);
      const m = metricsOf(r.rankings, test);
      rows[v.name] = {
        ...fmt(m),
        top10OverlapWithFp32: round(overlap10(r.rankings, fine.rankings)),
        ndcgVsFp32: round(m.ndcg / fpNdcg, 4),
      };
      console.log(v.name, rows[v.name]);
    }
    quality.compressed = rows;
    quality.student = { layers: st.layers, seconds: round((performance.now() - t1) / 1000, 1), history: st.history };
    const ndcg = (x: unknown) => (x as { ndcg10: number }).ndcg10;
    quality.ratios = {
      fineTunedVsBm25: round(ndcg(quality.fineTuned) / ndcg(quality.bm25), 3),
      fineTunedVsZeroShot: round(ndcg(quality.fineTuned) / ndcg(quality.zeroShot), 3),
      hybridVsBm25: round(ndcg(quality.hybrid) / ndcg(quality.bm25), 3),
      hybridVsFineTuned: round(ndcg(quality.hybrid) / ndcg(quality.fineTuned), 3),
    };
    result.quality = { run: ran(), ...quality };
    await save();
  }

  if (sections.has('latency')) {
    const scales = await calibrateStaticScales(teacher.weights, teacher.config, tok, calibrationTexts);
    const s = student ?? {
      name: 'student-fp32',
      weights: teacher.weights,
      config: teacher.config,
      graph: { precision: 'fp32' },
    };
    const studentWeights = student
      ? student
      : (() => {
          // Latency does not depend on the values: a 3-layer student cut from the teacher.
          const w: BertWeights = new Map();
          for (const [k, t] of teacher.weights) {
            const m = /^encoder\.layer\.(\d+)\.(.*)$/.exec(k);
            if (!m) w.set(k, t);
            else if ([0, 2, 4].includes(Number(m[1])))
              w.set(`encoder.layer.${[0, 2, 4].indexOf(Number(m[1]))}.${m[2]}`, t);
          }
          return { ...s, weights: w, config: { ...teacher.config, numLayers: 3 } };
        })();
    await latencySection(
      base,
      [
        teacher,
        { ...teacher, name: 'int8-weight-only', graph: { precision: 'int8-weight-only' } },
        { ...teacher, name: 'int8-dynamic', graph: { precision: 'int8-dynamic' } },
        { ...teacher, name: 'int8-dynamic-q63', graph: { precision: 'int8-dynamic', weightQmax: 63 } },
        { ...teacher, name: 'int8-static', graph: { precision: 'int8-static', staticScales: scales } },
        { ...studentWeights, name: 'student-fp32', graph: { precision: 'fp32' } },
        { ...studentWeights, name: 'student-int8-dynamic', graph: { precision: 'int8-dynamic' } },
      ],
      shop.test.map((q) => q.text),
      numArg('runs', 200),
    );
    await save();
  }

  if (sections.has('train')) {
    const steps = numArg('train-steps', 8);
    const pairs = shopPairs(shop, shop.train, 32 * (steps + 1), 3);
    const dir = mkdtempSync(join(tmpdir(), 'search-bench-'));
    const Q = 16;
    const Dl = 32;
    try {
      // The same batches for both: epoch 1 of fineTune's seeded order, token ids at fixed lengths.
      const batches = epochBatches(pairs, 32, 1, 1, 1).slice(0, steps);
      const side = (texts: string[], len: number) => {
        const b = tok.encodeBatch(texts, { maxLength: len, padTo: len });
        const rows = (a: Int32Array) =>
          Array.from({ length: b.batch }, (_, i) => Array.from(a.subarray(i * len, (i + 1) * len)));
        return { ids: rows(b.inputIds), mask: rows(b.attentionMask) };
      };
      const file = join(dir, 'batches.json');
      writeFileSync(
        file,
        JSON.stringify({ batches: batches.map((b) => ({ q: side(b.queries, Q), d: side(b.docs, Dl) })) }),
      );
      const rows: Array<Record<string, unknown>> = [];
      for (const cfg of [
        {
          name: 'top-2 layers, frozen outputs cached, tfjs wasm',
          trainable: 2,
          cache: true,
          embeddings: false,
          lr: 5e-5,
          engine: 'tfjs' as const,
        },
        {
          name: 'top-2 layers, frozen outputs cached, onnxruntime engine (1 thread)',
          trainable: 2,
          cache: true,
          embeddings: false,
          lr: 5e-5,
          engine: 'onnxruntime' as const,
        },
        {
          name: 'all 6 layers (embeddings frozen, their output cached), onnxruntime engine (1 thread)',
          trainable: base.config.numLayers,
          cache: true,
          embeddings: false,
          lr: 2e-5,
          engine: 'onnxruntime' as const,
        },
        {
          name: 'whole model (embeddings included), tfjs wasm',
          trainable: base.config.numLayers,
          cache: false,
          embeddings: true,
          lr: 2e-5,
          engine: 'tfjs' as const,
        },
      ]) {
        const stepCpu: number[] = [];
        const stepWall: number[] = [];
        let firstLoss = NaN;
        let lastCpu = process.cpuUsage();
        let lastWall = performance.now();
        const opts: FineTuneOptions = {
          base,
          trainableLayers: cfg.trainable,
          engine: cfg.engine,
          cacheFrozen: cfg.cache,
          trainEmbeddings: cfg.embeddings,
          learningRate: cfg.lr,
          warmupFraction: 0,
          epochs: 1,
          batchSize: 32,
          maxStepsPerEpoch: steps,
          fixedLengths: true,
          queryMaxLength: Q,
          itemMaxLength: Dl,
          progressEverySteps: 1,
          onProgress: (p) => {
            const c = process.cpuUsage(lastCpu);
            const w = performance.now();
            if (p.phase === 'train') {
              if (p.step === 1) firstLoss = p.loss ?? NaN;
              else {
                stepCpu.push((c.user + c.system) / 1e6);
                stepWall.push((w - lastWall) / 1000);
              }
            }
            lastCpu = process.cpuUsage();
            lastWall = performance.now();
          },
        };
        await fineTune(pairs, opts);
        const tfjs = {
          secondsPerStep: round(median(stepWall), 3),
          cpuSecondsPerStep: round(median(stepCpu), 3),
          samplesPerSec: round(32 / median(stepWall), 2),
          samplesPerCpuSec: round(32 / median(stepCpu), 2),
          firstLoss: round(firstLoss, 5),
        };
        const peers: Record<string, unknown>[] = [];
        for (const threads of [1, 2]) {
          // The twin runs at the same lr with no warm-up (the warm-up's first step would be lr/steps in recflow).
          const args = [
            join(REPO, 'bench', 'search_train_peer.py'),
            '--model',
            base.dir,
            '--batches',
            file,
            '--trainable',
            String(cfg.trainable),
            '--threads',
            String(threads),
            '--lr',
            String(cfg.lr),
          ];
          if (cfg.cache) args.push('--cache');
          if (cfg.embeddings) args.push('--train-embeddings');
          const r = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
          if (r.status !== 0) {
            peers.push({ threads, error: (r.stderr || r.stdout).split('\n').slice(-3).join(' ') });
            continue;
          }
          peers.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>);
        }
        const one = peers.find((p) => p.threads === 1 && !p.error) as
          { samplesPerSec: number; cpuSecondsPerStep: number; firstLoss: number } | undefined;
        const row = {
          config: cfg.name,
          batch: 32,
          negativesPerPair: 1,
          tokens: { query: Q, item: Dl },
          tfjs,
          pytorch: peers,
          ratioSamplesPerSecVsPytorch1Thread: one ? round(tfjs.samplesPerSec / one.samplesPerSec, 3) : null,
          ratioCpuTimeVsPytorch1Thread: one ? round(one.cpuSecondsPerStep / tfjs.cpuSecondsPerStep, 3) : null,
          firstLossDelta: one ? round(Math.abs(tfjs.firstLoss - one.firstLoss), 6) : null,
        };
        rows.push(row);
        console.log(JSON.stringify(row));
      }
      result.train = {
        run: ran(),
        engines: 'tfjs: wasm backend (one thread, SIMD); onnxruntime: kinds/search/ort-train.ts (one intra-op thread)',
        timing:
          'secondsPerStep: median wall; cpuSecondsPerStep: median process CPU time (the robust figure on a busy host)',
        rows,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await save();
  }

  if (sections.has('scale')) {
    const n = numArg('scale-pairs', 20000);
    const pairs = shopPairs(shop, shop.train, n, 4);
    const valPairs = shopPairs(shop, shop.validation, 400, 5);
    const t0 = performance.now();
    const r = await fineTune(pairs, {
      base,
      validation: { pairs: valPairs, corpus: titles, grades: gradesByText(shop, shop.validation) },
      trainableLayers: numArg('scale-layers', 2),
      engine: strArg('scale-engine', 'auto') as 'auto' | 'tfjs' | 'onnxruntime',
      epochs: 1,
      batchSize: 32,
      onProgress: (p) => {
        if (p.step % 100 === 0 || p.phase !== 'train') console.log('scale', JSON.stringify(p));
      },
    });
    result.scale = {
      run: ran(),
      pairs: pairs.length,
      engine: strArg('scale-engine', 'auto'),
      cpuSeconds: round(r.history[0]?.cpuSeconds ?? NaN, 1),
      trainableLayers: numArg('scale-layers', 2),
      totalSeconds: round((performance.now() - t0) / 1000, 1),
      cacheSeconds: round(r.cacheSeconds, 1),
      trainSeconds: round(r.history[0]?.seconds ?? NaN, 1),
      samplesPerSec: round(r.samplesPerSec, 2),
      zeroShotValidation: r.zeroShot,
      validation: r.history[0]?.validation,
    };
    console.log('scale', result.scale);
    await save();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
