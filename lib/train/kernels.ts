/**
 * recflow's kernels for the wasm and cpu backends: plain JS loops over the backends' own memory (the wasm heap, the
 * cpu backend's typed arrays), registered by {@link useFastKernels} (lib/train/backend.ts does it). The native
 * `tensorflow` backend is never touched.
 *
 * - `UnsortedSegmentSum` (the gradient of `Gather`): the stock wasm backend has none (tfjs issue 8082: training an
 *   embedding model fails with "Kernel 'UnsortedSegmentSum' not registered for backend 'wasm'") and the stock cpu
 *   kernel loops over every table row per call. This one is an O(rows x dim) scatter-add.
 * - `GatherV2` (axis 0, no batch dims) and `Transpose` (float32/int32, rank <= 4) replace slow generic stock
 *   kernels: on tfjs wasm 4.22 a gather of 1024 rows of 32 floats takes about 1.3 ms and a 1024x57 transpose about
 *   0.8 ms, ten times these loops (bench/train.ts `ops`). Other cases go to the stock kernel.
 * - `RecflowEmbeddingConcat` / `RecflowEmbeddingConcatGrad` ({@link EMBEDDING_CONCAT}): the forward and gradient of
 *   lib/train/ops.ts `embeddingConcat` in one kernel each.
 * - `RecflowAdam` ({@link ADAM_UPDATE}): one Adam step of one variable (value, first and second moment) in one pass,
 *   instead of a dozen elementwise kernels (lib/train/optimizer.ts).
 */
import * as tf from '@tensorflow/tfjs';

/** Kernel name of `embeddingConcat`'s forward. */
export const EMBEDDING_CONCAT = 'RecflowEmbeddingConcat';
/** Kernel name of `embeddingConcat`'s gradient (one output per table). */
export const EMBEDDING_CONCAT_GRAD = 'RecflowEmbeddingConcatGrad';
/** Kernel name of the fused Adam update. */
export const ADAM_UPDATE = 'RecflowAdam';

type Values = Float32Array | Int32Array | Uint8Array;

interface WasmLike {
  typedArrayFromHeap(info: tf.TensorInfo): Values;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}
interface CpuLike {
  data: { get(dataId: tf.DataId): { values?: Values } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Values): tf.TensorInfo;
}

function isWasm(b: unknown): b is WasmLike {
  return typeof (b as WasmLike).typedArrayFromHeap === 'function';
}

/** The live storage of a tensor (no copy). On wasm, call only after the kernel's outputs are allocated. */
function view(b: unknown, t: tf.TensorInfo): Values {
  if (isWasm(b)) return b.typedArrayFromHeap(t);
  const v = (b as CpuLike).data.get(t.dataId).values;
  if (!v) throw new Error(`recflow kernel: tensor without values on backend`);
  return v;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, c) => a * c, 1);
}

/**
 * Allocate outputs, then return their writable views. wasm: the heap may grow while allocating, which detaches
 * earlier views: take every view (inputs too) after this call.
 */
function alloc(
  b: unknown,
  specs: Array<{ shape: number[]; dtype: tf.DataType }>,
): { infos: tf.TensorInfo[]; views: Values[] } {
  if (isWasm(b)) {
    const infos = specs.map((s) => b.makeOutput(s.shape, s.dtype));
    return { infos, views: infos.map((i) => b.typedArrayFromHeap(i)) };
  }
  const views = specs.map((s) =>
    s.dtype === 'int32' ? new Int32Array(sizeOf(s.shape)) : new Float32Array(sizeOf(s.shape)),
  );
  const infos = specs.map((s, i) => (b as CpuLike).makeTensorInfo(s.shape, s.dtype, views[i]));
  return { infos, views };
}

/** Scatter-add `x` (rows x inner) into `numSegments x inner` by `segmentIds` (ids outside the range are dropped). */
export function segmentSumReference(
  x: Float32Array,
  segmentIds: Int32Array,
  numSegments: number,
  inner: number,
): Float32Array {
  return segmentSumInto(new Float32Array(numSegments * inner), x, segmentIds, numSegments, inner);
}

function segmentSumInto(
  out: Float32Array,
  x: Float32Array,
  segmentIds: ArrayLike<number>,
  numSegments: number,
  inner: number,
): Float32Array {
  out.fill(0);
  const rows = segmentIds.length;
  for (let r = 0; r < rows; r++) {
    const s = segmentIds[r]!;
    if (s < 0 || s >= numSegments) continue;
    const src = r * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] = out[dst + j]! + x[src + j]!;
  }
  return out;
}

