/**
 * Ingestion and the validation gate, one streaming pass per file (in the spirit of TFX's ExampleValidator): schema,
 * types, ranges, null rates, duplicates, referential integrity, volume against the previous dataset. The same pass
 * collects the clean rows for preprocessing, so synthetic and real exports share one code path.
 *
 * Structural problems (empty file, missing column, wrong delimiter, bad encoding, an over-long line) throw at once.
 * Row problems are counted per file and column: above a policy limit they are hard anomalies, below it soft ones
 * (the report lists both; preprocessing drops or repairs the rows, docs/data.md "Missing values and outliers").
 * Rows are numbered as in lib/data/csv.ts: the header is row 1, the first data row is row 2.
 *
 * The events pass reads field bytes ({@link scanCsv}): event types and timestamps are parsed from bytes, ids become
 * strings once per row, duplicates are found by a hash of the row's bytes; anything unusual (non-ASCII edges, rare
 * timestamp shapes) takes the string path, so results and messages are those of the string code.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../errors';
import { scanCsv, type CsvRecord } from './csv';
import { formatTime, parseTimestamp, parseTimestampBytes } from './timestamp';

export { parseTimestamp } from './timestamp';

/** Event types, weakest first; the implicit label grows with the index. */
export const EVENT_TYPES = ['view', 'click', 'add_to_cart', 'purchase'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Prices outside (0, PRICE_MAX] are outliers. */
export const PRICE_MAX = 10_000;

/** Input layouts: recflow's (events.csv, items.csv, users.csv) or MovieLens-style ratings. */
export type SourceFormat = 'recflow' | 'movielens';

/** A point in time in a policy: an ISO 8601 date or date-time (no offset: UTC), or epoch milliseconds. */
export type PolicyTime = string | number;

/** Limits of the gate: a rate above a limit is a hard anomaly, a non-zero rate below it a soft one. */
export interface ValidationPolicy {
  /** Share of empty values in a required column. @default 0.05 */
  maxNullRate: number;
  /** Share of unparseable or out-of-range values (bad timestamp, unknown event type, wrong field count). @default 0.01 */
  maxInvalidRate: number;
  /** Share of events whose user or item is not in users.csv / items.csv. @default 0.05 */
  maxUnknownIdRate: number;
  /** Share of exact duplicate rows (adjacent within a window of 1024 rows). @default 0.05 */
  maxDuplicateRate: number;
  /** Share of items priced <= 0 or > 10000. @default 0.05 */
  maxPriceOutlierRate: number;
  /** Events fewer than this share of the previous dataset's events: a hard anomaly. @default 0.5 */
  minVolumeRatio: number;
  /** Events more than this multiple of the previous dataset's: a soft anomaly. @default 5 */
  maxVolumeRatio: number;
  /** Longest line in bytes. @default 65536 */
  maxLineBytes: number;
  /**
   * Earliest accepted event time: earlier ones are invalid values (counted against `maxInvalidRate`). `null` accepts
   * any past date (MovieLens data is from the 1990s).
   * @default null
   */
  minTimestamp: PolicyTime | null;
  /**
   * Event times before this are accepted with a soft anomaly (`old_timestamp`: a wrong year, a placeholder date?).
   * `null` never warns.
   * @default '1990-01-01'
   */
  warnBefore: PolicyTime | null;
  /**
   * How far after the time of validation an event time may lie, in milliseconds (clock skew, time zones); later
   * ones are invalid.
   * @default 86400000 (one day)
   */
  maxFutureMs: number;
}

export const DEFAULT_POLICY: ValidationPolicy = {
  maxNullRate: 0.05,
  maxInvalidRate: 0.01,
  maxUnknownIdRate: 0.05,
  maxDuplicateRate: 0.05,
  maxPriceOutlierRate: 0.05,
  minVolumeRatio: 0.5,
  maxVolumeRatio: 5,
  maxLineBytes: 64 * 1024,
  minTimestamp: null,
  warnBefore: '1990-01-01',
  maxFutureMs: 86_400_000,
};

/** One finding of the gate. `row` (the header is row 1) and `value` are the first offending row's. */
export interface Anomaly {
  code:
    | 'null'
    | 'invalid'
    | 'unknown_id'
    | 'duplicate'
    | 'price_outlier'
    | 'out_of_order'
    | 'old_timestamp'
    | 'volume'
    | 'empty';
  severity: 'hard' | 'soft';
  file: string;
  column?: string;
  row?: number;
  value?: string;
  count: number;
  rate: number;
  limit?: number;
  message: string;
}

export interface FileReport {
  rows: number;
  columns: string[];
  nulls: Record<string, number>;
  invalid: Record<string, number>;
}

/** What the gate found; written as `report.json` of a `report` artifact. */
export interface ValidationReport {
  format: SourceFormat;
  dir: string;
  files: Record<string, FileReport>;
  /** Rows per file (`events`, `items`, `users`). */
  rows: Record<string, number>;
  hard: Anomaly[];
  soft: Anomaly[];
  policy: ValidationPolicy;
}

/** Clean rows kept for preprocessing: strings for tables, typed columns for events. */
export interface CollectedData {
  users: { ids: string[]; segment: string[]; region: string[]; signupTime: number[] };
  items: { ids: string[]; category: string[]; brand: string[]; price: number[]; title: string[] };
  /** Dictionary of ids seen in events (index into `eventUserIds` / `eventItemIds`). */
  eventUserIds: string[];
  eventItemIds: string[];
  events: { user: Int32Array; item: Int32Array; type: Int8Array; timestamp: Float64Array; length: number };
  /** Whether users.csv / items.csv existed (else tables come from the events' ids). */
  hasUsers: boolean;
  hasItems: boolean;
}

/** Options of {@link validateSource}. */
export interface ValidateOptions {
  format?: SourceFormat;
  policy?: Partial<ValidationPolicy>;
  /** Event count of the previous dataset, for the volume check. */
  previousEvents?: number;
  /** Keep the clean rows (preprocessing). */
  collect?: boolean;
  onProgress?: (p: { file: string; rows: number }) => void | Promise<void>;
}

/** Map a MovieLens rating (0.5..5) to an event type: >= 4.5 purchase, >= 4 add_to_cart, >= 3 click, else view. */
export function ratingToEventType(rating: number): EventType {
  if (rating >= 4.5) return 'purchase';
  if (rating >= 4) return 'add_to_cart';
  if (rating >= 3) return 'click';
  return 'view';
}

/** What each format needs, for messages. */
const FORMAT_FILES = {
  recflow: 'events.csv and items.csv (users.csv optional)',
  movielens: 'ratings.csv (movies.csv optional)',
} as const;

/**
 * Which format a folder holds, checked before anything is read: `recflow` when events.csv exists (items.csv must be
 * next to it), `movielens` when ratings.csv does. Call it before a run starts (`run --data DIR` without `--format`)
 * so a wrong folder fails at once.
 * @throws {RecflowError} `InvalidInput` when the folder does not exist or is not a folder; `InvalidData` naming the
 * missing files (and what the folder holds) when neither format matches, or when events.csv has no items.csv.
 */
export function detectDataFormat(dir: string): SourceFormat {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new RecflowError(ErrorType.InvalidInput, `data folder ${dir} does not exist`);
  }
  if (!isDir) throw new RecflowError(ErrorType.InvalidInput, `data folder ${dir} is not a folder`);
  const names = readdirSync(dir);
  const has = (n: string) => names.includes(n);
  if (has('events.csv')) {
    if (!has('items.csv')) {
      throw new RecflowError(
        ErrorType.InvalidData,
        `${dir}: events.csv found (recflow format) but items.csv is missing; the recflow format needs ${FORMAT_FILES.recflow}`,
        { dir, format: 'recflow', missing: ['items.csv'] },
      );
    }
    return 'recflow';
  }
  if (has('ratings.csv')) return 'movielens';
  const lower = new Map(names.map((n) => [n.toLowerCase(), n]));
  const hints: string[] = [];
  for (const want of ['events.csv', 'items.csv', 'users.csv', 'ratings.csv', 'movies.csv']) {
    const near = lower.get(want);
    if (near && near !== want) hints.push(`${near} should be named ${want} (names are case-sensitive)`);
  }
  if (has('ratings.dat')) {
    hints.push("ratings.dat (MovieLens 1M/10M, '::'-separated) is not read: convert it to ratings.csv");
  }
  const shown = names.filter((n) => !n.startsWith('.')).sort();
  const holds = shown.length
    ? `it holds ${shown.slice(0, 10).join(', ')}${shown.length > 10 ? ` and ${shown.length - 10} more` : ''}`
    : 'it is empty';
  throw new RecflowError(
    ErrorType.InvalidData,
    `${dir}: no events.csv nor ratings.csv, so neither data format matches (recflow needs ${FORMAT_FILES.recflow}; MovieLens needs ${FORMAT_FILES.movielens}); ${holds}${hints.length ? `; ${hints.join('; ')}` : ''}`,
    { dir, missing: ['events.csv', 'ratings.csv'] },
  );
}

