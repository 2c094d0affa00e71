/**
 * The model bundle: what the exporter writes (activities/export.ts), the registry versions, and serving loads.
 * A `bundle` artifact folder holds `bundle.json` ({@link BundleManifest}), `vocab.json` (users and items, index to
 * id, index 0 unknown), `popular.json` (item ids by training popularity: the fallback for unknown users), and the
 * ONNX files it names.
 *
 * ONNX graphs (opset 13):
 * - score:     inputs `user` int64 [B], `items` int64 [B, N]   -> output `scores` float32 [B, N] (probabilities)
 * - recommend: inputs `user` int64 [B], `k` int64 [1], `exclude` int64 [B, E] (item indices, 0-padded; E may be 0)
 *              -> outputs `scores` float32 [B, k], `items` int64 [B, k] (item indices; index 0 never returned)
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
  createdAt: string;
}

/** Input and output names of the graphs. */
export const ONNX_IO = {
  user: 'user',
  items: 'items',
  k: 'k',
  exclude: 'exclude',
  scores: 'scores',
  topItems: 'items',
} as const;
