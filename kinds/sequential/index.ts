/**
 * The SASRec-style sequential recommender as a model kind (./model.ts, ./trainer.ts, ./export.ts): tfjs training on
 * the GPU queue with the CPU fallback, an exact resume (Adam's state in the epoch checkpoint), ONNX graphs that read
 * the user's recent history.
 */
import { ErrorType, RecflowError } from '../../lib/errors';
import { evaluateBundle } from '../../lib/eval/evaluate';
import { selectBackend } from '../../lib/train/backend';
import type { CheckpointSummary, EpochRecord, ModelKind, TrainOutcome } from '../types';
import { checkpointSummary } from '../summary';
import { SEQUENTIAL_EXPORTER_VERSION, exportSequentialBundle } from './export';
import {
  itemFeaturesOf,
  readSequentialCheckpoint,
  resolveSequentialConfig,
  sequentialSizesOf,
  writeSequentialCheckpoint,
  type SequentialCheckpointMeta,
  type SequentialConfig,
} from './spec';
import { trainSequential, type SequentialEpochRecord, type SequentialResumeState } from './trainer';

const record = (r: SequentialEpochRecord): EpochRecord => ({
  epoch: r.epoch,
  loss: r.loss,
  ndcg10: r.ndcg10,
  hr10: r.hr10,
  learningRate: r.learningRate,
  seconds: r.seconds,
  samples: r.samples,
  samplesPerSec: r.samplesPerSec,
});

const summary = (meta: SequentialCheckpointMeta): CheckpointSummary => checkpointSummary('sequential', meta);

export const sequentialKind: ModelKind<SequentialConfig> = {
  name: 'sequential',
  task: 'recommend',
  trainerVersion: 'sequential-1',
  // `+history`: bundles carry the users' training histories (history.bin), which serving feeds to the graphs.
  exporterVersion: `${SEQUENTIAL_EXPORTER_VERSION}+history`,

  resolveConfig: (partial, seed) => resolveSequentialConfig(partial ?? {}, seed),

  async train(ds, config, ctx): Promise<TrainOutcome> {
    const choice = await selectBackend(ctx.backend);
    let resume: SequentialResumeState | undefined;
    if (ctx.resume) {
      const ck = await readSequentialCheckpoint(ctx.resume.dir);
      const best = ctx.resume.bestDir ? await readSequentialCheckpoint(ctx.resume.bestDir) : ck;
      resume = {
        epoch: ck.meta.epoch,
        weights: ck.weights,
        history: ck.meta.history as unknown as SequentialEpochRecord[],
        bestWeights: best.weights,
        optimizer: ck.optimizer,
      };
    }
    const sizes = sequentialSizesOf(ds);
    const meta = (epoch: number, history: SequentialEpochRecord[]): SequentialCheckpointMeta => ({
      kind: 'sequential',
      config,
      sizes,
      datasetId: ds.manifest.id,
      backend: choice.backend,
      gpu: choice.gpu,
      epoch,
      history: history as unknown as Array<Record<string, number>>,
    });
    const done: SequentialEpochRecord[] = [...(resume?.history ?? [])];
    const result = await trainSequential(ds, config, {
      resume,
      maxValidationUsers: ctx.maxValidationUsers,
      onProgress: (epoch, batch, batches) => ctx.onProgress(epoch, batch, batches),
      onEpoch: async (r, weights, _isBest, optimizer) => {
        done.push(r);
        const history = [...done];
        await ctx.onEpoch(record(r), (dir) =>
          writeSequentialCheckpoint(dir, meta(r.epoch, history), weights, optimizer),
        );
      },
    });
    return {
      write: (dir) => writeSequentialCheckpoint(dir, meta(result.bestEpoch, result.history), result.weights),
      history: result.history.map(record),
      bestEpoch: result.bestEpoch,
      epochsRun: result.epochsRun,
      stoppedEarly: result.stoppedEarly,
      samplesPerSec: result.samplesPerSec,
      backend: choice.backend,
      gpu: choice.gpu,
    };
  },

  readCheckpoint: async (dir) => summary((await readSequentialCheckpoint(dir)).meta),

  async exportBundle(input) {
    const { meta, weights } = await readSequentialCheckpoint(input.checkpointDir);
    if (meta.datasetId !== input.datasetId)
      throw new RecflowError(
        ErrorType.InvalidInput,
        `checkpoint ${input.checkpointId} was trained on dataset ${meta.datasetId}, not ${input.datasetId}`,
      );
    return exportSequentialBundle(input.dir, {
      modelName: input.modelName,
      datasetId: input.datasetId,
      checkpointId: input.checkpointId,
      weights,
      config: meta.config,
      sizes: meta.sizes,
      features: itemFeaturesOf(input.ds),
      vocab: input.ds.vocab,
      popularity: input.ds.items.popularity,
      history: input.ds.splits.train,
    });
  },

  evaluate: (bundleDir, ds, options, onProgress, fits) => evaluateBundle(bundleDir, ds, options, onProgress, fits),
};