/**
 * Which format a folder holds: {@link detectDataFormat}.
 * @deprecated Use {@link detectDataFormat}.
 */
export function detectFormat(dir: string): SourceFormat {
  return detectDataFormat(dir);
}

/** Growable typed column. */
class Col<T extends Int32Array | Int8Array | Float64Array> {
  data: T;
  length = 0;
  constructor(
    private readonly Ctor: new (n: number) => T,
    initial = 1024,
  ) {
    this.data = new Ctor(Math.max(16, initial));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new this.Ctor(this.data.length * 2);
      (next as Int32Array).set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  trimmed(): T {
    return this.data.subarray(0, this.length) as T;
  }
}

/** Per-file counters with the first offending row of each kind. */
export class Tally {
  readonly nulls: Record<string, number> = {};
  readonly invalid: Record<string, number> = {};
  readonly first = new Map<string, { row: number; value: string; column?: string; note: string }>();
  readonly counts = new Map<string, number>();
  /** A hint found on a later row than the first (e.g. 'did you mean add_to_cart?'), per kind. */
  readonly hints = new Map<string, string>();
  constructor(readonly file: string) {}
  hit(kind: string, row: number, value: string, note: string, column?: string, hint?: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    const f = this.first.get(kind);
    if (!f) this.first.set(kind, { row, value, column, note: hint ? `${note}; ${hint}` : note });
    else if (hint && !this.hints.has(kind) && !f.note.includes(hint)) {
      this.hints.set(kind, `row ${row}, value '${value.slice(0, 60)}': ${hint}`);
    }
  }
  /** Count an empty value; returns false (the row is not usable). */
  null(column: string, row: number): false {
    this.nulls[column] = (this.nulls[column] ?? 0) + 1;
    this.hit(`null:${column}`, row, '', 'empty value', column);
    return false;
  }
  bad(column: string, row: number, value: string, note: string, hint?: string): void {
    this.invalid[column] = (this.invalid[column] ?? 0) + 1;
    this.hit(`invalid:${column}`, row, value, note, column, hint);
  }
}

const pct = (x: number) => `${(100 * x).toFixed(x < 0.001 ? 3 : 1)}%`;

/**
 * The anomalies of one file of `rows` (> 0) data rows from its tally, one per kind counted: hard where the kind's
 * rate exceeds the policy's limit for it (nulls only limited in the `required` columns), soft otherwise; the
 * message names the file, the first offending row, column and value, and a later row's hint where there is one.
 */
export function tallyAnomalies(
  t: Tally,
  rows: number,
  required: readonly string[],
  policy: ValidationPolicy,
): Anomaly[] {
  const out: Anomaly[] = [];
  for (const [kind, count] of t.counts) {
    const f = t.first.get(kind);
    if (!f) continue;
    const [code, column] = kind.split(':') as [Anomaly['code'] | 'null', string | undefined];
    const rate = count / rows;
    const limit =
      code === 'null'
        ? required.includes(column ?? '')
          ? policy.maxNullRate
          : 1
        : code === 'invalid'
          ? policy.maxInvalidRate
          : code === 'unknown_id'
            ? policy.maxUnknownIdRate
            : code === 'duplicate'
              ? policy.maxDuplicateRate
              : code === 'price_outlier'
                ? policy.maxPriceOutlierRate
                : 1;
    const severity = rate > limit ? 'hard' : 'soft';
    const where = `${t.file} row ${f.row}${f.column ? `, column ${f.column}` : ''}, value '${f.value.slice(0, 60)}'`;
    const tail =
      severity === 'hard'
        ? `${pct(rate)} of rows (${count} of ${rows}) exceed the ${pct(limit)} limit`
        : `${count} of ${rows} rows (${pct(rate)})`;
    const hint = t.hints.get(kind);
    out.push({
      code,
      severity,
      file: t.file,
      column: f.column,
      row: f.row,
      value: f.value.slice(0, 200),
      count,
      rate,
      limit: limit < 1 ? limit : undefined,
      message: `${where}: ${f.note}; ${tail}${hint ? `; ${hint}` : ''}`,
    });
  }
  return out;
}

/** Lower-case letters and digits only: 'Add-To-Cart' -> 'addtocart'. */
const squash = (s: string) => s.toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');

/** 'did you mean add_to_cart?' for a near miss of an event type (spelling, separators, plural or past tense). */
export function eventTypeHint(raw: string): string | undefined {
  const v = squash(raw);
  if (!v) return undefined;
  for (const t of EVENT_TYPES) {
    const want = squash(t);
    const stems = [v, v.replace(/e?s$/, ''), v.replace(/e?d$/, ''), v.replace(/ing$/, ''), v.replace(/ing$/, 'e')];
    if (stems.includes(want) || (t === 'add_to_cart' && (v === 'addcart' || v === 'cart' || v === 'addtobasket'))) {
      return `did you mean ${t}?`;
    }
  }
  return undefined;
}

/** Index of an event type in {@link EVENT_TYPES} from ASCII bytes, any letter case; -1 when none matches. */
const TYPE_BYTES = EVENT_TYPES.map((t) => Buffer.from(t, 'ascii'));
function eventTypeOfBytes(b: Buffer, s: number, e: number): number {
  const n = e - s;
  for (let k = 0; k < TYPE_BYTES.length; k++) {
    const t = TYPE_BYTES[k] as Buffer;
    if (t.length !== n) continue;
    let j = 0;
    for (; j < n; j++) {
      let c = b[s + j] ?? 0;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      if (c !== t[j]) break;
    }
    if (j === n) return k;
  }
  return -1;
}

/** FNV-1a over bytes. */
function hashBytes(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = s; i < e; i++) h = Math.imul(h ^ (b[i] ?? 0), 16777619);
  return h;
}

