/**
 * The search tables of a dataset (layout: lib/data/dataset.ts), from the clean rows of lib/data/validate-search.ts:
 * item texts by item index, queries split by time at the interactions' split boundaries, each query's observed
 * graded relevance (the strongest event per query and item: purchase 3 > add_to_cart 2 > click 1), and the
 * training pairs (distinct query text and item of the train split, with the strongest grade and how many queries
 * had them) for fine-tuning.
 */
import { join } from 'node:path';
import { writeJsonAtomic } from '../fs-atomic';
import {
  SEARCH_TEXTS_FILE,
  SPLITS,
  writeTable,
  type ColumnDtype,
  type SearchManifest,
  type SearchTexts,
  type SplitName,
  type Vocabularies,
} from './dataset';
import type { SearchCollected } from './validate-search';

/** Bump when the search tables for the same inputs change (part of the dataset id). */
export const SEARCH_PREPROCESS_VERSION = 1;

/** Query text as pairs are deduplicated by: lowercased, whitespace collapsed. */
export function normalizeQuery(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}

/**
 * Write the search tables into the dataset folder `dir`; returns the manifest entries (columns, table lengths and
 * the `search` section).
 */
export async function preprocessSearch(
  data: SearchCollected,
  vocab: Pick<Vocabularies, 'users' | 'items'>,
  split: { trainEnd: number; validationEnd: number },
  dir: string,
): Promise<{ columns: Record<string, ColumnDtype>; tables: Record<string, number>; search: SearchManifest }> {
  const userIdx = new Map(vocab.users.map((id, k) => [id, k]));
  const itemIdx = new Map(vocab.items.map((id, k) => [id, k]));
  // Item texts by dataset item index ('' for <unk> and items without a row in items.csv).
  const itemText = vocab.items.map(() => '');
  data.items.ids.forEach((id, k) => {
    const i = itemIdx.get(id);
    if (i !== undefined && i > 0) itemText[i] = data.items.text[k] ?? '';
  });

  // Queries by split, in time order.
  const q = data.queries;
  const order = q.ids.map((_, k) => k).sort((a, b) => (q.timestamp[a] ?? 0) - (q.timestamp[b] ?? 0) || a - b);
  const splitOf = (t: number): SplitName =>
    t < split.trainEnd ? 'train' : t < split.validationEnd ? 'validation' : 'test';
  const bySplit: Record<SplitName, number[]> = { train: [], validation: [], test: [] };
  for (const k of order) {
    const s = splitOf(q.timestamp[k] ?? 0);
    bySplit[s].push(k);
  }

  // Observed relevance: the strongest event per (query, item); events of unknown items are dropped.
  const grades = new Map<number, Map<number, number>>();
  let droppedEvents = 0;
  for (let e = 0; e < data.events.query.length; e++) {
    const qk = data.events.query[e] ?? -1;
    const item = itemIdx.get(data.events.itemIds[e] ?? '') ?? 0;
    if (qk < 0 || item <= 0) {
      droppedEvents++;
      continue;
    }
    let m = grades.get(qk);
    if (!m) grades.set(qk, (m = new Map()));
    m.set(item, Math.max(m.get(item) ?? 0, data.events.grade[e] ?? 0));
  }

  const columns: Record<string, ColumnDtype> = {};
  const tables: Record<string, number> = {};
  const write = async (name: string, cols: Parameters<typeof writeTable>[2]) => {
    const res = await writeTable(dir, name, cols);
    Object.assign(columns, res.columns);
    tables[name] = Math.max(0, res.rows);
  };
  const texts: SearchTexts = {
    items: itemText,
    queries: { train: { ids: [], text: [] }, validation: { ids: [], text: [] }, test: { ids: [], text: [] } },
  };
  const counts: SearchManifest['counts'] = {
    queries: { train: 0, validation: 0, test: 0 },
    judgements: { train: 0, validation: 0, test: 0 },
    pairs: 0,
    labelledQueries: { train: 0, validation: 0, test: 0 },
  };
  for (const s of SPLITS) {
    const ks = bySplit[s];
    const user = new Int32Array(ks.length);
    const timestamp = new Float64Array(ks.length);
    const jq: number[] = [];
    const ji: number[] = [];
    const jg: number[] = [];
    ks.forEach((k, row) => {
      user[row] = userIdx.get(q.userIds[k] ?? '') ?? 0;
      timestamp[row] = q.timestamp[k] ?? 0;
      texts.queries[s].ids.push(q.ids[k] ?? '');
      texts.queries[s].text.push(q.text[k] ?? '');
      const m = grades.get(k);
      if (!m) return;
      counts.labelledQueries[s]++;
      const sorted = [...m].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
      for (const [item, g] of sorted) {
        jq.push(row);
        ji.push(item);
        jg.push(g);
      }
    });
    await write(`queries${cap(s)}`, { user, timestamp });
    await write(`judgements${cap(s)}`, {
      query: Int32Array.from(jq),
      item: Int32Array.from(ji),
      grade: Int32Array.from(jg),
    });
    counts.queries[s] = ks.length;
    counts.judgements[s] = jq.length;
  }

  // Training pairs: distinct (normalized text, item) of the train split.
  const pairs = new Map<string, { query: number; item: number; grade: number; count: number }>();
  bySplit.train.forEach((k, row) => {
    const m = grades.get(k);
    if (!m) return;
    const text = normalizeQuery(q.text[k] ?? '');
    for (const [item, g] of m) {
      const key = `${item}\u0000${text}`;
      const p = pairs.get(key);
      if (p) {
        p.grade = Math.max(p.grade, g);
        p.count++;
      } else pairs.set(key, { query: row, item, grade: g, count: 1 });
    }
  });
  const pairList = [...pairs.values()].sort((a, b) => a.query - b.query || b.grade - a.grade || a.item - b.item);
  await write('searchPairs', {
    query: Int32Array.from(pairList, (p) => p.query),
    item: Int32Array.from(pairList, (p) => p.item),
    grade: Int32Array.from(pairList, (p) => p.grade),
    count: Int32Array.from(pairList, (p) => p.count),
  });
  counts.pairs = pairList.length;
  await writeJsonAtomic(join(dir, SEARCH_TEXTS_FILE), texts);
  return {
    columns,
    tables,
    search: {
      version: SEARCH_PREPROCESS_VERSION,
      counts,
      grades: { click: 1, add_to_cart: 2, purchase: 3 },
      itemText: 'title | type: product_type | color: ... | material: ... | size: ... | brand: ... | category: ...',
      split: 'queries by their timestamp at the interactions split boundaries (trainEnd, validationEnd)',
      pairs: 'distinct (lowercased query text, item) of train queries with events; grade = strongest, count = queries',
      dropped: { events: droppedEvents },
    },
  };
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
