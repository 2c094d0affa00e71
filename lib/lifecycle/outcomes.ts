/**
 * How a run ends, in one table: for each outcome (and, for `aborted`, the phase it happened in) what becomes of the
 * candidate version in the registry, of the aliases and of the fleet, and what the CLI's exit code says. The
 * workflow applies the row in one place (`LifecycleRun.end`); the CLI, the report and docs/operations.md read it.
 * Sandbox-safe.
 */
import type { ModelStatus } from '../registry/types';
import type { LifecycleOutcome } from './types';

/**
 * Where the run was when it ended: before a version existed, in review (version pending approval), approved but
 * before the canary, or in the rollout.
 */
export type EndPhase = 'before-register' | 'review' | 'approved' | 'rollout';

const stoppedStatus = (phase: EndPhase): ModelStatus | null =>
  phase === 'review' ? 'rejected' : phase === 'approved' ? 'archived' : null;

export interface OutcomeEffect {
  /** Status the candidate version moves to; null leaves it (or there is no version). */
  status: ModelStatus | null;
  /** The candidate becomes `@champion` (the previous champion is archived). */
  champion: boolean;
  /** `@canary` is removed. */
  clearCanary: boolean;
  /** The canary slot is emptied and the fleet serves the previous stable. */
  rollbackFleet: boolean;
  /** A success for the CLI's exit code (0); every other outcome is 3 (a decision said no) or 1 (failed). */
  exit: 'ok' | 'refused' | 'failure';
  /** For people (docs, `--help`). */
  meaning: string;
}

/** An effect that leaves the aliases and the fleet as they are. */
const stays = (status: ModelStatus | null, exit: OutcomeEffect['exit'], meaning: string): OutcomeEffect => ({
  status,
  champion: false,
  clearCanary: false,
  rollbackFleet: false,
  exit,
  meaning,
});

/** The rollback's effect: the version `rolled_back`, `@canary` removed, the fleet on the previous stable. */
const rolledBack = (exit: OutcomeEffect['exit'], meaning: string): OutcomeEffect => ({
  status: 'rolled_back',
  champion: false,
  clearCanary: true,
  rollbackFleet: true,
  exit,
  meaning,
});

/** The effect of an outcome in a phase. */
export function outcomeEffect(outcome: LifecycleOutcome, phase: EndPhase): OutcomeEffect {
  switch (outcome) {
    case 'promoted':
      return {
        status: 'production',
        champion: true,
        clearCanary: true,
        rollbackFleet: false,
        exit: 'ok',
        meaning: 'the candidate serves all users',
      };
    case 'approved':
      return stays(null, 'ok', 'approved; the rollout was skipped');
    case 'unchanged':
      return stays(null, 'ok', 'the candidate equals the champion: nothing registered');
    case 'rolled_back':
      return rolledBack('refused', 'the canary analysis failed: rolled back');
    case 'gate_failed':
      return stays('rejected', 'refused', 'an evaluation gate refused the candidate');
    case 'rejected':
      return stays('rejected', 'refused', 'a reviewer rejected the candidate');
    case 'expired':
      return stays('rejected', 'refused', 'no review before the deadline');
    case 'aborted':
      return phase === 'rollout'
        ? rolledBack('refused', 'aborted during the rollout: rolled back')
        : stays(stoppedStatus(phase), 'refused', 'aborted before the rollout');
    case 'cancelled':
    case 'failed':
      return phase === 'rollout'
        ? rolledBack('failure', `${outcome} during the rollout: rolled back`)
        : stays(stoppedStatus(phase), 'failure', `the run ${outcome}`);
  }
}
