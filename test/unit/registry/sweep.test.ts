/**
 * `sweepAbandonedVersions`: a version whose lifecycle run was terminated (no cleanup runs then) does not stay
 * `pending_approval` forever. Real registry files, a real Temporal (time-skipping) server for the runs' states.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createRegistryActivities, type SweepAbandonedVersionsResult } from '../../../activities/registry';
import { ArtifactStore } from '../../../lib/artifacts';
import { loadConfig } from '../../../lib/config';
import { CPU_TASK_QUEUE } from '../../../lib/constants';
import { FileModelRegistry } from '../../../lib/registry';
import { activityInterceptors } from '../../../activities/interceptors';
import { tempHome, timeSkippingEnv } from '../../helpers/temporal';

describe('sweepAbandonedVersions', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await timeSkippingEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  it('rejects versions of terminated or unknown runs, keeps those of running runs and of the caller', async () => {
    const home = tempHome('recflow-sweep-');
    const registry = new FileModelRegistry(join(home, 'registry'));
    const acts = createRegistryActivities(
      { config: loadConfig({ RECFLOW_HOME: home }), store: new ArtifactStore(join(home, 'artifacts')) },
      registry,
    );
    // Runs whose state the sweep reads: one still running (a lock workflow waiting for its holder), one terminated.
    const start = (id: string) =>
      env.client.workflow.start('fleetLockWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId: id,
        args: [{ fleet: id }],
      });
    await start('run-alive');
    const dead = await start('run-dead');
    await dead.terminate('stuck');
    const versions: Record<string, number> = {};
    for (const run of ['run-alive', 'run-dead', 'run-never-existed', 'run-self']) {
      const { version } = await registry.register({
        model: 'm',
        bundle: { id: `b-${run}`, contentHash: run },
        lineage: { datasetId: 'd', datasetHash: 'h', checkpointId: 'c' },
        workflowId: run,
      });
      await registry.setStatus('m', version.version, 'pending_approval', { actor: 't' });
      versions[run] = version.version;
    }
    const mock = new MockActivityEnvironment(
      { workflowExecution: { workflowId: 'run-self', runId: 'r' } },
      { logger: new DefaultLogger('WARN'), interceptors: activityInterceptors, client: env.client },
    );
    const sweep = (): Promise<SweepAbandonedVersionsResult> =>
      mock.run((i: { model: string }) => acts.sweepAbandonedVersions(i), { model: 'm' });
    const r = await sweep();
    assert.deepEqual(r.swept.map((x) => [x.run, x.runStatus, x.to]).sort(), [
      ['run-dead', 'TERMINATED', 'rejected'],
      ['run-never-existed', 'NOT_FOUND', 'rejected'],
    ]);
    const status = async (run: string) => (await registry.get(`m@v${versions[run]}`)).status;
    assert.equal(await status('run-alive'), 'pending_approval');
    assert.equal(await status('run-self'), 'pending_approval');
    assert.equal(await status('run-dead'), 'rejected');
    const again = await sweep();
    assert.deepEqual(again.swept, [], 'idempotent');
  });
});
