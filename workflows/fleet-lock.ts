import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { RecflowActivities } from '../activities';
import {
  acquireFleetLockSignal,
  fleetLockGrantedSignal,
  fleetLockStateQuery,
  releaseFleetLockSignal,
  type FleetLockInput,
  type FleetLockRequest,
  type FleetLockState,
} from '../lib/fleet/lock';

export type { FleetLockInput, FleetLockRequest, FleetLockState } from '../lib/fleet/lock';

/** Hand-overs before the lock continues as new, to keep its history short. */
const GRANTS_PER_RUN = 500;

const { isWorkflowRunning } = proxyActivities<RecflowActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumInterval: '30 seconds' },
});

/**
 * One rollout at a time per serving fleet (lib/fleet/lock.ts has the messages and the protocol).
 */
export async function fleetLockWorkflow(input: FleetLockInput): Promise<FleetLockState> {
  const state: FleetLockState = { fleet: input.fleet, holder: null, queue: [...(input.queue ?? [])], grants: 0 };
  setHandler(acquireFleetLockSignal, (req) => {
    // Idempotent: a retried request does not queue twice.
    if (state.holder?.workflowId === req.workflowId || state.queue.some((q) => q.workflowId === req.workflowId)) return;
    state.queue.push(req);
  });
  setHandler(releaseFleetLockSignal, ({ workflowId }) => {
    if (state.holder?.workflowId === workflowId) state.holder = null;
    else state.queue = state.queue.filter((q) => q.workflowId !== workflowId); // gave up while waiting
  });
  setHandler(fleetLockStateQuery, () => state);

  for (;;) {
    await condition(() => state.holder === null && state.queue.length > 0);
    const next = state.queue.shift()!;
    state.holder = next;
    state.grants++;
    try {
      await getExternalWorkflowHandle(next.workflowId).signal(fleetLockGrantedSignal, {
        fleet: input.fleet,
        lockWorkflowId: workflowInfo().workflowId,
      });
      log.info('fleet lock granted', { fleet: input.fleet, holder: next.workflowId, waiting: state.queue.length });
    } catch (err) {
      // The requester is gone (finished, terminated): skip it.
      log.warn('fleet lock requester is gone; skipping it', { holder: next.workflowId, error: String(err) });
      state.holder = null;
      continue;
    }
    // Versioned: lock runs started before the liveness check waited for the release only.
    if (patched('fleet-lock-holder-liveness')) {
      const every = input.holderCheckInterval ?? '1 minute';
      while (!(await condition(() => state.holder === null, every))) {
        const holder: FleetLockRequest | null = state.holder;
        if (!holder) break;
        const { running, status } = await isWorkflowRunning({ workflowId: holder.workflowId });
        if (!running && state.holder?.workflowId === holder.workflowId) {
          log.warn('fleet lock holder ended without releasing; releasing for it', {
            fleet: input.fleet,
            holder: holder.workflowId,
            status,
          });
          state.holder = null;
        }
      }
    } else {
      await condition(() => state.holder === null);
    }
    if (state.queue.length === 0) return state; // nobody waits: end; the next request starts a new run
    if (state.grants >= GRANTS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof fleetLockWorkflow>({ ...input, queue: state.queue });
    }
  }
}
