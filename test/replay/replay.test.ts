/**
 * Replay every recorded history (test/fixtures/histories/<workflowType>-*.json) against today's workflow code: a
 * change that breaks determinism for runs already in flight fails here. Every exported workflow must have at least
 * one recorded history. Record new ones with `RECFLOW_RECORD_HISTORIES=1 npm test` (the integration tests write
 * them) and commit them.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import * as workflows from '../../workflows';
import { testWorkflowBundle } from '../helpers/temporal';

const dir = join(__dirname, '..', 'fixtures', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of recorded histories', () => {
  it('has a recorded history for every workflow', () => {
    const recorded = new Set(files.map((f) => f.split('-')[0]));
    const missing = Object.keys(workflows).filter((name) => !recorded.has(name));
    assert.deepEqual(missing, [], `record a history for: ${missing.join(', ')}`);
  });

  for (const file of files) {
    it(`replays ${file}`, async () => {
      // fromObject, not the SDK's historyFromJSON: with two copies of protobufjs 8 installed (one under
      // @temporalio/common, one under @temporalio/proto) the latter fails with "type must be a Type".
      const json = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { workflowId?: string };
      const history = temporal.api.history.v1.History.fromObject(json);
      await Worker.runReplayHistory({ workflowBundle: await testWorkflowBundle() }, history, json.workflowId ?? file);
    });
  }
});
