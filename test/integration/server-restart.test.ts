/**
 * Kill the Temporal dev server in the middle of a lifecycle run and start it again on the same SQLite file: the run
 * is still there, waiting where it was, and finishes after the review, with every step done once (one registered
 * version, one dataset, one checkpoint).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { FileModelRegistry } from '../../lib/registry';
import { approveUpdate, statusQuery, type LifecycleResult } from '../../workflows/lifecycle-types';
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
