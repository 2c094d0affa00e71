/**
 * `recflow run --wait` as a person runs it (a child process of bin/recflow.js against a real dev server and recflow
 * workers): the terminal shows each step as it ends and the outcome, with no JSON log lines and no stack trace; a
 * relative `--input` and `--data` are the caller's. A bad data folder fails before anything starts (exit 2).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { devServerEnv, tempHome } from '../helpers/temporal';
import { withRecflowWorkers } from '../helpers/workers';

const BIN = join(__dirname, '..', '..', 'bin', 'recflow.js');

function recflow(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });
}

describe('recflow run --wait on the real dev server', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await devServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  it('prints each step as it ends and the outcome, no JSON and no stack; exit 0', async () => {
    const home = tempHome('recflow-cli-run-');
    const caller = tempHome('recflow-caller-');
    // The gates are off: the console is under test, not the model.
    writeFileSync(join(caller, 'run.json'), JSON.stringify({ gates: {}, approval: { autoApprove: true } }));
    const cli = { TEMPORAL_ADDRESS: env.address, RECFLOW_HOME: home, NO_COLOR: '1' };
    const { code, out } = await withRecflowWorkers(env, home, () =>
      recflow(
        [
          'run',
          '--input',
          'run.json',
          '--kind',
          'ease',
          '--users',
          '300',
          '--items',
          '150',
          '--events',
          '8000',
          '--skip-rollout',
          '--requested-by',
          'alice',
          '--wait',
        ],
        caller,
        cli,
      ),
    );
    assert.equal(code, 0, out);
    for (const step of [
      'generateShop',
      'prepareDataset',
      'trainModel',
      'exportModel',
      'evaluateModel',
      'registerModel',
    ])
      assert.match(out, new RegExp(`ok {2}${step}`), `${step} in:\n${out}`);
    assert.match(out, /stage: done {2}outcome: approved/);
    assert.match(out, /ease on typescript/);
    assert.doesNotMatch(out, /^\{"level"/m, 'no JSON log line on the terminal');
    assert.doesNotMatch(out, /\n\s+at .*\.ts:\d+/, 'no stack trace');
  });

  it('a data folder of neither format fails before the run starts, naming it (exit 2)', async () => {
    const caller = tempHome('recflow-caller-');
    mkdirSync(join(caller, 'exports'));
    writeFileSync(join(caller, 'exports', 'notes.txt'), 'nothing here');
    const { code, out } = await recflow(['run', '--data', 'exports', '--wait'], caller, {
      TEMPORAL_ADDRESS: env.address,
      RECFLOW_HOME: tempHome('recflow-cli-run-'),
    });
    assert.equal(code, 2, out);
    assert.match(out, /exports: neither recflow exports \(events\.csv, items\.csv\) nor MovieLens/);
    assert.doesNotMatch(out, /started /);
    assert.doesNotMatch(out, /\n\s+at .*\.ts:\d+/);
  });
});
