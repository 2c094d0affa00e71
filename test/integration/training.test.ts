/**
 * Training on the real dev server: the hyperparameter search with the GPU-to-CPU fallback, and the kill test (a
 * worker process dies mid-training; the retried attempt on a new worker resumes from the last heartbeat's checkpoint).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createCpuActivities } from '../../activities';
import { defaultDeps } from '../../activities/deps';
import type { TrainHeartbeat } from '../../activities/training';
import { ArtifactStore } from '../../lib/artifacts';
import { loadConfig } from '../../lib/config';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import { readCheckpoint } from '../../kinds/two-tower/spec';
import type { hyperparameterSearchWorkflow, TrialStatus } from '../../workflows/hyperparameter-search';
import { maybeRecordHistory } from '../helpers/histories';
import { devServerEnv, tempHome, testWorkflowBundle } from '../helpers/temporal';
import { putTinyDataset } from '../helpers/tiny-dataset';
import { activityInterceptors } from '../../activities/interceptors';

const ROOT = join(__dirname, '..', '..');

function startWorkerProcess(env: TestWorkflowEnvironment, home: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'training-worker.ts')], {
    cwd: ROOT,
    env: { ...process.env, TEMPORAL_ADDRESS: env.address, RECFLOW_HOME: home, TASK_QUEUE: GPU_TASK_QUEUE },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`worker process exited with ${code} before it was ready`)));
  });
}

describe('training on the real dev server', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await devServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  it('hyperparameter search: trials fall back to recflow-cpu without a GPU worker, best by validation NDCG@10', async () => {
    const home = tempHome('recflow-hpo-');
    const deps = defaultDeps(loadConfig({ RECFLOW_HOME: home }));
    await putTinyDataset(deps.store, 'tiny', { users: 120, items: 60, perUser: 10 });
    const worker = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities: createCpuActivities(deps),
      workflowBundle: await testWorkflowBundle(),
    });
    const workflowId = `test-hpo-${Date.now()}`;
    const { result, queried } = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof hyperparameterSearchWorkflow>(
        'hyperparameterSearchWorkflow',
        {
          taskQueue: CPU_TASK_QUEUE,
          workflowId,
          args: [
            {
              datasetId: 'tiny',
              trials: 3,
              seed: 1,
              maxParallel: 2,
              space: { learningRate: [0.0001, 0.02], hiddenUnits: [8, 16] },
              mode: 'grid',
              baseConfig: { epochs: 2, embeddingDim: 8, featureDim: 4, outputDim: 8, batchSize: 256 },
              gpuScheduleToStartTimeout: '2 seconds',
            },
          ],
        },
      );
      const result = await handle.result();
      const queried = await handle.query<TrialStatus[]>('trials');
      return { result, queried };
    });
    assert.equal(result.trials.length, 3);
    assert.deepEqual(queried, result.trials);
    for (const t of result.trials) {
      assert.equal(t.state, 'completed', t.error);
      assert.equal(t.placement?.fellBackToCpu, true);
      assert.equal(t.placement?.taskQueue, CPU_TASK_QUEUE);
      assert.equal(t.backend, 'wasm');
      assert.equal(t.epochsRun, 2);
      const ck = await deps.store.get('checkpoint', t.checkpointId ?? '');
      assert.equal((await readCheckpoint(ck.path)).meta.backend, 'wasm');
    }
    // Grid order: the first key in sorted order (hiddenUnits) varies fastest.
    assert.deepEqual(
      result.trials.map((t) => [t.config.hiddenUnits, t.config.learningRate]),
      [
        [8, 0.0001],
        [16, 0.0001],
        [8, 0.02],
      ],
    );
    const bestNdcg = Math.max(...result.trials.map((t) => t.metrics?.ndcg10 ?? -1));
    assert.equal(result.best.metrics?.ndcg10, bestNdcg);
    // The trials really differ: a learning rate of 0.02 fits better than 0.0001 in two epochs (the full-catalogue
    // softmax loss is about ln(items) at the start, so the gap is relative: at least 0.5 %).
    const loss = (lr: number): number => result.trials.find((t) => t.config.learningRate === lr)?.metrics?.loss ?? NaN;
    assert.ok(loss(0.02) < loss(0.0001) * 0.995, `loss ${loss(0.02)} vs ${loss(0.0001)}`);
    await maybeRecordHistory(env.client.workflow.getHandle(workflowId), 'hyperparameterSearchWorkflow', 'cpu-fallback');
  });

  it('a worker killed mid-training: the retry on a new worker resumes from the heartbeat checkpoint', async () => {
    const home = tempHome('recflow-kill-');
    const store = new ArtifactStore(loadConfig({ RECFLOW_HOME: home }).artifactsDir);
    // Large enough that an epoch outlasts the heartbeat throttle (0.8 x the 3 s timeout) on a fast host: on a
    // dataset of 400 users the whole run finished between two heartbeats and the test saw no epoch to kill in.
    await putTinyDataset(store, 'tiny', { users: 3000, items: 400, perUser: 20 });
    // This process runs the workflow only; training runs in child processes polling recflow-gpu.
    const worker = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities: {},
      workflowBundle: await testWorkflowBundle(),
    });
    const children: ChildProcess[] = [];
    try {
      const outcome = await worker.runUntil(async () => {
        children.push(await startWorkerProcess(env, home));
        const handle = await env.client.workflow.start<typeof hyperparameterSearchWorkflow>(
          'hyperparameterSearchWorkflow',
          {
            taskQueue: CPU_TASK_QUEUE,
            workflowId: `test-kill-${Date.now()}`,
            args: [
              {
                datasetId: 'tiny',
                trials: 1,
                seed: 2,
                space: { learningRate: [0.01] },
                baseConfig: { epochs: 5, earlyStoppingPatience: 10, embeddingDim: 16, batchSize: 256 },
                heartbeatTimeout: '3 seconds',
                gpuScheduleToStartTimeout: '1 minute',
              },
            ],
          },
        );
        // Watch the heartbeat details the server holds; kill the worker once the checkpoint of epoch 1 (the 2nd) is
        // reported. A progress beat's `epoch` is the epoch in flight; the finished one is its checkpoint's (`-e<n>`).
        let seen: { epoch: number; beat: TrainHeartbeat } | undefined;
        const observed: string[] = [];
        for (let i = 0; i < 600 && !seen; i++) {
          const desc = await handle.describe();
          for (const a of desc.raw.pendingActivities ?? []) {
            const p = a.heartbeatDetails?.payloads?.[0];
            const d = p ? defaultPayloadConverter.fromPayload<TrainHeartbeat>(p) : undefined;
            const line = `${a.activityType?.name} attempt ${a.attempt} state ${a.state}: ${JSON.stringify(d ?? null)}`;
            if (observed.at(-1) !== line) observed.push(line);
            const done = Number(/-e(\d+)$/.exec(typeof d?.checkpointId === 'string' ? d.checkpointId : '')?.[1] ?? -1);
            if (d && done >= 1) seen = { epoch: done, beat: d };
          }
          if (!seen) await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(
          seen,
          `the heartbeat naming the checkpoint of epoch 1 reached the server; the server held:\n${observed.slice(-8).join('\n')}`,
        );
        children[0]?.kill('SIGKILL');
        const doneAtKill = readdirSync(join(store.root, 'checkpoint'))
          .map((d) => /-e(\d+)$/.exec(d)?.[1])
          .filter((e): e is string => e !== undefined)
          .map(Number);
        children.push(await startWorkerProcess(env, home));
        const result = await handle.result();
        return { seen, doneAtKill, result };
      });
      const trial = outcome.result.trials[0];
      assert.equal(trial?.state, 'completed', trial?.error);
      assert.equal(trial?.placement?.taskQueue, GPU_TASK_QUEUE);
      const resumed = trial?.resumedFromEpoch ?? -1;
      assert.ok(resumed >= 1, `resumed from epoch ${resumed}`);
      assert.ok(resumed >= outcome.seen.epoch, `resumed from ${resumed}, heartbeat said ${outcome.seen.epoch}`);
      // Epochs the dead worker finished after the resume point are trained again: at most one.
      const lastDone = Math.max(...outcome.doneAtKill);
      assert.ok(lastDone - resumed <= 1, `dead worker finished epoch ${lastDone}, resumed after ${resumed}`);
      assert.equal(trial?.epochsRun, 5);
    } finally {
      for (const c of children) c.kill('SIGKILL');
    }
  });
});
