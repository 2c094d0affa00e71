/**
 * The serving fleet's state on disk (the contract is lib/fleet.ts): `<registryDir>/fleets/<fleet>/desired.json`
 * (written by the rollout activities and the admin API) and `replicas/<replicaId>.json` (written by each replica on
 * every reconcile tick). Every write is atomic (temp file + rename); changes of the desired state hold a lock so two
 * writers never lose an update.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assertSafeId } from '../artifacts';
import { ErrorType, RecflowError } from '../errors';
import { bundleIdOf } from './locate';
import { DEFAULT_FLEET, type FleetDesiredState, type ReplicaReport, type SlotState } from './types';
import { writeJsonAtomic } from '../fs-atomic';
import { withLock } from '../registry/lock';

/** A replica whose report is older than this is not live. @default 10000 */
export const REPLICA_LIVE_MS = 10_000;

/** A change of the desired state: fields left undefined are kept. */
export interface FleetPatch {
  stable?: SlotState | null;
  canary?: SlotState | null;
  /** 0..100 */
  canaryWeight?: number;
  /** Salt of the sticky user hash; null removes it. */
  salt?: string | null;
  reason: string;
}

/** Reads and writes one fleet's folder. */
export class FleetStore {
  /** The fleet's folder. */
  readonly dir: string;

  constructor(
    registryDir: string,
    readonly fleet: string = DEFAULT_FLEET,
  ) {
    assertSafeId(fleet, 'fleet name');
    this.dir = join(registryDir, 'fleets', fleet);
  }

  get desiredPath(): string {
    return join(this.dir, 'desired.json');
  }

  /** The desired state, or null when none was ever written. */
  async readDesired(): Promise<FleetDesiredState | null> {
    let text: string;
    try {
      text = await readFile(this.desiredPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      return JSON.parse(text) as FleetDesiredState;
    } catch (err) {
      throw new RecflowError(ErrorType.InvalidData, `${this.desiredPath}: not JSON: ${(err as Error).message}`);
    }
  }

  /**
   * Apply a patch to the desired state under the fleet lock. Bumps `generation` only when the content changes
   * (same slots and weight: the current state is returned with `changed: false`).
   * @throws {RecflowError} `InvalidInput` on a weight outside 0..100 or a slot without version or bundle path.
   */
  async updateDesired(patch: FleetPatch): Promise<{ desired: FleetDesiredState; changed: boolean }> {
    validatePatch(patch);
    patch = { ...patch, stable: await withBundleId(patch.stable), canary: await withBundleId(patch.canary) };
    await mkdir(this.dir, { recursive: true });
    return withLock(join(this.dir, '.lock'), async () => {
      const cur = await this.readDesired();
      const next: FleetDesiredState = {
        fleet: this.fleet,
        generation: cur?.generation ?? 0,
        stable: patch.stable !== undefined ? patch.stable : (cur?.stable ?? null),
        canary: patch.canary !== undefined ? patch.canary : (cur?.canary ?? null),
        canaryWeight: patch.canaryWeight ?? cur?.canaryWeight ?? 0,
        ...saltOf(patch, cur),
        updatedAt: new Date().toISOString(),
        reason: patch.reason,
      };
      if (
        cur &&
        sameSlot(cur.stable, next.stable) &&
        sameSlot(cur.canary, next.canary) &&
        cur.canaryWeight === next.canaryWeight &&
        cur.salt === next.salt
      )
        return { desired: cur, changed: false };
      next.generation += 1;
      await writeJsonAtomic(this.desiredPath, next);
      return { desired: next, changed: true };
    });
  }

  /** Write (replace) one replica's report. */
  async writeReport(report: ReplicaReport): Promise<void> {
    assertSafeId(report.replicaId, 'replica id');
    await writeJsonAtomic(join(this.dir, 'replicas', `${report.replicaId}.json`), report);
  }

  /** Remove a replica's report (on graceful shutdown). */
  async removeReport(replicaId: string): Promise<void> {
    assertSafeId(replicaId, 'replica id');
    await rm(join(this.dir, 'replicas', `${replicaId}.json`), { force: true });
  }

  /**
   * Reports of the replicas, sorted by id; with `liveWithinMs`, only those whose heartbeat is that recent.
   * Unreadable files (being replaced) are skipped.
   */
  async readReports(opts: { liveWithinMs?: number } = {}): Promise<ReplicaReport[]> {
    const dir = join(this.dir, 'replicas');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: ReplicaReport[] = [];
    const now = Date.now();
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      try {
        const r = JSON.parse(await readFile(join(dir, name), 'utf8')) as ReplicaReport;
        if (opts.liveWithinMs !== undefined && now - Date.parse(r.heartbeatAt) > opts.liveWithinMs) continue;
        out.push(r);
      } catch {
        continue;
      }
    }
    return out;
  }