/** Whether a[as .. as+n) equals b[bs .. bs+n). */
function sameBytes(a: Uint8Array, as: number, b: Uint8Array, bs: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[as + k] !== b[bs + k]) return false;
  return true;
}

/**
 * The last 1024 distinct rows, for the "exact duplicate of a recent row" check: the fields of a row joined by 0x01
 * (as the string code joined them), hashed, in a linear-probing table over a ring of fixed-size slots (one more
 * than the window: the spare slot receives the row being checked). Rows longer than a slot are kept as strings.
 */
class RecentRows {
  static readonly WINDOW = 1024;
  static readonly SLOT = 256;
  private static readonly SLOTS = RecentRows.WINDOW + 1;
  private readonly arena = Buffer.alloc(RecentRows.SLOTS * RecentRows.SLOT);
  private readonly lens = new Int32Array(RecentRows.SLOTS);
  private readonly hashes = new Int32Array(RecentRows.SLOTS);
  private readonly longKeys: Array<string | undefined> = new Array<string | undefined>(RecentRows.SLOTS);
  private readonly table = new Int32Array(4096).fill(-1);
  /** The spare slot (never in the table). */
  private next = 0;
  /** The oldest slot in the window. */
  private oldest = 0;
  private size = 0;

  /** True when `rec` equals a row in the window; else it enters the window (the oldest leaves when full). */
  seenOrAdd(rec: CsvRecord): boolean {
    const SLOT = RecentRows.SLOT;
    const arena = this.arena;
    const buf = rec.buf;
    const base = this.next * SLOT;
    const cap = base + SLOT;
    let w = base;
    let h = 0x811c9dc5 | 0;
    if (!rec.quoted) {
      // The fields lie in the line as in the file, separated by commas: one pass, commas read as 0x01.
      const e = rec.ends[rec.length - 1] ?? 0;
      for (let i = rec.starts[0] ?? 0; i < e; i++) {
        let c = buf[i] ?? 0;
        if (c === 0x2c) c = 1;
        if (w < cap) arena[w] = c;
        w++;
        h = Math.imul(h ^ c, 16777619);
      }
    } else
      for (let k = 0; k < rec.length; k++) {
        if (k > 0) {
          if (w < cap) arena[w] = 1;
          w++;
          h = Math.imul(h ^ 1, 16777619);
        }
        const e = rec.ends[k] ?? 0;
        for (let i = rec.starts[k] ?? 0; i < e; i++) {
          const c = buf[i] ?? 0;
          if (w < cap) arena[w] = c;
          w++;
          h = Math.imul(h ^ c, 16777619);
        }
      }
    const len = w - base;
    const long = len > SLOT ? rec.fields().join('\u0001') : undefined;
    const mask = this.table.length - 1;
    const t = this.table;
    for (let j = h & mask; ; j = (j + 1) & mask) {
      const slot = t[j] ?? -1;
      if (slot < 0) break;
      if (this.hashes[slot] !== h) continue;
      if (long !== undefined) {
        if (this.longKeys[slot] === long) return true;
      } else if (this.lens[slot] === len && sameBytes(arena, slot * SLOT, arena, base, len)) return true;
    }
    const slot = this.next;
    this.hashes[slot] = h;
    this.lens[slot] = long !== undefined ? -1 : len;
    this.longKeys[slot] = long;
    for (let j = h & mask; ; j = (j + 1) & mask) {
      if ((t[j] ?? -1) < 0) {
        t[j] = slot;
        break;
      }
    }
    if (this.size === RecentRows.WINDOW) {
      // The oldest leaves; its slot is the new spare.
      this.next = this.oldest;
      this.remove(this.oldest);
      this.oldest = (this.oldest + 1) % RecentRows.SLOTS;
    } else {
      this.size++;
      this.next = (slot + 1) % RecentRows.SLOTS;
    }
    return false;
  }

