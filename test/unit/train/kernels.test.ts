import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../lib/train/backend';
import { segmentSumReference, useFastKernels, useFastSegmentSum } from '../../../lib/train/kernels';
import { FUSED_MAX_SIZE, FusedAdam } from '../../../lib/train/optimizer';

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

/** Run `f` with the stock kernels, then with recflow's, and return both results as arrays. */
function stockAndOurs(backend: 'cpu' | 'wasm', f: () => tf.Tensor): [number[], number[]] {
  useFastKernels(backend, false);
  const stock = tf.tidy(() => Array.from(f().dataSync()));
  useFastKernels(backend, true);
  const ours = tf.tidy(() => Array.from(f().dataSync()));
  return [stock, ours];
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`recflow GatherV2, Transpose and Adam kernels on ${backend}`, () => {
    it('Transpose equals the stock kernel for every permutation of rank 2-4 (float32 and int32, unit axes)', async () => {
      await selectBackend(backend);
      const perms: Record<number, number[][]> = {
        2: [
          [1, 0],
          [0, 1],
        ],
        3: [
          [0, 2, 1],
          [2, 0, 1],
          [1, 2, 0],
          [2, 1, 0],
        ],
        4: [
          [0, 1, 3, 2],
          [0, 2, 1, 3],
          [3, 2, 1, 0],
          [1, 3, 0, 2],
        ],
      };
      for (const shape of [
        [5, 7],
        [3, 1, 6],
        [2, 3, 4, 5],
        [1, 4, 1, 3],
      ]) {
        for (const perm of perms[shape.length] ?? []) {
          for (const dtype of ['float32', 'int32'] as const) {
            const n = shape.reduce((a, b) => a * b, 1);
            const x = tf.tensor(
              Array.from({ length: n }, (_, i) => i * 3 - 7),
              shape,
              dtype,
            );
            const [stock, ours] = stockAndOurs(backend, () => tf.transpose(x, perm));
            assert.deepEqual(ours, stock, `shape ${shape.join('x')} perm ${perm.join(',')} ${dtype}`);
            x.dispose();
          }
        }
      }
    });

    it('GatherV2 equals the stock kernel (rows, 2-D ids, int32 tables, other axes) and rejects bad ids', async () => {
      await selectBackend(backend);
      const t = tf.tensor2d(
        Array.from({ length: 40 }, (_, i) => i / 4),
        [10, 4],
      );
      const ti = tf.tensor1d([5, 6, 7, 8], 'int32');
      const ids = tf.tensor1d([3, 0, 9, 3], 'int32');
      const ids2 = tf.tensor2d([1, 2, 2, 9, 0, 0], [3, 2], 'int32');
      for (const [name, f] of [
        ['rows', () => tf.gather(t, ids)],
        ['2-D ids', () => tf.gather(t, ids2)],
        ['int32 vector', () => tf.gather(ti, tf.tensor1d([3, 3, 0], 'int32'))],
        ['axis 1', () => tf.gather(t, tf.tensor1d([3, 1], 'int32'), 1)],
      ] as const) {
        const [stock, ours] = stockAndOurs(backend, f);
        assert.deepEqual(ours, stock, name);
      }
      assert.throws(() => tf.gather(t, tf.tensor1d([2, 10], 'int32')), /index value 10 is not in \[0, 9\]/);
      assert.throws(() => tf.gather(t, tf.tensor1d([-1], 'int32')), /index value -1/);
    });

    it('FusedAdam takes the same steps as tf.train.adam (small variables fused, large ones stock)', async () => {
      await selectBackend(backend);
      const init = [
        tf.randomNormal([7, 3], 0, 1, 'float32', 5),
        tf.randomNormal([FUSED_MAX_SIZE + 10], 0, 1, 'float32', 6),
      ];
      const target = init.map((t, i) => tf.randomNormal(t.shape, 0, 1, 'float32', 9 + i));
      const run = (opt: tf.Optimizer): number[][] => {
        const vars = init.map((t) => tf.variable(t.clone()));
        for (let s = 0; s < 4; s++)
          opt.minimize(
            () => tf.addN(vars.map((v, i) => tf.sum(tf.square(tf.sub(v, target[i]!))))) as tf.Scalar,
            false,
            vars,
          );
        const out = vars.map((v) => Array.from(v.dataSync()));
        tf.dispose(vars);
        opt.dispose();
        return out;
      };
      const want = run(tf.train.adam(0.05));
      const got = run(new FusedAdam(0.05));
      want.forEach((w, k) => {
        const maxDiff = Math.max(...w.map((x, i) => Math.abs(x - (got[k]![i] ?? NaN))));
        assert.ok(maxDiff < 1e-5, `variable ${k}: max |delta| ${maxDiff}`);
        assert.ok(
          Math.max(...w.map((x, i) => Math.abs(x - (init[k]!.dataSync()[i] ?? 0)))) > 0.1,
          'the steps moved it',
        );
      });
    });
  });
}
