import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { type RecflowError } from '../../../lib/errors';
import { selectBackend } from '../../../lib/train/backend';

describe('selectBackend', () => {
  it('skips the tfjs-node alias and absent tfjs-node-gpu, picks wasm with our kernel, and says why', async () => {
    const choice = await selectBackend(undefined);
    // On this machine: no @tensorflow/tfjs-node-gpu; @tensorflow/tfjs-node is an alias of plain tfjs.
    const { name } = require('@tensorflow/tfjs-node/package.json') as { name: string };
    assert.equal(name, '@tensorflow/tfjs', 'this test expects the danfojs alias, not the native binding');
    assert.equal(choice.backend, 'wasm');
    assert.equal(choice.gpu, false);
    assert.equal(tf.getBackend(), 'wasm');
    assert.match(choice.reason, /tfjs-node-gpu is not installed/);
    assert.match(choice.reason, /tfjs-node is an alias of @tensorflow\/tfjs, not the native binding/);
    assert.match(choice.reason, /UnsortedSegmentSum/);
    assert.ok(tf.getKernel('UnsortedSegmentSum', 'wasm'), 'our kernel is registered for wasm');
    // The same choice again, without re-initialising.
    assert.equal(await selectBackend(undefined), choice);
  });

  it('honours a forced backend and rejects an unknown or unavailable one', async () => {
    assert.equal((await selectBackend('cpu')).backend, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    await assert.rejects(selectBackend('tpu'), (e: RecflowError) => e.type === 'InvalidInput' && /tpu/.test(e.message));
    await assert.rejects(
      selectBackend('tensorflow'),
      (e: RecflowError) => e.type === 'InvalidInput' && /alias/.test(e.message),
    );
  });
});
