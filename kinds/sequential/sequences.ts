/**
 * Users' interaction sequences from a dataset's splits, the training windows built from them, and the history
 * matrices the model reads (item indices, 0-padded on the left, most recent last: the `history` input of the
 * bundle's graphs).
 */
import type { LoadedDataset, SplitName } from '../../lib/data/dataset';

/** Every user's items in time order (CSR layout): user u's items are `items[offsets[u] .. offsets[u + 1])`. */
export interface UserSequences {
  offsets: Int32Array;
  items: Int32Array;
  /** Label strength of each interaction (view 0.25 ... purchase 1). */
  labels: Float32Array;
}

/**
 * The users' sequences over `splits`, concatenated in the given order (splits are time-ordered and disjoint in time,
 * so `['train', 'validation']` is the history at the start of the test period).
 */
export function userSequences(ds: LoadedDataset, splits: readonly SplitName[] = ['train']): UserSequences {
  const nUsers = ds.vocab.users.length;
  const counts = new Int32Array(nUsers + 1);
  for (const s of splits) for (const u of ds.splits[s].user) counts[u + 1] = (counts[u + 1] ?? 0) + 1;
  const offsets = new Int32Array(nUsers + 1);
  for (let u = 0; u < nUsers; u++) offsets[u + 1] = (offsets[u] ?? 0) + (counts[u + 1] ?? 0);
  const total = offsets[nUsers] ?? 0;
  const items = new Int32Array(total);
  const labels = new Float32Array(total);
  const fill = offsets.slice(0, nUsers);
  for (const s of splits) {
    const split = ds.splits[s];
    for (let r = 0; r < split.user.length; r++) {
      const u = split.user[r] ?? 0;
      const at = fill[u] ?? 0;
      items[at] = split.item[r] ?? 0;
      labels[at] = split.label[r] ?? 1;
      fill[u] = at + 1;
    }
  }
  return { offsets, items, labels };
}

/** Length of user u's sequence. */
export function sequenceLength(seqs: UserSequences, u: number): number {
  return (seqs.offsets[u + 1] ?? 0) - (seqs.offsets[u] ?? 0);
}

/**
 * Histories of `users` as a `[users.length, length]` row-major matrix: each user's last `length` items, 0-padded on
 * the left, most recent last. Users outside the sequences get an empty (all-zero) row.
 */
export function historyMatrix(seqs: UserSequences, users: ArrayLike<number>, length: number): Int32Array {
  const out = new Int32Array(users.length * length);
  const nUsers = seqs.offsets.length - 1;
  for (let j = 0; j < users.length; j++) {
    const u = users[j] ?? 0;
    if (u < 0 || u >= nUsers) continue;
    const end = seqs.offsets[u + 1] ?? 0;
    const start = Math.max(seqs.offsets[u] ?? 0, end - length);
    out.set(seqs.items.subarray(start, end), j * length + length - (end - start));
  }
  return out;
}

/**
 * Training windows: row w holds `inputs[w * L .. (w + 1) * L)` (items, 0-padded left) and `targets` (the next item
 * at each step, 0 where there is none), and each target's weight.
 */
export interface TrainingWindows {
  length: number;
  count: number;
  inputs: Int32Array;
  targets: Int32Array;
  weights: Float32Array;
  /** Next-item targets over all windows (the training samples). */
  positions: number;
}

/**
 * Cut every sequence of two or more items into windows of at most `length` steps, from its end backwards, so that
 * every interaction but each user's first is a target exactly once: the last window predicts items
 * `n-L+1 .. n` from items `n-L .. n-1`, the one before it the L items before those, and so on.
 * @param weightByLabel weight each target by its label strength, else 1.
 */
export function trainingWindows(seqs: UserSequences, length: number, weightByLabel = false): TrainingWindows {
  const nUsers = seqs.offsets.length - 1;
  let count = 0;
  for (let u = 0; u < nUsers; u++) {
    const n = sequenceLength(seqs, u);
    if (n >= 2) count += Math.ceil((n - 1) / length);
  }
  const inputs = new Int32Array(count * length);
  const targets = new Int32Array(count * length);
  const weights = new Float32Array(count * length);
  let w = 0;
  let positions = 0;
  for (let u = 0; u < nUsers; u++) {
    const base = seqs.offsets[u] ?? 0;
    const n = sequenceLength(seqs, u);
    // Targets are positions a+1..b of the sequence, inputs a..b-1 (b - a <= length).
    for (let b = n - 1; b >= 1;) {
      const a = Math.max(0, b - length);
      const steps = b - a;
      const row = w * length + length - steps;
      inputs.set(seqs.items.subarray(base + a, base + b), row);
      targets.set(seqs.items.subarray(base + a + 1, base + b + 1), row);
      for (let t = 0; t < steps; t++) weights[row + t] = weightByLabel ? (seqs.labels[base + a + 1 + t] ?? 1) : 1;
      positions += steps;
      w++;
      b = a;
    }
  }
  return { length, count, inputs, targets, weights, positions };
}
