/**
 * The dataset artifact: the contract between preprocessing (activities/data.ts), training, evaluation and serving.
 *
 * A dataset folder in the artifact store holds
 * - `manifest.json`: {@link DatasetManifest} (counts, schema, statistics, the split times, input hashes);
 * - `vocab.json`: {@link Vocabularies}, the id-to-index maps serving needs (index 0 = unknown / padding everywhere);
 * - `titles.json` ({@link TITLES_FILE}): the items' titles as written in the source, by item index (`''` for index 0
 *   and untitled items), for people (the run report); models read the title tokens. Absent from datasets made before it;
 * - one raw little-endian file per column, `<table>.<column>.bin`, dtype in the manifest's `columns`.
 *
 * Tables: `users` (by user index), `items` (by item index), `train`, `validation`, `test` (interactions).
 *
 * Search (only when the source had a search log; {@link DatasetManifest.search}): `queriesTrain`,
 * `queriesValidation`, `queriesTest` (one row per query: user index, timestamp), `judgementsTrain`, ... (the observed
 * graded relevance: query row, item index, grade 1-3, sorted by query then grade), `searchPairs` (fine-tuning pairs of
 * the train split: query row, item, grade, count), and `search-texts.json` ({@link SearchTexts}: item texts by item
 * index, query ids and texts by split).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../errors';

/** File of the items' display titles in a dataset folder (a JSON list by item index). */
export const TITLES_FILE = 'titles.json';

/** Tokens per item title (padded with 0). */
export const TITLE_LEN = 8;

export type SplitName = 'train' | 'validation' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'validation', 'test'];

/** Index-to-id lists; `users[i]` is the external id of user index i. Index 0 is `<unk>` in each. */
export interface Vocabularies {
  users: string[];
  items: string[];
  categories: string[];
  brands: string[];
  segments: string[];
  regions: string[];
  tokens: string[];
}

/** Per-user features, by user index. */
export interface UserTable {
  segment: Int32Array;
  region: Int32Array;
  /** Signup time, epoch ms (0 when unknown). */
  signupTime: Float64Array;
}

/** Per-item features, by item index. */
export interface ItemTable {
  category: Int32Array;
  brand: Int32Array;
  /** Price after the documented outlier policy and scaling (log1p, then standardized). */
  price: Float32Array;
  /** `items x TITLE_LEN` token indices, row-major, 0-padded. */
  titleTokens: Int32Array;
  /** Training-split interaction count: the popularity baseline and serving's fallback. */
  popularity: Float32Array;
}

/**
 * Positive interactions of one split, sorted by time. `label` is the implicit-feedback strength in (0, 1]
 * (view < click < add_to_cart < purchase); negatives are sampled at training time (lib/data/negatives.ts).
 */
export interface Interactions {
  user: Int32Array;
  item: Int32Array;
  label: Float32Array;
  /** Epoch ms. */
  timestamp: Float64Array;
}

export interface FeatureStats {
  count: number;
  nullRate: number;
  /** Numeric features. */
  mean?: number;
  std?: number;
  min?: number;
  max?: number;
  /** Histogram over fixed bin edges (numeric) or top categories (categorical), for drift (PSI). */
  histogram?: { edges?: number[]; labels?: string[]; counts: number[] };
}

export interface DatasetManifest {
  /** Artifact id (hash of the inputs and the preprocessing config). */
  id: string;
  createdAt: string;
  /** Where the data came from: `synthetic` or `csv`, and the input folder. */
  source: { kind: 'synthetic' | 'csv' | 'movielens'; dir: string; inputsHash: string };
  counts: { users: number; items: number; events: number; train: number; validation: number; test: number };
  /** Split boundaries (epoch ms): train < trainEnd <= validation < validationEnd <= test. */
  split: { trainEnd: number; validationEnd: number };
  /** Column dtypes, `<table>.<column>` to dtype, and table lengths. */
  columns: Record<string, ColumnDtype>;
  tables: Record<string, number>;
  stats: Record<string, FeatureStats>;
  /** Preprocessing settings that made it (missing-value policy, scaling parameters). */
  preprocessing: Record<string, unknown>;
  /** Search tables: counts and how they were made (absent without a search log). */
  search?: SearchManifest;
}

