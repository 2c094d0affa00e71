/**
 * Preprocessing: validated rows (lib/data/validate.ts) to a dataset folder in the layout of lib/dataset.ts.
 *
 * The user and item tables go through danfojs-node DataFrames (missing-value policy, outliers, scaling, value
 * counts for the vocabularies). The event columns stay typed arrays: danfojs 1.2's `sortValues` is quadratic
 * (591 s for 1M rows measured on this machine) and its frames hold rows as JS arrays, so sorting, deduplication,
 * the time split and the per-pair aggregation are done in place on typed columns. Policies: docs/data.md.
 */
import { join } from 'node:path';
import * as dfd from 'danfojs-node';
import {
  TITLE_LEN,
  TITLES_FILE,
  writeTable,
  type DatasetManifest,
  type FeatureStats,
  type Vocabularies,
} from './dataset';
import { ErrorType, RecflowError } from '../errors';
import { writeJsonAtomic } from '../fs-atomic';
import { EDGES, categoricalFromCounts, categoricalStats, numericStats } from './stats';
import { EVENT_TYPES, PRICE_MAX, type CollectedData } from './validate';

/** Bump when the output for the same inputs changes (part of the dataset id). */
export const PREPROCESS_VERSION = 2;

/** Implicit label of each event type (index as in {@link EVENT_TYPES}). */
export const EVENT_LABELS: readonly number[] = [0.25, 0.5, 0.75, 1];

export const UNK = '<unk>';

/** The time split: the last `testFraction` of (deduplicated) events by time is test, the `validationFraction` before it validation. */
export interface SplitOptions {
  /** @default 0.1 */
  validationFraction?: number;
  /** @default 0.1 */
  testFraction?: number;
}

export interface PreprocessOptions {
  id: string;
  source: DatasetManifest['source'];
  split?: SplitOptions;
  /** Most frequent title tokens kept. @default 20000 */
  maxTokens?: number;
  onProgress?: (step: string) => void | Promise<void>;
}

/** Index list `['<unk>', ...by count desc, then name]` of a danfo value-count. */
function vocabFromCounts(values: string[]): string[] {
  const present = values.filter((v) => v !== '' && v !== UNK);
  if (!present.length) return [UNK];
  const counts = new dfd.Series(present).valueCounts();
  const labels = counts.index as string[];
  const freq = counts.values as number[];
  const order = labels.map((l, k) => [l, freq[k] ?? 0] as const);
  order.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return [UNK, ...order.map(([l]) => l)];
}

function lookup(vocab: string[]): (v: string) => number {
  const m = new Map(vocab.map((v, i) => [v, i]));
  return (v) => m.get(v) ?? 0;
}

/** Title tokens: lowercase runs of letters and digits. */
export function tokenize(title: string): string[] {
  return title
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
}

/**
 * One row per (user, item) of a split, in order of first appearance: the strongest label and the time of the last
 * event. An open-addressing table on the pair replaces a Map of numbers (no boxing, a third of the memory).
 */
class PairRows {
  readonly user: Int32Array;
  readonly item: Int32Array;
  readonly label: Float32Array;
  readonly ts: Float64Array;
  length = 0;
  private readonly table: Int32Array;
  private readonly mask: number;
  constructor(maxRows: number) {
    this.user = new Int32Array(maxRows);
    this.item = new Int32Array(maxRows);
    this.label = new Float32Array(maxRows);
    this.ts = new Float64Array(maxRows);
    let size = 16;
    while (size < 2 * maxRows) size *= 2;
    this.table = new Int32Array(size).fill(-1);
    this.mask = size - 1;
  }
  add(u: number, i: number, label: number, t: number): void {
    const table = this.table;
    let j = (Math.imul(u, 0x9e3779b1) ^ Math.imul(i, 0x85ebca6b)) & this.mask;
    for (;;) {
      const at = table[j] ?? -1;
      if (at < 0) break;
      if (this.user[at] === u && this.item[at] === i) {
        if (label > (this.label[at] ?? 0)) this.label[at] = label;
        this.ts[at] = t;
        return;
      }
      j = (j + 1) & this.mask;
    }
    const at = this.length++;
    table[j] = at;
    this.user[at] = u;
    this.item[at] = i;
    this.label[at] = label;
    this.ts[at] = t;
  }
  /** The rows sorted by time (ties: first appearance). */
  columns(): { user: Int32Array; item: Int32Array; label: Float32Array; timestamp: Float64Array } {
    const n = this.length;
    const ts = this.ts;
    const idx: number[] = [];
    for (let k = 0; k < n; k++) idx.push(k);
    idx.sort((a, b) => (ts[a] ?? 0) - (ts[b] ?? 0) || a - b);
    const out = {
      user: new Int32Array(n),
      item: new Int32Array(n),
      label: new Float32Array(n),
      timestamp: new Float64Array(n),
    };
    for (let k = 0; k < n; k++) {
      const r = idx[k] ?? 0;
      out.user[k] = this.user[r] ?? 0;
      out.item[k] = this.item[r] ?? 0;
      out.label[k] = this.label[r] ?? 0;
      out.timestamp[k] = ts[r] ?? 0;
    }
    return out;
  }
}