const fastSegmentSum: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as unknown as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
  const inner = sizeOf(x.shape.slice(1));
  const { infos, views } = alloc(backend, [{ shape: [numSegments, ...x.shape.slice(1)], dtype: 'float32' }]);
  segmentSumInto(
    views[0] as Float32Array,
    view(backend, x) as Float32Array,
    view(backend, segmentIds),
    numSegments,
    inner,
  );
  return infos[0]!;
};

const stock = new Map<string, tf.KernelConfig | undefined>();

function stockKernel(name: string, backendName: string): tf.KernelConfig | undefined {
  const key = `${name}/${backendName}`;
  if (!stock.has(key)) stock.set(key, tf.getKernel(name, backendName));
  return stock.get(key);
}

/** Call the stock kernel this one replaced (for the cases the fast path does not handle). */
function delegate(name: string, args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const backendName = tf.getBackend();
  const k = stockKernel(name, backendName);
  if (!k) throw new Error(`no stock ${name} kernel for backend ${backendName}`);
  return k.kernelFunc(args);
}

const fastGather: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const { x, indices } = inputs as unknown as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
  if (
    (axis !== 0 && axis !== -x.shape.length) ||
    batchDims ||
    (x.dtype !== 'float32' && x.dtype !== 'int32') ||
    indices.dtype !== 'int32'
  )
    return delegate('GatherV2', args);
  const rows = x.shape[0] ?? 0;
  const inner = sizeOf(x.shape.slice(1));
  const { infos, views } = alloc(backend, [{ shape: [...indices.shape, ...x.shape.slice(1)], dtype: x.dtype }]);
  const out = views[0]!;
  const xv = view(backend, x);
  const ids = view(backend, indices);
  const n = ids.length;
  for (let i = 0; i < n; i++) {
    const r = ids[i]!;
    if (r < 0 || r >= rows) {
      (backend as tf.KernelBackend).disposeData(infos[0]!.dataId);
      throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
    }
    const src = r * inner;
    const dst = i * inner;
    if (inner === 1) out[dst] = xv[src]!;
    else for (let j = 0; j < inner; j++) out[dst + j] = xv[src + j]!;
  }
  return infos[0]!;
};

/** Drop size-1 axes (they do not move data), as the stock wasm kernel does. */
function squeezePerm(shape: number[], perm: number[]): { shape: number[]; perm: number[] } {
  const keep = shape.map((d) => d !== 1);
  const newIndex: number[] = [];
  let k = 0;
  for (let i = 0; i < shape.length; i++) newIndex.push(keep[i] ? k++ : -1);
  return {
    shape: shape.filter((d) => d !== 1),
    perm: perm.filter((p) => keep[p]).map((p) => newIndex[p]!),
  };
}

/** `count` row-major `rows x cols` float32 matrices, each transposed. */
function transposeMatrices(x: Float32Array, out: Float32Array, count: number, rows: number, cols: number): void {
  const size = rows * cols;
  for (let m = 0; m < count; m++) {
    const base = m * size;
    for (let c = 0; c < cols; c++) {
      const dst = base + c * rows;
      let src = base + c;
      for (let r = 0; r < rows; r++, src += cols) out[dst + r] = x[src]!;
    }
  }
}

const fastTranspose: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as unknown as { x: tf.TensorInfo };
  const permAttr = (attrs as unknown as { perm: number[] }).perm;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') return delegate('Transpose', args);
  const outShape = permAttr.map((p) => x.shape[p] ?? 1);
  const { shape, perm } = squeezePerm(x.shape, permAttr);
  if (shape.length > 4) return delegate('Transpose', args);
  // Pad to rank 4 with leading unit axes.
  while (shape.length < 4) {
    shape.unshift(1);
    for (let i = 0; i < perm.length; i++) perm[i] = perm[i]! + 1;
    perm.unshift(0);
  }
  const { infos, views } = alloc(backend, [{ shape: outShape, dtype: x.dtype }]);
  const out = views[0]!;
  const xv = view(backend, x);
  if (perm[0] === 0 && perm[1] === 1 && perm[2] === 3 && perm[3] === 2 && x.dtype === 'float32') {
    // The common case (a matrix, or a batch of them, with the last two axes swapped), monomorphic on float32.
    transposeMatrices(xv as Float32Array, out as Float32Array, shape[0]! * shape[1]!, shape[2]!, shape[3]!);
    return infos[0]!;
  }
  const inStrides = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  const [d0, d1, d2, d3] = perm.map((p) => shape[p]!) as [number, number, number, number];
  const [s0, s1, s2, s3] = perm.map((p) => inStrides[p]!) as [number, number, number, number];
  let o = 0;
  for (let a = 0; a < d0; a++)
    for (let b = 0; b < d1; b++)
      for (let c = 0; c < d2; c++) {
        let src = a * s0 + b * s1 + c * s2;
        for (let d = 0; d < d3; d++, src += s3) out[o++] = xv[src]!;
      }
  return infos[0]!;
};

