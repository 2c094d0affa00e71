/**
 * Sample recommendations of the run report on real bundles: the users picked (deterministic, returning and new),
 * titles (titles.json, else the title tokens), a recommend graph that takes a `history` input, and the popularity
 * fallback for a user the bundle does not know (what `/v1/recommend` answers).
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { sizesOf, towerFeatures } from '../../../kinds/two-tower/spec';
import { writeBundle } from '../../../kinds/two-tower/bundle';
import type { BundleManifest } from '../../../lib/bundle';
import { loadDataset, TITLE_LEN, TITLES_FILE, type LoadedDataset } from '../../../lib/data/dataset';
import { DType, encodeModel, GraphBuilder, attr } from '../../../lib/onnx/builder';
import { itemTitles, loadSampleDataset, pickUsers, sampleRecommendations } from '../../../lib/report/recommendations';
import { randomModel, SMALL_SIZES, writeRandomDataset } from '../../helpers/random-model';
import { tempHome } from '../../helpers/temporal';

/**
 * A recommend graph that answers the last `k` items of the `history` input (the most recent, when history is
 * left-padded with the most recent last); it reads nothing else.
 */
function historyGraph(): Uint8Array {
  const g = new GraphBuilder('recommend-history');
  g.input('user', DType.int64, ['B']);
  g.input('k', DType.int64, [1]);
  g.input('exclude', DType.int64, ['B', 'E']);
  const history = g.input('history', DType.int64, ['B', 'H']);
  const start = g.op1('Neg', ['k']);
  const end = g.int64('end', [2 ** 31]);
  const axis = g.int64('axis', [1]);
  g.op('Slice', [history, start, end, axis], ['items']);
  g.op('Cast', ['items'], ['scores'], { to: attr.int(DType.float) });
  g.output('scores', DType.float, ['B', 'K']);
  g.output('items', DType.int64, ['B', 'K']);
  return encodeModel(g.model({}));
}

