/**
 * What a run is doing right now, for people: the activity in flight with its last heartbeat (training epoch and
 * batches, data rows), and why a step waits (no worker has picked it up yet, the fleet lock is held by another run).
 * Read with `describe()` (pending activities) and the fleet lock's query; used by `recflow status` and the demo.
 */
import type { WorkflowHandle, Client } from '@temporalio/client';
import { fleetLockStateQuery, fleetLockWorkflowId } from '../lib/fleet/lock';
import type { LifecycleStatus } from '../lib/lifecycle/types';

/** A progress bar `[#####.....] 5/10`. */
export function bar(done: number, total: number, width = 20): string {
  const n = Math.max(0, Math.min(width, Math.round((done / Math.max(1, total)) * width)));
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${done}/${total}`;
}

/** The activity in flight, as the server knows it. */
export interface InFlight {
  activity: string;
  /** `scheduled`: no worker has started it yet; `started`: a worker runs it. */
  state: 'scheduled' | 'started' | 'cancel_requested';
  attempt: number;
  scheduledAt?: Date;
  /** The last heartbeat's details (JSON), if any. */
  details?: Record<string, unknown>;
  /** The last attempt's failure, when it is being retried. */
  lastFailure?: string;
}

/** The run's pending activities. */
export async function inFlight(handle: WorkflowHandle): Promise<InFlight[]> {
  const d = await handle.describe().catch(() => undefined);
  const out: InFlight[] = [];
  for (const p of d?.raw.pendingActivities ?? []) {
    let details: Record<string, unknown> | undefined;
    const payload = p.heartbeatDetails?.payloads?.[0]?.data;
    if (payload) {
      try {
        details = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
      } catch {
        details = undefined;
      }
    }
    const state = Number(p.state ?? 0);
    const seconds = p.scheduledTime?.seconds;
    out.push({
      activity: p.activityType?.name ?? 'activity',
      // PendingActivityState: 1 scheduled, 2 started, 3 cancel requested.
      state: state === 2 ? 'started' : state === 3 ? 'cancel_requested' : 'scheduled',
      attempt: p.attempt ?? 1,
      scheduledAt: seconds !== undefined && seconds !== null ? new Date(Number(seconds) * 1000) : undefined,
      details,
      lastFailure: p.lastFailure?.message ?? undefined,
    });
  }
  return out;
}

/** One line of progress for an activity in flight, from its heartbeat. */
export function progressLine(a: InFlight): string {
  const d = a.details ?? {};
  const num = (k: string) => (typeof d[k] === 'number' ? d[k] : undefined);
  const retry = a.attempt > 1 ? ` (attempt ${a.attempt}${a.lastFailure ? `, last: ${a.lastFailure}` : ''})` : '';
  if (a.state === 'scheduled') {
    const since = a.scheduledAt ? ` since ${a.scheduledAt.toISOString().slice(11, 19)}` : '';
    // Training goes to the GPU queue first; with no GPU worker it moves to the CPU queue after its schedule-to-start.
    const who = a.activity === 'trainModel' ? 'a training worker (GPU queue first, then the CPU fallback)' : 'a worker';
    return `${a.activity}: waiting for ${who} to pick it up${since}${retry}`;
  }
  if (num('batches') !== undefined) {
    // A progress beat's `epoch` is the epoch in flight, 0-based.
    const epoch = (num('epoch') ?? 0) + 1;
    const epochs = num('epochs');
    const backend = typeof d.backend === 'string' ? ` on ${d.backend}` : '';
    if (typeof d.phase === 'string')
      return `${a.activity}: ${d.phase} ${bar(num('batch') ?? 0, num('batches')!)} batches${backend}${retry}`;
    return `${a.activity}: epoch ${epoch}${epochs ? `/${epochs}` : ''} ${bar(num('batch') ?? 0, num('batches')!)} batches${backend}${retry}`;
  }
  if (num('total') !== undefined)
    return `${a.activity}: ${typeof d.step === 'string' ? `${d.step} ` : ''}${bar(num('events') ?? 0, num('total')!)} events${retry}`;
  if (num('rows') !== undefined)
    return `${a.activity}: ${typeof d.step === 'string' ? `${d.step} ` : ''}${num('rows')} rows${retry}`;
  if (num('waitingMs') !== undefined)
    return `${a.activity}: window closes in ${Math.ceil(num('waitingMs')! / 1000)} s${retry}`;
  return `${a.activity}: running${retry}`;
}

/** Why a run waits for the fleet: who holds its lock, and how many wait before it. */
export async function fleetWait(client: Client, s: LifecycleStatus): Promise<string | undefined> {
  if (s.stage !== 'waiting_for_fleet' || !s.rollout) return undefined;
  const lock = await client.workflow
    .getHandle(fleetLockWorkflowId(s.rollout.fleet))
    .query(fleetLockStateQuery)
    .catch(() => undefined);
  if (!lock?.holder) return `waiting for the lock of fleet ${s.rollout.fleet}`;
  const ahead = lock.queue.findIndex((q) => q.workflowId === s.workflowId);
  return `waiting for fleet ${s.rollout.fleet}: its lock is held by ${lock.holder.workflowId}${lock.holder.purpose ? ` (${lock.holder.purpose})` : ''}${ahead > 0 ? `; ${ahead} run(s) ahead` : ''}`;
}
