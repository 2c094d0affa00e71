/**
 * Sparse views of an interaction split for the linear recommenders: CSR user-item matrices (and their transpose),
 * per-user histories in time order. Indices are the dataset's (index 0 = unknown, never a row or column entry).
 */
import type { Interactions } from '../data/dataset';

/** Progress of a fit: a step name, and where it is. Activities heartbeat from it. */
export type FitProgress = (p: { step: string; [key: string]: unknown }) => void;

/** A compressed sparse row matrix: row r holds columns `indices[indptr[r] .. indptr[r + 1])` with `data`. */
export interface Csr {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  data: Float32Array;
}

/**
 * The user x item matrix of a split, one entry per (user, item) pair (the strongest label when a pair repeats),
 * columns sorted within each row. `value` maps a label to the stored value (default: the label).
 */
export function userItemMatrix(
  split: Interactions,
  users: number,
  items: number,
  value: (label: number) => number = (l) => l,
): Csr {
  const n = split.user.length;
  const count = new Int32Array(users + 1);
  for (let r = 0; r < n; r++) count[split.user[r]! + 1]!++;
  const indptr = new Int32Array(users + 1);
  for (let u = 0; u < users; u++) indptr[u + 1] = indptr[u]! + count[u + 1]!;
  const fill = Int32Array.from(indptr.subarray(0, users));
  const cols = new Int32Array(n);
  const labels = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const u = split.user[r]!;
    const at = fill[u]!++;
    cols[at] = split.item[r]!;
    labels[at] = split.label[r]!;
  }
  // Sort each row by column and merge repeated pairs (max label).
  const outPtr = new Int32Array(users + 1);
  const outIdx: number[] = [];
  const outVal: number[] = [];
  for (let u = 0; u < users; u++) {
    const lo = indptr[u]!;
    const hi = indptr[u + 1]!;
    const order = Array.from({ length: hi - lo }, (_, k) => lo + k).sort((a, b) => cols[a]! - cols[b]!);
    let last = -1;
    for (const k of order) {
      const c = cols[k]!;
      if (c === last) {
        outVal[outVal.length - 1] = Math.max(outVal[outVal.length - 1]!, labels[k]!);
        continue;
      }
      outIdx.push(c);
      outVal.push(labels[k]!);
      last = c;
    }
    outPtr[u + 1] = outIdx.length;
  }
  return {
    rows: users,
    cols: items,
    indptr: outPtr,
    indices: Int32Array.from(outIdx),
    data: Float32Array.from(outVal, value),
  };
}

/** The transpose of a CSR matrix (columns sorted within each row). */
export function transposeCsr(m: Csr): Csr {
  const nnz = m.indices.length;
  const indptr = new Int32Array(m.cols + 1);
  for (let k = 0; k < nnz; k++) indptr[m.indices[k]! + 1]!++;
  for (let c = 0; c < m.cols; c++) indptr[c + 1]! += indptr[c]!;
  const fill = Int32Array.from(indptr.subarray(0, m.cols));
  const indices = new Int32Array(nnz);
  const data = new Float32Array(nnz);
  for (let r = 0; r < m.rows; r++) {
    for (let k = m.indptr[r]!; k < m.indptr[r + 1]!; k++) {
      const at = fill[m.indices[k]!]!++;
      indices[at] = r;
      data[at] = m.data[k]!;
    }
  }
  return { rows: m.cols, cols: m.rows, indptr, indices, data };
}

/**
 * Each user's items in a split in time order (most recent last), one entry per item (its last occurrence), at
 * most the `maxLength` most recent. Users without events get no entry.
 */
export function userHistories(split: Interactions, maxLength = Infinity): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (let r = 0; r < split.user.length; r++) {
    const u = split.user[r]!;
    let h = out.get(u);
    if (!h) out.set(u, (h = []));
    h.push(split.item[r]!);
  }
  for (const [u, h] of out) {
    const seen = new Set<number>();
    const dedup: number[] = [];
    for (let k = h.length - 1; k >= 0 && dedup.length < maxLength; k--) {
      const i = h[k]!;
      if (seen.has(i)) continue;
      seen.add(i);
      dedup.push(i);
    }
    out.set(u, dedup.reverse());
  }
  return out;
}

/** The mean of a split's labels (1 when empty): the confidence given to history items that carry no label. */
export function meanLabel(split: Interactions): number {
  let s = 0;
  for (const l of split.label) s += l;
  return split.label.length ? s / split.label.length : 1;
}
