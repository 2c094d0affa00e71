/**
 * Follow a lifecycle run on the terminal, for people: each step once as it ends, the stage as it changes, the
 * canary's looks as they close, a live line for the activity in flight (training epoch and batches, data rows), and
 * with a reviewer the approval prompt (never interleaved with other output: clients/console.ts holds lines while it
 * asks). Used by `npm run demo` and `recflow run --wait`.
 */
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { approveUpdate, rejectUpdate, statusQuery } from '../lib/lifecycle/messages';
import { describeStep } from '../lib/lifecycle/steps';
import type { LifecycleStatus } from '../lib/lifecycle/types';
import { paint, type TerminalConsole } from './console';
import { inFlight, progressLine } from './progress';

/** Watch `handle` until `stop()`; with `reviewer`, prompt for the approval when the review opens. */
export function watchRun(
  handle: WorkflowHandle,
  ui: TerminalConsole,
  reviewer: string | undefined,
  stopped: () => boolean,
): { stop(): Promise<void> } {
  const printed = new Set<number>();
  const windows = new Set<string>();
  let lastStage = '';
  let prompting = false;
  let done = false;
  const tick = async () => {
    const s: LifecycleStatus | undefined = await handle.query(statusQuery).catch(() => undefined);
    if (!s) return;
    s.steps.forEach((st, i) => {
      if (st.state === 'running' || printed.has(i)) return;
      printed.add(i);
      const mark = st.state === 'done' ? paint.ok('ok ') : paint.bad('ERR');
      const detail = st.error ? `${st.error.type}: ${st.error.message}` : (st.detail ?? '');
      ui.line(`   ${mark} ${st.name.padEnd(26)} ${detail}`);
    });
    if (s.stage !== lastStage) {
      lastStage = s.stage;
      ui.line(paint.dim(`   [${s.stage}]`));
    }
    s.rollout?.steps.forEach((st, i) =>
      (st.analyses ?? []).forEach((a, k) => {
        const key = `${i}.${k}`;
        if (windows.has(key)) return;
        windows.add(key);
        const v =
          a.verdict === 'pass'
            ? paint.ok(a.verdict)
            : a.verdict === 'fail'
              ? paint.bad(a.verdict)
              : paint.warn(a.verdict);
        ui.line(`   window ${describeStep(st)}${k ? ` +${k}` : ''} at ${weightAt(s, i)}%: ${v} - ${a.summary}`);
      }),
    );
    const live = (await inFlight(handle))[0];
    ui.progress(live ? `   ${progressLine(live)}` : '');
    if (reviewer && !prompting && s.stage === 'awaiting_approval' && !stopped()) {
      prompting = true;
      void review(handle, reviewer, ui);
    }
  };
  // One status query at a time: while a long synchronous step holds the worker's event loop, queries queue up
  // unanswered, and each one the server expires is a core warning on this terminal.
  let ticking: Promise<void> | undefined;
  const once = () => (ticking ??= tick().finally(() => (ticking = undefined)));
  const timer = setInterval(() => {
    if (!done) void once();
  }, 1000);
  return {
    async stop() {
      done = true;
      clearInterval(timer);
      await ticking;
      await tick();
      ui.settle();
    },
  };
}

/**
 * The canary weight during rollout step `i`: the last `setWeight` before it (the live weight has often moved on by
 * the time a window's verdict is printed).
 */
export function weightAt(s: LifecycleStatus, i: number): number {
  const steps = s.rollout?.steps ?? [];
  for (let j = i - 1; j >= 0; j--) {
    const st = steps[j];
    if (st && 'setWeight' in st && typeof st.setWeight === 'number') return st.setWeight;
  }
  return s.rollout?.weight ?? 0;
}

/** Ask on the terminal; the same decision can come from another terminal with `npx recflow approve`. */
async function review(handle: WorkflowHandle, reviewer: string, ui: TerminalConsole): Promise<void> {
  ui.line(`\n   The candidate awaits review. From another terminal:`);
  ui.line(`     npx recflow approve ${handle.workflowId} --as <reviewer> [--comment "..."]`);
  ui.line(`     npx recflow reject  ${handle.workflowId} --as <reviewer> --comment "why"`);
  if (!process.stdin.isTTY) {
    ui.line('   (no terminal: waiting for that command)');
    return;
  }
  try {
    const answer = (await ui.ask(`   Approve as '${reviewer}'? [y/n] `)).toLowerCase();
    const approve = answer === 'y' || answer === 'yes';
    const comment = approve ? 'approved in the demo prompt' : (await ui.ask('   Why? ')) || 'rejected in the demo';
    await handle.executeUpdate(approve ? approveUpdate : rejectUpdate, { args: [{ reviewer, comment }] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) ui.line(`   refused: ${err.cause?.message}`);
  }
}
