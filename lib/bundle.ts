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
  createdAt: string;
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
