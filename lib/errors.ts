/**
 * Error types: the `type` of an `ApplicationFailure`, matched by `RetryPolicy.nonRetryableErrorTypes`.
 * Sandbox-safe: workflows import the constants.
 */
export const ErrorType = {
  /** Input data is malformed (file, row, column named in the message). Retrying cannot help. */
  InvalidData: 'InvalidData',
  /** The caller's input or configuration is wrong. Retrying cannot help. */
  InvalidInput: 'InvalidInput',
  /** An artifact that should exist does not, or its content hash does not match. */
  ArtifactMissing: 'ArtifactMissing',
  /** A model id, version or alias does not exist, or is malformed. */
  ModelNotFound: 'ModelNotFound',
  /** A gate refused the candidate. Not an error of the system: a decision. */
  GateFailed: 'GateFailed',
  /** Training produced NaN or diverged. */
  TrainingDiverged: 'TrainingDiverged',
  /** The serving fleet could not apply the desired state. Worth retrying. */
  FleetUnavailable: 'FleetUnavailable',
  /** The Temporal server cannot be reached (CLI and workers; never raised inside an activity). */
  TemporalUnavailable: 'TemporalUnavailable',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

/** Error types no retry can fix: the default `nonRetryableErrorTypes` of recflow activities. */
export const NON_RETRYABLE_ERROR_TYPES: string[] = [
  ErrorType.InvalidData,
  ErrorType.InvalidInput,
  ErrorType.ArtifactMissing,
  ErrorType.ModelNotFound,
  ErrorType.GateFailed,
  ErrorType.TrainingDiverged,
];

/**
 * An error outside Temporal (CLI, server, library code) that carries one of the {@link ErrorType}s.
 * Activities turn it into a non-retryable `ApplicationFailure` (see activities/failures.ts).
 */
export class RecflowError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'RecflowError';
  }
}
