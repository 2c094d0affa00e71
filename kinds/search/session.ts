/**
 * Running the exported search graphs with onnxruntime-node: {@link SearchSession} wraps one encoder or search graph
 * and the tokenizer, encodes texts in batches and answers top-K queries. Serving builds on it (micro-batching and
 * HTTP live in serving/).
 */
import * as ort from 'onnxruntime-node';
import { ErrorType, RecflowError } from '../../lib/errors';
import { toInt64, type SearchTokenizer, type TokenBatch } from './tokenizer';

/** Session options: one intra-op thread by default (FACTS: the default pool costs twice the CPU per request). */
export interface SessionOptions {
  /** @default 1 */
  intraOpThreads?: number;
}

/** A session's options as onnxruntime wants them. */
export function ortOptions(opts: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.intraOpThreads ?? 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
}

/** Top-K of one query: row numbers of the item index and their dot-product scores, best first. */
export interface SearchHits {
  indices: number[];
  scores: number[];
}

/** One search or encoder graph with its tokenizer. Call {@link SearchSession.release} when done. */
export class SearchSession {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly tokenizer: SearchTokenizer,
    /** Embedding width. */
    readonly dim: number,
    /** Whether the graph has the item index (`k` input, `scores`/`indices` outputs). */
    readonly hasIndex: boolean,
  ) {}

  /**
   * Load a graph (`.onnx` path or bytes).
   * @throws {RecflowError} `ArtifactMissing` when onnxruntime cannot load it.
   */
  static async create(
    model: string | Uint8Array,
    tokenizer: SearchTokenizer,
    opts: SessionOptions = {},
  ): Promise<SearchSession> {
    let s: ort.InferenceSession;
    try {
      s =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, ortOptions(opts))
          : await ort.InferenceSession.create(model, ortOptions(opts));
    } catch (err) {
      const where = typeof model === 'string' ? model : 'search graph';
      throw new RecflowError(
        ErrorType.ArtifactMissing,
        `${where}: onnxruntime cannot load it (${(err as Error).message})`,
      );
    }
    const hasIndex = s.inputNames.includes('k');
    const probe = await s.run({
      ...SearchSession.feeds(tokenizer.encodeBatch([''])),
      ...(hasIndex ? { k: new ort.Tensor('int64', BigInt64Array.of(1n), [1]) } : {}),
    });
    const dim = probe.embedding?.dims[1] ?? 0;
    return new SearchSession(s, tokenizer, dim, hasIndex);
  }

  /** The graph inputs of a token batch. */
  static feeds(b: TokenBatch): Record<string, ort.Tensor> {
    const { inputIds, attentionMask } = toInt64(b);
    return {
      input_ids: new ort.Tensor('int64', inputIds, [b.batch, b.seqLen]),
      attention_mask: new ort.Tensor('int64', attentionMask, [b.batch, b.seqLen]),
    };
  }

  /** Embeddings of a token batch, row-major `[batch, dim]`. */
  async encodeTokens(b: TokenBatch): Promise<Float32Array> {
    const feeds = SearchSession.feeds(b);
    if (this.hasIndex) feeds.k = new ort.Tensor('int64', BigInt64Array.of(1n), [1]);
    const out = await this.session.run(feeds);
    return out.embedding?.data as Float32Array;
  }

  /**
   * Embeddings of texts, `batchSize` at a time, row-major `[texts.length, dim]`. `onBatch(done, total)` after each
   * batch (texts encoded so far): long encodes report progress (an activity heartbeats from it).
   */
  async encode(
    texts: readonly string[],
    opts: { batchSize?: number; maxLength?: number; onBatch?: (done: number, total: number) => void } = {},
  ): Promise<Float32Array> {
    const bs = opts.batchSize ?? 64;
    const out = new Float32Array(texts.length * this.dim);
    for (let s = 0; s < texts.length; s += bs) {
      out.set(
        await this.encodeTokens(this.tokenizer.encodeBatch(texts.slice(s, s + bs), { maxLength: opts.maxLength })),
        s * this.dim,
      );
      opts.onBatch?.(Math.min(texts.length, s + bs), texts.length);
    }
    return out;
  }

  /**
   * Top-`k` items for each query (a search graph only).
   * @throws {RecflowError} `InvalidInput` for an encoder-only graph or a bad `k`.
   */
  async search(queries: readonly string[], k: number, opts: { maxLength?: number } = {}): Promise<SearchHits[]> {
    if (!this.hasIndex)
      throw new RecflowError(ErrorType.InvalidInput, 'this graph has no item index (an encoder graph)');
    if (!Number.isInteger(k) || k < 1)
      throw new RecflowError(ErrorType.InvalidInput, `k must be a positive integer, got ${k}`);
    const b = this.tokenizer.encodeBatch(queries, { maxLength: opts.maxLength });
    const out = await this.session.run({
      ...SearchSession.feeds(b),
      k: new ort.Tensor('int64', BigInt64Array.of(BigInt(k)), [1]),
    });
    const scores = out.scores as ort.Tensor;
    const indices = out.indices as ort.Tensor;
    const kk = scores.dims[1] as number;
    const sd = scores.data as Float32Array;
    const id = indices.data as BigInt64Array;
    return queries.map((_, i) => ({
      scores: Array.from(sd.subarray(i * kk, (i + 1) * kk)),
      indices: Array.from(id.subarray(i * kk, (i + 1) * kk), Number),
    }));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
