import assert from 'node:assert/strict';
import { test } from 'node:test';
import { levelOf } from '../../../workers/run-worker';

test('a late query answer is logged at debug; other SDK warnings stay warnings', () => {
  assert.equal(levelOf('WARN', 'Query not found when attempting to respond to it'), 'debug');
  assert.equal(levelOf('WARN', 'Activity heartbeat timed out'), 'warn');
  assert.equal(levelOf('ERROR', 'Query not found when attempting to respond to it'), 'error');
  assert.equal(levelOf('INFO', 'Worker state changed'), 'info');
});
