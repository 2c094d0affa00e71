/**
 * The users' histories a bundle carries (lib/onnx/bundle-io.ts): CSR by user index, most recent last, capped per
 * user, named in the manifest; a truncated or altered file is refused on read.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { BundleManifest } from '../../../lib/bundle';
import { RecflowError } from '../../../lib/errors';
import { buildHistories, historyOf, readHistories, writeHistories } from '../../../lib/onnx/bundle-io';

void describe('bundle histories', () => {
  const interactions = {
    // user 1: items 5, 6, 7, 8 over time; user 3: 9, then 2; user 2: none; user 0 (unknown) is ignored.
    user: Int32Array.from([1, 3, 1, 0, 1, 3, 1]),
    item: Int32Array.from([5, 9, 6, 4, 7, 2, 8]),
    timestamp: Float64Array.from([10, 11, 12, 13, 14, 15, 16]),
  };

  void it('keeps each user items in time order, the most recent last, capped per user', () => {
    const h = buildHistories(4, interactions, 3);
    assert.deepEqual([...historyOf(h, 1)], [6, 7, 8]);
    assert.deepEqual([...historyOf(h, 2)], []);
    assert.deepEqual([...historyOf(h, 3)], [9, 2]);
    assert.deepEqual([...historyOf(h, 0)], []);
    assert.deepEqual([...historyOf(h, 99)], []);
    // Out-of-order input is put in time order first.
    const shuffled = {
      user: Int32Array.from([1, 1, 1]),
      item: Int32Array.from([30, 10, 20]),
      timestamp: Float64Array.from([3, 1, 2]),
    };
    assert.deepEqual([...historyOf(buildHistories(2, shuffled), 1)], [10, 20, 30]);
  });

  void it('round-trips through the file the manifest names, and refuses a damaged one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'recflow-history-'));
    try {
      const entry = await writeHistories(dir, buildHistories(4, interactions, 3));
      assert.equal(entry.file, 'history.bin');
      assert.equal(entry.users, 4);
      assert.equal(entry.interactions, 5);
      assert.equal(entry.bytes, 20 + 4 * 5 + 4 * 5);
      const manifest = { history: entry } as BundleManifest;
      const back = await readHistories(dir, manifest);
      assert.ok(back);
      assert.deepEqual([...historyOf(back, 1)], [6, 7, 8]);
      assert.deepEqual([...historyOf(back, 3)], [9, 2]);
      assert.equal(await readHistories(dir, {} as BundleManifest), undefined);

      const bytes = await readFile(join(dir, 'history.bin'));
      await writeFile(join(dir, 'history.bin'), bytes.subarray(0, bytes.length - 4));
      await assert.rejects(
        readHistories(dir, manifest),
        (e: unknown) => e instanceof RecflowError && e.type === 'ArtifactMissing' && /expected 60/.test(e.message),
      );
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
      await writeFile(join(dir, 'history.bin'), bytes);
      await assert.rejects(
        readHistories(dir, manifest),
        (e: unknown) => e instanceof RecflowError && e.type === 'InvalidData' && /sha256/.test(e.message),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
