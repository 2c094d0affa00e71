/**
 * Ranking many queries with a search graph, and the small pieces export and evaluation share: per-query graded
 * cases, and timing a search graph the way it serves (one intra-op thread, tokenizer excluded).
 */
import * as ort from 'onnxruntime-node';
import { topK } from './bm25';
import { searchMetrics, type GradedCase } from './metrics';
import { SearchSession } from './session';

/** Top-`k` catalogue rows of each query, `batch` queries per onnxruntime call. */
export async function rankRows(
  session: SearchSession,
  queries: readonly string[],
  k: number,
  maxLength: number,
  batch = 64,
): Promise<number[][]> {
  const out: number[][] = [];
  for (let s = 0; s < queries.length; s += batch) {
    const hits = await session.search(queries.slice(s, s + batch), k, { maxLength });
    for (const h of hits) out.push(h.indices);
  }
  return out;
}

/** Dot-product scores of query embeddings against every row of `docs` (both row-major, width `dim`). */
export function denseScores(queries: Float32Array, docs: Float32Array, dim: number, q: number): Float32Array {
  const n = docs.length / dim;
  const s = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let acc = 0;
    for (let d = 0; d < dim; d++) acc += (queries[q * dim + d] ?? 0) * (docs[j * dim + d] ?? 0);
    s[j] = acc;
  }
  return s;
}

/** The top `k` rows of a score vector. */
export const topRows = (scores: ArrayLike<number>, k: number): number[] => topK(scores, k).map((h) => h.doc);

/** NDCG@10 of each case on its own (0 when undefined), rounded to 1e-6: the per-query values the bootstrap pairs. */
export function perQueryNdcg(cases: readonly GradedCase[]): number[] {
  return cases.map((c) => {
    const m = searchMetrics([c]).ndcg;
    return Number.isFinite(m) ? Math.round(m * 1e6) / 1e6 : 0;
  });
}

/** Median of a list (NaN when empty). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor(s.length / 2)] ?? NaN) : NaN;
}

/**
 * Median milliseconds of `session.run` of each search graph at each batch size, interleaved (every round runs every
 * graph once per batch size, in an order that alternates), after a warm-up: the graphs compete for the same host
 * under the same load. Tokens are prepared once: the tokenizer is not timed.
 */
export async function timeSearchGraphs(
  sessions: Record<string, SearchSession>,
  queries: readonly string[],
  batches: readonly number[],
  rounds: number,
  maxLength: number,
): Promise<Record<string, Record<string, number>>> {
  const names = Object.keys(sessions);
  const times: Record<string, Record<string, number[]>> = Object.fromEntries(names.map((n) => [n, {}]));
  const k = new ort.Tensor('int64', BigInt64Array.of(10n), [1]);
  for (const b of batches) {
    const texts = Array.from({ length: b }, (_, i) => queries[i % queries.length] ?? 'shoes');
    const feeds = (s: SearchSession) => ({ ...SearchSession.feeds(s.tokenizer.encodeBatch(texts, { maxLength })), k });
    const prepared = Object.fromEntries(names.map((n) => [n, feeds(sessions[n]!)]));
    for (const n of names) await sessions[n]!.session.run(prepared[n]!);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [...names].reverse() : names;
      for (const n of order) {
        const t0 = process.hrtime.bigint();
        await sessions[n]!.session.run(prepared[n]!);
        (times[n]![String(b)] ??= []).push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  }
  return Object.fromEntries(
    names.map((n) => [
      n,
      Object.fromEntries(Object.entries(times[n]!).map(([b, xs]) => [b, Math.round(median(xs) * 1000) / 1000])),
    ]),
  );
}
