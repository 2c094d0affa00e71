/**
 * The model bundle: what the exporter writes (activities/export.ts), the registry versions, and serving loads.
 * A `bundle` artifact folder holds `bundle.json` ({@link BundleManifest}), `vocab.json` (users and items, index to
 * id, index 0 unknown), `popular.json` (item ids by training popularity: the fallback for unknown users), and the
 * ONNX files it names.
 *
 * ONNX graphs (opset 13):
 * - score:     inputs `user` int64 [B], `items` int64 [B, N]   -> output `scores` float32 [B, N] (probabilities)
 * - recommend: inputs `user` int64 [B], `k` int64 [1], `exclude` int64 [B, E] (item indices, 0-padded; E may be 0)
 *              and, for kinds that read it (ALS, EASE, SASRec...), `history` int64 [B, L] (item indices, 0-padded on
 *              the left, most recent last; serving fills it from the request's `history` or the bundle's stored one)
 *              -> outputs `scores` float32 [B, k], `items` int64 [B, k] (item indices; index 0 never returned)
 *
 * A bundle may also hold `history.bin` (lib/onnx/bundle-io.ts `writeHistories`): each known user's training items,
 * most recent last, capped per user. Serving excludes them from recommendations by default and feeds them to a
 * graph's `history` input.
 *
 * Search bundles (`task: 'search'`, kinds/search/bundle.ts) hold the encoder in several variants (the fine-tuned
 * teacher in fp32 and int8, the distilled student), each as an encoder graph (texts -> embeddings) and a search graph
 * (query -> top-k rows of the item index, kinds/search/onnx-encoder.ts), in `teacher/` and `student/` folders with
 * their tokenizer; `items.json` (item ids and texts in index order), `bm25.json` (the hybrid ranker's settings, with
 * each variant's dense weight: a variant serves BM25 + its dense scores mixed by that weight, dense alone at weight 1
 * and in bundles without per-variant weights) and `vocab.json` (users and items, as recommender bundles). For them `files` and `sizes` name, per precision, the
 * variant that precision serves: `score` is its encoder graph, `recommend` its search graph; `fp32` is the fp32
 * teacher and `int8` the compressed variant the export chose by measured quality and latency
 * ({@link SearchBundleInfo.serves}), so every precision-based contract (the fleet slot's `precision`, the int8 gates
 * and their fp32 fallback) works unchanged.
 */
import type { KindName, ModelTask } from './kinds';

export type Precision = 'fp32' | 'int8';

/** The export's measurement of both precisions and its choice. */
export interface PrecisionChoice {
  preferred: Precision;
  /** Median milliseconds per call of the recommend graph, by batch size. */
  fp32: Record<string, number>;
  int8: Record<string, number>;
  /** Bytes of the recommend graph. */
  sizes: Record<Precision, number>;
  reason: string;
}

export interface BundleManifest {
  /** Model kind that made it (lib/kinds.ts); bundles from before kinds existed are two-tower. @default 'two-tower' */
  kind?: KindName;
  /** What it serves. @default 'recommend' */
  task?: ModelTask;
  modelName: string;
  /** Registry version this bundle was made for, when known at export time. */
  version?: string;
  datasetId: string;
  checkpointId: string;
  opset: number;
  /** File names inside the bundle folder, per precision. */
  files: Record<Precision, { score: string; recommend: string }>;
  /** Sizes in bytes, per precision and graph. */
  sizes: Record<Precision, { score: number; recommend: number }>;
  /** The precision to serve, as measured at export (lib/onnx/precision.ts): int8 where it pays. */
  servingPrecision?: PrecisionChoice;
  /** sha256 of vocab.json: serving refuses a bundle whose vocab does not match. */
  vocabHash: string;
  /** The known users' histories (absent in bundles from before it existed: nothing is excluded then). */
  history?: HistoryManifest;
  /** Search bundles: the variants, their measurements and what each precision serves. */
  search?: SearchBundleInfo;
  createdAt: string;
}

/** Which model and encoder precision a search variant runs (kinds/search/onnx-encoder.ts `EncoderPrecision`). */
export interface SearchVariantInfo {
  /** `teacher` (the fine-tuned encoder) or `student` (the distilled one): the sub-folder holding its graphs. */
  model: 'teacher' | 'student';
  /** Encoder precision of its graphs (`fp32`, `int8-dynamic`, `int8-weight-only`, `int8-static`). */
  encoder: string;
  /** Transformer layers. */
  layers: number;
  /** Encoder and search graph files, relative to the bundle folder. */
  files: { encoder: string; search: string };
  /** Bytes of its search graph (encoder and item index). */
  bytes: number;
  /** Median milliseconds of one search call (tokenizer excluded), by batch size, one intra-op thread. */
  latencyMs: Record<string, number>;
  /** Retrieval quality on the dataset's validation queries (what the choice reads; the test split is the report's). */
  validation: { 'ndcg@10': number; 'mrr@10': number; 'recall@100': number; queries: number };
  /** Largest relative drop of validation NDCG@10 from fp32 this variant may have to be chosen. */
  tolerance: number;
  /** Within its tolerance and faster than fp32 at batch 1. */
  qualifies: boolean;
}

/** The `search` section of a search bundle's manifest. */
export interface SearchBundleInfo {
  /** Variant each precision serves: `fp32` is always `fp32`; `int8` the chosen compressed variant. */
  serves: Record<Precision, string>;
  /** Every exported variant by name (`fp32`, `int8-dynamic`, `int8-weight-only`, `student`, `student-int8-dynamic`). */
  variants: Record<string, SearchVariantInfo>;
  /** The compressed variant the export chose, and why (the rule and the numbers). */
  choice: { variant: string; preferred: Precision; reason: string };
  /** The pretrained encoder the model started from (name, upstream, licence, checksums). */
  baseModel: Record<string, unknown>;
  /** Catalogue rows in the item index, and the token limits. */
  items: number;
  queryMaxLength: number;
  itemMaxLength: number;
  /** File of the item ids and texts (index order). */
  itemsFile: string;
  /**
   * The hybrid ranker (BM25 + dense, kinds/search/hybrid.ts): its file, BM25 settings, and the dense weight tuned on
   * validation: `weight` and `validationNdcg10` for the fp32 teacher, `variants` for each variant (tuned on its own
   * dense scores). A variant serves the hybrid with its weight (kinds/search/served.ts); weight 1 is dense only.
   */
  hybrid: {
    file: string;
    weight: number;
    k1: number;
    b: number;
    validationNdcg10: number;
    /**
     * Each variant's dense weight (what it serves with) and its validation NDCG@10 at that weight. Absent in bundles
     * written before per-variant weights (exporter `search-bundle-1`): every variant of those serves dense only.
     */
    variants?: Record<string, { weight: number; validationNdcg10: number }>;
  };
}

/** Where and how a bundle stores its users' histories (lib/onnx/bundle-io.ts). */
export interface HistoryManifest {
  /** File name inside the bundle folder. */
  file: string;
  /** `csr-v1`: the layout documented in lib/onnx/bundle-io.ts. */
  format: 'csr-v1';
  /** Rows: the user vocabulary size (index 0 included, always empty). */
  users: number;
  /** Item indices stored in all. */
  interactions: number;
  /** Most items kept per user (the most recent ones). */
  maxPerUser: number;
  bytes: number;
  sha256: string;
}

/** Input and output names of the graphs. */
export const ONNX_IO = {
  user: 'user',
  items: 'items',
  k: 'k',
  exclude: 'exclude',
  history: 'history',
  scores: 'scores',
  topItems: 'items',
} as const;
