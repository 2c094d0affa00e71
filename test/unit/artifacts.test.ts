import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactStore, assertSafeId, hashInputs } from '../../lib/artifacts';
import { tempHome } from '../helpers/temporal';

describe('ArtifactStore', () => {
  it('builds once and reuses the same id', async () => {
    const store = new ArtifactStore(tempHome());
    let builds = 0;
    const build = async (dir: string) => {
      builds++;
      await writeFile(join(dir, 'a.txt'), 'hello');
    };
    const first = await store.put('dataset', 'abc', build);
    const second = await store.put('dataset', 'abc', build);
    assert.equal(builds, 1);
    assert.equal(first.reused, false);
    assert.equal(second.reused, true);
    assert.equal(first.contentHash, second.contentHash);
    assert.equal(readFileSync(join(first.path, 'a.txt'), 'utf8'), 'hello');
  });

  it('leaves nothing under the id when the build fails', async () => {
    const root = tempHome();
    const store = new ArtifactStore(root);
    await assert.rejects(
      store.put('dataset', 'broken', async (dir) => {
        await writeFile(join(dir, 'half.bin'), 'x');
        throw new Error('disk on fire');
      }),
      /disk on fire/,
    );
    assert.equal(await store.find('dataset', 'broken'), undefined);
    assert.equal(existsSync(join(root, 'dataset', 'broken')), false);
    assert.deepEqual(readdirSync(join(root, '.tmp')), []);
  });

  it('refuses ids that could leave the store', () => {
    for (const bad of ['../etc', 'a/b', '', '..', 'A'.repeat(3), 'x'.repeat(200), 'a\u0000b']) {
      assert.throws(() => assertSafeId(bad), /invalid id/, bad);
    }
    assert.doesNotThrow(() => assertSafeId('shop-recs.v1_2'));
  });

  it('hashes inputs independently of key order', () => {
    assert.equal(hashInputs({ a: 1, b: [1, { c: 2, d: 3 }] }), hashInputs({ b: [1, { d: 3, c: 2 }], a: 1 }));
    assert.notEqual(hashInputs({ a: 1 }), hashInputs({ a: 2 }));
  });
});
