/**
 * Okapi BM25 over item texts, the lexical baseline of search and a source of hard negatives.
 *
 * Terms come from {@link analyze}: an approximation of Lucene's `StandardAnalyzer` (Unicode word boundaries, lower
 * case, no stop words, as Lucene 8+ defaults): NFKC, lower case, runs of letters/digits/marks joined across
 * `'`, `.`, `,` and `_` inside a word (`men's`, `3.5mm`), each Han/Hiragana/Katakana character its own term (as
 * UAX #29 splits ideographs). Scores: `sum idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))` with
 * `idf = ln(1 + (N - df + 0.5) / (df + 0.5))` (Lucene's idf, which stays positive).
 */
import { ErrorType, RecflowError } from '../../lib/errors';

const IDEOGRAPH = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
const WORD =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]|[\p{L}\p{N}\p{M}]+(?:['’.,_][\p{L}\p{N}\p{M}]+)*/gu;

/** The terms of a text (lower case, Lucene StandardAnalyzer-like word split). */
export function analyze(text: string): string[] {
  const out: string[] = [];
  for (const m of text.normalize('NFKC').toLowerCase().matchAll(WORD)) {
    const w = m[0];
    // A run that mixes ideographs with letters is split at each ideograph.
    if (w.length > 1 && IDEOGRAPH.test(w)) {
      for (const part of w.split(/([\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}])/u)) if (part) out.push(part);
    } else out.push(w);
  }
  return out;
}

/** BM25 parameters. */
export interface Bm25Options {
  /** Term-frequency saturation. @default 1.2 */
  k1?: number;
  /** Length normalisation. @default 0.75 */
  b?: number;
}

/** A BM25 index over a fixed list of documents (their row numbers are the ids). */
export class Bm25Index {
  readonly k1: number;
  readonly b: number;
  readonly size: number;
  private readonly postings = new Map<string, { docs: Int32Array; tfs: Float32Array }>();
  private readonly norm: Float32Array;

  /** @throws {RecflowError} `InvalidInput` for k1 < 0 or b outside [0, 1]. */
  constructor(docs: readonly string[], opts: Bm25Options = {}) {
    this.k1 = opts.k1 ?? 1.2;
    this.b = opts.b ?? 0.75;
    if (!(this.k1 >= 0) || !(this.b >= 0 && this.b <= 1)) {
      throw new RecflowError(ErrorType.InvalidInput, `BM25 k1 ${this.k1} must be >= 0 and b ${this.b} within [0, 1]`);
    }
    this.size = docs.length;
    const lists = new Map<string, { docs: number[]; tfs: number[] }>();
    const lengths = new Float32Array(docs.length);
    docs.forEach((d, i) => {
      const terms = analyze(d);
      lengths[i] = terms.length;
      const tf = new Map<string, number>();
      for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
      for (const [t, n] of tf) {
        let l = lists.get(t);
        if (!l) lists.set(t, (l = { docs: [], tfs: [] }));
        l.docs.push(i);
        l.tfs.push(n);
      }
    });
    for (const [t, l] of lists) this.postings.set(t, { docs: Int32Array.from(l.docs), tfs: Float32Array.from(l.tfs) });
    const avg = lengths.reduce((a, b) => a + b, 0) / Math.max(1, docs.length) || 1;
    this.norm = Float32Array.from(lengths, (dl) => this.k1 * (1 - this.b + (this.b * dl) / avg));
  }

  /** Lucene's idf of a term (0 for unknown terms). */
  idf(term: string): number {
    const df = this.postings.get(term)?.docs.length ?? 0;
    return df ? Math.log(1 + (this.size - df + 0.5) / (df + 0.5)) : 0;
  }

  /** The BM25 score of every document for `query` (0 where no term matches). */
  scores(query: string): Float32Array {
    const out = new Float32Array(this.size);
    for (const t of analyze(query)) {
      // A repeated query term counts again, as in Lucene's BooleanQuery of term clauses.
      const p = this.postings.get(t);
      if (!p) continue;
      const idf = this.idf(t);
      for (let j = 0; j < p.docs.length; j++) {
        const d = p.docs[j] ?? 0;
        const tf = p.tfs[j] ?? 0;
        out[d] = (out[d] ?? 0) + (idf * tf * (this.k1 + 1)) / (tf + (this.norm[d] ?? 1));
      }
    }
    return out;
  }

  /** The best `k` documents for `query`, best first (ties by row), documents with score 0 left out. */
  search(query: string, k: number): Array<{ doc: number; score: number }> {
    return topK(this.scores(query), k).filter((h) => h.score > 0);
  }
}

/** The `k` largest entries of `scores`, best first, ties broken by lower index. */
export function topK(scores: ArrayLike<number>, k: number): Array<{ doc: number; score: number }> {
  const n = scores.length;
  const kk = Math.min(k, n);
  if (kk <= 0) return [];
  // A small binary min-heap of the best kk.
  const heap: number[] = [];
  const worse = (a: number, b: number) =>
    (scores[a] ?? 0) < (scores[b] ?? 0) || ((scores[a] ?? 0) === (scores[b] ?? 0) && a > b);
  const up = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!worse(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < n; i++) {
    if (heap.length < kk) {
      heap.push(i);
      up(heap.length - 1);
    } else if (worse(heap[0]!, i)) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0)).map((doc) => ({ doc, score: scores[doc] ?? 0 }));
}
