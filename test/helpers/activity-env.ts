/** A `MockActivityEnvironment` with the workers' interceptors (error mapping) and a quiet logger. */
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { activityInterceptors } from '../../activities/interceptors';

export function mockActivityEnv(
  info: ConstructorParameters<typeof MockActivityEnvironment>[0] = {},
): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: new DefaultLogger('WARN'), interceptors: activityInterceptors });
}
