/**
 * int8 quantization in TypeScript, done at export time from the fp32 weights (no graph rewrite needed):
 * - dense layers and the recommend graph's item matrix: int8 weights with per-column scales (symmetric, zero point
 *   0), applied as `DynamicQuantizeLinear` (activations to uint8, per tensor) + `MatMulInteger` + `Cast` +
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

function scaleOf(maxAbs: number): number {
  return maxAbs > 0 ? maxAbs / 127 : 1;
}

function q8(v: number, scale: number): number {
  const r = Math.round(v / scale);
  return r > 127 ? 127 : r < -127 ? -127 : r;
}

/** Symmetric int8 quantization with one scale per row (`scales.length === rows`). */
export function quantizePerRow(data: Float32Array, rows: number, cols: number): QuantizedMatrix {
  if (data.length !== rows * cols) throw new Error(`quantizePerRow: ${data.length} values for ${rows}x${cols}`);
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(data[r * cols + c] ?? 0));
    const s = Math.fround(scaleOf(m));
    scales[r] = s;
    for (let c = 0; c < cols; c++) q[r * cols + c] = q8(data[r * cols + c] ?? 0, s);
  }
  return { rows, cols, q, scales };
}

/** Symmetric int8 quantization with one scale per column (`scales.length === cols`). */
export function quantizePerColumn(data: Float32Array, rows: number, cols: number): QuantizedMatrix {
  if (data.length !== rows * cols) throw new Error(`quantizePerColumn: ${data.length} values for ${rows}x${cols}`);
  const max = new Float64Array(cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) max[c] = Math.max(max[c] ?? 0, Math.abs(data[r * cols + c] ?? 0));
  const scales = Float32Array.from(max, scaleOf);
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) q[r * cols + c] = q8(data[r * cols + c] ?? 0, scales[c] ?? 1);
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
