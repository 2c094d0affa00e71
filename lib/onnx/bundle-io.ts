/**
 * Reading `bundle` artifact folders (the contract is lib/bundle.ts), and helpers every kind's bundle writer shares.
 */
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleManifest, HistoryManifest, Precision } from '../bundle';
import type { Vocabularies } from '../data/dataset';
import { ErrorType, RecflowError } from '../errors';

/** How many item ids popular.json holds (serving's fallback needs the head only). */
export const POPULAR_LIMIT = 1000;

/** File names of the graphs inside a bundle. */
export const BUNDLE_FILES: BundleManifest['files'] = {
  fp32: { score: 'score.fp32.onnx', recommend: 'recommend.fp32.onnx' },
  int8: { score: 'score.int8.onnx', recommend: 'recommend.int8.onnx' },
};

/** Item ids by descending popularity (ties by index), index 0 and never-seen items left out. */
export function popularItems(
  vocab: Pick<Vocabularies, 'items'>,
  popularity: Float32Array,
  limit = POPULAR_LIMIT,
): string[] {
  const idx: number[] = [];
  for (let i = 1; i < popularity.length; i++) if ((popularity[i] ?? 0) > 0) idx.push(i);
  idx.sort((a, b) => (popularity[b] ?? 0) - (popularity[a] ?? 0) || a - b);
  return idx.slice(0, limit).map((i) => vocab.items[i] ?? String(i));
}

/** A bundle folder read back: manifest, paths of its graphs, and the vocabulary sizes. */
export interface LoadedBundle {
  dir: string;
  manifest: BundleManifest;
  paths: Record<Precision, { score: string; recommend: string }>;
}

/**
 * Read a bundle folder's manifest and check that its files are there with the recorded sizes.
 * @throws {RecflowError} `ArtifactMissing` naming the missing or truncated file.
 */
export async function loadBundle(dir: string): Promise<LoadedBundle> {
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8')) as BundleManifest;
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `bundle ${dir}: bundle.json: ${(err as Error).message}`);
  }
  const paths = { fp32: { score: '', recommend: '' }, int8: { score: '', recommend: '' } };
  for (const p of ['fp32', 'int8'] as const)
    for (const k of ['score', 'recommend'] as const) {
      const file = join(dir, manifest.files[p][k]);
      const size = await stat(file).then(
        (s) => s.size,
        () => -1,
      );
      if (size !== manifest.sizes[p][k])
        throw new RecflowError(
          ErrorType.ArtifactMissing,
          `bundle ${dir}: ${manifest.files[p][k]} is ${size < 0 ? 'missing' : `${size} bytes, expected ${manifest.sizes[p][k]}`}`,
        );
      paths[p][k] = file;
    }
  return { dir, manifest, paths };
}

/** File name of the users' histories inside a bundle. */
export const HISTORY_FILE = 'history.bin';
/** Most items kept per user by default (the most recent). */
export const HISTORY_MAX_PER_USER = 200;
const HISTORY_MAGIC = 0x31484652; // 'RFH1' little-endian
const HISTORY_HEADER = 20;

/**
 * Each user's items in CSR form: user `u`'s items are `items[offsets[u] .. offsets[u + 1])`, oldest first, most
 * recent last (item indices of the bundle's vocabulary; repeats kept: a sequence model wants them).
 */
export interface UserHistories {
  offsets: Uint32Array;
  items: Int32Array;
  maxPerUser: number;
}

/**
 * Build the histories of `users` users from interactions (`user`, `item`, and `timestamp` when they may not be in
 * time order), keeping the last `maxPerUser` items of each user.
 */
export function buildHistories(
  users: number,
  interactions: { user: Int32Array; item: Int32Array; timestamp?: Float64Array },
  maxPerUser = HISTORY_MAX_PER_USER,
): UserHistories {
  const n = interactions.user.length;
  let order: Uint32Array | undefined;
  const ts = interactions.timestamp;
  if (ts) {
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) sorted = (ts[i - 1] ?? 0) <= (ts[i] ?? 0);
    if (!sorted)
      order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => (ts[a] ?? 0) - (ts[b] ?? 0) || a - b);
  }
  const at = (j: number) => (order ? (order[j] ?? 0) : j);
  const count = new Uint32Array(users);
  for (let j = 0; j < n; j++) {
    const u = interactions.user[at(j)] ?? 0;
    if (u > 0 && u < users) count[u] = (count[u] ?? 0) + 1;
  }
  const offsets = new Uint32Array(users + 1);
  for (let u = 0; u < users; u++) offsets[u + 1] = (offsets[u] ?? 0) + Math.min(count[u] ?? 0, maxPerUser);
  const items = new Int32Array(offsets[users] ?? 0);
  // Skip each user's oldest items beyond the cap, then fill in time order.
  const skip = Int32Array.from(count, (c) => Math.max(0, c - maxPerUser));
  const fill = offsets.slice(0, users);
  for (let j = 0; j < n; j++) {
    const r = at(j);
    const u = interactions.user[r] ?? 0;
    if (u <= 0 || u >= users) continue;
    if ((skip[u] ?? 0) > 0) {
      skip[u] = (skip[u] ?? 0) - 1;
      continue;
    }
    items[fill[u]!++] = interactions.item[r] ?? 0;
  }
  return { offsets, items, maxPerUser };
}

