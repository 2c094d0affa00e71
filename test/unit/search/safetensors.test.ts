import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RecflowError } from '../../../lib/errors';
import {
  encodeSafetensors,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
} from '../../../kinds/search/safetensors';

/** A file by hand, as the format defines it: u64 LE header length, JSON header, raw data. */
function handMade(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

describe('safetensors', () => {
  it('reads a hand-made file: F32, I64, F16 and BF16 widened to float32, metadata', () => {
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x3555, 0x7c00]); // 1, -2, 0.333..., +inf
    const bf16 = new Uint16Array([0x3f80, 0xc040]); // 1, -3
    const i64 = new BigInt64Array([7n, -1n]);
    const parts = [
      f32([1.5, -2, 3, 4, 5, 6]),
      new Uint8Array(i64.buffer),
      new Uint8Array(f16.buffer),
      new Uint8Array(bf16.buffer),
    ];
    const data = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    const file = handMade(
      {
        __metadata__: { format: 'pt' },
        w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
        ids: { dtype: 'I64', shape: [2], data_offsets: [24, 40] },
        h: { dtype: 'F16', shape: [4], data_offsets: [40, 48] },
        b: { dtype: 'BF16', shape: [1, 2], data_offsets: [48, 52] },
      },
      data,
    );
    const r = parseSafetensors(file);
    assert.deepEqual(r.metadata, { format: 'pt' });
    assert.deepEqual(r.tensors.get('w')?.shape, [2, 3]);
    assert.deepEqual([...(r.tensors.get('w')?.data as Float32Array)], [1.5, -2, 3, 4, 5, 6]);
    assert.deepEqual([...(r.tensors.get('ids')?.data as BigInt64Array)], [7n, -1n]);
    const h = [...(r.tensors.get('h')?.data as Float32Array)];
    assert.deepEqual([h[0], h[1], h[3]], [1, -2, Infinity]);
    assert.ok(Math.abs((h[2] ?? 0) - 1 / 3) < 1e-3);
    assert.deepEqual([...(r.tensors.get('b')?.data as Float32Array)], [1, -3]);
    assert.equal(r.tensors.get('b')?.dtype, 'BF16');
  });

  it('round-trips through the writer, with an 8-byte aligned header', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    try {
      const tensors = new Map<string, { shape: number[]; data: Float32Array | BigInt64Array | Int8Array }>([
        ['b.weight', { shape: [3, 2], data: Float32Array.from([0.1, 0.2, -0.3, 4e-8, 5, 6]) }],
        ['a.ids', { shape: [1, 3], data: BigInt64Array.from([0n, 1n, 2n]) }],
        ['c.q', { shape: [5], data: Int8Array.from([-128, -1, 0, 1, 127]) }],
      ]);
      const bytes = encodeSafetensors(tensors, { epoch: '3' });
      const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      assert.equal((8 + headerLen) % 8, 0);
      await writeSafetensors(join(dir, 'x.safetensors'), tensors, { epoch: '3' });
      const r = await readSafetensors(join(dir, 'x.safetensors'));
      assert.deepEqual(r.metadata, { epoch: '3' });
      for (const [k, v] of tensors) {
        assert.deepEqual(r.tensors.get(k)?.shape, v.shape);
        assert.deepEqual([...(r.tensors.get(k)?.data ?? [])], [...v.data]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses malformed files with a message naming the tensor', () => {
    const two = f32([1, 2]);
    const cases: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array(4), /too short/],
      [
        (() => {
          const b = new Uint8Array(16);
          new DataView(b.buffer).setBigUint64(0, 1000n, true);
          return b;
        })(),
        /exceeds the file/,
      ],
      [
        (() => {
          const b = new Uint8Array(17);
          new DataView(b.buffer).setBigUint64(0, 9n, true);
          b.set(new TextEncoder().encode('{not json'), 8);
          return b;
        })(),
        /header is not JSON/,
      ],
      [handMade({ w: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, two), /'w': dtype "Q4"/],
      [handMade({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, two), /'w': 8 bytes for shape \[3\]/],
      [
        handMade({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 16] } }, two),
        /'w': data_offsets \[0, 16\] outside/,
      ],
      [handMade({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, two), /'w': shape/],
      [handMade({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, two), /'w' starts at 4: hole/],
      [
        handMade(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
          },
          two,
        ),
        /'b' starts at 4: overlap/,
      ],
      [handMade({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, two), /4 data bytes after the last tensor/],
    ];
    for (const [bytes, re] of cases) {
      assert.throws(
        () => parseSafetensors(bytes, 'x.safetensors'),
        (err: unknown) =>
          err instanceof RecflowError &&
          err.type === 'InvalidData' &&
          re.test(err.message) &&
          err.message.startsWith('x.safetensors: '),
        String(re),
      );
    }
  });
});