  /** Take `slot` out of the table (backward-shift deletion keeps probe chains whole). */
  private remove(slot: number): void {
    const t = this.table;
    const mask = t.length - 1;
    let j = (this.hashes[slot] ?? 0) & mask;
    while (t[j] !== slot) j = (j + 1) & mask;
    t[j] = -1;
    for (let k = (j + 1) & mask; (t[k] ?? -1) >= 0; k = (k + 1) & mask) {
      const home = (this.hashes[t[k] ?? 0] ?? 0) & mask;
      // Move t[k] back to the hole at j unless its home lies cyclically in (j, k].
      const inside = j < k ? home > j && home <= k : home > j || home <= k;
      if (!inside) {
        t[j] = t[k] ?? -1;
        t[k] = -1;
        j = k;
      }
    }
  }
}

/**
 * Ids seen in events, keyed by their bytes (no string per row): a slot per distinct id with its string, whether
 * it is known (in users.csv / items.csv) and its dictionary index once it is in a clean row.
 */
class IdSlots {
  private keys = Buffer.alloc(1 << 16);
  private used = 0;
  /** Per slot: [offset in keys, length]. */
  private spans = new Int32Array(2048);
  /** Open addressing, pairs [hash, slot + 1] (0: empty), so a probe reads one cache line. */
  private table = new Int32Array(4096);
  private count = 0;
  /** The slot of the previous call (rows of one session repeat the id). */
  private last = -1;
  /** The id of each slot. */
  readonly names: string[] = [];
  readonly known: boolean[] = [];
  /** Index into {@link ids}, -1 until the id is in a clean row. */
  readonly dict: number[] = [];
  /** The dictionary: ids in order of their first clean row. */
  readonly ids: string[] = [];
  constructor(private readonly isKnown: (id: string) => boolean) {}

  /** Slot of the id in bytes b[s .. e) (valid UTF-8, trimmed, not empty). */
  of(b: Uint8Array, s: number, e: number): number {
    const n = e - s;
    const keys = this.keys;
    const spans = this.spans;
    const last = this.last;
    if (last >= 0 && spans[2 * last + 1] === n && sameBytes(keys, spans[2 * last] ?? 0, b, s, n)) return last;
    const h = hashBytes(b, s, e);
    const t = this.table;
    const mask = (t.length >> 1) - 1;
    let j = h & mask;
    for (;;) {
      const slot = (t[2 * j + 1] ?? 0) - 1;
      if (slot < 0) break;
      if (t[2 * j] === h && spans[2 * slot + 1] === n && sameBytes(keys, spans[2 * slot] ?? 0, b, s, n)) {
        this.last = slot;
        return slot;
      }
      j = (j + 1) & mask;
    }
    const slot = this.add(b, s, n);
    t[2 * j] = h;
    t[2 * j + 1] = slot + 1;
    if (this.count * 2 > mask + 1) this.rehash();
    this.last = slot;
    return slot;
  }

  /** Slot of an id given as a string (the rare path: non-ASCII whitespace around it). */
  ofString(id: string): number {
    const b = Buffer.from(id, 'utf8');
    return this.of(b, 0, b.length);
  }

