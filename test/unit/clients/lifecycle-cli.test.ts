import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ApplicationFailure, RetryState } from '@temporalio/common';
import { ActivityFailure, WorkflowFailedError } from '@temporalio/client';
import {
  failureLine,
  formatStatus,
  lifecycleInputFromOptions,
  resolveDataDir,
} from '../../../clients/commands/lifecycle';
import { RecflowError } from '../../../lib/errors';
import type { LifecycleStatus } from '../../../lib/lifecycle/types';
import { tempHome } from '../../helpers/temporal';

describe('recflow run: the data folder is the caller’s, checked before the run starts', () => {
  const caller = tempHome('recflow-cli-');
  mkdirSync(join(caller, 'shop'));
  writeFileSync(join(caller, 'shop', 'events.csv'), 'user_id,item_id,event_type,timestamp\n');
  mkdirSync(join(caller, 'ml'));
  writeFileSync(join(caller, 'ml', 'ratings.csv'), 'userId,movieId,rating,timestamp\n');
  mkdirSync(join(caller, 'empty'));

  it('resolves --data against the caller’s folder (not the worker’s) and detects the format', () => {
    const shop = lifecycleInputFromOptions({ data: 'shop' }, caller);
    assert.deepEqual(shop.data, { kind: 'dir', path: join(caller, 'shop'), format: 'recflow' });
    const ml = lifecycleInputFromOptions({ data: './ml' }, caller);
    assert.deepEqual(ml.data, { kind: 'dir', path: join(caller, 'ml'), format: 'movielens' });
  });

  it('refuses a missing folder, a file, and a folder of neither format, before anything starts', () => {
    const refuses = (fn: () => unknown, re: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof RecflowError && e.type === 'InvalidInput' && re.test(e.message));
    refuses(() => resolveDataDir('nope', caller), /--data nope: .*nope does not exist/);
    refuses(() => resolveDataDir('shop/events.csv', caller), /is not a folder of CSV exports/);
    refuses(() => lifecycleInputFromOptions({ data: 'empty' }, caller), /neither recflow exports .* nor MovieLens/);
  });
});

describe('recflow run --wait / status: the root cause, no stack trace', () => {
  it('a failed run prints the innermost failure’s type and message', () => {
    const root = ApplicationFailure.nonRetryable(
      "events.csv row 2, column item_id, value 'SKU-000378': unknown item id",
      'InvalidData',
    );
    const activity = new ActivityFailure(
      'Activity task failed',
      'prepareDataset',
      '1',
      RetryState.NON_RETRYABLE_FAILURE,
      'w1',
      root,
    );
    const err = new WorkflowFailedError('Workflow execution failed', activity, RetryState.NON_RETRYABLE_FAILURE);
    assert.equal(
      failureLine(err),
      "InvalidData: events.csv row 2, column item_id, value 'SKU-000378': unknown item id",
    );
  });

  it('status shows the failed step’s root cause and the run’s error', () => {
    const s = {
      workflowId: 'recflow-lifecycle-x',
      modelName: 'shop-recs',
      kind: 'two-tower',
      requestedBy: 'alice',
      stage: 'done',
      outcome: 'failed',
      reason: 'prepareDataset: unknown item id',
      steps: [
        {
          name: 'prepareDataset',
          stage: 'data',
          state: 'failed',
          startedAt: '',
          error: { type: 'InvalidData', message: 'events.csv row 2: unknown item id', nonRetryable: true },
        },
      ],
      error: {
        type: 'InvalidData',
        message: 'events.csv row 2: unknown item id',
        nonRetryable: true,
        step: 'prepareDataset',
      },
      approval: { state: 'not_requested', refused: [] },
    } as unknown as LifecycleStatus;
    const text = formatStatus(s, ['trainModel: epoch 1/5 [....] 1/10 batches']);
    assert.match(text, /ERR data {5}prepareDataset +InvalidData: events.csv row 2: unknown item id/);
    assert.match(text, /error: InvalidData: events.csv row 2: unknown item id \(in prepareDataset\)/);
    assert.match(text, />> trainModel: epoch 1\/5/);
    assert.doesNotMatch(text, /at .*\.ts:\d+/);
  });
});
