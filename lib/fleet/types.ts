/**
 * The serving fleet's desired and applied state: the contract between the rollout activities (which write the
 * desired state), the model registry (whose aliases must equal it) and every serving replica (which reconciles to
 * it and reports what it applied). Stored as JSON files under `<registryDir>/fleets/<fleet>/`.
 */
import type { Precision } from '../bundle';

export interface SlotState {
  /** Registry version, e.g. `shop-recs@v3`. */
  version: string;
  /** Absolute path of the bundle folder (where it was when the state was written). */
  bundlePath: string;
  precision: Precision;
  /**
   * The bundle's artifact id: a replica whose `bundlePath` is gone (a moved `RECFLOW_HOME`, another host's mount)
   * finds the bundle by id under its bundle roots (lib/fleet/locate.ts). Filled in by the fleet store from the
   * bundle's `artifact.json` when the writer did not give it.
   */
  bundleId?: string;
}

export interface FleetDesiredState {
  fleet: string;
  /** Increases by one on every change; replicas report the generation they applied. */
  generation: number;
  stable: SlotState | null;
  canary: SlotState | null;
  /** Percent of users routed to the canary, 0..100. */
  canaryWeight: number;
  /**
   * Salt of the sticky user hash (a rollout sets its own, so every rollout splits users afresh and an imbalance
   * between fixed user groups cannot repeat). Absent: unsalted.
   */
  salt?: string;
  updatedAt: string;
  /** Who changed it last and why (`rollout <workflowId> step 2`, `rollback by alice`). */
  reason: string;
}

export interface ReplicaReport {
  replicaId: string;
  url: string;
  pid: number;
  appliedGeneration: number;
  stable: string | null;
  canary: string | null;
  canaryWeight: number;
  healthy: boolean;
  heartbeatAt: string;
}

/** Default fleet name. */
export const DEFAULT_FLEET = 'default';
