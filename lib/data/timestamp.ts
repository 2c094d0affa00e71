/**
 * Timestamps of input files: the string parser ({@link parseTimestamp}) and a byte-level fast path for the common
 * shapes ({@link parseTimestampBytes}), which gives the same value or defers to the string parser.
 */

/**
 * Parse a timestamp: ISO 8601 (`2026-01-31T12:00:00Z`, `2026-01-31 12:00:00` read as UTC, a date) or epoch milliseconds
 * (`epochSeconds` reads a plain number as seconds, MovieLens). NaN when unparseable.
 */
export function parseTimestamp(s: string, epochSeconds = false): number {
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    return epochSeconds && n < 1e11 ? n * 1000 : n;
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(s)) return NaN;
  let iso = s.length > 10 && s[10] === ' ' ? `${s.slice(0, 10)}T${s.slice(11)}` : s;
  // No offset: UTC (Date.parse would read local time), so results do not depend on the machine's time zone.
  if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(iso)) iso += 'Z';
  return Date.parse(iso);
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Value of `n` ASCII digits at `b[s..]`, or -1 when one is not a digit. */
function digits(b: Uint8Array, s: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const d = (b[s + k] ?? 0) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * {@link parseTimestamp} of the bytes `b[s..e)` (trimmed, ASCII) for the common shapes: a plain integer of up to 15
 * digits, `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM:SS[.mmm][Z]` with a valid calendar date and time. Returns `undefined`
 * for any other shape: then call {@link parseTimestamp} on the string, which decides.
 */
export function parseTimestampBytes(b: Uint8Array, s: number, e: number, epochSeconds = false): number | undefined {
  const n = e - s;
  if (n <= 0) return undefined;
  const c0 = b[s] ?? 0;
  if (n <= 15 && c0 >= 0x30 && c0 <= 0x39) {
    const v = digits(b, s, n);
    if (v >= 0) return epochSeconds && v < 1e11 ? v * 1000 : v;
  }
  if (n !== 10 && n !== 19 && n !== 20 && n !== 23 && n !== 24) return undefined;
  if (b[s + 4] !== 0x2d || b[s + 7] !== 0x2d) return undefined;
  const y = digits(b, s, 4);
  const mo = digits(b, s + 5, 2);
  const d = digits(b, s + 8, 2);
  if (y < 1000 || mo < 1 || mo > 12 || d < 1) return undefined;
  const leap = mo === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 1 : 0;
  if (d > (DAYS[mo - 1] ?? 31) + leap) return undefined;
  if (n === 10) return daysFromCivil(y, mo, d) * 86_400_000;
  const sep = b[s + 10];
  if ((sep !== 0x54 && sep !== 0x20) || b[s + 13] !== 0x3a || b[s + 16] !== 0x3a) return undefined;
  const hh = digits(b, s + 11, 2);
  const mm = digits(b, s + 14, 2);
  const ss = digits(b, s + 17, 2);
  if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 59) return undefined;
  let ms = 0;
  if (n >= 23) {
    if (b[s + 19] !== 0x2e) return undefined;
    ms = digits(b, s + 20, 3);
    if (ms < 0) return undefined;
  }
  if ((n === 20 || n === 24) && b[e - 1] !== 0x5a) return undefined;
  return daysFromCivil(y, mo, d) * 86_400_000 + hh * 3_600_000 + mm * 60_000 + ss * 1000 + ms;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), as `Date.UTC(y, m - 1, d) / 864e5`. */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** `YYYY-MM-DD` of an epoch-ms time, or the ISO string when it has a time of day; `String(t)` when out of range. */
export function formatTime(t: number): string {
  if (!Number.isFinite(t) || Math.abs(t) > 8.64e15) return String(t);
  const iso = new Date(t).toISOString();
  return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso;
}