  /** Read a small JSON side file of the fleet folder (e.g. the last stats snapshot), or undefined. */
  async readAux<T>(name: string): Promise<T | undefined> {
    assertSafeId(name, 'file name');
    try {
      return JSON.parse(await readFile(join(this.dir, name), 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  /** Write a small JSON side file of the fleet folder atomically. */
  async writeAux(name: string, value: unknown): Promise<void> {
    assertSafeId(name, 'file name');
    await writeJsonAtomic(join(this.dir, name), value);
  }
}

/** The slot with its bundle's artifact id filled in (read from the bundle's `artifact.json`) when it has none. */
async function withBundleId<T extends SlotState | null | undefined>(slot: T): Promise<T> {
  if (!slot || slot.bundleId) return slot;
  const bundleId = await bundleIdOf(slot.bundlePath);
  return bundleId ? { ...slot, bundleId } : slot;
}

/** Equal slots: same version, bundle path and precision (or both empty). */
export function sameSlot(a: SlotState | null | undefined, b: SlotState | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.version === b.version && a.bundlePath === b.bundlePath && a.precision === b.precision;
}

/** The salt after a patch: kept when the patch says nothing, removed on null. */
export function saltOf(patch: FleetPatch, cur: FleetDesiredState | null): { salt?: string } {
  const salt = patch.salt === undefined ? cur?.salt : (patch.salt ?? undefined);
  return salt ? { salt } : {};
}

function validatePatch(patch: FleetPatch): void {
  if (patch.salt !== undefined && patch.salt !== null && (typeof patch.salt !== 'string' || patch.salt.length > 200))
    throw new RecflowError(ErrorType.InvalidInput, 'salt must be a string of at most 200 characters');
  if (patch.canaryWeight !== undefined) {
    const w = patch.canaryWeight;
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0 || w > 100)
      throw new RecflowError(ErrorType.InvalidInput, `canaryWeight ${String(w)} is not a number in [0, 100]`);
  }
  for (const name of ['stable', 'canary'] as const) {
    const s = patch[name];
    if (!s) continue;
    if (typeof s.version !== 'string' || !s.version)
      throw new RecflowError(ErrorType.InvalidInput, `${name}.version is missing`);
    if (typeof s.bundlePath !== 'string' || !s.bundlePath.startsWith('/'))
      throw new RecflowError(ErrorType.InvalidInput, `${name}.bundlePath '${String(s.bundlePath)}' is not absolute`);
    if (s.precision !== 'fp32' && s.precision !== 'int8')
      throw new RecflowError(ErrorType.InvalidInput, `${name}.precision '${String(s.precision)}' is not fp32 or int8`);
    if (s.bundleId !== undefined && (typeof s.bundleId !== 'string' || !/^[A-Za-z0-9._-]{1,200}$/.test(s.bundleId)))
      throw new RecflowError(ErrorType.InvalidInput, `${name}.bundleId '${String(s.bundleId)}' is not an artifact id`);
  }
  if (typeof patch.reason !== 'string' || !patch.reason)
    throw new RecflowError(ErrorType.InvalidInput, 'reason is missing');
}
