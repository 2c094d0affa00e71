import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../lib/train/backend';
import { segmentSumReference, useFastSegmentSum } from '../../../lib/train/kernels';

function randomCase(seed: number, rows: number, segments: number, inner: number) {
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const x = Float32Array.from({ length: rows * inner }, () => next() * 2 - 1);
  const ids = Int32Array.from({ length: rows }, () => Math.floor(next() * segments));
  return { x, ids };
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`UnsortedSegmentSum on ${backend}`, () => {
    it('equals a plain JS scatter-add on random data (within 1e-5)', async () => {
      const choice = await selectBackend(backend);
      assert.equal(choice.backend, backend);
      for (const [rows, segments, inner] of [
        [500, 37, 8],
        [64, 1000, 3],
        [1, 5, 1],
      ] as const) {
        const { x, ids } = randomCase(rows * 7 + segments, rows, segments, inner);
        const want = segmentSumReference(x, ids, segments, inner);
        const got = tf.tidy(() =>
          tf.unsortedSegmentSum(tf.tensor2d(x, [rows, inner]), tf.tensor1d(ids, 'int32'), segments).dataSync(),
        );
        assert.equal(got.length, segments * inner);
        let maxDiff = 0;
        for (let k = 0; k < want.length; k++) maxDiff = Math.max(maxDiff, Math.abs((got[k] ?? NaN) - (want[k] ?? 0)));
        assert.ok(maxDiff < 1e-5, `max |delta| ${maxDiff}`);
        // Not trivially zero: some segment received a sum.
        assert.ok(want.some((v) => Math.abs(v) > 0.1));
      }
    });

    it('gives the gradient of an embedding lookup (repeated ids accumulate)', async () => {
      await selectBackend(backend);
      const table = tf.variable(tf.randomNormal([50, 4], 0, 1, 'float32', 1));
      const idx = tf.tensor1d([3, 7, 7, 7, 49], 'int32');
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), 2)))(table);
      const data = g.dataSync();
      assert.equal(data[3 * 4], 2);
      assert.equal(data[7 * 4 + 1], 6);
      assert.equal(data[49 * 4 + 3], 2);
      assert.equal(data[0], 0);
      table.dispose();
    });
  });
}

describe('useFastSegmentSum', () => {
  it('restores the stock cpu kernel and registers ours again', async () => {
    await selectBackend('cpu');
    useFastSegmentSum('cpu', false);
    const stock = tf.getKernel('UnsortedSegmentSum', 'cpu');
    useFastSegmentSum('cpu', true);
    const ours = tf.getKernel('UnsortedSegmentSum', 'cpu');
    assert.ok(stock && ours);
    assert.notEqual(stock.kernelFunc, ours.kernelFunc);
    const r = tf.tidy(() =>
      tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3]), tf.tensor1d([0, 0, 2], 'int32'), 3).arraySync(),
    );
    assert.deepEqual(r, [3, 0, 3]);
  });
});
