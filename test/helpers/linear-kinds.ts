/**
 * Shared pieces of the linear-kind tests (test/unit/kinds/): running a bundle's graphs with onnxruntime, left-padded
 * history tensors, the reference fixture of test/fixtures/recsys/make_reference.py, top-k of a reference row.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Interactions } from '../../lib/data/dataset';

export const i64 = (xs: ArrayLike<number>, dims: number[]): ort.Tensor =>
  new ort.Tensor('int64', BigInt64Array.from(Array.from(xs, (x) => BigInt(x))), dims);

/** Histories left-padded with 0 to the longest one: `[B, L]` values. */
export function padLeft(histories: number[][]): { data: number[]; width: number } {
  const width = Math.max(0, ...histories.map((h) => h.length));
  const data: number[] = [];
  for (const h of histories) data.push(...new Array<number>(width - h.length).fill(0), ...h);
  return { data, width };
}

/** Sessions of a bundle's fp32 or int8 graphs. */
export async function sessions(dir: string, precision: 'fp32' | 'int8') {
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  return {
    score: await ort.InferenceSession.create(join(dir, `score.${precision}.onnx`), opts),
    recommend: await ort.InferenceSession.create(join(dir, `recommend.${precision}.onnx`), opts),
  };
}

/** Run the score graph: probabilities `[B][N]`. */
export async function runScore(s: ort.InferenceSession, users: number[], items: number[][], histories: number[][]) {
  const h = padLeft(histories);
  const n = items[0]?.length ?? 0;
  const out = await s.run({
    user: i64(users, [users.length]),
    items: i64(items.flat(), [users.length, n]),
    history: i64(h.data, [users.length, h.width]),
  });
  const d = out.scores!.data as Float32Array;
  return users.map((_, b) => Array.from(d.subarray(b * n, (b + 1) * n)));
}

/** Run the recommend graph: top items and probabilities per row. */
export async function runRecommend(
  s: ort.InferenceSession,
  users: number[],
  k: number,
  histories: number[][],
  exclude: number[][] = users.map(() => []),
) {
  const h = padLeft(histories);
  const e = padLeft(exclude);
  const out = await s.run({
    user: i64(users, [users.length]),
    k: i64([k], [1]),
    exclude: i64(e.data, [users.length, e.width]),
    history: i64(h.data, [users.length, h.width]),
  });
  const kk = out.items!.dims[1] ?? 0;
  const items = Array.from(out.items!.data as BigInt64Array, Number);
  const scores = Array.from(out.scores!.data as Float32Array);
  return users.map((_, b) => ({
    items: items.slice(b * kk, (b + 1) * kk),
    scores: scores.slice(b * kk, (b + 1) * kk),
  }));
}

/** Indices of the k largest values of a reference row (item 0 and `exclude` skipped). */
export function refTop(row: ArrayLike<number>, k: number, exclude: ReadonlySet<number> = new Set()): number[] {
  const idx: number[] = [];
  for (let i = 1; i < row.length; i++) if (!exclude.has(i)) idx.push(i);
  return idx.sort((a, b) => (row[b] ?? 0) - (row[a] ?? 0) || a - b).slice(0, k);
}

/** The committed Python reference (numpy EASE^R, implicit ALS). */
export interface Reference {
  users: number;
  items: number;
  interactions: Array<[number, number, number]>;
  ease: { lambda: number; weights: number[]; scores: number[] };
  als: {
    factors: number;
    alpha: number;
    regularization: number;
    iterations: number;
    cgSteps: number;
    userFactors0: number[];
    itemFactors0: number[];
    userFactors: number[];
    itemFactors: number[];
  };
}

export function loadReference(): Reference {
  return JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'recsys', 'reference.json'), 'utf8')) as Reference;
}

/** The reference's interactions as a split (timestamps in row order). */
export function referenceSplit(ref: Reference): Interactions {
  const n = ref.interactions.length;
  return {
    user: Int32Array.from(ref.interactions, (r) => r[0]),
    item: Int32Array.from(ref.interactions, (r) => r[1]),
    label: Float32Array.from(ref.interactions, (r) => r[2]),
    timestamp: Float64Array.from({ length: n }, (_, k) => k),
  };
}
