/**
 * The score and recommend graphs of a linear recommender kind (ALS, EASE^R), both precisions, and the bundle they
 * go into, written once: a kind supplies only how it scores (the requested items, or the whole catalogue) and the
 * configuration its graphs record; inputs, calibration, the recommend head, outputs, metadata and the bundle folder
 * are the same for every such kind (lib/onnx/recommender-parts.ts has the pieces).
 */
import type { onnx } from 'onnx-proto';
import { ONNX_IO, type BundleManifest, type Precision } from '../bundle';
import type { KindName } from '../kinds';
import { DType, GraphBuilder, encodeModel } from './builder';
import {
  HISTORY_INPUT,
  axes,
  calibrated,
  linearMetadata,
  recommendHead,
  type GraphCalibration,
} from './recommender-parts';
import { writeGraphBundle, type GraphBundleInput } from './write-bundle';

/** What the graphs record besides the model. */
export interface LinearExportMeta {
  modelName: string;
  version?: string;
  checkpointId: string;
  vocabHash: string;
}

/** What a linear kind's bundle writer gets besides the folder and the model. */
export type LinearBundleInput = Omit<GraphBundleInput, 'kind' | 'datasetId' | 'popularity' | 'graphs'>;

/** The encoded score and recommend graphs of each precision. */
export type EncodedGraphs = Record<Precision, { score: Uint8Array; recommend: Uint8Array }>;

/** What the shared graph code reads of a fitted linear model. */
export interface LinearGraphModel {
  datasetId: string;
  /** Item vocabulary size (index 0 included). */
  items: number;
  /** Recent-popularity scores by item index: popular.json's order. */
  prior: Float32Array;
  /** Probabilities: `model` for the model's scores, `prior` for prior scores. */
  calibration: { model: GraphCalibration; prior: GraphCalibration };
}

/** The graph inputs a kind's scoring reads, and the axis constants of the graph. */
export interface LinearGraphInputs {
  /** `user [B]` int64. */
  user: string;
  /** `history [B, L]` int64 ({@link HISTORY_INPUT}). */
  history: string;
  ax: ReturnType<typeof axes>;
}

/** Raw scores (the prior's where a row has no usable user or item) and that row's prior flag `[B, 1]`. */
export interface LinearScores {
  scores: string;
  empty: string;
}

/** One linear kind's part of its graphs. */
export interface LinearGraphSpec<M extends LinearGraphModel> {
  kind: KindName;
  /** Bumped when the graphs change: part of the bundle's idempotency key. */
  exporterVersion: string;
  /** The configuration recorded as `recflow.config`. */
  config(m: M): unknown;
  /** Raw scores `[B, N]` of the requested `items [B, N]`. */
  scoreItems(g: GraphBuilder, p: Precision, m: M, io: LinearGraphInputs & { items: string }): LinearScores;
  /** Raw scores `[B, items]` of the whole catalogue. */
  scoreCatalogue(g: GraphBuilder, p: Precision, m: M, io: LinearGraphInputs): LinearScores;
}

/** A linear kind's graphs and bundle, built by {@link linearGraphs}. */
export interface LinearGraphs<M extends LinearGraphModel> {
  readonly exporterVersion: string;
  /** The score graph: `user [B]`, `items [B, N]`, `history [B, L]` to `scores [B, N]` probabilities. */
  readonly buildScoreModel: (m: M, e: LinearExportMeta, p: Precision) => onnx.ModelProto;
  /**
   * The recommend graph: `user [B]`, `k [1]`, `exclude [B, E]`, `history [B, L]` to `scores [B, k]` probabilities
   * and `items [B, k]` (index 0 and `exclude` masked).
   */
  readonly buildRecommendModel: (m: M, e: LinearExportMeta, p: Precision) => onnx.ModelProto;
  /** Encoded graphs of both precisions. */
  readonly exportGraphs: (m: M, e: LinearExportMeta) => EncodedGraphs;
  /**
   * Write the bundle into `dir` (a fresh folder): vocab.json, popular.json (the prior's order), the four graphs,
   * bundle.json. Returns the manifest.
   */
  readonly exportBundle: (dir: string, m: M, input: LinearBundleInput) => Promise<BundleManifest>;
}

/** The graphs and bundle writer of a linear kind. */
export function linearGraphs<M extends LinearGraphModel>(spec: LinearGraphSpec<M>): LinearGraphs<M> {
  const meta = (m: M, e: LinearExportMeta, graph: 'score' | 'recommend', precision: Precision) =>
    linearMetadata({
      kind: spec.kind,
      modelName: e.modelName,
      version: e.version,
      datasetId: m.datasetId,
      checkpointId: e.checkpointId,
      vocabHash: e.vocabHash,
      graph,
      precision,
      exporterVersion: spec.exporterVersion,
      config: spec.config(m),
    });
  const graphs: LinearGraphs<M> = {
    exporterVersion: spec.exporterVersion,
    buildScoreModel: (m, e, p) => {
      const g = new GraphBuilder(`recflow_${spec.kind}_score_${p}`);
      const user = g.input(ONNX_IO.user, DType.int64, ['batch']);
      const items = g.input(ONNX_IO.items, DType.int64, ['batch', 'n']);
      const history = g.input(HISTORY_INPUT, DType.int64, ['batch', 'history']);
      const { scores, empty } = spec.scoreItems(g, p, m, { user, items, history, ax: axes(g) });
      calibrated(g, scores, empty, m.calibration, ONNX_IO.scores);
      g.output(ONNX_IO.scores, DType.float, ['batch', 'n']);
      return g.model(meta(m, e, 'score', p));
    },
    buildRecommendModel: (m, e, p) => {
      const g = new GraphBuilder(`recflow_${spec.kind}_recommend_${p}`);
      const user = g.input(ONNX_IO.user, DType.int64, ['batch']);
      const k = g.input(ONNX_IO.k, DType.int64, [1]);
      const exclude = g.input(ONNX_IO.exclude, DType.int64, ['batch', 'excluded']);
      const history = g.input(HISTORY_INPUT, DType.int64, ['batch', 'history']);
      const ax = axes(g);
      const { scores, empty } = spec.scoreCatalogue(g, p, m, { user, history, ax });
      const top = recommendHead(g, scores, user, exclude, k, m.items, ax, ONNX_IO.topItems);
      calibrated(g, top, empty, m.calibration, ONNX_IO.scores);
      g.output(ONNX_IO.scores, DType.float, ['batch', 'k']);
      g.output(ONNX_IO.topItems, DType.int64, ['batch', 'k']);
      return g.model(meta(m, e, 'recommend', p));
    },
    exportGraphs: (m, e) => {
      const out = {} as EncodedGraphs;
      for (const p of ['fp32', 'int8'] as const)
        out[p] = {
          score: encodeModel(graphs.buildScoreModel(m, e, p)),
          recommend: encodeModel(graphs.buildRecommendModel(m, e, p)),
        };
      return out;
    },
    exportBundle: (dir, m, input) =>
      writeGraphBundle(dir, {
        ...input,
        kind: spec.kind,
        datasetId: m.datasetId,
        popularity: m.prior,
        graphs: (vocabHash) => graphs.exportGraphs(m, { ...input, vocabHash }),
      }),
  };
  return graphs;
}
