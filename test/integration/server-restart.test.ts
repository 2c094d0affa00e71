/**
 * Kill the Temporal dev server in the middle of a lifecycle run and start it again on the same SQLite file:
 *  - while the run waits for its review: the run is still there, waiting where it was, and finishes after the
 *    review, with every step done once (one registered version, one dataset, one bundle);
 *  - with SIGKILL while the training activity runs, the workers staying up: the activity keeps training through the
 *    outage, its completion gets through once the server is back, nothing is retried or done twice.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { FileModelRegistry } from '../../lib/registry';
import { approveUpdate, statusQuery } from '../../lib/lifecycle/messages';
import { type LifecycleResult } from '../../lib/lifecycle/types';
import { freePort } from '../helpers/net';
import { devServerEnv, tempHome } from '../helpers/temporal';
import { withRecflowWorkers } from '../helpers/workers';

describe('Temporal server restart mid-run (same SQLite file)', () => {
  it('the run survives and completes with each step done once', async () => {
    const home = tempHome();
    const db = join(home, 'temporal.sqlite');
    const workflowId = `restart-${Date.now()}`;

    const first = await devServerEnv({ dbFilename: db });
    try {
      await withRecflowWorkers(first, home, async () => {
        const h = await first.client.workflow.start('modelLifecycleWorkflow', {
          taskQueue: CPU_TASK_QUEUE,
          workflowId,
          args: [
            {
              requestedBy: 'alice',
              kind: 'two-tower' as const,
              data: { kind: 'synthetic', users: 300, items: 150, events: 10_000 },
              train: { config: { epochs: 2 } },
              gates: {},
              approval: { reviewers: ['bob'] },
              rollout: { skip: true },
            },
          ],
        });
        for (let i = 0; (await h.query(statusQuery)).stage !== 'awaiting_approval'; i++) {
          assert.ok(i < 600, 'reached the review');
          await new Promise((r) => setTimeout(r, 250));
        }
      });
    } finally {
      await first.teardown(); // the server process goes away; its SQLite file stays
    }

    const second = await devServerEnv({ dbFilename: db });
    try {
      const result = await withRecflowWorkers(second, home, async () => {
        const h = second.client.workflow.getHandle(workflowId);
        const s = await h.query(statusQuery);
        assert.equal(s.stage, 'awaiting_approval');
        await h.executeUpdate(approveUpdate, { args: [{ reviewer: 'bob', comment: 'after the restart' }] });
        return (await h.result()) as LifecycleResult;
      });
      assert.equal(result.outcome, 'approved', result.reason);
      const versions = await new FileModelRegistry(join(home, 'registry')).listVersions('shop-recs');
      assert.equal(versions.length, 1, 'registered once');
      assert.equal(versions[0]!.approver, 'bob');
      const dirs = (kind: string) => readdirSync(join(home, 'artifacts', kind)).filter((d) => !d.startsWith('.'));
      assert.equal(dirs('dataset').length, 1, 'one dataset');
      assert.equal(dirs('bundle').length, 1, 'one bundle');
    } finally {
      await second.teardown();
    }
  });
});

describe('Temporal server crash during an activity (SIGKILL, restarted on the same port and SQLite file)', () => {
  it('the running training keeps going, reports after the restart, and nothing is repeated', async () => {
    const home = tempHome();
    const db = join(home, 'temporal.sqlite');
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const workflowId = `crash-${Date.now()}`;
    let env: TestWorkflowEnvironment | undefined = await devServerEnv({ dbFilename: db, port });
    // The workers and the client have their own connections: they outlive the server process and reconnect.
    const nativeConnection = await NativeConnection.connect({ address });
    const connection = await Connection.connect({ address });
    const client = new Client({ connection });
    try {
      const result = await withRecflowWorkers({ nativeConnection, namespace: 'default' }, home, async () => {
        const h = await client.workflow.start('modelLifecycleWorkflow', {
          taskQueue: CPU_TASK_QUEUE,
          workflowId,
          args: [
            {
              requestedBy: 'alice',
              kind: 'two-tower' as const,
              data: { kind: 'synthetic', users: 400, items: 200, events: 30_000 },
              train: { config: { epochs: 12, earlyStoppingPatience: 100 } },
              gates: {},
              approval: { autoApprove: true },
              rollout: { skip: true },
            },
          ],
        });
        // Wait for the first epoch's checkpoint, then crash the server under the running activity.
        const checkpoints = join(home, 'artifacts', 'checkpoint');
        for (let i = 0; !(existsSync(checkpoints) && readdirSync(checkpoints).some((d) => !d.startsWith('.'))); i++) {
          assert.ok(i < 1200 && (await h.describe()).status.name === 'RUNNING', 'training reached a checkpoint');
          await new Promise((r) => setTimeout(r, 100));
        }
        const pids = execFileSync('pgrep', ['-f', db]).toString().trim().split(/\s+/).map(Number);
        assert.ok(pids.length >= 1, 'found the dev server process');
        for (const pid of pids) process.kill(pid, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 2000));
        await env?.teardown().catch(() => undefined);
        env = await devServerEnv({ dbFilename: db, port });
        console.log(`# server back; epoch checkpoints so far: ${readdirSync(checkpoints).length}`);
        return (await h.result()) as LifecycleResult;
      });
      assert.equal(result.outcome, 'approved', result.reason);
      // The attempt that was running when the server died finished and its result got through: no retry, so no
      // epoch trained twice; each step's effect is there once.
      assert.equal(result.status.training?.resumedFromEpoch, null);
      const versions = await new FileModelRegistry(join(home, 'registry')).listVersions('shop-recs');
      assert.equal(versions.length, 1, 'registered once');
      const dirs = (kind: string) => readdirSync(join(home, 'artifacts', kind)).filter((d) => !d.startsWith('.'));
      assert.equal(dirs('dataset').length, 1, 'one dataset');
      assert.equal(dirs('bundle').length, 1, 'one bundle');
    } finally {
      await connection.close();
      await nativeConnection.close();
      await env?.teardown();
    }
  });
});
