/**
 * The search kind's view of a dataset (lib/data/dataset.ts `SearchTables`): the catalogue texts, the fine-tuning
 * pairs of the train split, and the judged queries of a split (validation for model selection, test for the
 * report), each query with its observed graded relevance (3 purchase, 2 add to cart, 1 click).
 */
import type { LoadedDataset, SearchTables, SplitName } from '../../lib/data/dataset';
import { normalizeQuery } from '../../lib/data/preprocess-search';
import { ErrorType, RecflowError } from '../../lib/errors';
import type { TrainingPair } from './pairs';

/**
 * The dataset's search tables.
 * @throws {RecflowError} `InvalidData` when the dataset has no search log.
 */
export function requireSearch(ds: LoadedDataset): SearchTables {
  if (!ds.search)
    throw new RecflowError(
      ErrorType.InvalidData,
      `dataset ${ds.manifest.id} has no search log: the search kind trains on queries.csv and search_events.csv (docs/data.md); this source (${ds.manifest.source.kind} ${ds.manifest.source.dir}) has none`,
    );
  return ds.search;
}

/** The catalogue: dataset item indices with a text, their ids and texts (the index's rows, in this order). */
export interface Catalogue {
  /** Dataset item index of each row. */
  items: number[];
  ids: string[];
  texts: string[];
}

/** Items that have a text, in item-index order. */
export function catalogueOf(ds: LoadedDataset): Catalogue {
  const s = requireSearch(ds);
  const out: Catalogue = { items: [], ids: [], texts: [] };
  for (let i = 1; i < s.itemText.length; i++) {
    const text = s.itemText[i] ?? '';
    if (!text.trim()) continue;
    out.items.push(i);
    out.ids.push(ds.vocab.items[i] ?? String(i));
    out.texts.push(text);
  }
  if (!out.items.length)
    throw new RecflowError(ErrorType.InvalidData, `dataset ${ds.manifest.id}: no item has a text (items.csv title)`);
  return out;
}

/** A judged query: its text and its graded items (dataset item indices). */
export interface JudgedQuery {
  text: string;
  /** Dataset item index -> grade (> 0). */
  grades: Map<number, number>;
}

/**
 * The queries of a split that have judgements (events), in time order; repeats of the same text are kept (each
 * is a search someone made), at most `max` (the first ones).
 */
export function judgedQueries(ds: LoadedDataset, split: SplitName, max?: number): JudgedQuery[] {
  const sp = requireSearch(ds).splits[split];
  const out: JudgedQuery[] = [];
  for (let q = 0; q < sp.text.length; q++) {
    const from = sp.offsets[q] ?? 0;
    const to = sp.offsets[q + 1] ?? from;
    if (to <= from) continue;
    const text = sp.text[q] ?? '';
    if (!text.trim()) continue;
    const grades = new Map<number, number>();
    for (let j = from; j < to; j++) {
      const item = sp.judgements.item[j] ?? 0;
      const g = sp.judgements.grade[j] ?? 0;
      if (item > 0 && g > 0) grades.set(item, Math.max(grades.get(item) ?? 0, g));
    }
    if (!grades.size) continue;
    out.push({ text, grades });
    if (max !== undefined && out.length >= max) break;
  }
  return out;
}

/** The fine-tuning pairs of the train split: (query text, item text) with grade >= `minGrade`, the most frequent first. */
export function trainingPairs(ds: LoadedDataset, minGrade = 1, maxPairs = 0): TrainingPair[] {
  const s = requireSearch(ds);
  const rows: Array<{ query: string; positive: string; count: number; grade: number }> = [];
  for (let k = 0; k < s.pairs.query.length; k++) {
    const grade = s.pairs.grade[k] ?? 0;
    if (grade < minGrade) continue;
    const query = s.splits.train.text[s.pairs.query[k] ?? -1] ?? '';
    const positive = s.itemText[s.pairs.item[k] ?? 0] ?? '';
    if (!query.trim() || !positive.trim()) continue;
    rows.push({ query, positive, count: s.pairs.count[k] ?? 1, grade });
  }
  // Stable: most searched and strongest first, so `maxPairs` keeps what the shop's users do most.
  const order = rows
    .map((_, i) => i)
    .sort((a, b) => rows[b]!.count - rows[a]!.count || rows[b]!.grade - rows[a]!.grade || a - b);
  const kept = maxPairs > 0 ? order.slice(0, maxPairs) : order;
  return kept.map((i) => ({ query: rows[i]!.query, positive: rows[i]!.positive }));
}

/**
 * Judged item texts of each train query text (normalised): what hard-negative mining must never pick as a negative.
 */
export function trainRelevance(ds: LoadedDataset): (query: string, text: string) => boolean {
  const s = requireSearch(ds);
  const judged = new Map<string, Set<string>>();
  for (let k = 0; k < s.pairs.query.length; k++) {
    const q = normalizeQuery(s.splits.train.text[s.pairs.query[k] ?? -1] ?? '');
    let set = judged.get(q);
    if (!set) judged.set(q, (set = new Set()));
    set.add(s.itemText[s.pairs.item[k] ?? 0] ?? '');
  }
  return (query, text) => judged.get(normalizeQuery(query))?.has(text) ?? false;
}

/** Training texts for distillation: the train queries and the catalogue's texts, each once. */
export function distillationTexts(ds: LoadedDataset, catalogue: Catalogue): string[] {
  const s = requireSearch(ds);
  return [...new Set([...s.splits.train.text.filter((t) => t.trim()), ...catalogue.texts])];
}