describe('sample recommendations', () => {
  let ds: LoadedDataset;
  let bundle: string;
  const root = tempHome('recflow-samples-');

  before(async () => {
    const model = randomModel({ sizes: SMALL_SIZES, seed: 5 });
    const dsDir = join(root, 'dataset');
    await writeRandomDataset(dsDir, model, { id: 'ds-samples' });
    ds = await loadDataset(dsDir);
    bundle = join(root, 'bundle');
    await mkdir(bundle, { recursive: true });
    await writeBundle(bundle, {
      modelName: 'shop-recs',
      datasetId: 'ds-samples',
      checkpointId: 'ck',
      weights: model.weights,
      features: towerFeatures(ds),
      meta: { config: model.config, sizes: sizesOf(ds) },
      vocab: { users: ds.vocab.users, items: ds.vocab.items },
      popularity: ds.items.popularity,
    });
  });

  it('picks the same users every time: three returning and two new, all test users', () => {
    const a = pickUsers(ds, 5);
    assert.deepEqual(pickUsers(ds, 5), a);
    assert.deepEqual(
      a.map((u) => u.kind),
      ['returning', 'returning', 'returning', 'new', 'new'],
    );
    const test = new Set(ds.splits.test.user);
    const train = new Set(ds.splits.train.user);
    for (const u of a) {
      assert.ok(test.has(u.user));
      assert.equal(train.has(u.user), u.kind === 'returning');
    }
    // Fewer new users than asked: returning users fill in.
    const onlyReturning = { ...ds, splits: { ...ds.splits, test: ds.splits.train } };
    assert.deepEqual(
      pickUsers(onlyReturning, 5).map((u) => u.kind),
      ['returning', 'returning', 'returning', 'returning', 'returning'],
    );
  });

  it('shows titles from titles.json, else the title tokens', async () => {
    const tokens = await itemTitles(ds);
    assert.equal(tokens.length, ds.vocab.items.length);
    for (let i = 1; i < ds.vocab.items.length; i++) {
      const words = [...ds.items.titleTokens.subarray(i * TITLE_LEN, (i + 1) * TITLE_LEN)].filter((t) => t > 0);
      assert.equal(tokens[i], words.map((t) => ds.vocab.tokens[t]).join(' '));
    }
    assert.ok(
      tokens.some((t) => t.includes(' ')),
      'multi-token titles',
    );
    const titles = ds.vocab.items.map((id, k) => (k ? `Title of ${id}` : ''));
    await writeFile(join(ds.dir, TITLES_FILE), JSON.stringify(titles));
    try {
      assert.deepEqual(await itemTitles(ds), titles);
    } finally {
      await writeFile(join(ds.dir, TITLES_FILE), '{"not": "a list"}');
    }
    assert.deepEqual(await itemTitles(ds), tokens, 'a malformed titles.json falls back to the tokens');
  });

  it('runs the two-tower recommend graph: k items per user, none of the user’s training items', async () => {
    const light = await loadSampleDataset(ds.dir);
    const { users, errors } = await sampleRecommendations(light, { candidate: bundle }, { users: 5, k: 5 });
    assert.deepEqual(errors, {});
    assert.equal(users.length, 5);
    for (const u of users) {
      const list = u.lists.candidate!;
      assert.equal(list.items.length, 5);
      assert.equal(list.fallback, undefined);
      const idx = ds.vocab.users.indexOf(u.id);
      const seen = new Set<string>();
      for (let r = 0; r < ds.splits.train.user.length; r++)
        if (ds.splits.train.user[r] === idx) seen.add(ds.vocab.items[ds.splits.train.item[r] ?? 0]!);
      assert.equal(u.trainEvents > 0, u.kind === 'returning');
      for (const it of list.items) {
        assert.ok(!seen.has(it.id), `${u.id} was recommended ${it.id}, a training item`);
        assert.ok(ds.vocab.categories.includes(it.category));
      }
    }
  });

  it('feeds a graph’s history input: the user’s training items, most recent last', async () => {
    const dir = join(root, 'history-bundle');
    await mkdir(dir, { recursive: true });
    const manifest = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8')) as BundleManifest;
    for (const f of [
      'vocab.json',
      'popular.json',
      ...Object.values(manifest.files).flatMap((x) => [x.score, x.recommend]),
    ])
      await copyFile(join(bundle, f), join(dir, f));
    const graph = historyGraph();
    await writeFile(join(dir, manifest.files.int8.recommend), graph);
    manifest.sizes.int8.recommend = graph.byteLength;
    await writeFile(join(dir, 'bundle.json'), JSON.stringify(manifest));

    const { users, errors } = await sampleRecommendations(ds, { sequential: dir }, { users: 8, k: 2 });
    assert.deepEqual(errors, {});
    // Histories of different lengths in one batch (7 and 8 training items here): the padding must be on the left.
    assert.ok(new Set(users.filter((x) => x.kind === 'returning').map((x) => x.trainEvents)).size > 1);
    for (const u of users.filter((x) => x.kind === 'returning')) {
      const idx = ds.vocab.users.indexOf(u.id);
      const history: number[] = [];
      for (let r = 0; r < ds.splits.train.user.length; r++)
        if (ds.splits.train.user[r] === idx) history.push(ds.splits.train.item[r] ?? 0);
      // The train split is sorted by time: the last two are the most recent.
      const want = history.slice(-2).map((i) => ds.vocab.items[i]);
      assert.deepEqual(
        u.lists.sequential!.items.map((x) => x.id),
        want,
        u.id,
      );
    }
  });

  it('answers a user the bundle does not know with its popular items, as serving does', async () => {
    const dir = join(root, 'bundle-forgetful');
    await mkdir(dir, { recursive: true });
    const manifest = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8')) as BundleManifest;
    for (const f of [
      'popular.json',
      'bundle.json',
      ...Object.values(manifest.files).flatMap((x) => [x.score, x.recommend]),
    ])
      await copyFile(join(bundle, f), join(dir, f));
    const picked = pickUsers(ds, 5);
    const forgotten = ds.vocab.users[picked[0]!.user]!;
    await writeFile(
      join(dir, 'vocab.json'),
      JSON.stringify({
        users: ds.vocab.users.map((u) => (u === forgotten ? 'someone-else' : u)),
        items: ds.vocab.items,
      }),
    );
    const { users } = await sampleRecommendations(ds, { champion: dir, candidate: bundle }, { users: 5, k: 4 });
    const u = users.find((x) => x.id === forgotten)!;
    assert.equal(u.lists.champion?.fallback, 'popularity');
    assert.equal(u.lists.candidate?.fallback, undefined);
    const popular = JSON.parse(await readFile(join(dir, 'popular.json'), 'utf8')) as string[];
    const idx = ds.vocab.users.indexOf(forgotten);
    const seen = new Set<string>();
    for (let r = 0; r < ds.splits.train.user.length; r++)
      if (ds.splits.train.user[r] === idx) seen.add(ds.vocab.items[ds.splits.train.item[r] ?? 0]!);
    assert.deepEqual(
      u.lists.champion.items.map((x) => x.id),
      popular.filter((id) => !seen.has(id)).slice(0, 4),
    );
  });

  it('reports a bundle it cannot run by name and still shows the others', async () => {
    const { users, errors } = await sampleRecommendations(ds, { champion: join(root, 'nowhere'), candidate: bundle });
    assert.match(errors.champion ?? '', /bundle\.json/);
    assert.ok(users.every((u) => u.lists.candidate && !u.lists.champion));
  });
});
