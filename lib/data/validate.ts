/**
 * Ingestion and the validation gate, one streaming pass per file (in the spirit of TFX's ExampleValidator): schema,
 * types, ranges, null rates, duplicates, referential integrity, volume against the previous dataset. The same pass
 * collects the clean rows for preprocessing, so synthetic and real exports share one code path.
 *
 * Structural problems (empty file, missing column, wrong delimiter, bad encoding, an over-long line) throw at once.
 * Row problems are counted per file and column: above a policy limit they are hard anomalies, below it soft ones
 * (the report lists both; preprocessing drops or repairs the rows, docs/data.md "Missing values and outliers").
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../errors';
import { readCsv } from './csv';

/** Event types, weakest first; the implicit label grows with the index. */
export const EVENT_TYPES = ['view', 'click', 'add_to_cart', 'purchase'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Prices outside (0, PRICE_MAX] are outliers. */
export const PRICE_MAX = 10_000;

/** Input layouts: recflow's (events.csv, items.csv, users.csv) or MovieLens-style ratings. */
export type SourceFormat = 'recflow' | 'movielens';

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
};

/** One finding of the gate. `row` and `value` are the first offending row's. */
export interface Anomaly {
  code: 'null' | 'invalid' | 'unknown_id' | 'duplicate' | 'price_outlier' | 'out_of_order' | 'volume' | 'empty';
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

const MIN_TS = Date.UTC(2000, 0, 1);

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

/** Map a MovieLens rating (0.5..5) to an event type: >= 4.5 purchase, >= 4 add_to_cart, >= 3 click, else view. */
export function ratingToEventType(rating: number): EventType {
  if (rating >= 4.5) return 'purchase';
  if (rating >= 4) return 'add_to_cart';
  if (rating >= 3) return 'click';
  return 'view';
}

/** Which format a folder holds: `recflow` when events.csv exists, `movielens` when ratings.csv does. */
export function detectFormat(dir: string): SourceFormat {
  if (existsSync(join(dir, 'events.csv'))) return 'recflow';
  if (existsSync(join(dir, 'ratings.csv'))) return 'movielens';
  throw new RecflowError(
    ErrorType.InvalidData,
    `${dir}: no events.csv (recflow format) nor ratings.csv (MovieLens format) found`,
  );
}

/** Growable typed column. */
class Col<T extends Int32Array | Int8Array | Float64Array> {
  data: T;
  length = 0;
  constructor(private readonly Ctor: new (n: number) => T) {
    this.data = new Ctor(1024);
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
  constructor(readonly file: string) {}
  hit(kind: string, row: number, value: string, note: string, column?: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    if (!this.first.has(kind)) this.first.set(kind, { row, value, column, note });
  }
  /** Count an empty value; returns false (the row is not usable). */
  null(column: string, row: number): false {
    this.nulls[column] = (this.nulls[column] ?? 0) + 1;
    this.hit(`null:${column}`, row, '', 'empty value', column);
    return false;
  }
  bad(column: string, row: number, value: string, note: string): void {
    this.invalid[column] = (this.invalid[column] ?? 0) + 1;
    this.hit(`invalid:${column}`, row, value, note, column);
  }
}

const pct = (x: number) => `${(100 * x).toFixed(x < 0.001 ? 3 : 1)}%`;

/**
 * Validate a source folder (and collect its clean rows when `collect`).
 * @throws {RecflowError} `InvalidData` on structural problems (see lib/data/csv.ts). Hard anomalies are returned
 * in the report, not thrown: see {@link assertNoHardAnomalies}.
 */
export async function validateSource(
  dir: string,
  opts: ValidateOptions = {},
): Promise<{ report: ValidationReport; data?: CollectedData }> {
  if (!existsSync(dir)) throw new RecflowError(ErrorType.InvalidInput, `data folder ${dir} does not exist`);
  const format = opts.format ?? detectFormat(dir);
  const policy: ValidationPolicy = { ...DEFAULT_POLICY, ...opts.policy };
  const files: Record<string, FileReport> = {};
  const anomalies: Anomaly[] = [];
  const collect = opts.collect ?? false;
  const progress = (file: string) => (rows: number) => opts.onProgress?.({ file, rows });
  // ---- users
  const users: CollectedData['users'] = { ids: [], segment: [], region: [], signupTime: [] };
  const userIndex = new Map<string, number>();
  const usersFile = format === 'recflow' ? 'users.csv' : undefined;
  const hasUsers = !!usersFile && existsSync(join(dir, usersFile));
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
      anomalies.push({
        code,
        severity,
        file: t.file,
        column: f.column,
        row: f.row,
        value: f.value.slice(0, 200),
        count,
        rate,
        limit: limit < 1 ? limit : undefined,
        message: `${where}: ${f.note}; ${tail}`,
      });
    }
  };

