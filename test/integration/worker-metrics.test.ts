/**
 * The workers' Prometheus endpoint (RECFLOW_WORKER_METRICS): after a lifecycle run it shows training progress and the
 * run's outcome, the series the Grafana dashboard plots.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import type { LifecycleResult } from '../../lib/lifecycle/types';
import { freePort } from '../helpers/net';
import { devServerEnv, tempHome } from '../helpers/temporal';
import { withRecflowWorkers } from '../helpers/workers';

describe('worker metrics for Prometheus', () => {
  let env: TestWorkflowEnvironment;
  let address = '';
  before(async () => {
    address = `127.0.0.1:${await freePort()}`;
    process.env.RECFLOW_WORKER_METRICS = address; // read when the Runtime is installed (first env below)
    env = await devServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  it('exports training progress and lifecycle outcomes', async () => {
    const home = tempHome();
    const result = await withRecflowWorkers(
      env,
      home,
      () =>
        env.client.workflow.execute('modelLifecycleWorkflow', {
          taskQueue: CPU_TASK_QUEUE,
          workflowId: `metrics-${Date.now()}`,
          args: [
            {
              requestedBy: 'alice',
              kind: 'two-tower' as const,
              data: { kind: 'synthetic', users: 300, items: 150, events: 10_000 },
              train: { config: { epochs: 2 } },
              gates: {},
              approval: { autoApprove: true },
              rollout: { skip: true },
            },
          ],
        }) as Promise<LifecycleResult>,
    );
    assert.equal(result.outcome, 'approved');
    let text = '';
    for (let i = 0; i < 20 && !text.includes('recflow_lifecycle_outcomes'); i++) {
      text = await (await fetch(`http://${address}/metrics`)).text();
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.match(text, /recflow_lifecycle_outcomes_total\{[^}]*outcome="approved"[^}]*\} 1/);
    assert.match(text, /recflow_training_epoch\{[^}]*\} 2/);
    assert.match(text, /recflow_training_val_ndcg10\{/);
    // Every worker-side series the Grafana dashboard queries is exported.
    const dash = readFileSync(
      join(__dirname, '..', '..', 'deploy', 'grafana', 'dashboards', 'recflow-lifecycle.json'),
      'utf8',
    );
    const used = new Set(dash.match(/recflow_(training|lifecycle)_[a-z0-9_]+/g) ?? []);
    assert.ok(used.size >= 3);
    for (const name of used) assert.ok(text.includes(name), `dashboard queries ${name}, not exported`);
  });
});
