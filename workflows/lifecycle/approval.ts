/**
 * The review: a human approves or rejects the registered candidate, in the spirit of samples-typescript's
 * safe-message-handlers (the handlers hand off to this class; the workflow body only awaits {@link decide}).
 *
 * Rules, applied to Updates (refused with the reason before anything enters history) and signals (refusals listed
 * in `status.approval.refused`): the payload must be `{reviewer, comment?}` (lib/lifecycle/messages.ts); only while
 * the review is open; the reviewer must be in `approval.reviewers` when set; never the run's requester (four eyes);
 * a rejection needs a comment; the same decision again is idempotent. A signal sent before the review opens waits for
 * it. Without a decision the review expires after `approval.timeout`.
 */
import { ApplicationFailure, condition, log, setHandler } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import {
  approveSignal,
  approveUpdate,
  parseDecision,
  rejectSignal,
  rejectUpdate,
  senderOf,
} from '../../lib/lifecycle/messages';
import type { ApprovalDecision, ApprovalState, LifecycleOutcome } from '../../lib/lifecycle/types';
import { quick } from './activities';
import type { LifecycleRun } from './run';

type Kind = 'approve' | 'reject';

/** Error type of a refused review Update (non-retryable: the same request would be refused again). */
export const REVIEW_REFUSED = 'ReviewRefused';

/** How the review ended, for the run. */
export type ReviewResult =
  | { outcome: 'approved'; reviewer: string }
  | { outcome: Extract<LifecycleOutcome, 'rejected' | 'expired' | 'aborted'>; reason: string };

export class ApprovalGate {
  private readonly early: Array<{ raw: unknown; kind: Kind }> = [];

  constructor(private readonly run: LifecycleRun) {
    for (const [update, kind] of [
      [approveUpdate, 'approve'],
      [rejectUpdate, 'reject'],
    ] as const) {
      setHandler(update, (raw: unknown) => this.accept(raw, kind, 'update'), {
        validator: (raw: unknown) => {
          const why = this.refusal(raw, kind);
          if (why) throw ApplicationFailure.nonRetryable(why, REVIEW_REFUSED);
        },
      });
    }
    for (const [signal, kind] of [
      [approveSignal, 'approve'],
      [rejectSignal, 'reject'],
    ] as const) {
      setHandler(signal, (raw: unknown) => {
        if (this.state.state === 'not_requested') {
          this.early.push({ raw, kind });
          return;
        }
        this.fromSignal(raw, kind);
      });
    }
  }

  private get state(): ApprovalState {
    return this.run.status.approval;
  }

  /** Why a decision is refused, or undefined when it is accepted. Never throws, whatever the payload. */
  refusal(raw: unknown, kind: Kind): string | undefined {
    const parsed = parseDecision(raw, kind);
    if (!parsed.ok) return parsed.error;
    const d = parsed.value;
    const a = this.state;
    const same = (a.state === 'approved' && kind === 'approve') || (a.state === 'rejected' && kind === 'reject');
    if (same && a.reviewer === d.reviewer) return undefined; // idempotent repeat
    if (a.state !== 'waiting')
      return `the run is not awaiting approval (approval is ${a.state}, stage ${this.run.status.stage})`;
    if (d.reviewer === this.run.status.requestedBy)
      return `four-eyes rule: ${d.reviewer} requested this run and cannot review it`;
    const reviewers = this.run.input.approval?.reviewers ?? [];
    if (reviewers.length > 0 && !reviewers.includes(d.reviewer))
      return `${d.reviewer} is not a reviewer of ${this.run.modelName} (reviewers: ${reviewers.join(', ')})`;
    return undefined;
  }

  private accept(raw: unknown, kind: Kind, via: 'update' | 'signal'): ApprovalState {
    const parsed = parseDecision(raw, kind);
    if (!parsed.ok || this.state.state !== 'waiting') return this.state; // validated before; idempotent repeat
    const d: ApprovalDecision = parsed.value;
    this.run.status.approval = {
      ...this.state,
      state: kind === 'approve' ? 'approved' : 'rejected',
      reviewer: d.reviewer,
      comment: d.comment,
      via,
      decidedAt: new Date().toISOString(),
    };
    log.info('review decision', { decision: this.state.state, reviewer: d.reviewer, via });
    return this.state;
  }

  private fromSignal(raw: unknown, kind: Kind): void {
    const why = this.refusal(raw, kind);
    if (why) {
      this.state.refused.push({
        reviewer: senderOf(raw, 'reviewer'),
        reason: why,
        at: new Date().toISOString(),
        via: 'signal',
      });
      log.warn('review refused', { reviewer: senderOf(raw, 'reviewer'), reason: why });
      return;
    }
    this.accept(raw, kind, 'signal');
  }

  /**
   * Open the review of the registered version and wait for a decision, an abort or the deadline. Records the
   * decision in the registry. Auto-approval (demo, tests) is recorded as `auto-approve`.
   */
  async decide(): Promise<ReviewResult> {
    const { run } = this;
    const version = run.status.registered!.version;
    await quick.setModelStatus({ model: run.modelName, version, status: 'pending_approval', actor: 'recflow' });
    run.phase = 'review';
    run.setStage('awaiting_approval');
    const timeout = run.input.approval?.timeout ?? '72 hours';
    const timeoutMs = msToNumber(timeout);
    run.status.approval = {
      ...this.state,
      state: 'waiting',
      deadline: new Date(Date.now() + timeoutMs).toISOString(),
    };
    if (run.input.approval?.autoApprove) {
      run.status.approval = {
        ...this.state,
        state: 'approved',
        reviewer: 'auto-approve',
        comment: `auto-approved (requested by ${run.status.requestedBy})`,
        via: 'auto',
        decidedAt: new Date().toISOString(),
      };
    }
    for (const { raw, kind } of this.early.splice(0)) this.fromSignal(raw, kind);
    const decided = await condition(() => this.state.state !== 'waiting' || run.aborted !== undefined, timeoutMs);
    const aborted = run.aborted;
    if (aborted && this.state.state === 'waiting') {
      this.state.state = 'skipped';
      const r = aborted.reason ? `: ${aborted.reason}` : '';
      return { outcome: 'aborted', reason: `aborted by ${aborted.actor} while awaiting approval${r}` };
    }
    if (!decided) {
      this.state.state = 'expired';
      return { outcome: 'expired', reason: `no review within ${String(timeout)}` };
    }
    const a = this.state;
    await run.step('recordApproval', () =>
      quick.recordApproval({
        model: run.modelName,
        version,
        approved: a.state === 'approved',
        approver: a.reviewer!,
        comment: a.comment,
      }),
    );
    if (a.state === 'rejected') return { outcome: 'rejected', reason: `rejected by ${a.reviewer}: ${a.comment ?? ''}` };
    run.phase = 'approved';
    return { outcome: 'approved', reviewer: a.reviewer! };
  }
}