  /** Dictionary index of slot `s` (added on first use). */
  use(s: number): number {
    let d = this.dict[s] ?? -1;
    if (d < 0) {
      d = this.ids.length;
      this.ids.push(this.names[s] ?? '');
      this.dict[s] = d;
    }
    return d;
  }

  private add(b: Uint8Array, s: number, n: number): number {
    const slot = this.count++;
    if (2 * slot + 2 > this.spans.length) {
      const next = new Int32Array(this.spans.length * 2);
      next.set(this.spans);
      this.spans = next;
    }
    if (this.used + n > this.keys.length) {
      const next = Buffer.alloc(Math.max(this.keys.length * 2, this.used + n));
      this.keys.copy(next, 0, 0, this.used);
      this.keys = next;
    }
    for (let k = 0; k < n; k++) this.keys[this.used + k] = b[s + k] ?? 0;
    this.spans[2 * slot] = this.used;
    this.spans[2 * slot + 1] = n;
    this.used += n;
    const name = this.keys.toString('utf8', this.used - n, this.used);
    this.names.push(name);
    this.known.push(this.isKnown(name));
    this.dict.push(-1);
    return slot;
  }

  private rehash(): void {
    const old = this.table;
    const t = new Int32Array(old.length * 2);
    const mask = (t.length >> 1) - 1;
    for (let k = 0; k < old.length; k += 2) {
      if (!old[k + 1]) continue;
      let j = (old[k] ?? 0) & mask;
      while (t[2 * j + 1]) j = (j + 1) & mask;
      t[2 * j] = old[k] ?? 0;
      t[2 * j + 1] = old[k + 1] ?? 0;
    }
    this.table = t;
  }
}

/** A policy time as epoch ms; `null` stays null. */
function policyTime(name: string, v: PolicyTime | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  const t = typeof v === 'number' ? v : parseTimestamp(String(v).trim());
  if (!Number.isFinite(t)) {
    throw new RecflowError(
      ErrorType.InvalidInput,
      `validation policy ${name} ${JSON.stringify(v)}: expected an ISO 8601 date (2000-01-01), epoch milliseconds, or null`,
    );
  }
  return t;
}

/** A plain number read as epoch ms that is more plausible as epoch seconds (1973 .. the latest accepted time). */
const looksLikeSeconds = (n: number, maxTs: number) => n >= 1e8 && n < 1e11 && n * 1000 <= maxTs;
/** ... or as epoch microseconds. */
const looksLikeMicros = (n: number, maxTs: number) => n > maxTs && n / 1000 <= maxTs && n / 1000 >= 1e11;

/**
 * Validate a source folder (and collect its clean rows when `collect`).
 * @throws {RecflowError} `InvalidData` on structural problems (see lib/data/csv.ts); `InvalidInput` for a missing
 * folder or a malformed policy. Hard anomalies are returned in the report, not thrown: see {@link assertNoHardAnomalies}.
 */
