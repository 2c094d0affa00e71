/**
 * Sample recommendations for the run report: a few test users, picked deterministically (a mix of returning and new
 * users), each with what they did before and next, and the top items of each bundle's recommend graph, run with
 * onnxruntime-node as serving runs it (the user's training items excluded; a `history` input fed when the graph has
 * one; users a bundle does not know get its popularity fallback, as `/v1/recommend` answers them). Node only.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ONNX_IO, type Precision } from '../bundle';
import {
  TITLE_LEN,
  TITLES_FILE,
  type DatasetManifest,
  type Interactions,
  type ItemTable,
  type Vocabularies,
} from '../data/dataset';
import { ErrorType, RecflowError } from '../errors';
import { loadBundle } from '../onnx/bundle-io';

/** One item as the report shows it. */
export interface SampleItem {
  id: string;
  title: string;
  category: string;
  /** The user interacted with it in the test split (what they did next). */
  next: boolean;
}

/** What one bundle recommends to one user. */
export interface SampleList {
  items: SampleItem[];
  /** `popularity`: the bundle does not know the user, so serving answers with its popular items. */
  fallback?: 'popularity';
}

export interface SampleUser {
  id: string;
  /** `returning`: the user has training interactions; `new`: none (the evaluation's `users:new`). */
  kind: 'returning' | 'new';
  trainEvents: number;
  /** The most recent training items, most recent first. */
  history: SampleItem[];
  /** The user's test items. */
  next: SampleItem[];
  /** By bundle name (`champion`, `candidate`). */
  lists: Record<string, SampleList>;
}

export interface SampleOptions {
  /** Users shown. @default 5 */
  users?: number;
  /** Items per list. @default 5 */
  k?: number;
  /** The graphs run. @default 'int8' (what the fleet serves by default) */
  precision?: Precision;
  /** Training items fed to a graph's `history` input (most recent last). @default 200 */
  historyLength?: number;
}

/**
 * The part of a dataset the samples read (a `LoadedDataset` is one): ids, categories, title tokens, and who
 * interacted with what in train and test.
 */
export interface SampleDataset {
  dir: string;
  vocab: Pick<Vocabularies, 'users' | 'items' | 'categories' | 'tokens'>;
  items: Pick<ItemTable, 'category' | 'titleTokens'>;
  splits: { train: Pick<Interactions, 'user' | 'item'>; test: Pick<Interactions, 'user' | 'item'> };
}

/**
 * Read only what {@link SampleDataset} needs from a dataset folder (lib/data/dataset.ts layout): a report must not
 * load every column of a large dataset within its short activity timeout.
 * @throws {RecflowError} `ArtifactMissing` when a file is missing or a column is not int32.
 */
export async function loadSampleDataset(dir: string): Promise<SampleDataset & { manifest: DatasetManifest }> {
  const json = async <T>(name: string): Promise<T> => {
    try {
      return JSON.parse(await readFile(join(dir, name), 'utf8')) as T;
    } catch (err) {
      throw new RecflowError(ErrorType.ArtifactMissing, `dataset ${dir}: ${name}: ${(err as Error).message}`);
    }
  };
  const manifest = await json<DatasetManifest>('manifest.json');
  const vocab = await json<Vocabularies>('vocab.json');
  const int32 = async (key: string): Promise<Int32Array> => {
    if (manifest.columns[key] !== 'int32')
      throw new RecflowError(ErrorType.ArtifactMissing, `dataset ${dir}: column ${key} is not an int32 column`);
    const buf = await readFile(join(dir, `${key}.bin`)).catch((err: unknown) => {
      throw new RecflowError(ErrorType.ArtifactMissing, `dataset ${dir}: ${key}.bin: ${(err as Error).message}`);
    });
    if (buf.byteLength % 4)
      throw new RecflowError(ErrorType.ArtifactMissing, `dataset ${dir}: ${key}.bin is truncated`);
    const copy = new Uint8Array(buf.byteLength); // aligned
    copy.set(buf);
    return new Int32Array(copy.buffer);
  };
  return {
    dir,
    manifest,
    vocab,
    items: { category: await int32('items.category'), titleTokens: await int32('items.titleTokens') },
    splits: {
      train: { user: await int32('train.user'), item: await int32('train.item') },
      test: { user: await int32('test.user'), item: await int32('test.item') },
    },
  };
}

