/**
 * The fleet lock's messages, id format and state: shared by `fleetLockWorkflow` (workflows/fleet-lock.ts), the
 * lifecycle that waits for the lock, the `requestFleetLock` activity (which starts the lock workflow by name, so
 * activities never import workflow code) and the CLI. Sandbox-safe.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';

/**
 * One rollout at a time per serving fleet: a mutex workflow (id `recflow-fleet-lock-<fleet>`), the Temporal
 * "mutex" pattern. A lifecycle run asks for the lock with the `requestFleetLock` activity (signal-with-start of this
 * workflow), waits for {@link fleetLockGrantedSignal}, and sends {@link releaseFleetLockSignal} when its rollout has
 * ended. Requests queue in arrival order; `holder` and `queue` are visible with the `lockState` query (and
 * `npx recflow fleet status`). A holder that ends without releasing (terminated, timed out) is noticed by a
 * liveness check every `holderCheckInterval`, and the lock passes on.
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

/** Workflow id of a fleet's lock. */
export function fleetLockWorkflowId(fleet: string): string {
  return `recflow-fleet-lock-${fleet}`;
}

/** Workflow type name of the lock (started by name with signal-with-start). */
export const FLEET_LOCK_WORKFLOW_TYPE = 'fleetLockWorkflow';

export interface FleetLockInput {
  fleet: string;
  queue?: FleetLockRequest[];
  /** How often to check that the holder still runs. @default '1 minute' */
  holderCheckInterval?: string;
}
