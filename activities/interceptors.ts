/**
 * The activity inbound interceptor every recflow worker installs: one place that turns a {@link RecflowError}
 * thrown anywhere in an activity into an `ApplicationFailure` of the same type (non-retryable where retrying cannot
 * help: bad data, bad input, missing artifacts), with the details attached, so the workflow, `recflow status` and
 * the report see the root cause's type and message. Other errors pass through unchanged (retryable).
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory } from '@temporalio/worker';
import { NON_RETRYABLE_ERROR_TYPES, RecflowError } from '../lib/errors';

/** The `ApplicationFailure` a {@link RecflowError} becomes; anything else is returned as is. */
export function toApplicationFailure(err: unknown): unknown {
  if (!(err instanceof RecflowError)) return err;
  return ApplicationFailure.create({
    message: err.message,
    type: err.type,
    nonRetryable: NON_RETRYABLE_ERROR_TYPES.includes(err.type),
    details: err.details ? [err.details] : undefined,
    cause: err,
  });
}

const errorMapping: ActivityInboundCallsInterceptor = {
  async execute(input, next) {
    try {
      return await next(input);
    } catch (err) {
      throw toApplicationFailure(err);
    }
  },
};

/** Pass as `interceptors: { activity: activityInterceptors }` to `Worker.create` (and `MockActivityEnvironment`). */
export const activityInterceptors: ActivityInterceptorsFactory[] = [() => ({ inbound: errorMapping })];
