/**
 * The nightly retrain on the real dev server: the schedule made and driven by `npx recflow schedule ...` (the real
 * CLI code against the real server), the first night trains and deploys, the second night sees the same data and
 * skips, saying why.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { main } from '../../clients/cli';
import { CPU_TASK_QUEUE, nightlyScheduleId } from '../../lib/constants';
import type { LifecycleInput } from '../../lib/lifecycle/types';
import type { NightlyResult, nightlyRetrainWorkflow } from '../../workflows/nightly';
import { maybeRecordHistory } from '../helpers/histories';
import { startRecflowWorkers } from '../helpers/workers';
import { devServerEnv, tempHome } from '../helpers/temporal';

describe('nightly retrain: schedule CLI and nightlyRetrainWorkflow (dev server)', () => {
  let env: TestWorkflowEnvironment;
  let workers: Awaited<ReturnType<typeof startRecflowWorkers>> | undefined;
  const home = tempHome();
  const saved = { ...process.env };

  before(async () => {
    env = await devServerEnv();
    workers = await startRecflowWorkers(env, home);
    process.env.TEMPORAL_ADDRESS = env.address;
    process.env.RECFLOW_HOME = home;
  });
  after(async () => {
    process.env = saved;
    await workers?.stop();
    await env?.teardown();
  });

  const lifecycle: LifecycleInput = {
    kind: 'two-tower',
    data: { kind: 'synthetic', seed: 5, users: 300, items: 150, events: 12_000 },
    train: { config: { epochs: 3 } },
    gates: {},
    approval: { autoApprove: true },
    rollout: { convergeTimeout: '1s', steps: [{ weight: 100, bake: '1s' }], onInconclusive: 'rollback' },
  };

  it('creates, describes, pauses, triggers and deletes the schedule from the CLI', async () => {
    const inputFile = join(home, 'lifecycle.json');
    // Its own fleet: the run the trigger starts must not meet the other test's model on the same fleet.
    writeFileSync(inputFile, JSON.stringify({ ...lifecycle, rollout: { ...lifecycle.rollout, fleet: 'nightly-cli' } }));
    const cli = (...args: string[]) => main(['node', 'recflow', ...args]);
    assert.equal(
      await cli(
        'schedule',
        'create',
        '--model',
        'nightly-test',
        '--cron',
        '0 3 * * *',
        '--tz',
        'Europe/Paris',
        '--input',
        inputFile,
      ),
      0,
    );
    const handle = env.client.schedule.getHandle(nightlyScheduleId('nightly-test'));
    let d = await handle.describe();
    assert.equal(d.spec.timezone, 'Europe/Paris');
    assert.equal(d.action.type, 'startWorkflow');
    assert.equal(d.action.workflowType, 'nightlyRetrainWorkflow');
    assert.equal(d.info.nextActionTimes[0]!.getUTCMinutes(), 0);
    assert.equal(await cli('schedule', 'pause', '--model', 'nightly-test', '--note', 'freeze'), 0);
    d = await handle.describe();
    assert.equal(d.state.paused, true);
    assert.equal(d.state.note, 'freeze');
    assert.equal(await cli('schedule', 'unpause', '--model', 'nightly-test'), 0);
    assert.equal(
      await cli('schedule', 'update', '--model', 'nightly-test', '--cron', '30 1 * * *', '--input', inputFile),
      0,
    );
    assert.equal(await cli('schedule', 'trigger', '--model', 'nightly-test'), 0);
    for (let i = 0; i < 100 && (await handle.describe()).info.recentActions.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const started = (await handle.describe()).info.recentActions[0];
    assert.ok(started, 'trigger started a run');
    assert.equal(await cli('schedule', 'delete', '--model', 'nightly-test'), 0);
    assert.equal(await cli('schedule', 'create', '--model', 'nightly-test', '--overlap', 'sometimes'), 2);
  });

  it('retrains on new data, then skips the next night with the reason', async () => {
    const run = (id: string) =>
      env.client.workflow.execute<typeof nightlyRetrainWorkflow>('nightlyRetrainWorkflow', {
        taskQueue: CPU_TASK_QUEUE,
        workflowId: id,
        args: [
          {
            lifecycle: {
              ...lifecycle,
              modelName: 'nightly-model',
              rollout: { ...lifecycle.rollout, fleet: 'nightly' },
            },
          },
        ],
      });
    const first: NightlyResult = await run('nightly-1');
    assert.equal(first.action, 'retrained');
    assert.equal(first.outcome, 'promoted');
    assert.equal(first.championDatasetId, null);
    const second = await run('nightly-2');
    assert.equal(second.action, 'skipped');
    assert.equal(second.datasetId, first.datasetId);
    assert.match(second.reason, /no new data: .* nightly-model@v1 was trained on/);
    await maybeRecordHistory(env.client.workflow.getHandle('nightly-1'), 'nightlyRetrainWorkflow', 'retrained');
    await maybeRecordHistory(env.client.workflow.getHandle('nightly-2'), 'nightlyRetrainWorkflow', 'skipped');
    await maybeRecordHistory(
      env.client.workflow.getHandle('recflow-fleet-lock-nightly'),
      'fleetLockWorkflow',
      'one-holder',
    );
  });
});