interface Block {
  rows: number;
  dim: number;
  bag: boolean;
}

const embeddingConcatKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { blocks, denseDim } = attrs as unknown as { blocks: Block[]; denseDim: number };
  const ins = inputs as unknown as Record<string, tf.TensorInfo>;
  const n = ins.ids0!.shape[0] ?? 0;
  const width = blocks.reduce((a, b) => a + b.dim, 0) + denseDim;
  const { infos, views } = alloc(backend, [{ shape: [n, width], dtype: 'float32' }]);
  const out = views[0] as Float32Array;
  let col = 0;
  blocks.forEach((blk, j) => {
    const table = view(backend, ins[`table${j}`]!) as Float32Array;
    const idInfo = ins[`ids${j}`]!;
    const ids = view(backend, idInfo);
    const d = blk.dim;
    if (!blk.bag) {
      for (let i = 0; i < n; i++) {
        const r = ids[i]!;
        if (r < 0 || r >= blk.rows) throw new Error(`embeddingConcat: lookup ${j} id ${r} not in [0, ${blk.rows - 1}]`);
        const src = r * d;
        const dst = i * width + col;
        for (let c = 0; c < d; c++) out[dst + c] = table[src + c]!;
      }
    } else {
      const k = idInfo.shape[1] ?? 1;
      const w = view(backend, ins[`weights${j}`]!) as Float32Array;
      for (let i = 0; i < n; i++) {
        const dst = i * width + col;
        for (let c = 0; c < d; c++) out[dst + c] = 0;
        for (let t = 0; t < k; t++) {
          const wt = w[i * k + t]!;
          if (wt === 0) continue;
          const r = ids[i * k + t]!;
          if (r < 0 || r >= blk.rows)
            throw new Error(`embeddingConcat: lookup ${j} id ${r} not in [0, ${blk.rows - 1}]`);
          const src = r * d;
          for (let c = 0; c < d; c++) out[dst + c] = out[dst + c]! + wt * table[src + c]!;
        }
      }
    }
    col += d;
  });
  if (denseDim > 0) {
    const dv = view(backend, ins.dense!) as Float32Array;
    for (let i = 0; i < n; i++) for (let c = 0; c < denseDim; c++) out[i * width + col + c] = dv[i * denseDim + c]!;
  }
  return infos[0]!;
};

const embeddingConcatGradKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { blocks } = attrs as unknown as { blocks: Block[] };
  const ins = inputs as unknown as Record<string, tf.TensorInfo>;
  const dyInfo = ins.dy!;
  const [n = 0, width = 0] = dyInfo.shape;
  const { infos, views } = alloc(
    backend,
    blocks.map((b) => ({ shape: [b.rows, b.dim], dtype: 'float32' as const })),
  );
  const dy = view(backend, dyInfo) as Float32Array;
  let col = 0;
  blocks.forEach((blk, j) => {
    const g = views[j] as Float32Array;
    g.fill(0);
    const idInfo = ins[`ids${j}`]!;
    const ids = view(backend, idInfo);
    const d = blk.dim;
    if (!blk.bag) {
      for (let i = 0; i < n; i++) {
        const dst = ids[i]! * d;
        const src = i * width + col;
        for (let c = 0; c < d; c++) g[dst + c] = g[dst + c]! + dy[src + c]!;
      }
    } else {
      const k = idInfo.shape[1] ?? 1;
      const w = view(backend, ins[`weights${j}`]!) as Float32Array;
      for (let i = 0; i < n; i++) {
        const src = i * width + col;
        for (let t = 0; t < k; t++) {
          const wt = w[i * k + t]!;
          if (wt === 0) continue;
          const dst = ids[i * k + t]! * d;
          for (let c = 0; c < d; c++) g[dst + c] = g[dst + c]! + wt * dy[src + c]!;
        }
      }
    }
    col += d;
  });
  return infos;
};

