/**
 * A fast `UnsortedSegmentSum` kernel for the wasm and cpu backends.
 *
 * The gradient of an embedding lookup (`Gather`) is an `UnsortedSegmentSum` of the output gradient into the table's
 * shape. The stock wasm backend has no such kernel (tfjs issue 8082: training an embedding model fails with
 * "Kernel 'UnsortedSegmentSum' not registered for backend 'wasm'"), and the stock cpu kernel loops over every table
 * row for every call (O(numSegments x rows x dim)). This one is a plain O(rows x dim) scatter-add.
 */
import * as tf from '@tensorflow/tfjs';

type Backend = tf.KernelBackend & {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
};

/** Scatter-add `x` (rows x inner) into `numSegments x inner` by `segmentIds` (ids outside the range are dropped). */
export function segmentSumReference(
  x: Float32Array,
  segmentIds: Int32Array,
  numSegments: number,
  inner: number,
): Float32Array {
  const out = new Float32Array(numSegments * inner);
  const rows = segmentIds.length;
  for (let r = 0; r < rows; r++) {
    const s = segmentIds[r] ?? -1;
    if (s < 0 || s >= numSegments) continue;
    const src = r * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] = (out[dst + j] ?? 0) + (x[src + j] ?? 0);
  }
  return out;
}

function makeOutput(backend: tf.KernelBackend, shape: number[], values: Float32Array): tf.TensorInfo {
  const b = backend as unknown as {
    makeTensorInfo?: (shape: number[], dtype: tf.DataType, values: Float32Array) => tf.TensorInfo;
    makeOutput?: (shape: number[], dtype: tf.DataType, offset?: number, values?: Float32Array) => tf.TensorInfo;
  };
  // cpu: makeTensorInfo; wasm: makeOutput(shape, dtype, undefined, values) copies the values into the heap.
  if (b.makeTensorInfo) return b.makeTensorInfo(shape, 'float32', values);
  if (b.makeOutput) return b.makeOutput(shape, 'float32', undefined, values);
  throw new Error('backend can make no output tensor');
}

/** The kernel function, shared by the backends. */
const fastSegmentSum: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as unknown as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
  const b = backend as Backend;
  const inner = x.shape.slice(1).reduce((a, c) => a * c, 1);
  const xv = b.readSync(x.dataId) as Float32Array;
  const rawIds = b.readSync(segmentIds.dataId);
  const ids = rawIds instanceof Int32Array ? rawIds : Int32Array.from(rawIds as ArrayLike<number>);
  const out = segmentSumReference(xv instanceof Float32Array ? xv : Float32Array.from(xv), ids, numSegments, inner);
  return makeOutput(b, [numSegments, ...x.shape.slice(1)], out);
};

const stock = new Map<string, tf.KernelConfig | undefined>();

/**
 * Register (or, with `on = false`, restore the stock) `UnsortedSegmentSum` kernel for a backend.
 * Only `cpu` and `wasm` are touched; the native `tensorflow` backend has its own.
 */
export function useFastSegmentSum(backendName: 'cpu' | 'wasm', on = true): void {
  if (!stock.has(backendName)) stock.set(backendName, tf.getKernel('UnsortedSegmentSum', backendName));
  if (tf.getKernel('UnsortedSegmentSum', backendName)) tf.unregisterKernel('UnsortedSegmentSum', backendName);
  if (on) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName, kernelFunc: fastSegmentSum });
  } else {
    const original = stock.get(backendName);
    if (original) tf.registerKernel(original);
  }
}