/** The `search` section of a manifest (present when the dataset has search tables). */
export interface SearchManifest {
  version: number;
  counts: {
    queries: Record<SplitName, number>;
    /** Queries with at least one event. */
    labelledQueries: Record<SplitName, number>;
    judgements: Record<SplitName, number>;
    pairs: number;
  };
  /** Grade of each event name. */
  grades: Record<string, number>;
  /** How item texts, splits and pairs were made. */
  itemText: string;
  split: string;
  pairs: string;
  dropped: Record<string, number>;
}

/** `search-texts.json`. */
export interface SearchTexts {
  /** Text of each item index (title and attributes; '' for `<unk>` and items without a row). */
  items: string[];
  /** Query ids and texts by split, by query row. */
  queries: Record<SplitName, { ids: string[]; text: string[] }>;
}

/** File of the search texts in a dataset folder. */
export const SEARCH_TEXTS_FILE = 'search-texts.json';

/** One split's queries with their observed relevance. */
export interface SearchSplit {
  /** External query ids and texts, by query row (time order). */
  ids: string[];
  text: string[];
  /** User index (0: anonymous or unknown). */
  user: Int32Array;
  /** Epoch ms. */
  timestamp: Float64Array;
  /** Observed graded relevance: query row, item index, grade (3 purchase, 2 add_to_cart, 1 click). */
  judgements: { query: Int32Array; item: Int32Array; grade: Int32Array };
  /** `rows + 1` offsets into `judgements` by query row: query q's are `[offsets[q], offsets[q + 1])`. */
  offsets: Int32Array;
}

/** The search tables of a dataset. */
export interface SearchTables {
  /** Text of each item index (title and attributes). */
  itemText: string[];
  splits: Record<SplitName, SearchSplit>;
  /**
   * Fine-tuning pairs of the train split: distinct (query text, item) with the strongest grade and the number of
   * queries; `query` is the first train query row with that text (`splits.train.text[query]`).
   */
  pairs: { query: Int32Array; item: Int32Array; grade: Int32Array; count: Int32Array };
}

export interface LoadedDataset {
  dir: string;
  manifest: DatasetManifest;
  vocab: Vocabularies;
  users: UserTable;
  items: ItemTable;
  splits: Record<SplitName, Interactions>;
  /** Present when the dataset has search tables (the source had `queries.csv`). */
  search?: SearchTables;
}

export type ColumnDtype = 'int32' | 'float32' | 'float64';
type TypedColumn = Int32Array | Float32Array | Float64Array;

const CTORS = { int32: Int32Array, float32: Float32Array, float64: Float64Array } as const;

function dtypeOf(arr: TypedColumn): ColumnDtype {
  if (arr instanceof Int32Array) return 'int32';
  if (arr instanceof Float32Array) return 'float32';
  return 'float64';
}

