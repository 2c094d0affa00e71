/* eslint-disable @typescript-eslint/unbound-method, @typescript-eslint/no-unnecessary-type-assertion -- activity methods do not use `this`; env.run cannot infer results */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createEvaluateActivities, type EvaluateModelResult } from '../../../activities/evaluate';
import { createExportActivities, type ExportModelResult } from '../../../activities/export';
import { createRegistryActivities, type GetAliasResult, type RegisterModelResult } from '../../../activities/registry';
import { loadConfig } from '../../../lib/config';
import { FileModelRegistry } from '../../../lib/registry';
import { storeWithModel } from '../../helpers/random-model';
import { mockActivityEnv } from '../../helpers/activity-env';

void describe('registry activities', () => {
  let root: string;
  let deps: Parameters<typeof createRegistryActivities>[0];
  let bundleId: string;
  let evaluationId: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-regact-'));
    const ctx = await storeWithModel(join(root, 'artifacts'));
    deps = { config: loadConfig({ RECFLOW_HOME: root }), store: ctx.store };
    const env = mockActivityEnv();
    const ex = (await env.run(createExportActivities(deps).exportModel, {
      checkpointId: ctx.checkpointId,
      datasetId: ctx.datasetId,
    })) as ExportModelResult;
    bundleId = ex.bundle.id;
    const ev = (await env.run(createEvaluateActivities(deps).evaluateModel, {
      bundleId,
      datasetId: ctx.datasetId,
      gates: { absolute: [{ metric: 'auc', min: 0.5 }] },
      options: { ks: [10] },
    })) as EvaluateModelResult;
    evaluationId = ev.evaluation.id;
  });
  after(() => rm(root, { recursive: true, force: true }));

  void it('registers with lineage, idempotently within a workflow run; approval, status and aliases', async () => {
    const acts = createRegistryActivities(deps);
    const env = mockActivityEnv({
      workflowExecution: { workflowId: 'train-1', runId: 'run-1' },
    });
    const a = (await env.run(acts.registerModel, {
      modelName: 'two-tower',
      bundleId,
      evaluationId,
    })) as RegisterModelResult;
    const b = (await env.run(acts.registerModel, {
      modelName: 'two-tower',
      bundleId,
      evaluationId,
    })) as RegisterModelResult;
    assert.deepEqual([a.ref, a.created, b.ref, b.created], ['two-tower@v1', true, 'two-tower@v1', false]);
    const other = mockActivityEnv({ workflowExecution: { workflowId: 'train-2', runId: 'run-2' } });
    const c = (await other.run(acts.registerModel, { modelName: 'two-tower', bundleId })) as RegisterModelResult;
    assert.equal(c.ref, 'two-tower@v2');

    const v1 = await new FileModelRegistry(deps.config.registryDir).get('two-tower@v1');
    assert.equal(v1.lineage.datasetId, 'ds-random');
    assert.equal(v1.lineage.trainingBackend, 'cpu');
    assert.equal(v1.lineage.workflowId, 'train-1');
    assert.equal(v1.lineage.blessing?.blessed, true);
    assert.ok((v1.lineage.metrics?.['int8.auc'] ?? 0) > 0.5);
    assert.equal(v1.bundle.id, bundleId);

    await env.run(acts.setModelStatus, { model: 'two-tower', version: 1, status: 'pending_approval' as const });
    const ap = await env.run(acts.recordApproval, {
      model: 'two-tower',
      version: 1,
      approved: true,
      approver: 'alice',
    });
    assert.deepEqual(ap, { status: 'approved', approver: 'alice' });
    assert.deepEqual(await env.run(acts.setAlias, { model: 'two-tower', alias: 'champion', version: 1 }), {
      previous: null,
    });
    const got = (await env.run(acts.getAlias, { model: 'two-tower', alias: 'champion' })) as GetAliasResult;
    assert.deepEqual(got, { version: 1, bundleId, datasetId: 'ds-random', status: 'approved' });
    assert.deepEqual(await env.run(acts.getAlias, { model: 'two-tower', alias: 'canary' }), {
      version: null,
      bundleId: null,
      datasetId: null,
      status: null,
    });
    await assert.rejects(
      env.run(acts.setModelStatus, { model: 'two-tower', version: 2, status: 'production' as const }),
      (err: Error & { type?: string; nonRetryable?: boolean }) =>
        err.type === 'InvalidInput' && err.nonRetryable === true,
    );
    await assert.rejects(env.run(acts.registerModel, { modelName: '../evil', bundleId }), /invalid model name/);
  });
});