/** Attributes of {@link ADAM_UPDATE}: `c1 = 1 - beta1^t`, `c2 = 1 - beta2^t` (bias corrections at step t). */
export interface AdamAttrs {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  c1: number;
  c2: number;
}

/**
 * Adam (Kingma and Ba; tfjs's `AdamOptimizer` and PyTorch's `Adam` formula):
 * `m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; x -= lr (m / c1) / (sqrt(v / c2) + eps)`.
 * Inputs `x, m, v, g`; outputs the new `[x, m, v]`.
 */
const adamKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, m, v, g } = inputs as unknown as Record<'x' | 'm' | 'v' | 'g', tf.TensorInfo>;
  const { learningRate, beta1, beta2, epsilon, c1, c2 } = attrs as unknown as AdamAttrs;
  const spec = { shape: x.shape, dtype: 'float32' as const };
  const { infos, views } = alloc(backend, [spec, spec, spec]);
  const [xo, mo, vo] = views as [Float32Array, Float32Array, Float32Array];
  const xi = view(backend, x) as Float32Array;
  const mi = view(backend, m) as Float32Array;
  const vi = view(backend, v) as Float32Array;
  const gi = view(backend, g) as Float32Array;
  const a1 = 1 - beta1;
  const a2 = 1 - beta2;
  const step = learningRate / c1;
  const rc2 = 1 / c2;
  const n = xi.length;
  for (let i = 0; i < n; i++) {
    const gr = gi[i]!;
    const m1 = beta1 * mi[i]! + a1 * gr;
    const v1 = beta2 * vi[i]! + a2 * gr * gr;
    mo[i] = m1;
    vo[i] = v1;
    xo[i] = xi[i]! - (step * m1) / (Math.sqrt(v1 * rc2) + epsilon);
  }
  return infos;
};

const KERNELS: Array<[string, tf.KernelFunc, boolean]> = [
  // [name, kernel, replaces a stock kernel]
  ['UnsortedSegmentSum', fastSegmentSum, true],
  ['GatherV2', fastGather, true],
  ['Transpose', fastTranspose, true],
  [EMBEDDING_CONCAT, embeddingConcatKernel, false],
  [EMBEDDING_CONCAT_GRAD, embeddingConcatGradKernel, false],
  [ADAM_UPDATE, adamKernel, false],
];

const active = new Set<string>();

/** Whether recflow's kernel `name` is registered (and on) for `backendName`. */
export function hasFastKernel(name: string, backendName: string): boolean {
  return active.has(`${name}/${backendName}`);
}

function setKernel(name: string, backendName: 'cpu' | 'wasm', kernelFunc: tf.KernelFunc | null): void {
  stockKernel(name, backendName);
  if (tf.getKernel(name, backendName)) tf.unregisterKernel(name, backendName);
  if (kernelFunc) {
    // Keep the stock kernel's set-up: other stock kernels call its implementation directly (wasm Sum transposes).
    const setupFunc = stockKernel(name, backendName)?.setupFunc;
    tf.registerKernel({ kernelName: name, backendName, kernelFunc, ...(setupFunc ? { setupFunc } : {}) });
    active.add(`${name}/${backendName}`);
  } else {
    active.delete(`${name}/${backendName}`);
    const original = stockKernel(name, backendName);
    if (original) tf.registerKernel(original);
  }
}

/**
 * Register (or, with `on = false`, restore the stock) `UnsortedSegmentSum` kernel for a backend.
 * Only `cpu` and `wasm` are touched; the native `tensorflow` backend has its own.
 */
export function useFastSegmentSum(backendName: 'cpu' | 'wasm', on = true): void {
  setKernel('UnsortedSegmentSum', backendName, on ? fastSegmentSum : null);
}

/**
 * Register every recflow kernel for `cpu` or `wasm` (or, with `on = false`, restore the stock kernels and drop
 * recflow's own: the ops then take their stock paths). `UnsortedSegmentSum` is left registered either way unless
 * {@link useFastSegmentSum} says otherwise: without it wasm cannot train an embedding model.
 */
export function useFastKernels(backendName: 'cpu' | 'wasm', on = true): void {
  for (const [name, fn] of KERNELS) {
    if (name === 'UnsortedSegmentSum') {
      if (on) setKernel(name, backendName, fn);
      continue;
    }
    setKernel(name, backendName, on ? fn : null);
  }
}
