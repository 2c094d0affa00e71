/**
 * int8 quantization in TypeScript, done at export time from the fp32 weights (no graph rewrite needed):
 * - dense layers and the recommend graph's item matrix: int8 weights with per-column scales (symmetric, zero point
 *   0, 7-bit range: see {@link MATMUL_QMAX}), applied as `DynamicQuantizeLinear` (activations to uint8, per tensor) + `MatMulInteger` + `Cast` +
 *   `Mul(a_scale * b_scale)` [+ `Add(bias)`]: the pattern onnxruntime fuses into `DynamicQuantizeMatMul`;
 * - embedding tables and the score graph's item matrix: int8 rows with one float scale per row
 *   (`Gather` int8 -> `Cast` -> `Mul` by the gathered scale). Per-row scales keep small rows accurate where one
 *   scale for the whole table (what onnxruntime's Python `quantize_dynamic` does for Gather) would not.
 */
import { DType, attr, type GraphBuilder } from './builder';

/** An int8 matrix with one scale per row or per column: `value ~= q * scale`. */
export interface QuantizedMatrix {
  rows: number;
  cols: number;
  q: Int8Array;
  scales: Float32Array;
}

/**
 * Largest int8 magnitude of weights fed to `MatMulInteger` (7 bits, like `quantize_dynamic(reduce_range=True)`).
 * On x86 CPUs without VNNI, onnxruntime's u8 x s8 kernel adds pairs of products in int16 (`vpmaddubsw`), which
 * saturates when both the uint8 activation and the int8 weight are near full range (255 * 127 * 2 > 32767); with
 * weights within +-63 it cannot. Measured here (AVX2, no VNNI): full-range weights moved a top-10 probability by 0.3.
 */
export const MATMUL_QMAX = 63;

function scaleOf(maxAbs: number, qmax: number): number {
  return maxAbs > 0 ? maxAbs / qmax : 1;
}

function q8(v: number, scale: number, qmax: number): number {
  const r = Math.round(v / scale);
  return r > qmax ? qmax : r < -qmax ? -qmax : r;
}

/** Symmetric int8 quantization with one scale per row (`scales.length === rows`), values within +-`qmax`. */
export function quantizePerRow(data: Float32Array, rows: number, cols: number, qmax = 127): QuantizedMatrix {
  if (data.length !== rows * cols) throw new Error(`quantizePerRow: ${data.length} values for ${rows}x${cols}`);
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(data[r * cols + c] ?? 0));
    const s = Math.fround(scaleOf(m, qmax));
    scales[r] = s;
    for (let c = 0; c < cols; c++) q[r * cols + c] = q8(data[r * cols + c] ?? 0, s, qmax);
  }
  return { rows, cols, q, scales };
}

/** Symmetric int8 quantization with one scale per column (`scales.length === cols`), values within +-`qmax`. */
export function quantizePerColumn(data: Float32Array, rows: number, cols: number, qmax = 127): QuantizedMatrix {
  if (data.length !== rows * cols) throw new Error(`quantizePerColumn: ${data.length} values for ${rows}x${cols}`);
  const max = new Float64Array(cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) max[c] = Math.max(max[c] ?? 0, Math.abs(data[r * cols + c] ?? 0));
  const scales = Float32Array.from(max, (m) => scaleOf(m, qmax));
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) q[r * cols + c] = q8(data[r * cols + c] ?? 0, scales[c] ?? 1, qmax);
  return { rows, cols, q, scales };
}

/** The float matrix an int8 matrix stands for (for tests and error bounds). */
export function dequantize(m: QuantizedMatrix, perRow: boolean): Float32Array {
  const out = new Float32Array(m.rows * m.cols);
  for (let r = 0; r < m.rows; r++)
    for (let c = 0; c < m.cols; c++)
      out[r * m.cols + c] = (m.q[r * m.cols + c] ?? 0) * ((perRow ? m.scales[r] : m.scales[c]) ?? 1);
  return out;
}

/** Transpose a row-major `rows x cols` float matrix. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c] ?? 0;
  return out;
}

/**
 * Emit a per-row int8 embedding lookup: `Gather(q, idx) -> Cast(float) -> Mul(Gather(scales, idx))`.
 * Output has the shape of `idx` plus the row width.
 */
