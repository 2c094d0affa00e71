/**
 * Platt scaling: turn a ranking score into a probability `sigmoid(a * score + b)`, fitted by Newton's method on
 * the validation split (its positives and sampled negatives, the evaluation's pointwise protocol), with Platt's
 * smoothed targets. `a` is kept positive, so the order of scores, and with it every ranking metric, is unchanged.
 */
import type { LoadedDataset } from '../data/dataset';
import { mulberry32 } from '../rng';
import { itemsByUser } from '../train/metrics';

/** `probability = sigmoid(a * score + b)`. */
export interface Calibration {
  a: number;
  b: number;
}

/** Identity-like calibration when nothing can be fitted: `sigmoid(score)`. */
export const NO_CALIBRATION: Calibration = { a: 1, b: 0 };

/** Fit `sigmoid(a * s + b)` to 0/1 labels (Platt 1999, with the smoothed targets). */
export function fitPlatt(scores: ArrayLike<number>, labels: ArrayLike<number>, iterations = 50): Calibration {
  const n = scores.length;
  let pos = 0;
  for (let i = 0; i < n; i++) pos += (labels[i] ?? 0) > 0 ? 1 : 0;
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NO_CALIBRATION;
  const hi = (pos + 1) / (pos + 2);
  const lo = 1 / (neg + 2);
  let a = 1;
  let b = Math.log((pos + 1) / (neg + 1));
  for (let it = 0; it < iterations; it++) {
    let ga = 0;
    let gb = 0;
    let haa = 1e-12;
    let hab = 0;
    let hbb = 1e-12;
    for (let i = 0; i < n; i++) {
      const s = scores[i] ?? 0;
      const t = (labels[i] ?? 0) > 0 ? hi : lo;
      const p = 1 / (1 + Math.exp(-(a * s + b)));
      const g = p - t;
      const w = p * (1 - p);
      ga += g * s;
      gb += g;
      haa += w * s * s;
      hab += w * s;
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    if (!(Math.abs(det) > 1e-18)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    a -= da;
    b -= db;
    if (Math.abs(da) + Math.abs(db) < 1e-10) break;
  }
  if (!(a > 1e-6) || !Number.isFinite(b)) return { a: 1e-6, b: Number.isFinite(b) ? b : 0 };
  return { a, b };
}

/**
 * Validation pairs to fit a calibration on: every validation positive (not seen in training) and
 * `negativesPerPositive` items the user never interacted with in train or validation (seeded).
 */
export function validationPairs(
  ds: LoadedDataset,
  negativesPerPositive = 4,
  seed = 7,
  maxPositives = 20_000,
): { users: Int32Array; items: Int32Array; labels: Uint8Array } {
  const seen = itemsByUser(ds.splits.train);
  const val = ds.splits.validation;
  const valItems = itemsByUser(val);
  const nItems = ds.vocab.items.length;
  const r = mulberry32(seed);
  const users: number[] = [];
  const items: number[] = [];
  const labels: number[] = [];
  const step = Math.max(1, Math.ceil(val.user.length / maxPositives));
  for (let k = 0; k < val.user.length; k += step) {
    const u = val.user[k]!;
    const i = val.item[k]!;
    if (i === 0 || seen.get(u)?.has(i)) continue;
    users.push(u);
    items.push(i);
    labels.push(1);
    for (let q = 0; q < negativesPerPositive; q++) {
      let x = 0;
      for (let tries = 0; tries < 100 && (x === 0 || seen.get(u)?.has(x) || valItems.get(u)?.has(x)); tries++)
        x = 1 + Math.floor(r() * (nItems - 1));
      users.push(u);
      items.push(x);
      labels.push(0);
    }
  }
  return { users: Int32Array.from(users), items: Int32Array.from(items), labels: Uint8Array.from(labels) };
}

/**
 * The two calibrations of a model with a cold-start prior, fitted on {@link validationPairs}: `model` on the pairs
 * `modelScore` scores (it returns undefined for a user the model cannot score), `prior` on the other pairs' prior
 * scores, or on every pair's prior score when fewer than `minPriorPairs` pairs are left to it (cold validation users
 * are often few).
 */
export function fitModelAndPrior(
  ds: LoadedDataset,
  prior: ArrayLike<number>,
  modelScore: (user: number, item: number) => number | undefined,
  minPriorPairs = 500,
): { model: Calibration; prior: Calibration } {
  const pairs = validationPairs(ds);
  const modelS: number[] = [];
  const modelL: number[] = [];
  const priorS: number[] = [];
  const priorL: number[] = [];
  for (let k = 0; k < pairs.users.length; k++) {
    const i = pairs.items[k]!;
    const s = modelScore(pairs.users[k]!, i);
    if (s !== undefined) {
      modelS.push(s);
      modelL.push(pairs.labels[k]!);
    } else {
      priorS.push(prior[i]!);
      priorL.push(pairs.labels[k]!);
    }
  }
  if (priorS.length < minPriorPairs) {
    priorS.length = 0;
    priorL.length = 0;
    for (let k = 0; k < pairs.users.length; k++) {
      priorS.push(prior[pairs.items[k]!]!);
      priorL.push(pairs.labels[k]!);
    }
  }
  return { model: fitPlatt(modelS, modelL), prior: fitPlatt(priorS, priorL) };
}

/** `sigmoid(a * s + b)`. */
export function calibrate(c: Calibration, s: number): number {
  return 1 / (1 + Math.exp(-(c.a * s + c.b)));
}
