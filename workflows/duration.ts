/**
 * Durations in workflow inputs: a number of milliseconds, or text such as `'90s'`, `'5 minutes'`, `'72 hours'`,
 * `'1.5h'` (the forms Temporal's own `Duration` strings take). Deterministic, sandbox-safe.
 */
const UNITS: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

/** Parse a duration to milliseconds; throws a TypeError naming the bad value. */
export function parseDurationMs(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
    throw new TypeError(`invalid duration ${value}: expected a non-negative number of milliseconds`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(String(value));
  const unit = m ? (m[2] ?? '').toLowerCase() || 'ms' : '';
  const factor = UNITS[unit];
  if (!m || factor === undefined) {
    throw new TypeError(`invalid duration '${value}': expected e.g. '30s', '5 minutes', '72 hours'`);
  }
  return Math.round(Number(m[1]) * factor);
}
