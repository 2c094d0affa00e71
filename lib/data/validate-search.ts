/**
 * The validation gate for a shop's optional search log: `queries.csv` (`query_id,user_id,timestamp,query`) and
 * `search_events.csv` (`query_id,item_id,event,timestamp`), plus the item texts search needs (items.csv's title and
 * attribute columns). Same rules and messages as lib/data/validate.ts (built on its `Tally` and `tallyAnomalies`,
 * and lib/data/csv.ts's `readCsv`): structural problems throw, row problems are counted per file and column with
 * the first offending row, hard above the policy's limits. A missing or empty file (0 bytes, blank, or a header
 * without rows) is absent; without `queries.csv` the folder has no search data.
 */
import { existsSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readCsv } from './csv';
import {
  DEFAULT_POLICY,
  Tally,
  parseTimestamp,
  tallyAnomalies,
  type Anomaly,
  type FileReport,
  type ValidationPolicy,
  type ValidationReport,
} from './validate';

/** File names of the search log. */
export const SEARCH_FILES = { queries: 'queries.csv', events: 'search_events.csv' } as const;

/** Search event names, weakest first; the observed relevance grade is the index + 1. */
export const SEARCH_EVENT_TYPES = ['click', 'add_to_cart', 'purchase'] as const;

/** Optional natural-language attribute columns of items.csv (any may be absent; empty values are allowed). */
export const ITEM_ATTRIBUTE_COLUMNS = ['product_type', 'color', 'material', 'size'] as const;

/** Longest accepted query text, in characters. */
export const MAX_QUERY_CHARS = 1000;

/** Clean rows of the search log, kept for preprocessing (lib/data/preprocess-search.ts). */
export interface SearchCollected {
  /** Queries in file order. */
  queries: { ids: string[]; userIds: string[]; timestamp: number[]; text: string[] };
  /** Events whose query and item are known; `query` indexes `queries`, `grade` is 1 click, 2 cart, 3 purchase. */
  events: { query: number[]; itemIds: string[]; grade: number[]; timestamp: number[] };
  /** Item text ("title | type: ... | color: ..."), by items.csv row, with the item ids. */
  items: { ids: string[]; text: string[] };
}

/** What {@link validateSearch} found. */
export interface SearchValidation {
  /** Whether the folder has search data (a non-empty queries.csv). */
  present: boolean;
  files: Record<string, FileReport>;
  /** Rows per file: `queries`, `search_events`. */
  rows: Record<string, number>;
  anomalies: Anomaly[];
  data?: SearchCollected;
}

/** An optional file is absent when missing, 0 bytes, blank, or a header without rows. */
function hasContent(path: string): boolean {
  if (!existsSync(path)) return false;
  const { size } = statSync(path);
  return size > 0;
}

/** Whether a file has a line after its header (reads at most its first 64 KiB). */
async function hasDataRows(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const lines = buf.subarray(0, bytesRead).toString('utf8').split('\n');
    return lines.filter((l) => l.replace(/^\uFEFF/, '').trim() !== '').length >= 2;
  } finally {
    await fh.close();
  }
}

/**
 * A row's trimmed field by column name, or undefined when the row's field count is not the header's (counted as an
 * invalid `(row)`).
 */
function rowFields(
  t: Tally,
  f: string[],
  row: number,
  columns: ReadonlyMap<string, number>,
): ((column: string) => string) | undefined {
  if (f.length !== columns.size) {
    t.bad('(row)', row, f.join(',').slice(0, 60), `${f.length} fields, the header has ${columns.size}`);
    return undefined;
  }
  return (c) => (f[columns.get(c) ?? 0] ?? '').trim();
}

/** The searchable text of an item: its title, then its attributes as `key: value`. */
export function itemSearchText(fields: Record<string, string>): string {
  const parts = [fields.title ?? ''];
  const attr = (key: string, label: string) => {
    const v = (fields[key] ?? '').trim();
    if (v) parts.push(`${label}: ${v}`);
  };
  attr('product_type', 'type');
  attr('color', 'color');
  attr('material', 'material');
  attr('size', 'size');
  attr('brand', 'brand');
  attr('category', 'category');
  return parts.filter(Boolean).join(' | ');
}

/** Options of {@link validateSearch}. */
export interface ValidateSearchOptions {
  policy?: Partial<ValidationPolicy>;
  /** Keep the clean rows (preprocessing). */
  collect?: boolean;
  onProgress?: (p: { file: string; rows: number }) => void | Promise<void>;
}

