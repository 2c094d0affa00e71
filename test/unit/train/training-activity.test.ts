import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { type MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityDeps } from '../../../activities/deps';
import { createExportActivities } from '../../../activities/export';
import { resolveModelConfig } from '../../../kinds/two-tower';
import {
  createTrainingActivities,
  type TrainHeartbeat,
  type TrainModelInput,
  type TrainModelResult,
} from '../../../activities/training';
import { ArtifactStore } from '../../../lib/artifacts';
import { loadConfig } from '../../../lib/config';
import { RecflowError } from '../../../lib/errors';
import { readCheckpoint } from '../../../kinds/two-tower/spec';
import { tempHome } from '../../helpers/temporal';
import { putTinyDataset } from '../../helpers/tiny-dataset';
import { mockActivityEnv } from '../../helpers/activity-env';

const mockEnv = (info: ConstructorParameters<typeof MockActivityEnvironment>[0] = {}): MockActivityEnvironment =>
  mockActivityEnv(info);

const SMALL = {
  embeddingDim: 8,
  featureDim: 4,
  hiddenUnits: 16,
  outputDim: 8,
  epochs: 3,
  batchSize: 256,
  learningRate: 0.01,
  earlyStoppingPatience: 5,
};

describe('trainModel activity', () => {
  const train = (env: MockActivityEnvironment, input: TrainModelInput): Promise<TrainModelResult> =>
    env.run((i: TrainModelInput) => acts.trainModel(i), input);
  let store: ArtifactStore;
  let acts: ReturnType<typeof createTrainingActivities>;
  let deps: ActivityDeps;
  before(async () => {
    const home = tempHome('recflow-train-act-');
    store = new ArtifactStore(join(home, 'artifacts'));
    deps = { config: loadConfig({ RECFLOW_HOME: home, RECFLOW_TF_BACKEND: 'wasm' }), store };
    acts = createTrainingActivities(deps);
    await putTinyDataset(store, 'tiny', { users: 120, items: 60, perUser: 10 });
  });

  it('trains, heartbeats each epoch with its checkpoint, records the backend, and reuses the result', async () => {
    const env = mockEnv();
    const beats: TrainHeartbeat[] = [];
    env.on('heartbeat', (d: TrainHeartbeat) => {
      if (d.checkpointId && d.batch === undefined) beats.push(d);
    });
    const r = await train(env, { datasetId: 'tiny', config: SMALL, seed: 3 });
    assert.equal(r.backend, 'wasm');
    assert.equal(r.epochsRun, 3);
    assert.equal(r.resumedFromEpoch, null);
    assert.equal(r.reused, false);
    assert.deepEqual(
      beats.map((b) => b.epoch),
      [0, 1, 2],
    );
    for (const b of beats) assert.ok(await store.find('checkpoint', b.checkpointId), `${b.checkpointId} exists`);
    const { meta } = await readCheckpoint(r.checkpoint.path);
    assert.equal(meta.backend, 'wasm');
    assert.equal(meta.datasetId, 'tiny');
    assert.equal(meta.epoch, r.bestEpoch);
    assert.equal(meta.config.seed, 3);
    assert.ok(r.metrics.ndcg10 > 0 && r.metrics.hr10 >= r.metrics.ndcg10);
    // The checkpoint is what the ONNX exporter (lib/onnx/export.ts) takes.
    const exp = createExportActivities(deps);
    const bundle = await mockEnv().run((): ReturnType<typeof exp.exportModel> =>
      exp.exportModel({ checkpointId: r.checkpoint.id, datasetId: 'tiny' }),
    );
    assert.equal(bundle.reused, false);
    assert.ok(bundle.sizes.fp32.score > 0 && bundle.sizes.int8.recommend > 0, JSON.stringify(bundle.sizes));

    const again = await train(mockEnv(), {
      datasetId: 'tiny',
      config: SMALL,
      seed: 3,
    });
    assert.equal(again.reused, true);
    assert.equal(again.checkpoint.id, r.checkpoint.id);
    assert.deepEqual(again.metrics, r.metrics);
  });

  it('resumes after the epoch named in the heartbeat details of a previous attempt', async () => {
    const cfg = { ...SMALL, epochs: 4 };
    // A first attempt that "dies" after epoch 1: run 2 epochs of the same config and keep the heartbeat.
    const env = mockEnv();
    let lastBeat: TrainHeartbeat | undefined;
    env.on('heartbeat', (d: TrainHeartbeat) => {
      if (d.epoch === 1 && d.batch === undefined) {
        lastBeat = d;
        env.cancel('CANCELLED');
      }
    });
    await assert.rejects(train(env, { datasetId: 'tiny', config: cfg, seed: 5 }));
    assert.ok(lastBeat, 'heartbeat after epoch 1');
    const retry = mockEnv({ attempt: 2, heartbeatDetails: lastBeat });
    const epochs: number[] = [];
    retry.on('heartbeat', (d: TrainHeartbeat) => {
      if (d.batch === undefined) epochs.push(d.epoch);
    });
    const r = await train(retry, { datasetId: 'tiny', config: cfg, seed: 5 });
    assert.equal(r.resumedFromEpoch, 1);
    assert.deepEqual(epochs, [2, 3]);
    assert.equal(r.epochsRun, 4);
    assert.deepEqual(
      r.history.map((h) => h.epoch),
      [0, 1, 2, 3],
    );
  });

  it('without a heartbeat (the CPU fallback after a GPU worker died) resumes from the newest epoch checkpoint in the store', async () => {
    const cfg = { ...SMALL, epochs: 4 };
    const env = mockEnv();
    env.on('heartbeat', (d: TrainHeartbeat) => {
      if (d.epoch === 2 && d.batch === undefined) env.cancel('CANCELLED');
    });
    await assert.rejects(train(env, { datasetId: 'tiny', config: cfg, seed: 6 }));
    // Another queue's first attempt: no heartbeat details, the shared store holds epochs 0..2 of this run.
    const fallback = mockEnv();
    const epochs: number[] = [];
    fallback.on('heartbeat', (d: TrainHeartbeat) => {
      if (d.batch === undefined) epochs.push(d.epoch);
    });
    const r = await train(fallback, { datasetId: 'tiny', config: cfg, seed: 6 });
    assert.equal(r.resumedFromEpoch, 2);
    assert.deepEqual(epochs, [3]);
    assert.deepEqual(
      r.history.map((h) => h.epoch),
      [0, 1, 2, 3],
    );
    // A different run (another seed) does not pick up these checkpoints.
    const other = await train(mockEnv(), { datasetId: 'tiny', config: { ...cfg, epochs: 1 }, seed: 7 });
    assert.equal(other.resumedFromEpoch, null);
  });

  it('starts over when the heartbeat names a checkpoint that is not there', async () => {
    const cfg = { ...SMALL, epochs: 1 };
    const r = await train(
      mockEnv({ attempt: 2, heartbeatDetails: { epoch: 0, checkpointId: 'gone-e0', metrics: {} } }),
      { datasetId: 'tiny', config: cfg, seed: 9 },
    );
    assert.equal(r.resumedFromEpoch, null);
    assert.equal(r.epochsRun, 1);
  });

  it('rejects a bad config with a clear non-retryable error', async () => {
    assert.throws(() => resolveModelConfig({ batchSize: 0 }), /config.batchSize = 0/);
    assert.throws(() => resolveModelConfig({ epochs: 2.5 }), RecflowError);
    assert.throws(() => resolveModelConfig({ bogus: 1 } as never), /config.bogus: unknown/);
    assert.throws(() => resolveModelConfig({ dropout: 1 }), /config.dropout = 1: a rate must be below 1/);
    assert.throws(() => resolveModelConfig({ historyLength: 0 }), /config.historyLength = 0/);
    assert.throws(() => resolveModelConfig({ minItemInteractions: 0 }), /config.minItemInteractions = 0/);
    assert.throws(() => resolveModelConfig({ l2: 1000 }), /weight decay times the learning rate/);
    assert.equal(resolveModelConfig({ historyGap: 0, itemIdDropout: 0 }).historyGap, 0);
    await assert.rejects(
      train(mockEnv(), { datasetId: 'tiny', config: { learningRate: -1 } }),
      (err: Error & { type?: string; nonRetryable?: boolean }) =>
        err.type === 'InvalidInput' && err.nonRetryable === true && /learningRate/.test(err.message),
    );
    await assert.rejects(
      train(mockEnv(), { datasetId: 'nope' }),
      (err: Error & { type?: string }) => err.type === 'ArtifactMissing',
    );
    assert.ok(readdirSync(join(store.root, 'checkpoint')).length > 0);
  });
});
