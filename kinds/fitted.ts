/**
 * A model kind fitted in one go in TypeScript (ALS, EASE^R): no epochs, a validation grid instead. The fit's grid
 * points become the run's "epochs" in the history (validation NDCG@10 of each), the checkpoint is the fitted model,
 * and a retry simply fits again (fits take seconds to minutes, and are deterministic).
 */
import { ErrorType, RecflowError } from '../lib/errors';
import { evaluateBundle } from '../lib/eval/evaluate';
import type { BundleManifest } from '../lib/bundle';
import type { LoadedDataset } from '../lib/data/dataset';
import type { KindName } from '../lib/kinds';
import type { LinearBundleInput } from '../lib/onnx/linear-graphs';
import type { FitProgress } from '../lib/recsys/interactions';
import type { CheckpointSummary, EpochRecord, ModelKind } from './types';

/** What a fitted model must expose for the history. */
export interface FittedModel<C> {
  config: C;
  datasetId: string;
  validation: { ndcg10: number; grid: Array<{ validationNdcg10: number; seconds: number }> };
  fitSeconds: number;
}

/** What {@link fittedKind} needs of a kind. */
export interface FittedKindSpec<C extends object, M extends FittedModel<C>> {
  name: KindName;
  trainerVersion: string;
  defaults: C;
  /** Check a full configuration (throws `InvalidInput` naming the field). */
  check?: (c: C) => void;
  fit: (ds: LoadedDataset, config: C, onProgress: FitProgress) => Promise<M>;
  write: (dir: string, m: M) => Promise<void>;
  read: (dir: string) => Promise<M>;
  /** The kind's graphs: their exporter version and bundle writer (lib/onnx/linear-graphs.ts). */
  graphs: {
    readonly exporterVersion: string;
    exportBundle(dir: string, m: M, input: LinearBundleInput): Promise<BundleManifest>;
  };
}

/** Build a {@link ModelKind} for a fitted model. */
export function fittedKind<C extends object, M extends FittedModel<C>>(spec: FittedKindSpec<C, M>): ModelKind<C> {
  const historyOf = (m: M): EpochRecord[] =>
    m.validation.grid.map((g, epoch) => ({
      epoch,
      loss: 0,
      ndcg10: g.validationNdcg10,
      hr10: 0,
      seconds: g.seconds,
      samples: 0,
      samplesPerSec: 0,
    }));
  const summary = (m: M): CheckpointSummary => {
    const history = historyOf(m);
    const best = history.reduce((b, r) => (r.ndcg10 > (history[b]?.ndcg10 ?? -1) ? r.epoch : b), 0);
    return {
      kind: spec.name,
      config: { ...(m.config as Record<string, unknown>) },
      datasetId: m.datasetId,
      backend: 'typescript',
      gpu: false,
      epoch: best,
      history,
    };
  };
  return {
    name: spec.name,
    task: 'recommend',
    trainerVersion: spec.trainerVersion,
    // `+history`: bundles carry the users' training histories (history.bin: serving leaves them out of recommendations).
    exporterVersion: `${spec.graphs.exporterVersion}+history`,
    resolveConfig(partial, seed) {
      const given = partial ?? {};
      for (const key of Object.keys(given))
        if (!(key in spec.defaults))
          throw new RecflowError(ErrorType.InvalidInput, `config.${key}: unknown hyperparameter of kind ${spec.name}`);
      const c = { ...spec.defaults, ...given, ...(seed !== undefined && 'seed' in spec.defaults ? { seed } : {}) } as C;
      spec.check?.(c);
      return c;
    },
    async train(ds, config, ctx) {
      const t0 = performance.now();
      const m = await spec.fit(ds, config, (p) => {
        const at = Number(p.gridPoint ?? 1);
        ctx.onProgress(at - 1, Number(p.iteration ?? 0), Number(p.iterations ?? 1));
      });
      const s = summary(m);
      const seconds = (performance.now() - t0) / 1000;
      for (const r of s.history) await ctx.onEpoch(r, (dir) => spec.write(dir, m));
      return {
        write: (dir) => spec.write(dir, m),
        history: s.history,
        bestEpoch: s.epoch,
        epochsRun: s.history.length,
        stoppedEarly: false,
        samplesPerSec: seconds > 0 ? ds.splits.train.user.length / seconds : 0,
        backend: 'typescript',
        gpu: false,
      };
    },
    readCheckpoint: async (dir) => summary(await spec.read(dir)),
    async exportBundle(input) {
      const m = await spec.read(input.checkpointDir);
      if (m.datasetId !== input.datasetId)
        throw new RecflowError(
          ErrorType.InvalidInput,
          `checkpoint ${input.checkpointId} was fitted on dataset ${m.datasetId}, not ${input.datasetId}`,
        );
      const { modelName, checkpointId, ds } = input;
      return spec.graphs.exportBundle(input.dir, m, {
        modelName,
        checkpointId,
        vocab: ds.vocab,
        history: ds.splits.train,
      });
    },
    evaluate: (bundleDir, ds, options, onProgress, fits) => evaluateBundle(bundleDir, ds, options, onProgress, fits),
  };
}
