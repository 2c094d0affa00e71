/**
 * A small dataset with PLANTED structure, written in the lib/dataset.ts layout so `loadDataset` reads it back.
 *
 * Users fall into segments; each segment prefers a few categories; items belong to categories and their titles
 * carry category tokens. Each user's interactions come 85% from the preferred categories, so a model that learns
 * segment -> category beats popularity. Per user, the last interaction is in the test window, the one before it in
 * the validation window, the rest in train.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactRef, ArtifactStore } from '../../lib/artifacts';
import { TITLE_LEN, writeTable, type DatasetManifest, type Vocabularies } from '../../lib/data/dataset';
import { mulberry32 } from '../../lib/rng';

export interface TinyDatasetOptions {
  users?: number;
  items?: number;
  segments?: number;
  categories?: number;
  /** Interactions per user (the last two are validation and test). */
  perUser?: number;
  seed?: number;
  /** Manifest id. @default 'tiny' */
  id?: string;
}

const rng = mulberry32;

/** The planted truth: segment s prefers categories 2s-1 and 2s (mod the number of categories). */
export function preferredCategories(segment: number, categories: number): number[] {
  return [1 + ((2 * (segment - 1)) % categories), 1 + ((2 * (segment - 1) + 1) % categories)];
}

/** Probability-proportional oracle score of (user, item) under the generator (85% from preferred categories). */
export function plantedScore(
  segment: number,
  category: number,
  categories: number,
  itemsInCategory: number,
  items: number,
): number {
  const pref = preferredCategories(segment, categories).includes(category);
  return (pref ? 0.85 / 2 / Math.max(1, itemsInCategory) : 0) + 0.15 / items;
}

/** Write the dataset into `dir`; returns its manifest. */
export async function writeTinyDataset(dir: string, opts: TinyDatasetOptions = {}): Promise<DatasetManifest> {
  const nU = opts.users ?? 200;
  const nI = opts.items ?? 120;
  const nS = opts.segments ?? 4;
  const nC = opts.categories ?? 8;
  const perUser = opts.perUser ?? 12;
  const rand = rng(opts.seed ?? 7);
  const nB = 5;
  const nTok = 2 * nC + 4;

  const segment = new Int32Array(nU + 1);
  const region = new Int32Array(nU + 1);
  const signupTime = new Float64Array(nU + 1);
  for (let u = 1; u <= nU; u++) {
    segment[u] = 1 + ((u - 1) % nS);
    region[u] = 1 + Math.floor(rand() * 3);
    signupTime[u] = 1.6e12;
  }
  const category = new Int32Array(nI + 1);
  const brand = new Int32Array(nI + 1);
  const price = new Float32Array(nI + 1);
  const titleTokens = new Int32Array((nI + 1) * TITLE_LEN);
  const byCategory: number[][] = Array.from({ length: nC + 1 }, () => []);
  for (let i = 1; i <= nI; i++) {
    const c = 1 + ((i - 1) % nC);
    category[i] = c;
    brand[i] = 1 + Math.floor(rand() * nB);
    price[i] = (rand() - 0.5) * 2;
    // Title: two category tokens, one generic token, the rest padding.
    titleTokens[i * TITLE_LEN] = 1 + 2 * (c - 1);
    titleTokens[i * TITLE_LEN + 1] = 2 + 2 * (c - 1);
    titleTokens[i * TITLE_LEN + 2] = 1 + 2 * nC + Math.floor(rand() * 4);
    byCategory[c]?.push(i);
  }
  const preferred = (s: number): number[] => preferredCategories(s, nC);

  const T0 = 1.7e12;
  const trainEnd = T0 + (perUser - 2) * 1000;
  const validationEnd = trainEnd + 1000;
  const rows: Record<'train' | 'validation' | 'test', { u: number[]; i: number[]; t: number[] }> = {
    train: { u: [], i: [], t: [] },
    validation: { u: [], i: [], t: [] },
    test: { u: [], i: [], t: [] },
  };
  for (let u = 1; u <= nU; u++) {
    const prefs = preferred(segment[u] ?? 1);
    const seen = new Set<number>();
    for (let k = 0; k < perUser; k++) {
      let item = 0;
      for (let tries = 0; tries < 50 && (item === 0 || seen.has(item)); tries++) {
        if (rand() < 0.85) {
          const pool = byCategory[prefs[Math.floor(rand() * prefs.length)] ?? 1] ?? [];
          item = pool[Math.floor(rand() * pool.length)] ?? 1;
        } else item = 1 + Math.floor(rand() * nI);
      }
      seen.add(item);
      const split = k < perUser - 2 ? 'train' : k === perUser - 2 ? 'validation' : 'test';
      rows[split].u.push(u);
      rows[split].i.push(item);
      rows[split].t.push(T0 + k * 1000 + u);
    }
  }
  const popularity = new Float32Array(nI + 1);
  for (const i of rows.train.i) popularity[i] = (popularity[i] ?? 0) + 1;

  const columns: DatasetManifest['columns'] = {};
  const tables: Record<string, number> = {};
  const add = (name: string, r: { columns: DatasetManifest['columns']; rows: number }): void => {
    Object.assign(columns, r.columns);
    tables[name] = r.rows;
  };
  add('users', await writeTable(dir, 'users', { segment, region, signupTime }));
  add('items', await writeTable(dir, 'items', { category, brand, price, titleTokens, popularity }));
  for (const s of ['train', 'validation', 'test'] as const) {
    const n = rows[s].u.length;
    add(
      s,
      await writeTable(dir, s, {
        user: Int32Array.from(rows[s].u),
        item: Int32Array.from(rows[s].i),
        label: new Float32Array(n).fill(1),
        timestamp: Float64Array.from(rows[s].t),
      }),
    );
  }
  const names = (prefix: string, n: number): string[] => [
    '<unk>',
    ...Array.from({ length: n }, (_, k) => `${prefix}${k + 1}`),
  ];
  const vocab: Vocabularies = {
    users: names('u', nU),
    items: names('i', nI),
    categories: names('c', nC),
    brands: names('b', nB),
    segments: names('s', nS),
    regions: names('r', 3),
    tokens: names('t', nTok),
  };
  const manifest: DatasetManifest = {
    id: opts.id ?? 'tiny',
    createdAt: new Date(0).toISOString(),
    source: { kind: 'synthetic', dir: 'test/helpers/tiny-dataset.ts', inputsHash: JSON.stringify(opts) },
    counts: {
      users: nU,
      items: nI,
      events: nU * perUser,
      train: rows.train.u.length,
      validation: rows.validation.u.length,
      test: rows.test.u.length,
    },
    split: { trainEnd, validationEnd },
    columns,
    tables,
    stats: {},
    preprocessing: { planted: 'segment s prefers categories 2s-1 and 2s' },
  };
  await writeFile(join(dir, 'vocab.json'), JSON.stringify(vocab));
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return manifest;
}

/** Put the tiny dataset into a store as `dataset/<id>`. */
export async function putTinyDataset(
  store: ArtifactStore,
  id = 'tiny',
  opts: TinyDatasetOptions = {},
): Promise<ArtifactRef> {
  return store.put('dataset', id, async (dir) => {
    await writeTinyDataset(dir, { ...opts, id });
  });
}
