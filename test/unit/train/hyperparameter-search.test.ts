import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { TrainModelInput, TrainModelResult } from '../../../activities/training';
import { CPU_TASK_QUEUE } from '../../../lib/constants';
import {
  DEFAULT_SEARCH_SPACE,
  trialConfigs,
  type hyperparameterSearchWorkflow,
} from '../../../workflows/hyperparameter-search';
import { testWorkflowBundle, timeSkippingEnv } from '../../helpers/temporal';
import { activityInterceptors } from '../../../activities/interceptors';

describe('trialConfigs', () => {
  it('draws seeded random trials from the space, the same for the same seed', () => {
    const a = trialConfigs(DEFAULT_SEARCH_SPACE, 6, 1, 'random');
    assert.deepEqual(a, trialConfigs(DEFAULT_SEARCH_SPACE, 6, 1, 'random'));
    assert.notDeepEqual(a, trialConfigs(DEFAULT_SEARCH_SPACE, 6, 2, 'random'));
    for (const c of a)
      for (const [k, v] of Object.entries(c))
        assert.ok(DEFAULT_SEARCH_SPACE[k as 'l2']?.includes(v), `${k}=${v} from the space`);
  });

  it('walks the grid without repeats', () => {
    const g = trialConfigs({ learningRate: [1, 2, 3], hiddenUnits: [8, 16] }, 6, 0, 'grid');
    assert.equal(new Set(g.map((c) => JSON.stringify(c))).size, 6);
    assert.deepEqual(g[0], { hiddenUnits: 8, learningRate: 1 });
    assert.deepEqual(g[1], { hiddenUnits: 16, learningRate: 1 });
  });
});

describe('hyperparameterSearchWorkflow on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await timeSkippingEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  function fakeTraining() {
    let inFlight = 0;
    let maxInFlight = 0;
    const calls: TrainModelInput[] = [];
    const trainModel = async (input: TrainModelInput): Promise<TrainModelResult> => {
      calls.push(input);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 100));
      inFlight--;
      const lr = Number(input.config?.learningRate ?? 0);
      if (lr === 0.002) throw ApplicationFailure.nonRetryable('training diverged at epoch 3', 'TrainingDiverged');
      return {
        kind: 'two-tower',
        checkpoint: { kind: 'checkpoint', id: `ck-${lr}`, path: '/nowhere', contentHash: 'x' },
        backend: 'cpu',
        gpu: false,
        epochsRun: 3,
        bestEpoch: 2,
        resumedFromEpoch: null,
        metrics: { ndcg10: lr * 10, hr10: lr * 20, loss: 0.5 },
        samplesPerSec: 1,
        reused: false,
        config: {},
        history: [],
      };
    };
    return { trainModel, calls, maxInFlight: () => maxInFlight };
  }

  /** Run the search workflow with the fake training on the CPU queue (no GPU worker: every trial falls back). */
  async function search(
    fake: ReturnType<typeof fakeTraining>,
    workflowId: string,
    input: Parameters<typeof hyperparameterSearchWorkflow>[0],
  ) {
    const worker = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities: { trainModel: fake.trainModel },
      workflowBundle: await testWorkflowBundle(),
    });
    return worker.runUntil(
      env.client.workflow.execute<typeof hyperparameterSearchWorkflow>('hyperparameterSearchWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId,
        args: [input],
      }),
    );
  }

  it('runs trials at most maxParallel at a time, falls back to CPU, keeps failed trials, picks the best', async () => {
    const fake = fakeTraining();
    const result = await search(fake, 'hpo-fake', {
      datasetId: 'd',
      trials: 3,
      seed: 10,
      maxParallel: 2,
      mode: 'grid',
      space: { learningRate: [0.002, 0.005, 0.01] },
      baseConfig: { epochs: 3 },
      gpuScheduleToStartTimeout: '5 seconds',
    });
    assert.equal(fake.calls.length, 3);
    assert.equal(fake.maxInFlight(), 2);
    assert.deepEqual(fake.calls.map((c) => c.seed).sort(), [10, 11, 12]);
    assert.ok(fake.calls.every((c) => c.config?.epochs === 3 && c.datasetId === 'd'));
    assert.deepEqual(
      result.trials.map((t) => t.state),
      ['failed', 'completed', 'completed'],
    );
    assert.match(result.trials[0]?.error ?? '', /diverged/);
    assert.ok(result.trials.slice(1).every((t) => t.placement?.fellBackToCpu === true));
    assert.equal(result.best.trial, 2);
    assert.equal(result.best.checkpointId, 'ck-0.01');
  });

  it('starts no trial after the time budget is spent', async () => {
    const fake = fakeTraining();
    const result = await search(fake, 'hpo-budget', {
      datasetId: 'd',
      trials: 3,
      seed: 1,
      maxParallel: 1,
      mode: 'grid',
      space: { learningRate: [0.01, 0.005, 0.02] },
      budgetSeconds: 1,
      // The GPU attempt waits 5 s (skipped time) before the CPU fallback: the budget is spent after trial 0.
      gpuScheduleToStartTimeout: '5 seconds',
    });
    assert.deepEqual(
      result.trials.map((t) => t.state),
      ['completed', 'skipped', 'skipped'],
    );
    assert.equal(fake.calls.length, 1);
  });
});
