import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultInjector } from '../../../serving/faults';

describe('FaultInjector', () => {
  it('aborts and delays the configured shares of one variant only', () => {
    const f = new FaultInjector(7);
    f.set({ variant: 'canary', abortRate: 0.3, delayMs: 50, delayRate: 0.5 });
    let aborted = 0;
    let delayed = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const d = f.decide('canary');
      if (d.abortStatus !== null) {
        assert.equal(d.abortStatus, 503);
        aborted++;
      }
      if (d.delayMs > 0) {
        assert.equal(d.delayMs, 50);
        delayed++;
      }
      assert.deepEqual(f.decide('stable'), { delayMs: 0, abortStatus: null, randomItems: false });
    }
    assert.ok(Math.abs(aborted / n - 0.3) < 0.02, `aborted ${aborted / n}`);
    assert.ok(Math.abs(delayed / n - 0.5) < 0.02, `delayed ${delayed / n}`);
  });

  it('a delay alone applies to every request; a spec with nothing to inject clears the variant', () => {
    const f = new FaultInjector(1);
    assert.deepEqual(f.set({ variant: 'stable', delayMs: 20 }), {
      variant: 'stable',
      abortRate: 0,
      abortStatus: 503,
      delayMs: 20,
      delayRate: 1,
      randomItemsRate: 0,
    });
    for (let i = 0; i < 100; i++)
      assert.deepEqual(f.decide('stable'), { delayMs: 20, abortStatus: null, randomItems: false });
    assert.equal(f.set({ variant: 'stable', abortRate: 0, delayMs: 0 }), null);
    assert.deepEqual(f.list(), []);
    f.set({ variant: 'canary', abortRate: 1, abortStatus: 500 });
    assert.equal(f.decide('canary').abortStatus, 500);
    f.clear();
    assert.deepEqual(f.decide('canary'), { delayMs: 0, abortStatus: null, randomItems: false });
  });

  it('answers the configured share with random items; alone it is a fault too', () => {
    const f = new FaultInjector(3);
    assert.ok(f.set({ variant: 'canary', randomItemsRate: 0.25 }));
    let random = 0;
    for (let i = 0; i < 20_000; i++) if (f.decide('canary').randomItems) random++;
    assert.ok(Math.abs(random / 20_000 - 0.25) < 0.02, `random items ${random / 20_000}`);
    assert.equal(f.decide('stable').randomItems, false);
  });
});
