/**
 * The lifecycle's messages, defined once for the workflow and its clients (CLI, tests, tools that only signal), and
 * the one validation of their payloads: the CLI checks what it sends with {@link parseDecision}, the update
 * validators refuse with it, the signal handlers list a refusal with it. Payloads come from users (the Temporal
 * CLI's `--input`, scripts): workflow code never trusts their shape, and never throws on them.
 * Sandbox-safe.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApprovalDecision, ApprovalState, LifecycleStatus } from './types';

/** Longest reviewer or actor name. */
export const MAX_NAME_LENGTH = 100;
/** Longest comment or reason. */
export const MAX_COMMENT_LENGTH = 2000;
const NAME_RE = /^[\p{L}\p{N}][\p{L}\p{N}._@+-]*$/u;

/** An actor's signal payload: `abort` and `promote`. */
export interface ActorRequest {
  actor: string;
  reason?: string;
  /** `promote` only: after an indefinite pause, skip the remaining steps too (default: resume with the next). */
  full?: boolean;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const describe = (v: unknown): string => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${v}`;
  return typeof v === 'object' ? 'an object' : typeof v;
};

function parseName(v: unknown, field: string): Parsed<string> {
  if (typeof v !== 'string') return { ok: false, error: `${field} must be a string, got ${describe(v)}` };
  const t = v.trim();
  if (!t) return { ok: false, error: `${field} is required` };
  if (t.length > MAX_NAME_LENGTH) return { ok: false, error: `${field} is longer than ${MAX_NAME_LENGTH} characters` };
  if (!NAME_RE.test(t))
    return { ok: false, error: `${field} ${describe(t)} has characters other than letters, digits and . _ @ + -` };
  return { ok: true, value: t };
}

function parseText(v: unknown, field: string): Parsed<string | undefined> {
  if (v === undefined || v === null) return { ok: true, value: undefined };
  if (typeof v !== 'string') return { ok: false, error: `${field} must be a string, got ${describe(v)}` };
  if (v.length > MAX_COMMENT_LENGTH)
    return { ok: false, error: `${field} is longer than ${MAX_COMMENT_LENGTH} characters` };
  const t = v.trim();
  return { ok: true, value: t || undefined };
}

function unknownKeys(o: Record<string, unknown>, allowed: string[]): string | undefined {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  return extra.length
    ? `unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')} (allowed: ${allowed.join(', ')})`
    : undefined;
}

/**
 * Check a review decision: `{reviewer: string, comment?: string}`; a rejection needs a comment.
 * The reviewer name is trimmed; an empty comment counts as none.
 */
export function parseDecision(raw: unknown, kind: 'approve' | 'reject'): Parsed<ApprovalDecision> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return {
      ok: false,
      error: `a ${kind} payload must be an object {"reviewer": "...", "comment": "..."}, got ${describe(raw)}`,
    };
  const o = raw as Record<string, unknown>;
  const extra = unknownKeys(o, ['reviewer', 'comment']);
  if (extra) return { ok: false, error: extra };
  const reviewer = parseName(o.reviewer, 'reviewer');
  if (!reviewer.ok) return reviewer;
  const comment = parseText(o.comment, 'comment');
  if (!comment.ok) return comment;
  if (kind === 'reject' && !comment.value) return { ok: false, error: 'a rejection needs a comment saying why' };
  return { ok: true, value: { reviewer: reviewer.value, ...(comment.value ? { comment: comment.value } : {}) } };
}

/** Check an `abort` or `promote` payload: `{actor: string, reason?: string, full?: boolean}`. */
export function parseActorRequest(raw: unknown, what: 'abort' | 'promote'): Parsed<ActorRequest> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return {
      ok: false,
      error: `a ${what} payload must be an object {"actor": "...", "reason": "..."}, got ${describe(raw)}`,
    };
  const o = raw as Record<string, unknown>;
  const extra = unknownKeys(o, what === 'promote' ? ['actor', 'reason', 'full'] : ['actor', 'reason']);
  if (extra) return { ok: false, error: extra };
  const actor = parseName(o.actor, 'actor');
  if (!actor.ok) return actor;
  const reason = parseText(o.reason, 'reason');
  if (!reason.ok) return reason;
  if (o.full !== undefined && typeof o.full !== 'boolean')
    return { ok: false, error: `full must be true or false, got ${describe(o.full)}` };
  return {
    ok: true,
    value: {
      actor: actor.value,
      ...(reason.value ? { reason: reason.value } : {}),
      ...(o.full === true ? { full: true } : {}),
    },
  };
}

/** A name for a refused payload's sender, whatever it sent (for the `refused` list). */
export function senderOf(raw: unknown, field: 'reviewer' | 'actor'): string {
  const v = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)[field] : undefined;
  return typeof v === 'string' && v.trim() ? v.trim().slice(0, MAX_NAME_LENGTH) : '(unknown)';
}

/** Approve the run's candidate (validated: payload, allow-list, four-eyes, only while awaiting approval). */
export const approveUpdate = defineUpdate<ApprovalState, [ApprovalDecision]>('approve');
/** Reject the candidate; a comment is required. Idempotent. */
export const rejectUpdate = defineUpdate<ApprovalState, [ApprovalDecision]>('reject');
/** Signal twins of the updates for tools that can only signal; refused decisions are listed in the status. */
export const approveSignal = defineSignal<[ApprovalDecision]>('approveSignal');
export const rejectSignal = defineSignal<[ApprovalDecision]>('rejectSignal');
/** Abort: before the review the run stops; during the rollout the canary rolls back at once, no analysis. */
export const abortSignal = defineSignal<[ActorRequest]>('abort');
/** A human's go: resume an indefinite pause, or promote after an inconclusive analysis. */
export const promoteSignal = defineSignal<[ActorRequest]>('promote');
export const statusQuery = defineQuery<LifecycleStatus>('status');