/**
 * Turn collected rows into a dataset folder `dir` (tables, vocab.json, manifest.json); returns the manifest.
 * @throws {RecflowError} `InvalidData` when no event survives cleaning or a split would be empty.
 */
export async function preprocess(data: CollectedData, dir: string, opts: PreprocessOptions): Promise<DatasetManifest> {
  const vf = opts.split?.validationFraction ?? 0.1;
  const tf = opts.split?.testFraction ?? 0.1;
  if (!(vf > 0 && tf > 0 && vf + tf < 0.9)) {
    throw new RecflowError(ErrorType.InvalidInput, `split fractions validation=${vf} test=${tf}: each > 0, sum < 0.9`);
  }
  const step = async (s: string) => opts.onProgress?.(s);

  // ---------------- users (danfo): missing segment/region -> '<unk>' (index 0), missing signup -> 0.
  await step('users');
  const userIds = data.hasUsers ? data.users.ids : data.eventUserIds;
  const nUsers = userIds.length + 1;
  const usersDf = new dfd.DataFrame(
    {
      segment: data.hasUsers ? data.users.segment.map((s) => s || null) : userIds.map(() => null),
      region: data.hasUsers ? data.users.region.map((s) => s || null) : userIds.map(() => null),
      signup: data.hasUsers
        ? data.users.signupTime.map((x) => (Number.isFinite(x) ? x : null))
        : userIds.map(() => null),
    },
    { columns: ['segment', 'region', 'signup'] },
  );
  const usersClean = usersDf.fillNa([UNK, UNK, 0], { columns: ['segment', 'region', 'signup'] });
  const segCol = (usersClean.column('segment').values as string[]).map(String);
  const regCol = (usersClean.column('region').values as string[]).map(String);
  const signupCol = usersClean.column('signup').values as number[];
  const segments = vocabFromCounts(segCol);
  const regions = vocabFromCounts(regCol);
  const segOf = lookup(segments);
  const regOf = lookup(regions);
  const userSegment = new Int32Array(nUsers);
  const userRegion = new Int32Array(nUsers);
  const signupTime = new Float64Array(nUsers);
  for (let k = 0; k < userIds.length; k++) {
    userSegment[k + 1] = segOf(segCol[k] ?? UNK);
    userRegion[k + 1] = regOf(regCol[k] ?? UNK);
    signupTime[k + 1] = Number(signupCol[k] ?? 0);
  }

  // ---------------- items (danfo): missing category/brand -> '<unk>'; price outliers (<= 0, > 10000) and missing
  // prices -> the median of valid prices; then log1p and standardization.
  await step('items');
  const itemIds = data.hasItems ? data.items.ids : data.eventItemIds;
  const nItems = itemIds.length + 1;
  const has = data.hasItems;
  const rawPrice = has ? data.items.price : itemIds.map(() => NaN);
  const itemsDf = new dfd.DataFrame(
    {
      category: has ? data.items.category.map((s) => s || null) : itemIds.map(() => null),
      brand: has ? data.items.brand.map((s) => s || null) : itemIds.map(() => null),
      price: rawPrice.map((p) => (Number.isFinite(p) && p > 0 && p <= PRICE_MAX ? p : null)),
    },
    { columns: ['category', 'brand', 'price'] },
  );
  const validPrices = (itemsDf.column('price').dropNa() as dfd.Series).values as number[];
  const priceMedian = validPrices.length ? new dfd.Series(validPrices).median() : 1;
  const itemsClean = itemsDf.fillNa([UNK, UNK, priceMedian], {
    columns: ['category', 'brand', 'price'],
  });
  const logPrice = itemsClean.column('price').apply((p: number) => Math.log1p(p)) as dfd.Series;
  const logMean = itemIds.length ? logPrice.mean() : 0;
  const logStdRaw = itemIds.length > 1 ? logPrice.std() : 1;
  const logStd = logStdRaw > 1e-9 ? logStdRaw : 1;
  const scaled = logPrice.values as number[];
  const catCol = (itemsClean.column('category').values as string[]).map(String);
  const brandCol = (itemsClean.column('brand').values as string[]).map(String);
  const categories = vocabFromCounts(catCol);
  const brands = vocabFromCounts(brandCol);
  const catOf = lookup(categories);
  const brandOf = lookup(brands);
  const titles = has ? data.items.title.map(tokenize) : itemIds.map(() => []);
  const tokenFreq = new Map<string, number>();
  for (const t of titles) for (const w of t) tokenFreq.set(w, (tokenFreq.get(w) ?? 0) + 1);
  const tokens = [
    UNK,
    ...[...tokenFreq.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, (opts.maxTokens ?? 20_000) - 1)
      .map(([w]) => w),
  ];
  const tokOf = lookup(tokens);
  const itemCategory = new Int32Array(nItems);
  const itemBrand = new Int32Array(nItems);
  const itemPrice = new Float32Array(nItems);
  const titleTokens = new Int32Array(nItems * TITLE_LEN);
  for (let k = 0; k < itemIds.length; k++) {
    itemCategory[k + 1] = catOf(catCol[k] ?? UNK);
    itemBrand[k + 1] = brandOf(brandCol[k] ?? UNK);
    itemPrice[k + 1] = ((scaled[k] ?? logMean) - logMean) / logStd;
    const t = titles[k] ?? [];
    for (let j = 0; j < Math.min(TITLE_LEN, t.length); j++) titleTokens[(k + 1) * TITLE_LEN + j] = tokOf(t[j] ?? '');
  }

  // ---------------- events: ids -> vocabulary indices, sort by time, drop exact duplicates.
  await step('events');
  const userIdx = lookup([UNK, ...userIds]);
  const itemIdx = lookup([UNK, ...itemIds]);
  const evUserMap = Int32Array.from(data.eventUserIds, userIdx);
  const evItemMap = Int32Array.from(data.eventItemIds, itemIdx);
  const ev = data.events;
  const n = ev.length;
  const T = ev.timestamp;
  const Ty = ev.type;
  const U = new Int32Array(n);
  const I = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    U[k] = evUserMap[ev.user[k] ?? 0] ?? 0;
    I[k] = evItemMap[ev.item[k] ?? 0] ?? 0;
  }
  // A plain array of indices: Array.prototype.sort is a TimSort, which is linear on the long ordered runs of an
  // export written in time order (TypedArray#sort with a comparator is a merge sort: 3-4x slower here).
  const order: number[] = [];
  for (let k = 0; k < n; k++) order.push(k);
  order.sort(
    (a, b) =>
      (T[a] ?? 0) - (T[b] ?? 0) ||
      (U[a] ?? 0) - (U[b] ?? 0) ||
      (I[a] ?? 0) - (I[b] ?? 0) ||
      (Ty[a] ?? 0) - (Ty[b] ?? 0),
  );
  const kept = new Int32Array(n);
  let m = 0;
  let duplicates = 0;
  let prev = -1;
  for (let k = 0; k < n; k++) {
    const e = order[k] ?? 0;
    if (prev >= 0 && T[e] === T[prev] && U[e] === U[prev] && I[e] === I[prev] && Ty[e] === Ty[prev]) {
      duplicates++;
      continue;
    }
    kept[m++] = e;
    prev = e;
  }
  order.length = 0;
  if (m < 10) {
    throw new RecflowError(
      ErrorType.InvalidData,
      `only ${m} clean events after validation and deduplication: too few to split`,
    );
  }

  // ---------------- time split: train < trainEnd <= validation < validationEnd <= test (no future in train).
  await step('split');
  const tsAt = (q: number) => T[kept[Math.min(m - 1, Math.max(0, Math.floor(q * m)))] ?? 0] ?? 0;
  const trainEnd = tsAt(1 - vf - tf);
  const validationEnd = tsAt(1 - tf);
  const firstTs = T[kept[0] ?? 0] ?? 0;
  if (!(trainEnd > firstTs && validationEnd > trainEnd)) {
    throw new RecflowError(
      ErrorType.InvalidData,
      `events span too little time for a ${1 - vf - tf}/${vf}/${tf} time split (boundaries ${new Date(trainEnd).toISOString()}, ${new Date(validationEnd).toISOString()})`,
    );
  }
  const popularity = new Float32Array(nItems);
  const perUser = new Float64Array(nUsers);
  const perItem = new Float64Array(nItems);
  const hours = new Uint8Array(m);
  const typeCounts = new Array<number>(EVENT_TYPES.length).fill(0);
  const sizes = new Int32Array(3);
  for (let k = 0; k < m; k++) {
    const t = T[kept[k] ?? 0] ?? 0;
    const j = t < trainEnd ? 0 : t < validationEnd ? 1 : 2;
    sizes[j] = (sizes[j] ?? 0) + 1;
  }
  const splits = Array.from(sizes, (size) => new PairRows(size));
  const [trainRows, validationRows, testRows] = splits as [PairRows, PairRows, PairRows];
  for (let k = 0; k < m; k++) {
    if (((k + 1) & 0xfffff) === 0) await step(`split ${k + 1}/${m}`);
    const e = kept[k] ?? 0;
    const t = T[e] ?? 0;
    const u = U[e] ?? 0;
    const i = I[e] ?? 0;
    const type = Ty[e] ?? 0;
    const s = t < trainEnd ? trainRows : t < validationEnd ? validationRows : testRows;
    if (s === trainRows) popularity[i] = (popularity[i] ?? 0) + 1;
    perUser[u] = (perUser[u] ?? 0) + 1;
    perItem[i] = (perItem[i] ?? 0) + 1;
    hours[k] = Math.floor((((t % 86_400_000) + 86_400_000) % 86_400_000) / 3_600_000);
    typeCounts[type] = (typeCounts[type] ?? 0) + 1;
    // Aggregate per (user, item) within the split: strongest label, time of the last event.
    s.add(u, i, EVENT_LABELS[type] ?? 0.25, t);
  }

  // ---------------- write
  await step('write');
  const columns: DatasetManifest['columns'] = {};
  const tables: Record<string, number> = {};
  const write = async (name: string, cols: Parameters<typeof writeTable>[2]) => {
    const res = await writeTable(dir, name, cols);
    Object.assign(columns, res.columns);
    tables[name] = res.rows;
  };
  await write('users', { segment: userSegment, region: userRegion, signupTime });
  await write('items', { category: itemCategory, brand: itemBrand, price: itemPrice, titleTokens, popularity });
  const train = trainRows.columns();
  const validation = validationRows.columns();
  const test = testRows.columns();
  await write('train', train);
  await write('validation', validation);
  await write('test', test);
  const vocab: Vocabularies = {
    users: [UNK, ...userIds],
    items: [UNK, ...itemIds],
    categories,
    brands,
    segments,
    regions,
    tokens,
  };
  await writeJsonAtomic(join(dir, 'vocab.json'), vocab);
  // Display titles for people (the run report); capped so a runaway column cannot bloat the artifact.
  await writeJsonAtomic(join(dir, TITLES_FILE), [
    '',
    ...itemIds.map((_, k) => (has ? (data.items.title[k] ?? '').trim().slice(0, 200) : '')),
  ]);
  const activeUsers = perUser.filter((c, k) => k > 0 && c > 0);
  const activeItems = perItem.filter((c, k) => k > 0 && c > 0);
  const stats: Record<string, FeatureStats> = {
    'users.segment': categoricalStats(segCol),
    'users.region': categoricalStats(regCol),
    'items.category': categoricalStats(catCol),
    'items.brand': categoricalStats(brandCol),
    'items.price': numericStats(rawPrice, EDGES.price),
    'events.event_type': categoricalFromCounts(EVENT_TYPES, typeCounts),
    'events.hour': numericStats(hours, EDGES.hour),
    'events.per_user': numericStats(activeUsers, EDGES.perEntity),
    'events.per_item': numericStats(activeItems, EDGES.perEntity),
    'train.label': numericStats(train.label, EDGES.label),
  };
  const manifest: DatasetManifest = {
    id: opts.id,
    createdAt: new Date().toISOString(),
    source: opts.source,
    counts: {
      users: nUsers,
      items: nItems,
      events: m,
      train: train.user.length,
      validation: validation.user.length,
      test: test.user.length,
    },
    split: { trainEnd, validationEnd },
    columns,
    tables,
    stats,
    preprocessing: {
      version: PREPROCESS_VERSION,
      missingValues: {
        'users.segment': UNK,
        'users.region': UNK,
        'users.signupTime': 0,
        'items.category': UNK,
        'items.brand': UNK,
        'items.price': 'median of valid prices',
        'items.title': 'no tokens',
        events: 'rows with an empty or invalid user, item, event type or timestamp are dropped',
      },
      outliers: { 'items.price': `outside (0, ${PRICE_MAX}] -> treated as missing` },
      price: { median: priceMedian, logMean, logStd, transform: '(log1p(price) - logMean) / logStd' },
      labels: Object.fromEntries(EVENT_TYPES.map((t, k) => [t, EVENT_LABELS[k]])),
      aggregation: 'one row per (user, item) and split: strongest label, time of the last event',
      split: { validationFraction: vf, testFraction: tf },
      dropped: { duplicates, inputEvents: n },
      negatives: 'sampled at training time: lib/data/negatives.ts (or the trainer), never stored',
    },
  };
  await writeJsonAtomic(join(dir, 'manifest.json'), manifest);
  return manifest;
}
