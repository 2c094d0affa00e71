/**
 * Which precision a recommender bundle should serve: int8 where it pays. int8 graphs are smaller, but on a small
 * model the quantize/dequantize work can cost more than the int8 MatMuls save (measured: a 32-wide two-tower ran
 * 0.67x fp32 at batch 1). So the export times both recommend graphs on one thread, interleaved, at the serving
 * batch sizes (a lone request and a micro-batch), and prefers int8 when it is at least as fast, or when the fp32
 * graphs are large and int8 is no more than a little slower.
 */
import * as ort from 'onnxruntime-node';
import type { Precision, PrecisionChoice } from '../bundle';
import { loadBundle } from './bundle-io';

/** Options of {@link choosePrecision}. */
export interface PrecisionOptions {
  /** Batch sizes to time. @default [1, 16] */
  batches?: number[];
  /** Timed calls per batch size and precision. @default 60 */
  runs?: number;
  /** fp32 graphs larger than this make int8 worth a small slowdown. @default 50 MB */
  largeBytes?: number;
  /** How much slower int8 may be when the graphs are large. @default 1.1 */
  largeSlack?: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

/** Time both precisions of a bundle's recommend graph and choose. */
export async function choosePrecision(bundleDir: string, opts: PrecisionOptions = {}): Promise<PrecisionChoice> {
  const b = await loadBundle(bundleDir);
  const batches = opts.batches ?? [1, 16];
  const runs = opts.runs ?? 60;
  const so: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const sessions = {
    fp32: await ort.InferenceSession.create(b.paths.fp32.recommend, so),
    int8: await ort.InferenceSession.create(b.paths.int8.recommend, so),
  };
  const times: Record<Precision, Record<string, number[]>> = { fp32: {}, int8: {} };
  try {
    const inputs = sessions.fp32.inputNames;
    const feeds = (n: number): Record<string, ort.Tensor> => {
      const f: Record<string, ort.Tensor> = {};
      const i64 = (xs: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs, BigInt), dims);
      if (inputs.includes('user'))
        f.user = i64(
          Array.from({ length: n }, (_, i) => 1 + i),
          [n],
        );
      if (inputs.includes('k')) f.k = i64([10], [1]);
      if (inputs.includes('exclude')) f.exclude = i64([], [n, 0]);
      if (inputs.includes('history'))
        f.history = i64(
          Array.from({ length: n * 20 }, (_, i) => 1 + (i % 7)),
          [n, 20],
        );
      return f;
    };
    for (const n of batches) {
      const f = feeds(n);
      for (const p of ['fp32', 'int8'] as const) await sessions[p].run(f); // warm-up
      for (let r = 0; r < runs; r++)
        for (const p of r % 2 ? (['int8', 'fp32'] as const) : (['fp32', 'int8'] as const)) {
          const t0 = process.hrtime.bigint();
          await sessions[p].run(f);
          (times[p][String(n)] ??= []).push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
    }
  } finally {
    await sessions.fp32.release();
    await sessions.int8.release();
  }
  const med = (p: Precision) =>
    Object.fromEntries(Object.entries(times[p]).map(([n, xs]) => [n, Math.round(median(xs) * 1000) / 1000]));
  const fp32 = med('fp32');
  const int8 = med('int8');
  const sizes = { fp32: b.manifest.sizes.fp32.recommend, int8: b.manifest.sizes.int8.recommend };
  return { ...decidePrecision(fp32, int8, sizes, opts), fp32, int8, sizes };
}

/**
 * The rule: int8 when its median time, averaged over the batch sizes as a ratio to fp32, is at most 1; or at most
 * `largeSlack` when the fp32 graph is `largeBytes` or more. Pure (the measurement is {@link choosePrecision}).
 */
export function decidePrecision(
  fp32: Record<string, number>,
  int8: Record<string, number>,
  sizes: Record<Precision, number>,
  opts: PrecisionOptions = {},
): { preferred: Precision; reason: string } {
  const batches = Object.keys(fp32);
  const ratios = batches.map((n) => (int8[n] ?? NaN) / (fp32[n] ?? NaN));
  const ratio = ratios.reduce((a, x) => a + x, 0) / Math.max(1, ratios.length);
  const large = sizes.fp32 >= (opts.largeBytes ?? 50e6);
  const preferred: Precision = ratio <= 1 || (large && ratio <= (opts.largeSlack ?? 1.1)) ? 'int8' : 'fp32';
  const desc = batches.map((n, i) => `batch ${n}: ${(ratios[i] ?? NaN).toFixed(2)}x`).join(', ');
  return {
    preferred,
    reason:
      preferred === 'int8'
        ? `int8 takes ${desc} the time of fp32${large ? `; fp32 graphs are ${(sizes.fp32 / 1e6).toFixed(0)} MB` : ''}`
        : `int8 is slower here (${desc} the time of fp32) and the graphs are small: fp32 serves`,
  };
}
