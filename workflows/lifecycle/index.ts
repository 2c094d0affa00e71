/**
 * `modelLifecycleWorkflow`: the whole life of one candidate model, as its stages.
 *
 *   data -> train -> export -> evaluate -> register -> review -> rollout -> promoted | rolled back
 *
 * Each stage is an idempotent activity (or child workflow) keyed by its inputs' hashes (./stages.ts); the review is
 * ./approval.ts, the rollout ./canary.ts, the run's state and its end (one outcome table) ./run.ts. The `status`
 * query says where the run is; `approve`/`reject` updates (and signal twins) carry the review; `abort` and
 * `promote` steer the rollout (lib/lifecycle/messages.ts).
 *
 * Runs started before this version replay with ./legacy.ts (the `lifecycle-v2` patch).
 */
import { patched } from '@temporalio/workflow';
import type { LifecycleInput, LifecycleResult } from '../../lib/lifecycle/types';
import { ApprovalGate } from './approval';
import { CanaryRollout } from './canary';
import { legacyLifecycleWorkflow } from './legacy';
import { LifecycleRun } from './run';
import { evaluate, exportBundle, prepareData, register, train } from './stages';

/** The patch that introduced this version; runs without its marker replay the legacy code. */
export const LIFECYCLE_V2 = 'lifecycle-v2';

export async function modelLifecycleWorkflow(input: LifecycleInput = {}): Promise<LifecycleResult> {
  if (!patched(LIFECYCLE_V2)) return legacyLifecycleWorkflow(input as never) as Promise<never>;
  const run = new LifecycleRun(input);
  const review = new ApprovalGate(run);
  return run.execute(async () => {
    const data = await prepareData(run);
    const trained = await train(run, data);
    const exported = await exportBundle(run, data, trained);
    if (exported.sameAsChampion && !run.input.rollout?.allowUnchanged)
      return run.end('unchanged', `nothing new: ${exported.sameAsChampion}`);
    const verdict = await evaluate(run, data, exported);
    await register(run, exported, verdict, trained);
    if (!verdict.blessed)
      return run.end('gate_failed', `gates refused ${run.status.registered!.ref}: ${verdict.reason}`);

    const decision = await review.decide();
    if (decision.outcome !== 'approved') return run.end(decision.outcome, decision.reason);
    if (run.input.rollout?.skip) return run.end('approved', `approved by ${decision.reviewer}; rollout skipped`);
    if (run.aborted) return run.end('aborted', `aborted by ${run.aborted.actor} before the rollout`);

    const rollout = await new CanaryRollout(run, {
      path: exported.bundle.path,
      precision: exported.precision,
    }).execute();
    return run.end(rollout.outcome, rollout.reason);
  });
}
