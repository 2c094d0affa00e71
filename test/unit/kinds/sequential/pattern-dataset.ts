/**
 * An in-memory dataset whose next items follow a deterministic rule: item i is always followed by
 * `successor(i) = ((i - 1 + step) mod (items - 1)) + 1` (one cycle through the whole catalogue, so a short history
 * never revisits an item). Each user starts at a random item and walks `minLength..maxLength` steps; the last step is
 * the test item, the one before it the validation item, the rest training (with `testLikeValidation`, the test item
 * repeats the validation item). Item popularity says nothing about the
 * next item, so only a model that reads the order can rank it first.
 */
import type { Interactions, LoadedDataset } from '../../../../lib/data/dataset';
import { mulberry32 } from '../../../../lib/rng';

export interface PatternOptions {
  users?: number;
  /** Including index 0. */
  items?: number;
  step?: number;
  minLength?: number;
  maxLength?: number;
  seed?: number;
  /**
   * Make the test item the validation item again (both the successor of the last training item), so that a model
   * reading the training history only can predict the test split too. @default false
   */
  testLikeValidation?: boolean;
}

/** The rule of {@link patternDataset}. */
export function successor(item: number, items: number, step: number): number {
  return ((item - 1 + step) % (items - 1)) + 1;
}

export function patternDataset(o: PatternOptions = {}): LoadedDataset {
  const users = o.users ?? 200;
  const items = o.items ?? 60;
  const step = o.step ?? 7;
  const minLength = o.minLength ?? 6;
  const maxLength = o.maxLength ?? 14;
  const r = mulberry32(o.seed ?? 5);
  const walks: number[][] = [];
  for (let u = 1; u <= users; u++) {
    const n = minLength + Math.floor(r() * (maxLength - minLength + 1));
    const walk = [1 + Math.floor(r() * (items - 1))];
    while (walk.length < n) walk.push(successor(walk[walk.length - 1]!, items, step));
    walks.push(walk);
  }
  const split = (pick: (walk: number[]) => Array<[number, number]>, t0: number): Interactions => {
    const rows: Array<[number, number, number]> = []; // time, user, item
    walks.forEach((w, k) => pick(w).forEach(([t, item]) => rows.push([t0 + t, k + 1, item])));
    rows.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return {
      user: Int32Array.from(rows, (x) => x[1]),
      item: Int32Array.from(rows, (x) => x[2]),
      label: Float32Array.from(rows, (x) => 0.25 + 0.25 * (x[2] % 4)),
      timestamp: Float64Array.from(rows, (x) => x[0]),
    };
  };
  const train = split((w) => w.slice(0, -2).map((item, t) => [t, item]), 0);
  const validation = split((w) => [[0, w[w.length - 2]!]], 1000);
  const test = split((w) => [[0, w[w.length - (o.testLikeValidation ? 2 : 1)]!]], 2000);
  const popularity = new Float32Array(items);
  for (const i of train.item) popularity[i] = (popularity[i] ?? 0) + 1;
  const ids = (prefix: string, n: number) => ['<unk>', ...Array.from({ length: n - 1 }, (_, i) => `${prefix}${i + 1}`)];
  return {
    dir: '(memory)',
    manifest: {
      id: `pattern-${users}-${items}-${step}`,
      createdAt: new Date(0).toISOString(),
      source: { kind: 'synthetic', dir: '(memory)', inputsHash: '' },
      counts: {
        users: users + 1,
        items,
        events: train.user.length + users * 2,
        train: train.user.length,
        validation: users,
        test: users,
      },
      split: { trainEnd: 1000, validationEnd: 2000 },
      columns: {},
      tables: {},
      stats: {},
      preprocessing: {},
    },
    vocab: {
      users: ids('u', users + 1),
      items: ids('i', items),
      categories: ids('c', 5),
      brands: ids('b', 4),
      segments: ['<unk>'],
      regions: ['<unk>'],
      tokens: ['<unk>'],
    },
    users: {
      segment: new Int32Array(users + 1),
      region: new Int32Array(users + 1),
      signupTime: new Float64Array(users + 1),
    },
    items: {
      category: Int32Array.from({ length: items }, (_, i) => (i === 0 ? 0 : 1 + (i % 4))),
      brand: Int32Array.from({ length: items }, (_, i) => (i === 0 ? 0 : 1 + (i % 3))),
      price: new Float32Array(items),
      titleTokens: new Int32Array(items * 8),
      popularity,
    },
    splits: { train, validation, test },
  };
}
