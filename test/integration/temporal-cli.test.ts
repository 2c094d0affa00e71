/**
 * The README's raw Temporal CLI examples, run verbatim (plus `--address`) with the real `temporal` binary against the
 * real dev server and real activities: start, query, the approve Update, the reject signal twin, abort.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createCpuActivities, createGpuActivities } from '../../activities';
import { defaultDeps } from '../../activities/deps';
import { loadConfig } from '../../lib/config';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import { findTemporalBinaries } from '../../lib/temporal/binaries';
import type { LifecycleResult, LifecycleStatus } from '../../lib/lifecycle/types';
import { maybeRecordHistory } from '../helpers/histories';
import { devServerEnv, tempHome, testWorkflowBundle } from '../helpers/temporal';
import { activityInterceptors } from '../../activities/interceptors';

const run = promisify(execFile);

/** The `temporal workflow ...` lines of the README, in order, split into argv like a POSIX shell would. */
function readmeCommands(): string[][] {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  return readme
    .split('\n')
    .filter((l) => l.startsWith('temporal workflow '))
    .map((line) => {
      const argv: string[] = [];
      const re = /'([^']*)'|(\S+)/g;
      for (let m = re.exec(line); m; m = re.exec(line)) argv.push(m[1] ?? m[2]!);
      return argv.slice(1);
    });
}