/** User `u`'s items (oldest first), empty for unknown users. */
export function historyOf(h: UserHistories, u: number): Int32Array {
  if (u <= 0 || u + 1 >= h.offsets.length) return new Int32Array(0);
  return h.items.subarray(h.offsets[u] ?? 0, h.offsets[u + 1] ?? 0);
}

/**
 * Write the histories into a bundle folder as {@link HISTORY_FILE}: a 20-byte little-endian header (magic `RFH1`,
 * format version 1, users, maxPerUser, interactions as uint32), then `users + 1` uint32 offsets, then the int32 item
 * indices. Returns the manifest entry that names it.
 */
export async function writeHistories(dir: string, h: UserHistories): Promise<HistoryManifest> {
  const users = h.offsets.length - 1;
  const buf = Buffer.alloc(HISTORY_HEADER + h.offsets.byteLength + h.items.byteLength);
  buf.writeUInt32LE(HISTORY_MAGIC, 0);
  buf.writeUInt32LE(1, 4);
  buf.writeUInt32LE(users, 8);
  buf.writeUInt32LE(h.maxPerUser, 12);
  buf.writeUInt32LE(h.items.length, 16);
  Buffer.from(h.offsets.buffer, h.offsets.byteOffset, h.offsets.byteLength).copy(buf, HISTORY_HEADER);
  Buffer.from(h.items.buffer, h.items.byteOffset, h.items.byteLength).copy(buf, HISTORY_HEADER + h.offsets.byteLength);
  await writeFile(join(dir, HISTORY_FILE), buf);
  return {
    file: HISTORY_FILE,
    format: 'csr-v1',
    users,
    interactions: h.items.length,
    maxPerUser: h.maxPerUser,
    bytes: buf.byteLength,
    sha256: createHash('sha256').update(buf).digest('hex'),
  };
}

/**
 * Read the histories a bundle's manifest names (undefined when it names none).
 * @throws {RecflowError} `ArtifactMissing` when the file is missing or truncated, `InvalidData` when its header or
 * hash does not match the manifest.
 */
export async function readHistories(dir: string, manifest: BundleManifest): Promise<UserHistories | undefined> {
  const m = manifest.history;
  if (!m) return undefined;
  const file = join(dir, m.file);
  const buf = await readFile(file).catch((err: unknown) => {
    throw new RecflowError(ErrorType.ArtifactMissing, `bundle ${dir}: ${m.file}: ${(err as Error).message}`);
  });
  if (buf.byteLength !== m.bytes)
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `bundle ${dir}: ${m.file} is ${buf.byteLength} bytes, expected ${m.bytes}`,
    );
  const bad = (what: string) => new RecflowError(ErrorType.InvalidData, `bundle ${dir}: ${m.file}: ${what}`);
  if (createHash('sha256').update(buf).digest('hex') !== m.sha256) throw bad('sha256 does not match bundle.json');
  if (buf.readUInt32LE(0) !== HISTORY_MAGIC || buf.readUInt32LE(4) !== 1) throw bad('not a csr-v1 history file');
  const users = buf.readUInt32LE(8);
  const nnz = buf.readUInt32LE(16);
  if (users !== m.users || nnz !== m.interactions || buf.byteLength !== HISTORY_HEADER + 4 * (users + 1) + 4 * nnz)
    throw bad(`header (${users} users, ${nnz} items) does not match bundle.json or the file size`);
  // Copy into an aligned buffer (a Buffer's byteOffset need not be a multiple of 4).
  const body = new Uint8Array(buf.byteLength - HISTORY_HEADER);
  body.set(buf.subarray(HISTORY_HEADER));
  const offsets = new Uint32Array(body.buffer, 0, users + 1);
  const items = new Int32Array(body.buffer, 4 * (users + 1), nnz);
  if ((offsets[users] ?? 0) !== nnz) throw bad('offsets do not end at the item count');
  return { offsets, items, maxPerUser: buf.readUInt32LE(12) };
}