  if (usersFile && hasUsers) {
    const t = new Tally(usersFile);
    let idx: ReadonlyMap<string, number> | undefined;
    const required = ['user_id'];
    const { header, rows } = await readCsv(
      join(dir, usersFile),
      { required, maxLineBytes: policy.maxLineBytes, onProgress: progress(usersFile) },
      (f, row, columns) => {
        idx ??= columns;
        const get = (c: string) => (idx?.has(c) ? (f[idx.get(c) ?? 0] ?? '').trim() : '');
        const id = get('user_id');
        if (!id) return t.null('user_id', row);
        if (userIndex.has(id)) return t.hit('duplicate:user_id', row, id, 'duplicate user id', 'user_id');
        const seg = get('segment');
        const reg = get('region');
        const signupRaw = get('signup_time');
        if (idx?.has('segment') && !seg) t.null('segment', row);
        if (idx?.has('region') && !reg) t.null('region', row);
        let signup = NaN;
        if (idx?.has('signup_time')) {
          if (!signupRaw) t.null('signup_time', row);
          else {
            signup = parseTimestamp(signupRaw);
            if (!Number.isFinite(signup)) t.bad('signup_time', row, signupRaw, 'not an ISO 8601 date or epoch ms');
          }
        }
        userIndex.set(id, users.ids.length);
        if (collect) {
          users.ids.push(id);
          users.segment.push(seg);
          users.region.push(reg);
          users.signupTime.push(Number.isFinite(signup) ? signup : NaN);
        } else users.ids.push(id);
      },
    );
    finish(t, rows, header, required);
  }

