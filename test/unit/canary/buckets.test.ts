/**
 * User buckets: a user's bucket is a stable, well-spread function of the id and salt; replicas' counters merge and
 * subtract bucket by bucket, and malformed counters are refused with the field and bucket named.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bucketTotals,
  emptyBuckets,
  mergeBuckets,
  subtractBuckets,
  userBucket,
  validateBuckets,
  type VariantBuckets,
} from '../../../lib/canary/buckets';
import { RecflowError } from '../../../lib/errors';

const vb = (requests: number[], errors: number[], impressions: number[], clicks: number[]): VariantBuckets => ({
  requests,
  errors,
  impressions,
  clicks,
});

describe('user buckets', () => {
  it('the same user lands in the same bucket on every call; buckets are in range', () => {
    for (let i = 0; i < 1000; i++) {
      const b = userBucket(`u${i}`, 512, 'fleet-salt');
      assert.equal(userBucket(`u${i}`, 512, 'fleet-salt'), b);
      assert.ok(Number.isInteger(b) && b >= 0 && b < 512);
    }
    assert.throws(() => userBucket('u1', 0), /positive integer/);
  });

  it('spreads sequential ids evenly (chi-square) and a new salt reshuffles them', () => {
    const n = 102_400;
    const counts = new Array<number>(512).fill(0);
    let moved = 0;
    for (let i = 0; i < n; i++) {
      const b = userBucket(`u${i}`, 512, 's1');
      counts[b] = (counts[b] ?? 0) + 1;
      if (userBucket(`u${i}`, 512, 's2') !== b) moved++;
    }
    const expected = n / 512;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // df 511: mean 511, sd 32; 5 sd above is far out for a uniform spread.
    assert.ok(chi2 < 511 + 5 * 32, `chi2 ${chi2}`);
    assert.ok(moved / n > 0.99, `only ${moved} of ${n} users moved with a new salt`);
  });

  it('merges replicas bucket by bucket and subtracts an earlier read', () => {
    const r1 = vb([1, 2, 0], [0, 1, 0], [10, 20, 0], [1, 2, 0]);
    const r2 = vb([3, 0, 4], [1, 0, 0], [30, 0, 40], [0, 0, 5]);
    const sum = mergeBuckets([r1, r2]);
    assert.deepEqual(sum, vb([4, 2, 4], [1, 1, 0], [40, 20, 40], [1, 2, 5]));
    assert.deepEqual(subtractBuckets(sum, r1), r2);
    assert.deepEqual(bucketTotals(sum), { requests: 10, errors: 2, impressions: 100, clicks: 8, activeBuckets: 3 });
    assert.deepEqual(mergeBuckets([emptyBuckets(3)]), emptyBuckets(3));
  });

  it('refuses counters that disagree on B, went back, or are not counts, naming where', () => {
    const good = emptyBuckets(4);
    assert.throws(
      () => mergeBuckets([good, emptyBuckets(5)]),
      (e: unknown) =>
        e instanceof RecflowError && e.type === 'InvalidData' && /part 1 field 'requests' has 5/.test(e.message),
    );
    assert.throws(() => mergeBuckets([]), /no bucket counters/);
    const later = vb([1, 1, 1, 1], [0, 0, 0, 0], [5, 5, 5, 5], [1, 0, 1, 0]);
    const earlier = vb([1, 2, 1, 1], [0, 0, 0, 0], [5, 5, 5, 5], [1, 0, 1, 0]);
    assert.throws(
      () => subtractBuckets(later, earlier, 'replica r2, canary'),
      /replica r2, canary: field 'requests' bucket 1 went back from 2 to 1/,
    );
    assert.equal(validateBuckets(good, 'x', 4), good);
    assert.throws(() => validateBuckets(null, 'replica r1'), /replica r1: bucket counters must be an object/);
    assert.throws(
      () => validateBuckets({ ...good, clicks: [0, 0, -1, 0] }, 'replica r1, stable'),
      /replica r1, stable: field 'clicks' bucket 2 is -1/,
    );
    assert.throws(() => validateBuckets({ ...good, errors: [0, 0] }, 'r'), /field 'errors' has 2 buckets, expected 4/);
    assert.throws(() => validateBuckets(good, 'r', 8), /field 'requests' has 4 buckets, expected 8/);
    assert.throws(() => validateBuckets({ ...good, impressions: 'x' }, 'r'), /field 'impressions' must be an array/);
  });
});