export function emitInt8Gather(g: GraphBuilder, name: string, table: QuantizedMatrix, idx: string): string {
  const q = g.init(`${name}_q`, [table.rows, table.cols], table.q);
  const s = g.init(`${name}_scale`, [table.rows, 1], table.scales);
  const rows = g.op1('Gather', [q, idx], { axis: attr.int(0) });
  const f = g.op1('Cast', [rows], { to: attr.int(DType.float) });
  const scale = g.op1('Gather', [s, idx], { axis: attr.int(0) });
  return g.op1('Mul', [f, scale]);
}

/**
 * Emit `x [B, in] @ W [in, out] (+ bias)` with W int8 per column, in the dynamic quantization pattern onnxruntime
 * fuses (`DynamicQuantizeLinear`, `MatMulInteger`, `Cast`, `Mul`, `Add`).
 *
 * NOTE: `DynamicQuantizeLinear` takes one scale for the whole tensor, so a row's result depends on the other rows of
 * the batch (who else a micro-batch holds). recflow's exporters use {@link emitInt8MatMulPerRow} instead.
 */
export function emitInt8MatMul(
  g: GraphBuilder,
  name: string,
  x: string,
  w: QuantizedMatrix,
  bias?: Float32Array,
  outName?: string,
): string {
  const wq = g.init(`${name}_wq`, [w.rows, w.cols], w.q);
  const wzp = g.init(`${name}_wzp`, [w.cols], new Int8Array(w.cols));
  const ws = g.init(`${name}_wscale`, [w.cols], w.scales);
  const [xq, xs, xzp] = g.op('DynamicQuantizeLinear', [x], 3) as [string, string, string];
  const mm = g.op1('MatMulInteger', [xq, wq, xzp, wzp]);
  const f = g.op1('Cast', [mm], { to: attr.int(DType.float) });
  const scale = g.op1('Mul', [xs, ws]);
  if (!bias) return g.op1('Mul', [f, scale], {}, outName);
  const y = g.op1('Mul', [f, scale]);
  const b = g.init(`${name}_bias`, [bias.length], bias);
  return g.op1('Add', [y, b], {}, outName);
}

/**
 * Emit `x [B, in] @ W [in, out] (+ bias)` with W int8 per column and the activations quantized per row at run time
 * (symmetric int8, scale = max |x_row| / 127): `ReduceMax(Abs)`, `QuantizeLinear` per axis 0, `MatMulInteger`
 * (int8 x int8), `Cast`, `Mul` by both scales [+ `Add(bias)`]. Each row's result depends on that row only, so an
 * int8 model ranks a user the same alone, in a micro-batch of 64 or in an evaluation batch of 256.
 */
export function emitInt8MatMulPerRow(
  g: GraphBuilder,
  name: string,
  x: string,
  w: QuantizedMatrix,
  bias?: Float32Array,
  outName?: string,
): string {
  const wq = g.init(`${name}_wq`, [w.rows, w.cols], w.q);
  const ws = g.init(`${name}_wscale`, [w.cols], w.scales);
  const absmax = g.op1('ReduceMax', [g.op1('Abs', [x])], { axes: attr.ints([1]), keepdims: attr.int(1) });
  const eps = g.init(`${name}_eps`, [1], Float32Array.of(1e-12));
  const q127 = g.init(`${name}_q127`, [1], Float32Array.of(127));
  const scale = g.op1('Div', [g.op1('Max', [absmax, eps]), q127]); // [B, 1]
  const rowScale = g.op1('Reshape', [scale, g.int64(`${name}_rows`, [-1])]); // [B]
  // QuantizeLinear per axis needs a zero point of the scale's length (int8 zeros, built from the batch).
  const zero = g.init(`${name}_zero`, [], Float32Array.of(0));
  const zp = g.op1('Cast', [g.op1('Mul', [rowScale, zero])], { to: attr.int(DType.int8) });
  const xq = g.op1('QuantizeLinear', [x, rowScale, zp], { axis: attr.int(0) });
  const mm = g.op1('MatMulInteger', [xq, wq]);
  const f = g.op1('Cast', [mm], { to: attr.int(DType.float) });
  const y = g.op1('Mul', [g.op1('Mul', [f, scale]), ws], {}, bias ? undefined : outName);
  if (!bias) return y;
  return g.op1('Add', [y, g.init(`${name}_bias`, [bias.length], bias)], {}, outName);
}
