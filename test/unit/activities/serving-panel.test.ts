/**
 * The users the traffic simulator replays (`simulatedUsers`, what `simulateTraffic` draws): a rollout's windows
 * share one panel of users (the plan's `panelSeed`) while their request streams differ (`seed`); another rollout
 * draws another panel, still by activity over the whole user base.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simulatedUsers } from '../../../activities/serving';
import { windowPlan } from '../../../lib/canary/rollout-looks';

/** 3000 users, activity from 1 to 50 interactions (a few heavy users, many light ones). */
const all = {
  users: Array.from({ length: 3000 }, (_, i) => `u${i}`),
  weights: Array.from({ length: 3000 }, (_, i) => 1 + Math.floor((49 * ((i * 7919) % 3000) ** 3) / 3000 ** 3)),
};
const n = 400;
/** The users of each window of a rollout with traffic seed `trafficSeed`, as the workflow plans them. */
const windows = (trafficSeed: number, panel = true) =>
  [-1, 1, 3, 5].flatMap((step) =>
    [0, 1].map((extension) => {
      const plan = windowPlan(20_000, step, extension, trafficSeed);
      return simulatedUsers(all, { users: n, seed: plan.seed, ...(panel ? { panelSeed: plan.panelSeed } : {}) });
    }),
  );
const overlap = (a: string[], b: string[]) => {
  const s = new Set(a);
  return b.filter((u) => s.has(u)).length;
};

void describe('simulatedUsers', () => {
  void it('replays the same users in every window of a rollout, another panel in another rollout', () => {
    const first = windows(101);
    for (const w of first) {
      assert.equal(w.users.length, n);
      assert.deepEqual(w.users, first[0]!.users, 'the pre-rollout window, every step and extension: one panel');
    }
    const next = windows(202)[0]!.users;
    const shared = overlap(first[0]!.users, next);
    assert.ok(shared < n * 0.8, `another rollout draws another panel (${shared} of ${n} users shared)`);
    // By activity: heavy users are in a panel more often than light ones.
    const weightOf = new Map(all.users.map((u, i) => [u, all.weights[i] ?? 0]));
    const mean = (us: string[]) => us.reduce((a, u) => a + (weightOf.get(u) ?? 0), 0) / us.length;
    assert.ok(mean(first[0]!.users) > 1.3 * mean(all.users), 'the panel is drawn by activity');
  });

  void it('without a panel seed, each window draws its own sample (runs started before the patch)', () => {
    const ws = windows(101, false);
    assert.ok(overlap(ws[0]!.users, ws[1]!.users) < n, 'the stream seed draws a new sample per window');
    assert.deepEqual(
      simulatedUsers(all, { users: n, seed: 5 }).users,
      simulatedUsers(all, { users: n, seed: 5 }).users,
    );
  });

  void it('without `users` (the demo, the workflow default), every known user, each by activity', () => {
    const w = simulatedUsers(all, { seed: 5, panelSeed: 9 });
    assert.deepEqual(w.users, all.users);
    assert.deepEqual(w.weights, all.weights);
  });
});