/** Write a table's columns into a dataset folder; returns the manifest entries for them. */
export async function writeTable(
  dir: string,
  table: string,
  columns: Record<string, TypedColumn>,
): Promise<{ columns: Record<string, ColumnDtype>; rows: number }> {
  await mkdir(dir, { recursive: true });
  const out: Record<string, ColumnDtype> = {};
  let rows = -1;
  for (const [name, arr] of Object.entries(columns)) {
    out[`${table}.${name}`] = dtypeOf(arr);
    await writeFile(join(dir, `${table}.${name}.bin`), new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
    if (name !== 'titleTokens') rows = Math.max(rows, arr.length);
  }
  return { columns: out, rows };
}

async function readColumn(dir: string, manifest: DatasetManifest, key: string): Promise<TypedColumn> {
  const dtype = manifest.columns[key];
  if (!dtype) throw new RecflowError(ErrorType.ArtifactMissing, `dataset ${dir}: column ${key} missing from manifest`);
  const buf = await readFile(join(dir, `${key}.bin`));
  const Ctor = CTORS[dtype];
  if (buf.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) {
    throw new RecflowError(ErrorType.ArtifactMissing, `dataset ${dir}: ${key}.bin is truncated`);
  }
  // Copy into an aligned buffer (Buffer pooling can leave byteOffset unaligned).
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return new Ctor(copy.buffer);
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

async function loadSearch(dir: string, manifest: DatasetManifest): Promise<SearchTables> {
  let texts: SearchTexts;
  try {
    texts = JSON.parse(await readFile(join(dir, SEARCH_TEXTS_FILE), 'utf8')) as SearchTexts;
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `dataset ${dir}: ${(err as Error).message}`);
  }
  const col = <T extends TypedColumn>(key: string) => readColumn(dir, manifest, key) as Promise<T>;
  const split = async (s: SplitName): Promise<SearchSplit> => {
    const user = await col<Int32Array>(`queries${cap(s)}.user`);
    const query = await col<Int32Array>(`judgements${cap(s)}.query`);
    const offsets = new Int32Array(user.length + 1);
    for (const q of query) offsets[q + 1] = (offsets[q + 1] ?? 0) + 1;
    for (let q = 0; q < user.length; q++) offsets[q + 1] = (offsets[q + 1] ?? 0) + (offsets[q] ?? 0);
    return {
      ids: texts.queries[s].ids,
      text: texts.queries[s].text,
      user,
      timestamp: await col<Float64Array>(`queries${cap(s)}.timestamp`),
      judgements: { query, item: await col(`judgements${cap(s)}.item`), grade: await col(`judgements${cap(s)}.grade`) },
      offsets,
    };
  };
  return {
    itemText: texts.items,
    splits: { train: await split('train'), validation: await split('validation'), test: await split('test') },
    pairs: {
      query: await col<Int32Array>('searchPairs.query'),
      item: await col<Int32Array>('searchPairs.item'),
      grade: await col<Int32Array>('searchPairs.grade'),
      count: await col<Int32Array>('searchPairs.count'),
    },
  };
}

/**
 * Load a dataset folder written by the preprocessing step (with its search tables when it has them).
 * @throws {RecflowError} `ArtifactMissing` when a file or column is missing or truncated.
 */
export async function loadDataset(dir: string): Promise<LoadedDataset> {
  let manifest: DatasetManifest;
  let vocab: Vocabularies;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as DatasetManifest;
    vocab = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as Vocabularies;
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `dataset ${dir}: ${(err as Error).message}`);
  }
  const col = <T extends TypedColumn>(key: string) => readColumn(dir, manifest, key) as Promise<T>;
  const interactions = async (s: SplitName): Promise<Interactions> => ({
    user: await col<Int32Array>(`${s}.user`),
    item: await col<Int32Array>(`${s}.item`),
    label: await col<Float32Array>(`${s}.label`),
    timestamp: await col<Float64Array>(`${s}.timestamp`),
  });
  const search = manifest.search ? await loadSearch(dir, manifest) : undefined;
  return {
    dir,
    manifest,
    vocab,
    ...(search ? { search } : {}),
    users: {
      segment: await col<Int32Array>('users.segment'),
      region: await col<Int32Array>('users.region'),
      signupTime: await col<Float64Array>('users.signupTime'),
    },
    items: {
      category: await col<Int32Array>('items.category'),
      brand: await col<Int32Array>('items.brand'),
      price: await col<Float32Array>('items.price'),
      titleTokens: await col<Int32Array>('items.titleTokens'),
      popularity: await col<Float32Array>('items.popularity'),
    },
    splits: {
      train: await interactions('train'),
      validation: await interactions('validation'),
      test: await interactions('test'),
    },
  };
}
