import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LifecycleStatus } from '../../../lib/lifecycle/types';
import { weightAt } from '../../../clients/watch';

describe('run --wait / demo: a canary window is printed at the weight it measured', () => {
  it("an analysis step's weight is the last setWeight before it, not the live weight", () => {
    const status = {
      rollout: {
        weight: 95,
        steps: [
          { setWeight: 10, state: 'passed' },
          { analysis: { duration: '20s' }, state: 'passed' },
          { setWeight: 50, state: 'passed' },
          { analysis: { duration: '20s' }, state: 'passed' },
          { setWeight: 95, state: 'running' },
        ],
      },
    } as unknown as LifecycleStatus;
    assert.equal(weightAt(status, 1), 10);
    assert.equal(weightAt(status, 3), 50);
    assert.equal(weightAt(status, 0), 95, 'no setWeight before: the live weight');
  });
});
