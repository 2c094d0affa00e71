/**
 * A loaded search model: one variant of a search bundle (lib/bundle.ts, kinds/search/bundle.ts) at a slot's
 * precision, its search graph (query text -> top-k rows of the item index, inside ONNX) behind a micro-batcher, and
 * the catalogue's item ids. It serves the variant's ranker (kinds/search/served.ts, the same code the evaluation's
 * gates judge): the hybrid of BM25 (built over the bundle's item texts at load) and the graph's dense scores over
 * the whole catalogue with the variant's tuned dense weight, or the graph's dense top-k alone at weight 1 (and for
 * bundles without per-variant weights). It has the lifecycle of a recommender's {@link LoadedModel} (loaded and
 * warmed before it takes traffic, reference-counted so a swap never fails a request in flight), and answers
 * `/v1/search` only.
 */
import type { Precision } from '../lib/bundle';
import type { SlotState } from '../lib/fleet/types';
import { loadServedSearch, readSearchBundle, type SearchBundle } from '../kinds/search/bundle';
import type { LoadedSearchModel } from '../kinds/search/export';
import { hitsOf, type ServedRanker } from '../kinds/search/served';
import { Batcher } from './batcher';
import { RefCountedModel } from './refcount';

/** One query of a micro-batch. */
export interface SearchInput {
  query: string;
  k: number;
}

/**
 * One served hit: the item id and its score: the hybrid score in [0, 1] for a hybrid ranker, else the dot product
 * (cosine: both sides are L2-normalised).
 */
export interface SearchHit {
  id: string;
  score: number;
}

/** What loading a search model takes (the model slots' options, structurally). */
export interface SearchModelOptions {
  /** onnxruntime intra-op threads. @default 1 */
  intraOpThreads?: number;
  /** Largest micro-batch. @default 64 */
  maxBatch?: number;
  /** Batch observer (metrics). */
  onBatch?: (graph: 'search', version: string, size: number, seconds: number) => void;
}

/** A search bundle's variant loaded for serving. */
export class LoadedSearch extends RefCountedModel {
  /** What it serves: `/v1/search`. */
  readonly task = 'search' as const;
  /** Queries are encoded and searched in micro-batches (a query's answer does not depend on its batch). */
  readonly searchBatcher: Batcher<SearchInput, SearchHit[]>;

  private constructor(
    readonly slot: SlotState,
    /** The folder it was loaded from. */
    readonly dir: string,
    readonly bundle: SearchBundle,
    /** The bundle's variant this precision serves (`fp32`, `int8-dynamic`, `student`...). */
    readonly variantName: string,
    readonly model: LoadedSearchModel,
    /** What ranks: the hybrid at the variant's weight, or dense only. */
    readonly ranker: ServedRanker,
    opts: SearchModelOptions,
  ) {
    super();
    this.searchBatcher = new Batcher((xs) => this.run(xs), {
      maxBatch: opts.maxBatch ?? 64,
      onBatch: (n, s) => opts.onBatch?.('search', slot.version, n, s),
    });
  }

  get version(): string {
    return this.slot.version;
  }
  get precision(): Precision {
    return this.slot.precision;
  }
  /** Key of what is loaded: same key, same model (as the recommenders' `slotKey`). */
  get key(): string {
    return `${this.slot.bundlePath}|${this.slot.precision}|${this.slot.version}`;
  }
  /** Dense weight of the served ranking (1: dense only; below 1: hybrid with BM25). */
  get hybridWeight(): number {
    return this.ranker.weight;
  }
  /** Rows of the item index. */
  get itemCount(): number {
    return this.model.manifest.itemIds.length;
  }
  /** Tokens a query is cut to (`[CLS]` and `[SEP]` included). */
  get queryMaxLength(): number {
    return this.model.manifest.queryMaxLength;
  }

  /**
   * Load the variant that `slot.precision` serves from the search bundle in `dir` (already located and checked
   * against the bundle roots) and warm it.
   * @throws {RecflowError} `ArtifactMissing` (missing files, checksum mismatch) or `InvalidInput` (not a search bundle).
   */
  static async load(slot: SlotState, dir: string, opts: SearchModelOptions = {}): Promise<LoadedSearch> {
    const bundle = await readSearchBundle(dir);
    const { name, model, ranker } = await loadServedSearch(bundle, slot.precision, opts.intraOpThreads ?? 1);
    const m = new LoadedSearch(slot, dir, bundle, name, model, ranker, opts);
    try {
      await m.warm();
    } catch (err) {
      await model.session.release();
      throw err;
    }
    return m;
  }

  /** Whether the model cuts `query` (more tokens than {@link queryMaxLength}, `[CLS]` and `[SEP]` included). */
  isTruncated(query: string): boolean {
    const max = this.queryMaxLength;
    // A second tokenization of the query (tens of microseconds; the batch's is inside searchBatch).
    return this.model.session.tokenizer.encode(query, max + 1).length > max;
  }

  /** Run the graph once so the first request does not pay for lazy initialisation. */
  async warm(): Promise<void> {
    await this.run([{ query: 'warm up', k: Math.min(10, this.itemCount) }]);
  }

  protected async releaseSessions(): Promise<void> {
    await this.model.session.release();
  }

  /**
   * One micro-batch: every query at the batch's largest k (clamped to the index), each cut to its own k (a top k is
   * a prefix of any larger top).
   */
  private async run(xs: SearchInput[]): Promise<SearchHit[][]> {
    const k = Math.max(1, Math.min(this.itemCount, Math.max(...xs.map((x) => x.k))));
    const ranked = await this.ranker.rank(
      xs.map((x) => x.query),
      k,
    );
    const ids = this.model.manifest.itemIds;
    return xs.map((x, i) => hitsOf(ranked[i] ?? { rows: [], scores: [] }, ids, x.k));
  }
}
