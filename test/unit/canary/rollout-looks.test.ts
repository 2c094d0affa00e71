/**
 * The per-look bookkeeping the rollout workflow and the fleet benchmark share (lib/canary/rollout-looks.ts):
 * windows add up within a step and start a new period at each weight change, the pre-rollout counts and the test's
 * state travel with every look, and a look's verdict maps to what the step does next.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeRolloutLook } from '../../../lib/canary/analyze';
import { emptyBuckets, type VariantBuckets } from '../../../lib/canary/buckets';
import {
  afterLook,
  DEFAULT_MAX_EXTENSIONS,
  droppedInWindow,
  RolloutLooks,
  windowPlan,
  type WindowBuckets,
} from '../../../lib/canary/rollout-looks';
import { mulberry32 } from '../../../lib/rng';

const B = 64;

/** One window's counts: every bucket with `requests` requests on each side, 10 impressions each, CTR `ctr`. */
function window(seed: number, requests = 4, ctr = { stable: 0.3, canary: 0.3 }): WindowBuckets {
  const r = mulberry32(seed);
  const side = (p: number): VariantBuckets => {
    const v = emptyBuckets(B);
    for (let b = 0; b < B; b++) {
      v.requests[b] = requests;
      v.impressions[b] = requests * 10;
      let clicks = 0;
      for (let i = 0; i < requests * 10; i++) if (r() < p) clicks++;
      v.clicks[b] = clicks;
    }
    return v;
  };
  return { count: B, stable: side(ctr.stable), canary: side(ctr.canary) };
}

const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);

describe('RolloutLooks', () => {
  it('adds windows of one step into its period and starts a new period when the weight changes', () => {
    const looks = new RolloutLooks();
    const w1 = window(1);
    const w2 = window(2);
    const w3 = window(3);
    const first = looks.look(10, { buckets: w1, dropped: 0 });
    assert.equal(first.periods.length, 1);
    assert.equal(first.periods[0]?.canaryWeight, 10);
    assert.deepEqual(first.periods[0]?.stable.clicks, w1.stable.clicks);
    // An extension of the same step: its counts are added bucket by bucket to the same period.
    const second = looks.look(10, { buckets: w2, dropped: 0 });
    assert.equal(second.periods.length, 1);
    assert.deepEqual(
      second.periods[0]?.canary.clicks,
      w1.canary.clicks.map((c, b) => c + (w2.canary.clicks[b] ?? 0)),
    );
    assert.equal(sum(second.periods[0]?.canary.requests ?? []), 2 * 4 * B);
    // The next step: a period of its own, the earlier one kept as it was.
    const third = looks.look(50, { buckets: w3, dropped: 0 });
    assert.deepEqual(
      third.periods.map((p) => p.canaryWeight),
      [10, 50],
    );
    assert.deepEqual(third.periods[1]?.stable.clicks, w3.stable.clicks);
    assert.equal(sum(third.periods[0]?.canary.requests ?? []), 2 * 4 * B);
  });

  it("does not keep a reference to the window's arrays (a later window cannot change an earlier look)", () => {
    const looks = new RolloutLooks();
    const w = window(4);
    const before = [...w.canary.clicks];
    const input = looks.look(10, { buckets: w, dropped: 0 });
    w.canary.clicks[0] = 10_000;
    assert.deepEqual(input.periods[0]?.canary.clicks, before);
  });

  it('passes the pre-rollout counts, the latency, coverage, drops and criteria, and carries the state', () => {
    const looks = new RolloutLooks();
    const pre = window(5).stable;
    looks.setPre(pre);
    const latency = [{ stable: { requests: 60, p99Ms: 5 }, canary: { requests: 60, p99Ms: 6 } }];
    const coverage = { expected: 2, covered: 2, missing: [] };
    const input = looks.look(10, { buckets: window(6), latency, coverage, dropped: 3 }, { alpha: 0.01 });
    assert.equal(input.pre, pre);
    assert.equal(input.state, undefined);
    assert.deepEqual(input.latency, latency);
    assert.deepEqual(input.coverage, coverage);
    assert.equal(input.droppedRequests, 3);
    assert.deepEqual(input.criteria, { alpha: 0.01 });
    const result = analyzeRolloutLook(input);
    looks.record(result.state);
    assert.equal(looks.looks, 1);
    const next = looks.look(10, { buckets: window(7), dropped: 0 });
    assert.deepEqual(next.state, result.state);
    assert.equal(analyzeRolloutLook(next).state.looks, 2);
  });

  it('a clearly worse canary fails through it; identical sides pass the light step', () => {
    const worse = new RolloutLooks();
    worse.setPre(window(8).stable);
    const bad = analyzeRolloutLook(
      worse.look(50, { buckets: window(9, 20, { stable: 0.3, canary: 0.15 }), dropped: 0 }),
    );
    assert.equal(bad.analysis.verdict, 'fail', bad.analysis.summary);
    const same = new RolloutLooks();
    same.setPre(window(10).stable);
    const ok = analyzeRolloutLook(same.look(10, { buckets: window(11, 20), dropped: 0 }));
    assert.equal(ok.analysis.verdict, 'pass', ok.analysis.summary);
  });
});

describe('windowPlan, droppedInWindow, afterLook', () => {
  it('plans a window: slices of a sixth (at least 1 s), traffic a second longer, a seed per step and extension', () => {
    assert.deepEqual(windowPlan(300_000, 1, 0, 5), { sliceMs: 50_000, trafficMs: 301_000, seed: 205, panelSeed: 5 });
    assert.deepEqual(windowPlan(3000, -1, 0), { sliceMs: 1000, trafficMs: 4000, seed: 0, panelSeed: 0 });
    const seeds = new Set([-1, 1, 3, 5].flatMap((s) => [0, 1, 2].map((e) => windowPlan(20_000, s, e, 7).seed)));
    assert.equal(seeds.size, 12, 'every window of a rollout has its own traffic seed');
  });

  it('plans one user panel per rollout: the same in every window of a rollout, another in the next rollout', () => {
    const panels = (trafficSeed: number) =>
      new Set([-1, 1, 3, 5].flatMap((s) => [0, 1].map((e) => windowPlan(20_000, s, e, trafficSeed).panelSeed)));
    assert.deepEqual([...panels(7)], [7], 'the pre-rollout window, every step and extension share the panel');
    assert.deepEqual([...panels(8)], [8]);
  });

  it('counts what the window could not measure: dropped, timed out and shed requests', () => {
    assert.equal(droppedInWindow({ dropped: 2, timedOut: 3 }, 4), 9);
    assert.equal(droppedInWindow(undefined, undefined), 0);
    assert.equal(droppedInWindow({}, 0), 0);
  });

  it('maps a verdict to the next move of an analysis step', () => {
    assert.equal(afterLook('pass', 0), 'pass');
    assert.equal(afterLook('fail', 5), 'fail');
    assert.equal(afterLook('inconclusive', 0), 'extend');
    assert.equal(afterLook('inconclusive', DEFAULT_MAX_EXTENSIONS - 1), 'extend');
    assert.equal(afterLook('inconclusive', DEFAULT_MAX_EXTENSIONS), 'exhausted');
    assert.equal(afterLook('inconclusive', 1, 1), 'exhausted');
    assert.equal(afterLook('inconclusive', 0, 0), 'exhausted');
  });
});
