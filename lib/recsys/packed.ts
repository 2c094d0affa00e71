/**
 * The packed-arrays checkpoint layout of the linear kinds: `checkpoint.json` (format tag, config, scalars, and the
 * byte offset of each array) beside `arrays.bin` (the typed arrays, little-endian, each 8-byte aligned).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../errors';

/** Concatenate typed arrays into one buffer (each part 8-byte aligned); returns the bytes and the offsets. */
export function packArrays<K extends string>(
  parts: Record<K, ArrayBufferView>,
): { bytes: Uint8Array; arrays: Record<K, { offset: number; bytes: number }> } {
  const arrays = {} as Record<K, { offset: number; bytes: number }>;
  let offset = 0;
  for (const k of Object.keys(parts) as K[]) {
    arrays[k] = { offset, bytes: parts[k].byteLength };
    offset += Math.ceil(parts[k].byteLength / 8) * 8;
  }
  const bytes = new Uint8Array(offset);
  for (const k of Object.keys(parts) as K[]) {
    const p = parts[k];
    bytes.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), arrays[k].offset);
  }
  return { bytes, arrays };
}

/** Read `checkpoint.json` (checking its format) and `arrays.bin` of a checkpoint folder. */
export async function readParts<J extends { format: string }>(
  dir: string,
  format: string,
): Promise<{ json: J; bin: ArrayBuffer }> {
  let json: J;
  let buf: Buffer;
  try {
    json = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as J;
    buf = await readFile(join(dir, 'arrays.bin'));
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: ${(err as Error).message}`);
  }
  if (json.format !== format)
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `checkpoint ${dir}: format '${json.format}', expected '${format}'`,
    );
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return { json, bin: copy.buffer };
}

/** A part of a packed buffer (a copy, aligned). */
export function slice(bin: ArrayBuffer, at: { offset: number; bytes: number }, dir: string): ArrayBuffer {
  if (at.offset + at.bytes > bin.byteLength)
    throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: arrays.bin is truncated`);
  return bin.slice(at.offset, at.offset + at.bytes);
}
