import pino, { type Logger } from 'pino';
import type { RecflowConfig } from './config';

/**
 * Structured JSON logs on stderr (stdout stays for command output). Every line carries `component`; callers add
 * `workflowId`, `runId`, `step`, `modelVersion` as child bindings.
 */
export function createLogger(component: string, level: RecflowConfig['logLevel'] = 'info'): Logger {
  return pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}

export type { Logger };