/** 32-bit FNV-1a: the deterministic order the users are picked in. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Display titles by item index: `titles.json` when the dataset has it, else the title tokens joined (datasets made
 * before titles were kept), else ''.
 */
export async function itemTitles(ds: SampleDataset): Promise<string[]> {
  try {
    const t = JSON.parse(await readFile(join(ds.dir, TITLES_FILE), 'utf8')) as unknown;
    if (Array.isArray(t) && t.length === ds.vocab.items.length) return t.map((x) => (typeof x === 'string' ? x : ''));
  } catch {
    // older dataset: no titles.json
  }
  const tok = ds.items.titleTokens;
  return ds.vocab.items.map((_, i) => {
    const words: string[] = [];
    for (let j = 0; j < TITLE_LEN; j++) {
      const t = tok[i * TITLE_LEN + j] ?? 0;
      if (t > 0) words.push(ds.vocab.tokens[t] ?? '');
    }
    return words.join(' ');
  });
}

/**
 * Pick `n` test users: 60 % returning (training interactions) and the rest new, by a fixed hash of their ids, so a
 * report shows the same users for the same dataset; one group fills in when the other runs short.
 */
export function pickUsers(ds: SampleDataset, n: number): Array<{ user: number; kind: 'returning' | 'new' }> {
  const trained = new Set(ds.splits.train.user);
  const test = [...new Set(ds.splits.test.user)].filter((u) => u > 0);
  const order = (us: number[]) =>
    us
      .map((u) => ({ u, h: fnv1a(`recflow-report:${ds.vocab.users[u] ?? u}`) }))
      .sort((a, b) => a.h - b.h || a.u - b.u)
      .map((x) => x.u);
  const returning = order(test.filter((u) => trained.has(u)));
  const fresh = order(test.filter((u) => !trained.has(u)));
  const wantNew = Math.min(fresh.length, n - Math.min(returning.length, Math.ceil(n * 0.6)));
  const wantReturning = Math.min(returning.length, n - wantNew);
  return [
    ...returning.slice(0, wantReturning).map((user) => ({ user, kind: 'returning' as const })),
    ...fresh.slice(0, wantNew).map((user) => ({ user, kind: 'new' as const })),
  ];
}

const i64 = (xs: ArrayLike<number>, dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(Array.from(xs, (x) => BigInt(x))), dims);

