import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { RecflowConfig } from './config';

/**
 * Logs of the CLI, workers and servers. Two audiences:
 * - log shippers: structured JSON lines, every line with `component` (callers add `workflowId`, `runId`, `step`,
 *   `modelVersion` as child bindings);
 * - the person at the terminal: readable progress (the commands print it) and only the warnings and errors of the
 *   logs, one short line each, without task tokens or payloads.
 *
 * `logFormat: 'pretty'` (the default) writes the JSON lines to `logFile` and the short lines to the terminal;
 * `'json'` (`--log-format json`, `RECFLOW_LOG_FORMAT=json`) writes the JSON lines to stderr, as shippers expect.
 */
export type LogSettings = Pick<RecflowConfig, 'logLevel' | 'logFormat' | 'logFile'>;

/** Where the short terminal lines go: stderr, unless a console takes them (live progress, prompts). */
let terminalSink: (line: string) => void = (line) => process.stderr.write(`${line}\n`);

/** Route the terminal's short log lines (clients/console.ts holds them back while a prompt waits for an answer). */
export function setTerminalSink(sink: (line: string) => void): void {
  terminalSink = sink;
}

/** Fields never shown to a person (noise, or secrets): Temporal's task tokens, payloads, stacks of expected errors. */
const HIDDEN = new Set(['taskToken', 'time', 'level', 'pid', 'hostname', 'component', 'msg', 'sdkComponent', 'v']);

const colours = (): boolean => !!process.stderr.isTTY && !process.env.NO_COLOR;

/** One short, readable line for a JSON log record. */
export function shortLine(record: Record<string, unknown>): string {
  const level = Number(record.level ?? 30);
  const name = level >= 50 ? 'ERROR' : level >= 40 ? 'WARN' : level >= 30 ? 'info' : 'debug';
  const paint = (s: string) =>
    !colours() ? s : level >= 50 ? `\x1b[31m${s}\x1b[0m` : level >= 40 ? `\x1b[33m${s}\x1b[0m` : s;
  const time = typeof record.time === 'string' ? record.time.slice(11, 19) : new Date().toISOString().slice(11, 19);
  const extra = Object.entries(record)
    .filter(([k, v]) => !HIDDEN.has(k) && v !== undefined && v !== null && typeof v !== 'object')
    .slice(0, 6)
    .map(([k, v]) => `${k}=${String(v as string | number | boolean).slice(0, 80)}`)
    .join(' ');
  const err = record.err as { message?: string } | undefined;
  const text = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
  return `${time} ${paint(name)} ${text(record.component)}: ${text(record.msg)}${err?.message ? `: ${err.message}` : ''}${extra ? `  (${extra})` : ''}`;
}

/**
 * Warnings that say how a worker was built on purpose (the GPU worker runs activities only) or that the SDK handles
 * by itself, kept in the log file but not shown to a person: they read as trouble and are not.
 */
const EXPECTED_NOTICES = [
  /^No workflows registered, not polling for workflow tasks/,
  /^No activities registered, not polling/,
  // A status query that reached a worker after the workflow task it was attached to finished: the client retries.
  /^Query not found when attempting to respond to it/,
];

/** Whether a record is a warning the terminal leaves out (still in the log file). */
export function isExpectedNotice(record: Record<string, unknown>): boolean {
  return typeof record.msg === 'string' && EXPECTED_NOTICES.some((re) => re.test(record.msg as string));
}

class TerminalStream extends Writable {
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        if (!isExpectedNotice(record)) terminalSink(shortLine(record));
      } catch {
        terminalSink(line);
      }
    }
    done();
  }
}

/**
 * A logger for one component. With settings (the config), pretty mode sends JSON to the log file and warnings and
 * errors to the terminal as short lines; json mode sends JSON to stderr. With a bare level, JSON to stderr.
 */
export function createLogger(component: string, settings: LogSettings | RecflowConfig['logLevel'] = 'info'): Logger {
  const opts = { base: { component }, timestamp: pino.stdTimeFunctions.isoTime };
  if (typeof settings === 'string') return pino({ ...opts, level: settings }, pino.destination(2));
  if (settings.logFormat === 'json') return pino({ ...opts, level: settings.logLevel }, pino.destination(2));
  mkdirSync(dirname(settings.logFile), { recursive: true });
  return pino(
    { ...opts, level: settings.logLevel },
    pino.multistream([
      { level: settings.logLevel, stream: pino.destination({ dest: settings.logFile, append: true, sync: false }) },
      { level: 'warn', stream: new TerminalStream() },
    ]),
  );
}

export type { Logger };
