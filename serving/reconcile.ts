/**
 * The reconcile loop: every `intervalMs` a replica reads its desired state (the fleet's desired.json, or a single
 * bundle held in memory), applies it to its slots when the generation moved, and writes its report (the heartbeat
 * the rollout activities wait on). A failed load keeps the old models serving and is retried on the next tick.
 */
import type { Logger } from 'pino';
import { FleetStore, saltOf, type FleetPatch } from '../lib/fleet/store';
import type { FleetDesiredState, ReplicaReport } from '../lib/fleet/types';
import type { ModelSlots, SlotsTarget } from './model-slot';

/** Where a replica's desired state comes from, and where the admin API writes changes. */
export interface DesiredSource {
  read(): Promise<FleetDesiredState | null>;
  update(patch: FleetPatch): Promise<{ desired: FleetDesiredState; changed: boolean }>;
  /** Fleet store, when the source is a fleet (reports are written there). */
  readonly store?: FleetStore;
}

/** The fleet's desired.json under the registry dir. */
export class FleetSource implements DesiredSource {
  readonly store: FleetStore;
  constructor(registryDir: string, fleet?: string) {
    this.store = new FleetStore(registryDir, fleet);
  }
  read(): Promise<FleetDesiredState | null> {
    return this.store.readDesired();
  }
  update(patch: FleetPatch): Promise<{ desired: FleetDesiredState; changed: boolean }> {
    return this.store.updateDesired(patch);
  }
}

/** A desired state held in memory (`recflow serve --bundle`): the admin API changes it for this replica only. */
export class MemorySource implements DesiredSource {
  constructor(private state: FleetDesiredState) {}
  async read(): Promise<FleetDesiredState> {
    return this.state;
  }
  async update(patch: FleetPatch): Promise<{ desired: FleetDesiredState; changed: boolean }> {
    const next: FleetDesiredState = {
      ...this.state,
      stable: patch.stable !== undefined ? patch.stable : this.state.stable,
      canary: patch.canary !== undefined ? patch.canary : this.state.canary,
      canaryWeight: patch.canaryWeight ?? this.state.canaryWeight,
      ...saltOf(patch, this.state),
      reason: patch.reason,
      updatedAt: new Date().toISOString(),
      generation: this.state.generation + 1,
    };
    this.state = next;
    return { desired: next, changed: true };
  }
}

export interface ReconcilerOptions {
  source: DesiredSource;
  slots: ModelSlots;
  replicaId: string;
  /** URL other processes reach this replica at (set once listening). */
  url?: string;
  /** @default 1000 */
  intervalMs?: number;
  log?: Logger;
}

/** Applies the desired state to the slots and reports, on a timer and on demand. */
export class Reconciler {
  url: string;
  /** This replica's id (settable until the first report, e.g. once the port is known). */
  replicaId: string;
  lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private failedGeneration = -1;

  constructor(private readonly opts: ReconcilerOptions) {
    this.url = opts.url ?? '';
    this.replicaId = opts.replicaId;
  }

  get source(): DesiredSource {
    return this.opts.source;
  }

  /** Start polling (the first tick runs at once). */
  start(): void {
    if (this.timer) return;
    const loop = () => {
      void this.tick().finally(() => {
        if (this.timer) this.timer = setTimeout(loop, this.opts.intervalMs ?? 1000);
      });
    };
    this.timer = setTimeout(loop, 0);
  }

  /** Stop polling and remove this replica's report. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.ticking;
    await this.opts.source.store?.removeReport(this.replicaId).catch(() => undefined);
  }

  /** One reconcile pass (concurrent calls share the pass in progress). */
  tick(): Promise<void> {
    this.ticking ??= this.tickNow().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async tickNow(): Promise<void> {
    const { slots, log } = this.opts;
    try {
      const desired = await this.opts.source.read();
      if (desired && desired.generation !== slots.generation) {
        const target: SlotsTarget = {
          generation: desired.generation,
          stable: desired.stable,
          canary: desired.canary,
          canaryWeight: desired.canaryWeight,
          salt: desired.salt,
        };
        const t0 = Date.now();
        await slots.apply(target);
        this.lastError = undefined;
        log?.info(
          {
            generation: desired.generation,
            stable: desired.stable?.version ?? null,
            canary: desired.canary?.version ?? null,
            canaryWeight: desired.canaryWeight,
            ms: Date.now() - t0,
          },
          'applied fleet state',
        );
      }
    } catch (err) {
      this.lastError = (err as Error).message;
      if (this.failedGeneration !== slots.generation) log?.error({ err }, 'reconcile failed; keeping current models');
      this.failedGeneration = slots.generation;
    }
    await this.report().catch((err: unknown) => log?.warn({ err }, 'could not write replica report'));
  }

  /** This replica's report. */
  snapshot(): ReplicaReport & { error?: string } {
    const { slots } = this.opts;
    return {
      replicaId: this.replicaId,
      url: this.url,
      pid: process.pid,
      appliedGeneration: slots.generation,
      stable: slots.get('stable')?.version ?? null,
      canary: slots.get('canary')?.version ?? null,
      canaryWeight: slots.canaryWeight,
      healthy: slots.ready && this.lastError === undefined,
      heartbeatAt: new Date().toISOString(),
      ...(this.lastError ? { error: this.lastError } : {}),
    };
  }

  private async report(): Promise<void> {
    if (this.opts.source.store && this.url) await this.opts.source.store.writeReport(this.snapshot());
  }
}