/** Top-k item ids of one bundle for some users (dataset item ids of the training items to exclude, oldest first). */
async function recommendWith(
  dir: string,
  users: Array<{ id: string; train: string[] }>,
  k: number,
  precision: Precision,
  historyLength: number,
): Promise<Array<{ ids: string[]; fallback?: 'popularity' }>> {
  const bundle = await loadBundle(dir);
  if (bundle.manifest.task === 'search') throw new Error('a search bundle has no recommend graph');
  const vocab = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as { users: string[]; items: string[] };
  const popular = JSON.parse(await readFile(join(dir, 'popular.json'), 'utf8')) as string[];
  const userIndex = new Map(vocab.users.map((id, i) => [id, i]));
  const itemIndex = new Map(vocab.items.map((id, i) => [id, i]));
  const out: Array<{ ids: string[]; fallback?: 'popularity' }> = users.map(() => ({ ids: [] }));
  const known = users.map((u, b) => ({ ...u, b, index: userIndex.get(u.id) })).filter((u) => (u.index ?? 0) > 0);
  for (const [b, u] of users.entries())
    if (!((userIndex.get(u.id) ?? 0) > 0)) {
      const seen = new Set(u.train);
      out[b] = { ids: popular.filter((id) => !seen.has(id)).slice(0, k), fallback: 'popularity' };
    }
  if (known.length === 0) return out;
  const session = await ort.InferenceSession.create(bundle.paths[precision].recommend, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  try {
    const rows = known.map((u) => u.train.map((id) => itemIndex.get(id) ?? 0).filter((i) => i > 0));
    const width = Math.max(0, ...rows.map((r) => r.length));
    const exclude = new Array<number>(known.length * width).fill(0);
    rows.forEach((r, b) => r.forEach((i, j) => (exclude[b * width + j] = i)));
    const feeds: Record<string, ort.Tensor> = {
      [ONNX_IO.user]: i64(
        known.map((u) => u.index ?? 0),
        [known.length],
      ),
      [ONNX_IO.k]: i64([Math.min(k, vocab.items.length - 1)], [1]),
      [ONNX_IO.exclude]: i64(exclude, [known.length, width]),
    };
    if (session.inputNames.includes('history')) {
      // Most recent last, left-padded with 0 (the evaluation's convention).
      const hist = rows.map((r) => r.slice(-historyLength));
      const hw = Math.max(0, ...hist.map((r) => r.length));
      const data = new Array<number>(known.length * hw).fill(0);
      hist.forEach((r, b) => r.forEach((i, j) => (data[b * hw + hw - r.length + j] = i)));
      feeds.history = i64(data, [known.length, hw]);
    }
    const res = await session.run(Object.fromEntries(session.inputNames.map((n) => [n, feeds[n]!])));
    const top = res[ONNX_IO.topItems];
    if (!top) throw new Error(`recommend graph of ${dir} has no '${ONNX_IO.topItems}' output`);
    const data = top.data as BigInt64Array;
    const kk = top.dims[1] ?? 0;
    known.forEach((u, r) => {
      const ids: string[] = [];
      for (let j = 0; j < kk; j++) {
        const i = Number(data[r * kk + j] ?? 0n);
        if (i > 0) ids.push(vocab.items[i] ?? String(i));
      }
      out[u.b] = { ids };
    });
  } finally {
    await session.release();
  }
  return out;
}

/**
 * Sample recommendations of each bundle (by name, e.g. `{ champion: dir, candidate: dir }`) for a few test users of
 * `ds`. A bundle that cannot be run is reported in `errors` by name, the others still shown.
 */
export async function sampleRecommendations(
  ds: SampleDataset,
  bundles: Record<string, string>,
  opts: SampleOptions = {},
): Promise<{ users: SampleUser[]; errors: Record<string, string> }> {
  const k = opts.k ?? 5;
  const titles = await itemTitles(ds);
  const itemIndex = new Map(ds.vocab.items.map((id, i) => [id, i]));
  const picked = pickUsers(ds, opts.users ?? 5);
  const want = new Set(picked.map((p) => p.user));
  const train = new Map<number, number[]>();
  const test = new Map<number, number[]>();
  const collect = (split: SampleDataset['splits']['train'], into: Map<number, number[]>) => {
    for (let r = 0; r < split.user.length; r++) {
      const u = split.user[r] ?? 0;
      if (!want.has(u)) continue;
      const list = into.get(u) ?? [];
      list.push(split.item[r] ?? 0);
      into.set(u, list);
    }
  };
  collect(ds.splits.train, train); // sorted by time: oldest first
  collect(ds.splits.test, test);
  const item = (id: string, nextSet: Set<string>): SampleItem => {
    const i = itemIndex.get(id);
    return {
      id,
      title: i === undefined ? '' : (titles[i] ?? ''),
      category: i === undefined ? '(not in this dataset)' : (ds.vocab.categories[ds.items.category[i] ?? 0] ?? ''),
      next: nextSet.has(id),
    };
  };
  const idOf = (i: number) => ds.vocab.items[i] ?? String(i);
  const base = picked.map(({ user, kind }) => {
    const trainIds = (train.get(user) ?? []).map(idOf);
    const nextIds = [...new Set((test.get(user) ?? []).map(idOf))];
    return { user, kind, id: ds.vocab.users[user] ?? String(user), trainIds, nextSet: new Set(nextIds), nextIds };
  });
  const errors: Record<string, string> = {};
  const lists: Record<string, Array<{ ids: string[]; fallback?: 'popularity' }>> = {};
  for (const [name, dir] of Object.entries(bundles)) {
    try {
      lists[name] = await recommendWith(
        dir,
        base.map((b) => ({ id: b.id, train: b.trainIds })),
        k,
        opts.precision ?? 'int8',
        opts.historyLength ?? 200,
      );
    } catch (err) {
      errors[name] = (err as Error).message;
    }
  }
  const users = base.map((b, r): SampleUser => {
    const mine: Record<string, SampleList> = {};
    for (const [name, l] of Object.entries(lists)) {
      const row = l[r];
      if (row)
        mine[name] = {
          items: row.ids.map((id) => item(id, b.nextSet)),
          ...(row.fallback ? { fallback: row.fallback } : {}),
        };
    }
    return {
      id: b.id,
      kind: b.kind,
      trainEvents: b.trainIds.length,
      history: [...new Set(b.trainIds.slice().reverse())].slice(0, 4).map((id) => item(id, new Set())),
      next: b.nextIds.slice(0, 4).map((id) => item(id, new Set())),
      lists: mine,
    };
  });
  return { users, errors };
}