describe('README Temporal CLI examples, with the real temporal binary', () => {
  let env: TestWorkflowEnvironment;
  let cpu: Worker;
  let gpu: Worker;
  let running: Promise<unknown>;
  const cli = findTemporalBinaries().cli?.path;

  before(async () => {
    env = await devServerEnv();
    const deps = defaultDeps(loadConfig({ RECFLOW_HOME: tempHome(), RECFLOW_LOG_LEVEL: 'warn' }));
    cpu = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: CPU_TASK_QUEUE,
      activities: createCpuActivities(deps),
      workflowBundle: await testWorkflowBundle(),
    });
    gpu = await Worker.create({
      interceptors: { activity: activityInterceptors },
      connection: env.nativeConnection,
      taskQueue: GPU_TASK_QUEUE,
      activities: createGpuActivities(deps),
    });
    running = Promise.all([cpu.run(), gpu.run()]);
  });
  after(async () => {
    cpu?.shutdown();
    gpu?.shutdown();
    await running?.catch(() => undefined);
    await env?.teardown();
  });

  async function temporal(argv: string[]): Promise<string> {
    assert.ok(cli, 'the temporal CLI is installed by npm run setup');
    const { stdout } = await run(cli, [...argv, '--address', env.address, '-o', 'json'], { timeout: 300_000 });
    return stdout;
  }

  async function status(workflowId: string): Promise<LifecycleStatus> {
    return env.client.workflow.getHandle(workflowId).query<LifecycleStatus>('status');
  }

  async function waitForStage(workflowId: string, stage: string): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const s = await status(workflowId);
      if (s.stage === stage) return;
      assert.notEqual(s.stage, 'done', `${workflowId} ended (${s.outcome}: ${s.reason}) before ${stage}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.fail(`${workflowId} never reached ${stage}`);
  }

  it('runs every README example verbatim', async () => {
    const cmds = readmeCommands();
    assert.ok(cmds.length >= 10, `expected the README examples, found ${cmds.length}`);
    const outcomes = new Map<string, LifecycleResult>();
    for (const argv of cmds) {
      const id = argv[argv.indexOf('--workflow-id') + 1]!;
      const verb = argv.slice(1, argv[1] === 'update' ? 3 : 2).join(' ');
      // A person waits for the review to open before approving; the query example needs a started run.
      if (verb === 'update execute') await waitForStage(id, 'awaiting_approval');
      const out = await temporal(argv);
      if (verb === 'query') {
        const parsed = JSON.parse(out) as { queryResult: LifecycleStatus[] };
        assert.equal(parsed.queryResult[0]!.workflowId, id);
      }
      if (verb === 'update execute') assert.match(out, /approved/);
      if (verb === 'result') {
        const parsed = JSON.parse(out) as { result: LifecycleResult; status: string };
        assert.equal(parsed.status, 'COMPLETED', out);
        outcomes.set(id, parsed.result);
      }
    }
    const one = outcomes.get('recflow-lifecycle-cli-1')!;
    assert.equal(one.outcome, 'approved', one.reason);
    assert.equal(one.status.approval.reviewer, 'bob');
    assert.equal(one.status.approval.via, 'update');
    const two = outcomes.get('recflow-lifecycle-cli-2')!;
    assert.equal(two.outcome, 'rejected', two.reason);
    assert.equal(two.status.approval.via, 'signal');
    assert.match(two.reason, /carol: not this week/);
    const three = outcomes.get('recflow-lifecycle-cli-3')!;
    assert.equal(three.outcome, 'aborted', three.reason);
    assert.match(three.reason, /oncall/);
    // Each run registered what it trained, with the review in the registry.
    assert.ok(one.version && two.version);
    await maybeRecordHistory(
      env.client.workflow.getHandle('recflow-lifecycle-cli-1'),
      'modelLifecycleWorkflow',
      'cli-approved',
    );
  });

  it('refuses a table of malformed payloads sent with the CLI, stays queryable, then takes a valid approval', async () => {
    const id = 'recflow-lifecycle-cli-malformed';
    const input = {
      requestedBy: 'alice',
      kind: 'two-tower',
      data: { kind: 'synthetic', users: 300, items: 150, events: 8000 },
      train: { config: { epochs: 1 } },
      gates: {}, // the messages are under test, not the model
      approval: { reviewers: ['bob'] },
      rollout: { skip: true },
    };
    await temporal([
      'workflow',
      'start',
      '--type',
      'modelLifecycleWorkflow',
      '--task-queue',
      CPU_TASK_QUEUE,
      '--workflow-id',
      id,
      '--input',
      JSON.stringify(input),
    ]);
    // Before the review opens (they wait for it) ...
    await temporal([
      'workflow',
      'signal',
      '--workflow-id',
      id,
      '--name',
      'rejectSignal',
      '--input',
      '{"reviewer":"bob","comment":5}',
    ]);
    await waitForStage(id, 'awaiting_approval');
    // ... and while it is open: signals are listed as refused, updates refused with the reason.
    const malformed = [
      '{"reviewer":"bob","comment":5}',
      '{"reviewer":"bob","comment":{"x":1}}',
      '{"reviewer":42}',
      '"bob"',
      'null',
      '[1,2]',
      '{}',
    ];
    for (const payload of malformed) {
      await temporal(['workflow', 'signal', '--workflow-id', id, '--name', 'approveSignal', '--input', payload]);
      await assert.rejects(
        temporal(['workflow', 'update', 'execute', '--workflow-id', id, '--name', 'approve', '--input', payload]),
        (e: Error & { stderr?: string }) => /must be|is required|an object/.test(`${e.message}${e.stderr ?? ''}`),
      );
    }
    await temporal(['workflow', 'signal', '--workflow-id', id, '--name', 'abort', '--input', '{"actor":7}']);
    const s = await status(id); // the run is still queryable: no workflow task failed
    assert.equal(s.stage, 'awaiting_approval');
    assert.equal(s.approval.state, 'waiting');
    assert.ok(s.approval.refused.length >= malformed.length + 2, JSON.stringify(s.approval.refused));
    assert.match(s.approval.refused[0]!.reason, /comment must be a string, got number 5/);
    const ok = await temporal([
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      id,
      '--name',
      'approve',
      '--input',
      '{"reviewer":"bob","comment":"fine"}',
    ]);
    assert.match(ok, /approved/);
    const result = JSON.parse(await temporal(['workflow', 'result', '--workflow-id', id])) as {
      result: LifecycleResult;
    };
    assert.equal(result.result.outcome, 'approved', result.result.reason);
    assert.equal(result.result.status.approval.comment, 'fine');
  });
});
