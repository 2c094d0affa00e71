import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger, isExpectedNotice, setTerminalSink, shortLine } from '../../lib/log';
import { tempHome } from '../helpers/temporal';

describe('logs: JSON to the file, short lines to the terminal', () => {
  it('a short line has the level, component, message and scalar fields, never a task token', () => {
    const line = shortLine({
      level: 40,
      time: '2026-12-01T10:11:12.000Z',
      component: 'worker',
      msg: 'activity failed',
      taskToken: 'CiQwMWEy'.repeat(30),
      activityType: 'trainModel',
      attempt: 2,
    });
    assert.match(line, /^10:11:12 WARN worker: activity failed {2}\(activityType=trainModel attempt=2\)$/);
    assert.ok(!line.includes('CiQwMWEy'));
  });

  it('pretty mode: every record in the JSON file; warnings on the terminal except expected worker notices', async () => {
    const logFile = join(tempHome('recflow-log-'), 'logs', 'recflow.jsonl');
    const shown: string[] = [];
    setTerminalSink((l) => shown.push(l));
    try {
      const log = createLogger('demo', { logLevel: 'info', logFormat: 'pretty', logFile });
      log.info({ step: 'trainModel' }, 'epoch done');
      log.warn({ taskQueue: 'recflow-gpu' }, 'No workflows registered, not polling for workflow tasks');
      log.warn({ taskToken: 'secret-token' }, 'fleet lock held by another run');
      await new Promise<void>((r) => log.flush(() => r()));
      await new Promise((r) => setTimeout(r, 100));
      const records = readFileSync(logFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(
        records.map((r) => r.msg),
        ['epoch done', 'No workflows registered, not polling for workflow tasks', 'fleet lock held by another run'],
      );
      assert.ok(records.every((r) => r.component === 'demo'));
      assert.equal(shown.length, 1, shown.join('\n'));
      assert.match(shown[0]!, /WARN demo: fleet lock held by another run/);
      assert.ok(!shown[0]!.includes('secret-token'));
    } finally {
      setTerminalSink((l) => process.stderr.write(`${l}\n`));
    }
  });

  it('knows the expected notices only', () => {
    assert.ok(isExpectedNotice({ msg: 'No activities registered, not polling for activity tasks' }));
    assert.ok(isExpectedNotice({ msg: 'Query not found when attempting to respond to it', sdkComponent: 'core' }));
    assert.ok(!isExpectedNotice({ msg: 'Workflow failed' }));
    assert.ok(!isExpectedNotice({}));
  });
});