  // ---- items
  const items: CollectedData['items'] = { ids: [], category: [], brand: [], price: [], title: [] };
  const itemIndex = new Map<string, number>();
  const itemsFile = format === 'recflow' ? 'items.csv' : 'movies.csv';
  const hasItems = existsSync(join(dir, itemsFile));
  if (format === 'recflow' && !hasItems) {
    throw new RecflowError(ErrorType.InvalidData, `${dir}: items.csv not found (required with events.csv)`);
  }
  if (hasItems) {
    const t = new Tally(itemsFile);
    let idx: ReadonlyMap<string, number> | undefined;
    const ml = format === 'movielens';
    const required = ml ? ['title'] : ['item_id', 'category', 'brand', 'price', 'title'];
    const { header, rows } = await readCsv(
      join(dir, itemsFile),
      { required, maxLineBytes: policy.maxLineBytes, onProgress: progress(itemsFile) },
      (f, row, columns) => {
        idx ??= columns;
        const get = (c: string) => (idx?.has(c) ? (f[idx.get(c) ?? 0] ?? '').trim() : '');
        const idCol = ml ? (idx?.has('movieId') ? 'movieId' : 'item') : 'item_id';
        const id = get(idCol);
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
    finish(t, rows, header, required);
  }

  // ---- events
  const eventsFile = format === 'recflow' ? 'events.csv' : 'ratings.csv';
  const t = new Tally(eventsFile);
  const evUser = new Col(Int32Array);
  const evItem = new Col(Int32Array);
  const evType = new Col(Int8Array);
  const evTs = new Col(Float64Array);
  const eventUserIds: string[] = [];
  const eventItemIds: string[] = [];
  const eventUserIndex = new Map<string, number>();
  const eventItemIndex = new Map<string, number>();
  const typeIndex = new Map<string, number>(EVENT_TYPES.map((e, i) => [e, i]));
  const recent = new Set<string>();
  const recentQueue: string[] = [];
  let lastTs = -Infinity;
  const maxTs = Date.now() + 86_400_000;
  let idx: ReadonlyMap<string, number> | undefined;
  const ml = format === 'movielens';
  let cols: { user: string; item: string } = { user: 'user_id', item: 'item_id' };
  const required = ml ? ['rating', 'timestamp'] : ['user_id', 'item_id', 'event_type', 'timestamp'];
  const { header, rows } = await readCsv(
    join(dir, eventsFile),
    { required, maxLineBytes: policy.maxLineBytes, onProgress: progress(eventsFile) },
    (f, row, columns) => {
      if (!idx) {
        idx = columns;
        if (ml) {
          const user = idx.has('userId') ? 'userId' : 'user';
          const item = idx.has('movieId') ? 'movieId' : 'item';
          if (!idx.has(user) || !idx.has(item)) {
            throw new RecflowError(
              ErrorType.InvalidData,
              `${eventsFile} line 1: missing column ${!idx.has(user) ? 'user (or userId)' : 'item (or movieId)'}`,
            );
          }
          cols = { user, item };
        }
      }
      if (f.length !== idx.size) {
        t.bad('(row)', row, f.join(',').slice(0, 60), `${f.length} fields, the header has ${idx.size}`);
        return;
      }
      const line = f.join('\u0001');
      if (recent.has(line)) {
        t.hit('duplicate', row, f.join(','), 'exact duplicate of a recent row');
        return;
      }
      recent.add(line);
      recentQueue.push(line);
      if (recentQueue.length > 1024) recent.delete(recentQueue.shift() ?? '');
      const get = (c: string) => (f[idx?.get(c) ?? 0] ?? '').trim();
      const u = get(cols.user);
      const i = get(cols.item);
      const tsRaw = get('timestamp');
      let type = -1;
      let ok = true;
      if (!u) ok = t.null(cols.user, row);
      if (!i) ok = t.null(cols.item, row);
      if (ml) {
        const raw = get('rating');
        const rating = Number(raw);
        if (!raw) ok = t.null('rating', row);
        else if (!Number.isFinite(rating) || rating < 0 || rating > 10) {
          t.bad('rating', row, raw, 'not a rating in [0, 10]');
          ok = false;
        } else type = typeIndex.get(ratingToEventType(rating)) ?? 0;
      } else {
        const raw = get('event_type');
        if (!raw) ok = t.null('event_type', row);
        else {
          type = typeIndex.get(raw.toLowerCase()) ?? -1;
          if (type < 0) {
            t.bad('event_type', row, raw, `not one of ${EVENT_TYPES.join(', ')}`);
            ok = false;
          }
        }
      }
      let ts = NaN;
      if (!tsRaw) ok = t.null('timestamp', row);
      else {
        ts = parseTimestamp(tsRaw, ml);
        if (!Number.isFinite(ts)) {
          t.bad('timestamp', row, tsRaw, 'not an ISO 8601 date or epoch ms');
          ok = false;
        } else if (ts < MIN_TS || ts > maxTs) {
          t.bad('timestamp', row, tsRaw, 'outside 2000-01-01 .. tomorrow');
          ok = false;
        } else {
          if (ts < lastTs) t.hit('out_of_order:timestamp', row, tsRaw, 'earlier than the row before', 'timestamp');
          else lastTs = ts;
        }
      }
      if (u && hasUsers && !userIndex.has(u)) {
        t.hit(`unknown_id:${cols.user}`, row, u, 'unknown user id (not in users.csv)', cols.user);
        ok = false;
      }
      if (i && hasItems && !itemIndex.has(i)) {
        t.hit(`unknown_id:${cols.item}`, row, i, `unknown item id (not in ${itemsFile})`, cols.item);
        ok = false;
      }
      if (!ok || !collect) return;
      let uk = eventUserIndex.get(u);
      if (uk === undefined) {
        uk = eventUserIds.length;
        eventUserIds.push(u);
        eventUserIndex.set(u, uk);
      }
      let ik = eventItemIndex.get(i);
      if (ik === undefined) {
        ik = eventItemIds.length;
        eventItemIds.push(i);
        eventItemIndex.set(i, ik);
      }
      evUser.push(uk);
      evItem.push(ik);
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
        eventUserIds,
        eventItemIds,
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