export async function validateSource(
  dir: string,
  opts: ValidateOptions = {},
): Promise<{ report: ValidationReport; data?: CollectedData }> {
  if (!existsSync(dir)) throw new RecflowError(ErrorType.InvalidInput, `data folder ${dir} does not exist`);
  const format = opts.format ?? detectDataFormat(dir);
  const policy: ValidationPolicy = { ...DEFAULT_POLICY, ...opts.policy };
  const minTs = policyTime('minTimestamp', policy.minTimestamp);
  const warnBefore = policyTime('warnBefore', policy.warnBefore);
  if (!(Number.isFinite(policy.maxFutureMs) && policy.maxFutureMs >= 0)) {
    throw new RecflowError(
      ErrorType.InvalidInput,
      `validation policy maxFutureMs ${JSON.stringify(policy.maxFutureMs)}: expected milliseconds >= 0`,
    );
  }
  const files: Record<string, FileReport> = {};
  const anomalies: Anomaly[] = [];
  const collect = opts.collect ?? false;
  const progress = (file: string) => (rows: number) => opts.onProgress?.({ file, rows });
  /** An optional file that is there but holds nothing (0 bytes, blank, or a header only) counts as absent. */
  const emptyOptional = (file: string, why: string, instead: string) => {
    anomalies.push({
      code: 'empty',
      severity: 'soft',
      file,
      count: 0,
      rate: 0,
      message: `${file} is empty (${why}): treated as absent; ${instead}`,
    });
  };
  /** Whether an optional file is absent, holds nothing (0 bytes or only blank lines: absent too) or is there. */
  const optionalState = (file: string): 'absent' | 'empty' | 'blank' | 'present' => {
    const p = join(dir, file);
    if (!existsSync(p)) return 'absent';
    const st = statSync(p);
    if (!st.isFile()) return 'present';
    if (st.size === 0) return 'empty';
    return st.size <= 4096 && readFileSync(p, 'utf8').trim() === '' ? 'blank' : 'present';
  };
  const absentWhy = { empty: '0 bytes', blank: 'only blank lines' } as const;
  // ---- users
  const users: CollectedData['users'] = { ids: [], segment: [], region: [], signupTime: [] };
  const userIndex = new Map<string, number>();
  const usersFile = format === 'recflow' ? 'users.csv' : undefined;
  const usersState = usersFile ? optionalState(usersFile) : 'absent';
  const usersInstead = 'users come from the events, with unknown features';
  if (usersFile && (usersState === 'empty' || usersState === 'blank')) {
    emptyOptional(usersFile, absentWhy[usersState], usersInstead);
  }
  let hasUsers = usersState === 'present';
  const finish = (t: Tally, rows: number, header: string[], required: string[]) => {
    files[t.file] = { rows, columns: header, nulls: t.nulls, invalid: t.invalid };
    if (rows === 0) {
      anomalies.push({
        code: 'empty',
        severity: 'hard',
        file: t.file,
        count: 0,
        rate: 1,
        message: `${t.file} has a header but no data rows`,
      });
      return;
    }
    anomalies.push(...tallyAnomalies(t, rows, required, policy));
  };

  if (usersFile && hasUsers) {
    const t = new Tally(usersFile);
    const required = ['user_id'];
    let iId = 0;
    let iSeg = -1;
    let iReg = -1;
    let iSignup = -1;
    const { header, rows } = await scanCsv(
      join(dir, usersFile),
      {
        required,
        maxLineBytes: policy.maxLineBytes,
        onProgress: progress(usersFile),
        onHeader: (_h, columns) => {
          iId = columns.get('user_id') ?? 0;
          iSeg = columns.get('segment') ?? -1;
          iReg = columns.get('region') ?? -1;
          iSignup = columns.get('signup_time') ?? -1;
        },
      },
      (rec, row) => {
        const id = rec.trimmed(iId);
        if (!id) return t.null('user_id', row);
        if (userIndex.has(id)) return t.hit('duplicate:user_id', row, id, 'duplicate user id', 'user_id');
        const seg = iSeg >= 0 ? rec.trimmed(iSeg) : '';
        const reg = iReg >= 0 ? rec.trimmed(iReg) : '';
        if (iSeg >= 0 && !seg) t.null('segment', row);
        if (iReg >= 0 && !reg) t.null('region', row);
        let signup = NaN;
        if (iSignup >= 0) {
          const signupRaw = rec.trimmed(iSignup);
          if (!signupRaw) t.null('signup_time', row);
          else {
            signup = parseTimestamp(signupRaw);
            if (!Number.isFinite(signup)) t.bad('signup_time', row, signupRaw, 'not an ISO 8601 date or epoch ms');
          }
        }
        userIndex.set(id, users.ids.length);
        users.ids.push(id);
        if (collect) {
          users.segment.push(seg);
          users.region.push(reg);
          users.signupTime.push(Number.isFinite(signup) ? signup : NaN);
        }
      },
    );
    if (rows === 0) {
      hasUsers = false;
      files[usersFile] = { rows, columns: header, nulls: t.nulls, invalid: t.invalid };
      emptyOptional(usersFile, 'a header and no data rows', usersInstead);
    } else finish(t, rows, header, required);
  }

  // ---- items
  const items: CollectedData['items'] = { ids: [], category: [], brand: [], price: [], title: [] };
  const itemIndex = new Map<string, number>();
  const itemsFile = format === 'recflow' ? 'items.csv' : 'movies.csv';
  const itemsState = optionalState(itemsFile);
  let hasItems = itemsState !== 'absent';
  if (format === 'recflow' && !hasItems) {
    throw new RecflowError(ErrorType.InvalidData, `${dir}: items.csv not found (required with events.csv)`);
  }
  const itemsInstead = 'items come from the ratings, with unknown features';
  if (format === 'movielens' && (itemsState === 'empty' || itemsState === 'blank')) {
    hasItems = false;
    emptyOptional(itemsFile, absentWhy[itemsState], itemsInstead);
  }
  if (hasItems) {
    const t = new Tally(itemsFile);
    const ml = format === 'movielens';
    const required = ml ? ['title'] : ['item_id', 'category', 'brand', 'price', 'title'];
    let idCol = 'item_id';
    let iId = 0;
    const col: Record<string, number> = {};
    const { header, rows } = await scanCsv(
      join(dir, itemsFile),
      {
        required,
        maxLineBytes: policy.maxLineBytes,
        onProgress: progress(itemsFile),
        onHeader: (_h, columns) => {
          idCol = ml ? (columns.has('movieId') ? 'movieId' : 'item') : 'item_id';
          iId = columns.get(idCol) ?? -1;
          for (const c of ['genres', 'category', 'brand', 'title', 'price']) col[c] = columns.get(c) ?? -1;
        },
      },
      (rec, row) => {
        const get = (c: string) => {
          const k = col[c] ?? -1;
          return k >= 0 ? rec.trimmed(k) : '';
        };
        const id = iId >= 0 ? rec.trimmed(iId) : '';
        if (!id) return t.null(idCol, row);
        if (itemIndex.has(id)) return t.hit(`duplicate:${idCol}`, row, id, 'duplicate item id', idCol);
        let category = ml ? (get('genres').split('|')[0] ?? '') : get('category');
        if (category === '(no genres listed)') category = '';
        const brand = ml ? '' : get('brand');
        const title = get('title');
        let price = NaN;
        if (!ml) {
          if (!category) t.null('category', row);
          if (!brand) t.null('brand', row);
          const raw = get('price');
          if (!raw) t.null('price', row);
          else {
            price = Number(raw);
            if (!Number.isFinite(price)) t.bad('price', row, raw, 'not a number');
            else if (price <= 0 || price > PRICE_MAX) {
              t.hit('price_outlier:price', row, raw, `price outlier (outside (0, ${PRICE_MAX}])`, 'price');
            }
          }
        }
        itemIndex.set(id, items.ids.length);
        items.ids.push(id);
        if (collect) {
          items.category.push(category);
          items.brand.push(brand);
          items.price.push(price);
          items.title.push(title);
        }
      },
    );
    if (ml && rows === 0) {
      hasItems = false;
      files[itemsFile] = { rows, columns: header, nulls: t.nulls, invalid: t.invalid };
      emptyOptional(itemsFile, 'a header and no data rows', itemsInstead);
    } else finish(t, rows, header, required);
  }

  // ---- events
  const eventsFile = format === 'recflow' ? 'events.csv' : 'ratings.csv';
  const eventsPath = join(dir, eventsFile);
  const t = new Tally(eventsFile);
  // Typed columns sized from the file (about 40 bytes a row), grown by doubling.
  const guess = existsSync(eventsPath) ? Math.ceil(statSync(eventsPath).size / 40) : 1024;
  const initial = collect ? Math.min(guess, 1 << 24) : 16;
  const evUser = new Col(Int32Array, initial);
  const evItem = new Col(Int32Array, initial);
  const evType = new Col(Int8Array, initial);
  const evTs = new Col(Float64Array, initial);
  const userSlots = new IdSlots((id) => userIndex.has(id));
  const itemSlots = new IdSlots((id) => itemIndex.has(id));
  const typeIndex = new Map<string, number>(EVENT_TYPES.map((e, i) => [e, i]));
  const recent = new RecentRows();
  let lastTs = -Infinity;
  const maxTs = Date.now() + policy.maxFutureMs;
  const ml = format === 'movielens';
  let cols: { user: string; item: string } = { user: 'user_id', item: 'item_id' };
  const required = ml ? ['rating', 'timestamp'] : ['user_id', 'item_id', 'event_type', 'timestamp'];
  let width = 0;
  let iUser = 0;
  let iItem = 0;
  let iType = 0;
  let iTs = 0;
  let iRating = 0;
  const futureNote = `in the future: after ${formatTime(maxTs)} (now plus the policy's maxFutureMs, ${policy.maxFutureMs} ms)`;
  const minNote = minTs === null ? '' : `before ${formatTime(minTs)}, the policy's minTimestamp`;
  const warnNote =
    warnBefore === null
      ? ''
      : `before ${formatTime(warnBefore)} (the policy's warnBefore): accepted; a wrong year or a placeholder date?`;
  /** Range checks of a parsed time; false when the row is unusable. `raw` is only made for findings. */
  const checkTime = (ts: number, row: number, raw: () => string): boolean => {
    if (!Number.isFinite(ts)) {
      t.bad('timestamp', row, raw(), 'not an ISO 8601 date or epoch ms');
      return false;
    }
    if (ts > maxTs) {
      const r = raw();
      const n = /^\d+$/.test(r) && !ml ? Number(r) : NaN;
      t.bad(
        'timestamp',
        row,
        r,
        futureNote,
        looksLikeMicros(n, maxTs)
          ? `it looks like epoch microseconds (${formatTime(Math.floor(n / 1000))}): recflow reads a plain number as epoch milliseconds; divide by 1000`
          : undefined,
      );
      return false;
    }
    if (!ml && ts < 1e11 && looksLikeSeconds(ts, maxTs)) {
      const r = raw();
      if (/^\d+(\.\d+)?$/.test(r)) {
        t.bad(
          'timestamp',
          row,
          r,
          `looks like epoch seconds (${formatTime(ts * 1000)}), but recflow reads a plain number as epoch milliseconds (${formatTime(ts)}): multiply by 1000, or write ISO 8601 (2026-01-31T12:00:00Z)`,
        );
        return false;
      }
    }
    if (minTs !== null && ts < minTs) {
      t.bad('timestamp', row, raw(), minNote);
      return false;
    }
    if (warnBefore !== null && ts < warnBefore) t.hit('old_timestamp:timestamp', row, raw(), warnNote, 'timestamp');
    if (ts < lastTs) t.hit('out_of_order:timestamp', row, raw(), 'earlier than the row before', 'timestamp');
    else lastTs = ts;
    return true;
  };
  const { header, rows } = await scanCsv(
    eventsPath,
    {
      required,
      maxLineBytes: policy.maxLineBytes,
      onProgress: progress(eventsFile),
      onHeader: (_h, idx) => {
        if (ml) {
          const user = idx.has('userId') ? 'userId' : 'user';
          const item = idx.has('movieId') ? 'movieId' : 'item';
          if (!idx.has(user) || !idx.has(item)) {
            throw new RecflowError(
              ErrorType.InvalidData,
              `${eventsFile} row 1: missing column ${!idx.has(user) ? 'user (or userId)' : 'item (or movieId)'} (header: ${_h.join(',')})`,
              { file: eventsFile, row: 1 },
            );
          }
          cols = { user, item };
        }
        width = idx.size;
        // A column not in the header reads as field 0 (as the string code did).
        iUser = idx.get(cols.user) ?? 0;
        iItem = idx.get(cols.item) ?? 0;
        iType = idx.get('event_type') ?? 0;
        iTs = idx.get('timestamp') ?? 0;
        iRating = idx.get('rating') ?? 0;
      },
    },
    (rec, row) => {
      if (rec.length !== width) {
        t.bad('(row)', row, rec.fields().join(',').slice(0, 60), `${rec.length} fields, the header has ${width}`);
        return;
      }
      if (recent.seenOrAdd(rec)) {
        t.hit('duplicate', row, rec.fields().join(','), 'exact duplicate of a recent row');
        return;
      }
      const b = rec.buf;
      // Ids: by their bytes when the edges are ASCII, else through the string (Unicode whitespace trimmed).
      let us = -1;
      let is = -1;
      if (rec.bounds(iUser)) {
        if (rec.from < rec.to) us = userSlots.of(b, rec.from, rec.to);
      } else {
        const s = rec.trimmed(iUser);
        if (s) us = userSlots.ofString(s);
      }
      if (rec.bounds(iItem)) {
        if (rec.from < rec.to) is = itemSlots.of(b, rec.from, rec.to);
      } else {
        const s = rec.trimmed(iItem);
        if (s) is = itemSlots.ofString(s);
      }
      let type = -1;
      let ok = true;
      if (us < 0) ok = t.null(cols.user, row);
      if (is < 0) ok = t.null(cols.item, row);
      if (ml) {
        const raw = rec.trimmed(iRating);
        const rating = Number(raw);
        if (!raw) ok = t.null('rating', row);
        else if (!Number.isFinite(rating) || rating < 0 || rating > 10) {
          t.bad('rating', row, raw, 'not a rating in [0, 10]');
          ok = false;
        } else type = typeIndex.get(ratingToEventType(rating)) ?? 0;
      } else {
        const ascii = rec.bounds(iType);
        if (ascii && rec.from === rec.to) ok = t.null('event_type', row);
        else {
          type = ascii ? eventTypeOfBytes(b, rec.from, rec.to) : -1;
          if (type < 0) {
            const raw = rec.trimmed(iType);
            type = typeIndex.get(raw.toLowerCase()) ?? -1;
            if (!raw) ok = t.null('event_type', row);
            else if (type < 0) {
              t.bad('event_type', row, raw, `not one of ${EVENT_TYPES.join(', ')}`, eventTypeHint(raw));
              ok = false;
            }
          }
        }
      }
      let ts = NaN;
      const ascii = rec.bounds(iTs);
      if (ascii && rec.from === rec.to) ok = t.null('timestamp', row);
      else {
        const fast = ascii ? parseTimestampBytes(b, rec.from, rec.to, ml) : undefined;
        const raw = fast === undefined ? rec.trimmed(iTs) : '';
        if (fast === undefined && !raw) ok = t.null('timestamp', row);
        else {
          ts = fast ?? parseTimestamp(raw, ml);
          if (!checkTime(ts, row, () => raw || rec.trimmed(iTs))) ok = false;
        }
      }
      if (us >= 0 && hasUsers && !userSlots.known[us]) {
        const u = userSlots.names[us] ?? '';
        t.hit(`unknown_id:${cols.user}`, row, u, 'unknown user id (not in users.csv)', cols.user);
        ok = false;
      }
      if (is >= 0 && hasItems && !itemSlots.known[is]) {
        const i = itemSlots.names[is] ?? '';
        t.hit(`unknown_id:${cols.item}`, row, i, `unknown item id (not in ${itemsFile})`, cols.item);
        ok = false;
      }
      if (!ok || !collect) return;
      evUser.push(userSlots.use(us));
      evItem.push(itemSlots.use(is));
      evType.push(type);
      evTs.push(ts);
    },
  );
  finish(t, rows, header, [...required, cols.user, cols.item]);
  if (opts.previousEvents !== undefined && opts.previousEvents > 0) {
    const ratio = rows / opts.previousEvents;
    if (ratio < policy.minVolumeRatio || ratio > policy.maxVolumeRatio) {
      const hard = ratio < policy.minVolumeRatio;
      anomalies.push({
        code: 'volume',
        severity: hard ? 'hard' : 'soft',
        file: eventsFile,
        count: rows,
        rate: ratio,
        limit: hard ? policy.minVolumeRatio : policy.maxVolumeRatio,
        message: `${eventsFile}: ${rows} rows is ${ratio.toFixed(2)}x the previous dataset's ${opts.previousEvents} (${
          hard ? `below the ${policy.minVolumeRatio}x minimum` : `above ${policy.maxVolumeRatio}x`
        })`,
      });
    }
  }
  const report: ValidationReport = {
    format,
    dir,
    files,
    rows: {
      events: rows,
      items: files[itemsFile]?.rows ?? 0,
      users: files[usersFile ?? '']?.rows ?? 0,
    },
    hard: anomalies.filter((a) => a.severity === 'hard'),
    soft: anomalies.filter((a) => a.severity === 'soft'),
    policy,
  };
  const data: CollectedData | undefined = collect
    ? {
        users,
        items,
        eventUserIds: userSlots.ids,
        eventItemIds: itemSlots.ids,
        events: {
          user: evUser.trimmed(),
          item: evItem.trimmed(),
          type: evType.trimmed(),
          timestamp: evTs.trimmed(),
          length: evUser.length,
        },
        hasUsers,
        hasItems,
      }
    : undefined;
  return { report, data };
}

/**
 * Throw when the report has hard anomalies: the message is the first one's (file, row, column, value), with the
 * number of others.
 * @throws {RecflowError} `InvalidData`.
 */
export function assertNoHardAnomalies(report: ValidationReport, where?: string): void {
  const first = report.hard[0];
  if (!first) return;
  const more = report.hard.length > 1 ? ` (and ${report.hard.length - 1} more hard anomalies)` : '';
  throw new RecflowError(ErrorType.InvalidData, `${first.message}${more}${where ? `; report: ${where}` : ''}`, {
    hard: report.hard.slice(0, 20),
  });
}
