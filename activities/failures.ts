import { ApplicationFailure } from '@temporalio/activity';
import { RecflowError } from '../lib/errors';
import { NON_RETRYABLE_ERROR_TYPES } from '../lib/errors';

/**
 * Run an activity body and turn a {@link RecflowError} into an `ApplicationFailure` of the same type:
 * non-retryable where retrying cannot help (bad data, bad input, missing artifacts), retryable otherwise.
 */
export async function withFailures<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RecflowError) {
      throw ApplicationFailure.create({
        message: err.message,
        type: err.type,
        nonRetryable: NON_RETRYABLE_ERROR_TYPES.includes(err.type),
        details: err.details ? [err.details] : undefined,
        cause: err,
      });
    }
    throw err;
  }
}