/**
 * Validate a folder's search log (recflow format) against its items.csv and users.csv; collect the clean rows and
 * the item texts when `collect`.
 * @throws {RecflowError} `InvalidData` on structural problems (lib/data/csv.ts).
 */
export async function validateSearch(dir: string, opts: ValidateSearchOptions = {}): Promise<SearchValidation> {
  const policy: ValidationPolicy = { ...DEFAULT_POLICY, ...opts.policy };
  const collect = opts.collect ?? false;
  const progress = (file: string) => (rows: number) => opts.onProgress?.({ file, rows });
  const files: Record<string, FileReport> = {};
  const anomalies: Anomaly[] = [];
  const qPath = join(dir, SEARCH_FILES.queries);
  const ePath = join(dir, SEARCH_FILES.events);
  const qPresent = hasContent(qPath) && (await hasDataRows(qPath));
  const ePresent = hasContent(ePath) && (await hasDataRows(ePath));
  const none: SearchValidation = { present: false, files, rows: {}, anomalies };
  if (!qPresent && !ePresent) return none;

  // Items (ids and texts) and users (ids), read again: the search log checks its ids against them.
  const itemIds = new Map<string, number>();
  const items: SearchCollected['items'] = { ids: [], text: [] };
  if (existsSync(join(dir, 'items.csv'))) {
    await readCsv(
      join(dir, 'items.csv'),
      { required: ['item_id'], maxLineBytes: policy.maxLineBytes },
      (f, _row, columns) => {
        const get = (c: string) => (columns.has(c) ? (f[columns.get(c) ?? 0] ?? '').trim() : '');
        const id = get('item_id');
        if (!id || itemIds.has(id)) return;
        itemIds.set(id, items.ids.length);
        items.ids.push(id);
        if (collect) {
          const fields: Record<string, string> = {};
          for (const c of ['title', 'brand', 'category', ...ITEM_ATTRIBUTE_COLUMNS]) fields[c] = get(c);
          items.text.push(itemSearchText(fields));
        }
      },
    );
  }
  let userIds: Set<string> | undefined;
  if (existsSync(join(dir, 'users.csv'))) {
    const ids = new Set<string>();
    await readCsv(
      join(dir, 'users.csv'),
      { required: ['user_id'], maxLineBytes: policy.maxLineBytes },
      (f, _r, cols) => {
        const id = (f[cols.get('user_id') ?? 0] ?? '').trim();
        if (id) ids.add(id);
      },
    );
    userIds = ids;
  }

  // ---- queries.csv
  const queryIndex = new Map<string, number>();
  const queries: SearchCollected['queries'] = { ids: [], userIds: [], timestamp: [], text: [] };
  let qRows = 0;
  if (qPresent) {
    const t = new Tally(SEARCH_FILES.queries);
    const required = ['query_id', 'timestamp', 'query'];
    const { header, rows } = await readCsv(
      qPath,
      {
        required: ['query_id', 'user_id', 'timestamp', 'query'],
        maxLineBytes: policy.maxLineBytes,
        onProgress: progress(SEARCH_FILES.queries),
      },
      (f, row, columns) => {
        const get = rowFields(t, f, row, columns);
        if (!get) return;
        const id = get('query_id');
        if (!id) return t.null('query_id', row);
        if (queryIndex.has(id)) return t.hit('duplicate:query_id', row, id, 'duplicate query id', 'query_id');
        // Known from here on, so its events are not "unknown query" even when the row is unusable.
        queryIndex.set(id, -1);
        let ok = true;
        const user = get('user_id');
        if (!user) t.null('user_id', row);
        else if (userIds && !userIds.has(user)) {
          t.hit('unknown_id:user_id', row, user, 'unknown user id (not in users.csv)', 'user_id');
        }
        const tsRaw = get('timestamp');
        const ts = tsRaw ? parseTimestamp(tsRaw) : NaN;
        if (!tsRaw) ok = t.null('timestamp', row);
        else if (!Number.isFinite(ts)) {
          t.bad('timestamp', row, tsRaw, 'not an ISO 8601 date or epoch ms');
          ok = false;
        }
        const text = get('query');
        if (!text) ok = t.null('query', row);
        else if (text.length > MAX_QUERY_CHARS) {
          t.bad('query', row, text, `longer than ${MAX_QUERY_CHARS} characters`);
          ok = false;
        }
        if (!ok) return;
        queryIndex.set(id, queries.ids.length);
        queries.ids.push(id);
        if (collect) {
          queries.userIds.push(userIds && !userIds.has(user) ? '' : user);
          queries.timestamp.push(ts);
          queries.text.push(text);
        }
      },
    );
    qRows = rows;
    files[SEARCH_FILES.queries] = { rows, columns: header, nulls: t.nulls, invalid: t.invalid };
    if (rows > 0) anomalies.push(...tallyAnomalies(t, rows, required, policy));
  }
  if (qRows === 0) {
    if (ePresent) {
      anomalies.push({
        code: 'empty',
        severity: 'hard',
        file: SEARCH_FILES.events,
        count: 0,
        rate: 1,
        message: `${SEARCH_FILES.events} is present but ${SEARCH_FILES.queries} is missing or has no rows: search events need their queries`,
      });
      return { present: false, files, rows: {}, anomalies };
    }
    return none;
  }

  // ---- search_events.csv
  const events: SearchCollected['events'] = { query: [], itemIds: [], grade: [], timestamp: [] };
  let eRows = 0;
  if (!ePresent) {
    anomalies.push({
      code: 'empty',
      severity: 'soft',
      file: SEARCH_FILES.events,
      count: 0,
      rate: 0,
      message: `${SEARCH_FILES.queries} has no ${SEARCH_FILES.events}: the queries have no relevance labels`,
    });
  } else {
    const t = new Tally(SEARCH_FILES.events);
    const required = ['query_id', 'item_id', 'event', 'timestamp'];
    const grade = new Map<string, number>(SEARCH_EVENT_TYPES.map((e, k) => [e, k + 1]));
    const { header, rows } = await readCsv(
      ePath,
      { required, maxLineBytes: policy.maxLineBytes, onProgress: progress(SEARCH_FILES.events) },
      (f, row, columns) => {
        const get = rowFields(t, f, row, columns);
        if (!get) return;
        let ok = true;
        const q = get('query_id');
        const item = get('item_id');
        const ev = get('event');
        const tsRaw = get('timestamp');
        if (!q) ok = t.null('query_id', row);
        else if (!queryIndex.has(q)) {
          t.hit('unknown_id:query_id', row, q, `unknown query id (not in ${SEARCH_FILES.queries})`, 'query_id');
          ok = false;
        }
        if (!item) ok = t.null('item_id', row);
        else if (itemIds.size && !itemIds.has(item)) {
          t.hit('unknown_id:item_id', row, item, 'unknown item id (not in items.csv)', 'item_id');
          ok = false;
        }
        let g = 0;
        if (!ev) ok = t.null('event', row);
        else {
          g = grade.get(ev.toLowerCase()) ?? 0;
          if (!g) {
            t.bad('event', row, ev, `not one of ${SEARCH_EVENT_TYPES.join(', ')}`);
            ok = false;
          }
        }
        const ts = tsRaw ? parseTimestamp(tsRaw) : NaN;
        if (!tsRaw) ok = t.null('timestamp', row);
        else if (!Number.isFinite(ts)) {
          t.bad('timestamp', row, tsRaw, 'not an ISO 8601 date or epoch ms');
          ok = false;
        }
        if (!ok || !collect) return;
        const qi = queryIndex.get(q) ?? -1;
        if (qi < 0) return; // the query's row was unusable
        events.query.push(qi);
        events.itemIds.push(item);
        events.grade.push(g);
        events.timestamp.push(ts);
      },
    );
    eRows = rows;
    files[SEARCH_FILES.events] = { rows, columns: header, nulls: t.nulls, invalid: t.invalid };
    if (rows > 0) anomalies.push(...tallyAnomalies(t, rows, required, policy));
  }
  return {
    present: true,
    files,
    rows: { queries: qRows, search_events: eRows },
    anomalies,
    data: collect ? { queries, events, items } : undefined,
  };
}

/** Add a search validation's files, rows and anomalies to the main report (in place). */
export function mergeSearchReport(report: ValidationReport, search: SearchValidation): void {
  Object.assign(report.files, search.files);
  Object.assign(report.rows, search.rows);
  report.hard.push(...search.anomalies.filter((a) => a.severity === 'hard'));
  report.soft.push(...search.anomalies.filter((a) => a.severity === 'soft'));
}
