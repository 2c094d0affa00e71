import {
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';

/**
 * One rollout at a time per serving fleet: a mutex workflow (id `recflow-fleet-lock-<fleet>`), the Temporal
 * "mutex" pattern. A lifecycle run asks for the lock with the `requestFleetLock` activity (signal-with-start of this
 * workflow), waits for {@link fleetLockGrantedSignal}, and sends {@link releaseFleetLockSignal} when its rollout has
 * ended. Requests queue in arrival order; `holder` and `queue` are visible with the `lockState` query (and
 * `npx recflow fleet status`).
 */
export interface FleetLockRequest {
  workflowId: string;
  /** What asks for it, shown to whoever waits (e.g. `shop-recs@v4 canary`). */
  purpose?: string;
  requestedAt?: string;
}

export interface FleetLockState {
  fleet: string;
  holder: FleetLockRequest | null;
  queue: FleetLockRequest[];
  grants: number;
}

export const acquireFleetLockSignal = defineSignal<[FleetLockRequest]>('acquireFleetLock');
export const releaseFleetLockSignal = defineSignal<[{ workflowId: string }]>('releaseFleetLock');
/** Sent by the lock to the requester when the lock is its. */
export const fleetLockGrantedSignal = defineSignal<[{ fleet: string; lockWorkflowId: string }]>('fleetLockGranted');
export const fleetLockStateQuery = defineQuery<FleetLockState>('lockState');

export function fleetLockWorkflowId(fleet: string): string {
  return `recflow-fleet-lock-${fleet}`;
}

/** Hand-overs before the lock continues as new, to keep its history short. */
const GRANTS_PER_RUN = 500;

export async function fleetLockWorkflow(input: { fleet: string; queue?: FleetLockRequest[] }): Promise<FleetLockState> {
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
    await condition(() => state.holder === null);
    if (state.queue.length === 0) return state; // nobody waits: end; the next request starts a new run
    if (state.grants >= GRANTS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof fleetLockWorkflow>({ fleet: input.fleet, queue: state.queue });
    }
  }
}
