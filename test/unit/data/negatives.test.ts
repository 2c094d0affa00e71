import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleNegatives } from '../../../lib/data/negatives';
import type { Interactions } from '../../../lib/data/dataset';

function split(): Interactions {
  const user: number[] = [];
  const item: number[] = [];
  for (let u = 1; u <= 50; u++)
    for (let k = 0; k < 5; k++) {
      user.push(u);
      item.push(1 + ((u * 7 + k * 3) % 40));
    }
  return {
    user: Int32Array.from(user),
    item: Int32Array.from(item),
    label: new Float32Array(user.length).fill(0.5),
    timestamp: Float64Array.from(user, (_, k) => k),
  };
}

describe('negative sampling', () => {
  it('never draws a positive of the user nor <unk>; seeded; the counts add up', () => {
    const s = split();
    const ex = sampleNegatives(s, 41, { perPositive: 3, seed: 5 });
    assert.equal(ex.user.length, s.user.length * 4);
    const pos = new Set(Array.from(s.user, (u, k) => `${u}|${s.item[k]}`));
    let negatives = 0;
    for (let k = 0; k < ex.user.length; k++) {
      if (ex.label[k] !== 0) continue;
      negatives++;
      assert.ok(!pos.has(`${ex.user[k]}|${ex.item[k]}`), `negative ${ex.user[k]} ${ex.item[k]} is a positive`);
      assert.ok((ex.item[k] ?? 0) >= 1 && (ex.item[k] ?? 0) <= 40);
    }
    assert.equal(negatives, s.user.length * 3);
    assert.deepEqual(sampleNegatives(s, 41, { perPositive: 3, seed: 5 }), ex);
    assert.notDeepEqual(sampleNegatives(s, 41, { perPositive: 3, seed: 6 }).item, ex.item);
  });

  it('popularity-weighted draws favour popular items', () => {
    const s = split();
    const popularity = Float32Array.from({ length: 41 }, (_, i) => (i === 2 ? 1000 : 1));
    const ex = sampleNegatives(s, 41, { perPositive: 4, seed: 1, popularity, alpha: 1 });
    const twos = Array.from(ex.item).filter((i, k) => i === 2 && ex.label[k] === 0).length;
    assert.ok(twos > 0.5 * 4 * s.user.length * 0.5, `item 2 drawn ${twos} times`);
  });
});
