/**
 * The ranker a search bundle's variant serves: the hybrid of BM25 and the variant's own dense scores
 * (kinds/search/hybrid.ts) with the dense weight the export tuned on validation for that variant
 * (`bundle.json` `search.hybrid.variants`), or the dense ranking alone when that weight is 1, and for every bundle
 * written before per-variant weights existed (exporter `search-bundle-1`: those served dense only, and still do).
 *
 * Serving (serving/search-model.ts), its infra check (./health.ts) and the evaluation whose gates bless the model
 * (./evaluate.ts) all rank through {@link ServedRanker.rank}: what the gates judge is what `/v1/search` answers.
 *
 * A hybrid query asks the search graph for every catalogue row's dense score (k = the catalogue, still one
 * onnxruntime call per micro-batch), scores the query with BM25 over the bundle's item texts, and keeps the top `k`
 * of `w * dense' + (1 - w) * bm25'` ({@link hybridScores}); its `score` is that hybrid score (in [0, 1]), not a cosine.
 */
import type { SearchBundleInfo } from '../../lib/bundle';
import { ErrorType, RecflowError } from '../../lib/errors';
import { Bm25Index, topK } from './bm25';
import { hybridScores } from './hybrid';
import type { SearchSession } from './session';

/**
 * The dense weight the variant serves with: its tuned weight, or 1 (dense only) when the bundle has none for it
 * (bundles from before per-variant weights, or a variant the export did not tune).
 */
export function servedWeight(info: SearchBundleInfo, variant: string): number {
  const w = info.hybrid.variants?.[variant]?.weight;
  return typeof w === 'number' && w >= 0 && w <= 1 ? w : 1;
}

/** The BM25 index of a bundle's catalogue, with the manifest's k1 and b. */
export function bundleBm25(info: SearchBundleInfo, texts: readonly string[]): Bm25Index {
  return new Bm25Index(texts, { k1: info.hybrid.k1, b: info.hybrid.b });
}

/** One query's ranking: catalogue rows best first and their scores (hybrid scores for a hybrid ranker). */
export interface RankedRows {
  rows: number[];
  scores: number[];
}

/** The first `k` (default: all) of a ranking as served hits: item ids (`ids[row]`) and scores. */
export function hitsOf(r: RankedRows, ids: readonly string[], k = r.rows.length): Array<{ id: string; score: number }> {
  return r.rows.slice(0, k).map((row, j) => ({ id: ids[row] ?? String(row), score: r.scores[j] ?? 0 }));
}

/** What a {@link ServedRanker} ranks with. */
export interface ServedRankerOptions {
  /** The variant's search graph (the item index inside). */
  session: SearchSession;
  /** Rows of the item index (the catalogue size). */
  items: number;
  /** Dense weight in [0, 1]; 1 ranks by the graph's dense top-k alone. */
  weight: number;
  /** BM25 over the item texts in index order; needed when `weight` < 1. */
  bm25?: Bm25Index;
  /** Tokens a query is cut to. */
  queryMaxLength: number;
}

/** The served ranking of a search variant (see the module comment). */
export class ServedRanker {
  readonly weight: number;
  readonly items: number;
  private readonly session: SearchSession;
  private readonly bm25: Bm25Index | undefined;
  private readonly queryMaxLength: number;

  /**
   * @throws {RecflowError} `InvalidInput` for a weight outside [0, 1], or a hybrid weight without a BM25 index of the
   * catalogue's size.
   */
  constructor(o: ServedRankerOptions) {
    if (!(o.weight >= 0 && o.weight <= 1))
      throw new RecflowError(ErrorType.InvalidInput, `served ranker: dense weight ${o.weight} not in [0, 1]`);
    if (o.weight < 1 && o.bm25?.size !== o.items)
      throw new RecflowError(
        ErrorType.InvalidInput,
        `served ranker: a hybrid (weight ${o.weight}) needs BM25 over the ${o.items} items (has ${o.bm25?.size ?? 'none'})`,
      );
    this.session = o.session;
    this.items = o.items;
    this.weight = o.weight;
    this.bm25 = o.weight < 1 ? o.bm25 : undefined;
    this.queryMaxLength = o.queryMaxLength;
  }

  /** Whether it mixes BM25 in (weight < 1). */
  get hybrid(): boolean {
    return this.bm25 !== undefined;
  }

  /**
   * The top `k` rows (at most the catalogue) of each query, in one search-graph call: a query's answer does not
   * depend on the others, and the top `k` is a prefix of any larger top (ties by lower row).
   */
  async rank(queries: readonly string[], k: number): Promise<RankedRows[]> {
    if (!queries.length) return [];
    const kk = Math.max(1, Math.min(k, this.items));
    const bm25 = this.bm25;
    if (!bm25) {
      const hits = await this.session.search(queries, kk, { maxLength: this.queryMaxLength });
      return hits.map((h) => ({ rows: h.indices, scores: h.scores }));
    }
    const n = this.items;
    const hits = await this.session.search(queries, n, { maxLength: this.queryMaxLength });
    const dense = new Float32Array(n);
    return hits.map((h, i) => {
      dense.fill(0);
      for (let j = 0; j < h.indices.length; j++) dense[h.indices[j] ?? 0] = h.scores[j] ?? 0;
      const top = topK(hybridScores(bm25.scores(queries[i] ?? ''), dense, this.weight), kk);
      return { rows: top.map((t) => t.doc), scores: top.map((t) => t.score) };
    });
  }
}
