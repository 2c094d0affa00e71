import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createCpuActivities } from '../../activities';
import { defaultDeps } from '../../activities/deps';
import { loadConfig } from '../../lib/config';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { loadGroundTruth } from '../../lib/data/ground-truth';
import { loadDataset } from '../../lib/data/dataset';
import { maybeRecordHistory } from '../helpers/histories';
import { devServerEnv, tempHome, withWorker } from '../helpers/temporal';

describe('data activities on the real dev server', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await devServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  it('prepareDataWorkflow: generateShop -> validateData -> prepareDataset, then reuses everything', async () => {
    const config = loadConfig({ RECFLOW_HOME: tempHome() });
    const deps = defaultDeps(config);
    const shop = { users: 300, items: 200, events: 6000, seed: 9 };
    const workflowId = `test-data-${Date.now()}`;
    const result = await withWorker(env, { taskQueue: CPU_TASK_QUEUE, activities: createCpuActivities(deps) }, () =>
      env.client.workflow.execute('prepareDataWorkflow', { taskQueue: CPU_TASK_QUEUE, workflowId, args: [{ shop }] }),
    );
    await maybeRecordHistory(env.client.workflow.getHandle(workflowId), 'prepareDataWorkflow', 'shop');
    assert.match(result.shopId ?? '', /^shop-[0-9a-f]{24}$/);
    assert.match(result.datasetId, /^ds-[0-9a-f]{24}$/);
    assert.equal(result.datasetReused, false);
    assert.equal(result.validation.hard, 0);
    assert.ok(result.validation.soft > 0, 'the default dirt shows up as soft anomalies');
    const ds = await loadDataset(deps.store.pathOf('dataset', result.datasetId));
    assert.deepEqual(result.rows, {
      train: ds.splits.train.user.length,
      validation: ds.splits.validation.user.length,
      test: ds.splits.test.user.length,
    });
    assert.equal(ds.vocab.users.length, shop.users + 1);
    const gt = await loadGroundTruth(deps.store.pathOf('shop', result.shopId ?? ''));
    assert.equal(gt.meta.items, shop.items);
    // The history holds references, never data: small payloads.
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    assert.ok(JSON.stringify(history).length < 200_000);

    const again = await withWorker(env, { taskQueue: CPU_TASK_QUEUE, activities: createCpuActivities(deps) }, () =>
      env.client.workflow.execute('prepareDataWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId: `${workflowId}-again`,
        args: [{ shop }],
      }),
    );
    assert.equal(again.datasetId, result.datasetId);
    assert.equal(again.datasetReused, true);
  });

  it('bad data fails once, non-retryable, with file, row, column and value; no dataset is written', async () => {
    const config = loadConfig({ RECFLOW_HOME: tempHome() });
    const deps = defaultDeps(config);
    const dir = join(tempHome(), 'bad');
    mkdirSync(dir);
    writeFileSync(join(dir, 'items.csv'), 'item_id,category,brand,price,title\ni1,c,b,10,t\ni2,c,b,12,t\n');
    const rows = ['user_id,item_id,event_type,timestamp'];
    for (let k = 0; k < 20; k++) rows.push(`u${k},i${(k % 3) + 1},view,2026-01-0${1 + (k % 9)}T00:00:00Z`);
    writeFileSync(join(dir, 'events.csv'), `${rows.join('\n')}\n`);
    const workflowId = `test-data-bad-${Date.now()}`;
    const err = await withWorker(env, { taskQueue: CPU_TASK_QUEUE, activities: createCpuActivities(deps) }, () =>
      env.client.workflow
        .execute('prepareDataWorkflow', {
          taskQueue: CPU_TASK_QUEUE,
          workflowId,
          args: [{ source: { kind: 'dir', path: dir } }],
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        ),
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    const cause = err.cause?.cause;
    assert.ok(cause instanceof ApplicationFailure, String(err.cause));
    assert.equal(cause.type, 'InvalidData');
    assert.equal(cause.nonRetryable, true);
    assert.match(
      cause.message,
      /^events\.csv row 4, column item_id, value 'i3': unknown item id \(not in items\.csv\);/,
    );
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
    assert.equal(started.length, 1);
    assert.equal(started[0]?.activityTaskStartedEventAttributes?.attempt, 1);
    assert.deepEqual(readdirSync(config.artifactsDir).sort(), ['.tmp', 'report']);
  });
});
