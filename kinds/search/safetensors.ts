/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian header length `n`, `n` bytes of JSON
 * (`{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { string: string } }`, offsets relative to
 * the end of the header), then the raw little-endian tensor data. The reader checks what the Rust reference checks:
 * known dtypes, offsets inside the data, sizes matching the shapes, no overlaps, no holes. The writer pads the header
 * with spaces to a multiple of 8 bytes, as the reference does, so data stays aligned.
 */
import { readFile } from 'node:fs/promises';
import { ErrorType, RecflowError } from '../../lib/errors';
import { writeFileAtomic } from '../../lib/fs-atomic';

/** Element types recflow reads. F16 and BF16 are widened to float32 on read; the writer writes F32, I64, I32, I8, U8. */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I8' | 'U8';

const BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I8: 1, U8: 1 };

/** One tensor, row-major. Floating types are read as Float32Array (F64, F16 and BF16 converted). */
export interface NamedTensor {
  /** The dtype stored in the file. */
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;
}

/** A parsed file: its tensors by name and its `__metadata__` strings. */
export interface SafetensorsFile {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decode(dtype: SafetensorsDtype, bytes: Uint8Array, n: number): NamedTensor['data'] {
  const copy = new Uint8Array(bytes.length); // aligned, detached from the file buffer (Buffer#slice is a view)
  copy.set(bytes);
  const buf = copy.buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, 0, n);
    case 'F64':
      return Float32Array.from(new Float64Array(buf, 0, n));
    case 'F16': {
      const u = new Uint16Array(buf, 0, n);
      return Float32Array.from(u, f16ToF32);
    }
    case 'BF16': {
      const u = new Uint16Array(buf, 0, n);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = (u[i] ?? 0) << 16;
      return out;
    }
    case 'I64':
      return new BigInt64Array(buf, 0, n);
    case 'I32':
      return new Int32Array(buf, 0, n);
    case 'I8':
      return new Int8Array(buf, 0, n);
    case 'U8':
      return copy;
  }
}

/**
 * Parse safetensors bytes. `where` names the source in error messages.
 * @throws {RecflowError} `InvalidData` naming the file and the tensor when the header or an entry is malformed.
 */
export function parseSafetensors(bytes: Uint8Array, where = 'safetensors'): SafetensorsFile {
  const bad = (msg: string) => new RecflowError(ErrorType.InvalidData, `${where}: ${msg}`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8 || headerLen > 100_000_000) {
    throw bad(`header length ${headerLen} exceeds the file (${bytes.length} bytes)`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, unknown>;
  } catch (err) {
    throw bad(`header is not JSON (${(err as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw bad('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, NamedTensor>();
  const spans: Array<[number, number, string]> = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = e?.dtype as SafetensorsDtype;
    if (typeof dtype !== 'string' || !(dtype in BYTES)) {
      throw bad(`tensor '${name}': dtype ${JSON.stringify(e?.dtype)} is not one of ${Object.keys(BYTES).join(', ')}`);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
      throw bad(`tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && (o as number) >= 0)) {
      throw bad(`tensor '${name}': data_offsets ${JSON.stringify(off)} is not [begin, end]`);
    }
    const [begin, end] = off as [number, number];
    const n = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end > dataLen) {
      throw bad(`tensor '${name}': data_offsets [${begin}, ${end}] outside the ${dataLen} data bytes`);
    }
    if (end - begin !== n * BYTES[dtype]) {
      throw bad(`tensor '${name}': ${end - begin} bytes for shape [${shape.join(', ')}] of ${dtype}`);
    }
    spans.push([begin, end, name]);
    const data = decode(dtype, bytes.subarray(dataStart + begin, dataStart + end), n);
    tensors.set(name, { dtype, shape: shape as number[], data });
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== at) throw bad(`tensor '${name}' starts at ${begin}: ${begin < at ? 'overlap' : 'hole'} at ${at}`);
    at = end;
  }
  if (at !== dataLen) throw bad(`${dataLen - at} data bytes after the last tensor`);
  return { tensors, metadata };
}

/** Read and parse a safetensors file. @throws {RecflowError} `InvalidData` (malformed) or `ArtifactMissing`. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `${path}: cannot read (${(err as Error).message})`);
  }
  return parseSafetensors(bytes, path);
}

function dtypeOf(data: NamedTensor['data']): SafetensorsDtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Int8Array) return 'I8';
  return 'U8';
}

/** Tensors as safetensors bytes, in name order (F32/I64/I32/I8/U8 by the array type). */
export function encodeSafetensors(
  tensors: Map<string, { shape: number[]; data: NamedTensor['data'] }> | Record<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).sort((a, b) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0,
  );
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let at = 0;
  for (const [name, t] of entries) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length)
      throw new Error(`safetensors: '${name}' has ${t.data.length} values for [${t.shape.join(', ')}]`);
    header[name] = { dtype: dtypeOf(t.data), shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
    at += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

/** Write tensors to a safetensors file atomically (temp file, fsync, rename). */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, { shape: number[]; data: NamedTensor['data'] }> | Record<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
