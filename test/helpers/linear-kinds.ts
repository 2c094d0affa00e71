/**
 * Shared pieces of the linear-kind tests (test/unit/kinds/): a fitted model and its bundle on a tiny planted
 * dataset, running a bundle's graphs with onnxruntime, left-padded history tensors, the reference fixture of
 * test/fixtures/recsys/make_reference.py, top-k of a reference row, the fp32 parity and int8 overlap checks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadDataset, type Interactions, type LoadedDataset } from '../../lib/data/dataset';
import type { LinearBundleInput } from '../../lib/onnx/linear-graphs';
import { calibrate, type Calibration } from '../../lib/recsys/calibration';
import { writeTinyDataset } from './tiny-dataset';

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

/** A fresh temporary folder (`root`) with a tiny planted dataset, the model `fit` makes of it, and its bundle. */
export async function fitLinearFixture<M>(
  name: string,
  seed: number,
  fit: (ds: LoadedDataset) => Promise<M>,
  exportBundle: (dir: string, m: M, input: LinearBundleInput) => Promise<unknown>,
): Promise<{ root: string; ds: LoadedDataset; model: M; bundle: string }> {
  const root = await mkdtemp(join(tmpdir(), `recflow-${name}-`));
  await writeTinyDataset(join(root, 'ds'), { users: 300, items: 150, perUser: 14, seed });
  const ds = await loadDataset(join(root, 'ds'));
  const model = await fit(ds);
  const bundle = join(root, 'bundle');
  await mkdir(bundle);
  await exportBundle(bundle, model, { modelName: name, checkpointId: `ck-${name}`, vocab: ds.vocab });
  return { root, ds, model, bundle };
}

/**
 * Write `model` as a checkpoint into `dir`, read it back, and assert that each of `keys` comes back deep-equal.
 */
export async function assertCheckpointRoundTrip<M>(
  dir: string,
  model: M,
  write: (dir: string, m: M) => Promise<void>,
  read: (dir: string) => Promise<M>,
  keys: ReadonlyArray<keyof M>,
): Promise<void> {
  await write(dir, model);
  const back = await read(dir);
  for (const k of keys) assert.deepEqual(back[k], model[k], `checkpoint ${String(k)}`);
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

/** Release both sessions of {@link sessions}. */
export async function release(s: { score: ort.InferenceSession; recommend: ort.InferenceSession }): Promise<void> {
  await s.score.release();
  await s.recommend.release();
}

/**
 * Run a bundle's fp32 graphs on `[user, history]` cases: the probabilities of `items` (the same for every case) and
 * the top `k` without `exclude`.
 */
export async function runCases(
  bundle: string,
  cases: Array<[number, number[]]>,
  items: number[],
  exclude: number[],
  k = 10,
) {
  const s = await sessions(bundle, 'fp32');
  const users = cases.map((c) => c[0]);
  const hist = cases.map((c) => c[1]);
  const scores = await runScore(
    s.score,
    users,
    cases.map(() => items),
    hist,
  );
  const recs = await runRecommend(
    s.recommend,
    users,
    k,
    hist,
    users.map(() => exclude),
  );
  await release(s);
  return { scores, recs };
}

/** Assert that the probabilities `got` of `items` are `calibrate(cal, ref[item])` to 2e-5. */
export function assertCalibrated(
  got: number[],
  items: number[],
  ref: ArrayLike<number>,
  cal: Calibration,
  what: string,
): void {
  items.forEach((i, j) => {
    const want = calibrate(cal, ref[i]!);
    assert.ok(Math.abs(got[j]! - want) < 2e-5, `${what} item ${i}: ${got[j]} vs ${want}`);
  });
}

/**
 * Share of the fp32 top 10 that a bundle's int8 recommend graph also returns, over 40 requests: trained users (no
 * history) and anonymous ones with a three-item history.
 */
export async function int8TopOverlap(bundle: string): Promise<number> {
  const f = await sessions(bundle, 'fp32');
  const q = await sessions(bundle, 'int8');
  const users = Array.from({ length: 40 }, (_, k) => (k % 2 ? 1 + k : 0));
  const hist = users.map((u, k) => (u ? [] : [1 + k, 50 + k, 100 + k]));
  const a = await runRecommend(f.recommend, users, 10, hist);
  const b = await runRecommend(q.recommend, users, 10, hist);
  let overlap = 0;
  a.forEach((r, k) => (overlap += r.items.filter((i) => b[k]!.items.includes(i)).length));
  await release(f);
  await release(q);
  return overlap / (10 * users.length);
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
