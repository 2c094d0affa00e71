import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { describe, it } from 'node:test';
import { ArtifactStore } from '../../../lib/artifacts';
import { compareDatasets, makeShop, prepareDataset } from '../../../lib/data/pipeline';
import { parseTimestamp } from '../../../lib/data/validate';
import { SPLITS, TITLES_FILE, loadDataset, type LoadedDataset } from '../../../lib/data/dataset';
import { tempHome } from '../../helpers/temporal';

const SHOP = { users: 400, items: 250, events: 10_000, seed: 5, dirt: 0.02 };

async function prepared(
  store: ArtifactStore,
  shop = SHOP,
): Promise<{ ds: LoadedDataset; shopDir: string; reused: boolean }> {
  const { shop: ref } = await makeShop(store, shop);
  const res = await prepareDataset(store, { source: { kind: 'shop', id: ref.id } });
  return { ds: await loadDataset(res.dataset.path), shopDir: ref.path, reused: res.reused };
}

describe('preprocessing', () => {
  it('time split without leakage: every train event precedes every validation event, which precede test', async () => {
    const store = new ArtifactStore(join(tempHome(), 'a'));
    const { ds } = await prepared(store);
    const { train, validation, test } = ds.splits;
    const { trainEnd, validationEnd } = ds.manifest.split;
    assert.ok(train.user.length > validation.user.length && validation.user.length > 0 && test.user.length > 0);
    const max = (a: Float64Array) => a.reduce((m, x) => Math.max(m, x), -Infinity);
    const min = (a: Float64Array) => a.reduce((m, x) => Math.min(m, x), Infinity);
    assert.ok(max(train.timestamp) < trainEnd);
    assert.ok(min(validation.timestamp) >= trainEnd && max(validation.timestamp) < validationEnd);
    assert.ok(min(test.timestamp) >= validationEnd);
    for (const s of SPLITS) {
      const ts = ds.splits[s].timestamp;
      for (let k = 1; k < ts.length; k++) assert.ok((ts[k - 1] ?? 0) <= (ts[k] ?? 0), `${s} not sorted by time`);
      for (const l of ds.splits[s].label) assert.ok([0.25, 0.5, 0.75, 1].includes(l));
    }
    // Popularity counts training events only.
    const pop = ds.items.popularity.reduce((s, x) => s + x, 0);
    assert.ok(pop >= train.user.length);
  });

  it('vocabularies round-trip: every interaction maps back to a clean (user, item, type, time) row of the export', async () => {
    const store = new ArtifactStore(join(tempHome(), 'b'));
    const { ds, shopDir } = await prepared(store);
    assert.equal(ds.vocab.users[0], '<unk>');
    assert.equal(ds.vocab.items[0], '<unk>');
    assert.equal(ds.vocab.users.length, ds.manifest.counts.users);
    assert.equal(new Set(ds.vocab.items).size, ds.vocab.items.length);
    const rows = new Map<string, number>();
    const labels: Record<string, number> = { view: 0.25, click: 0.5, add_to_cart: 0.75, purchase: 1 };
    for (const l of readFileSync(join(shopDir, 'events.csv'), 'utf8').trim().split('\n').slice(1)) {
      const [u, i, type, ts] = l.split(',') as [string, string, string, string];
      const key = `${u}|${i}|${parseTimestamp(ts)}`;
      rows.set(key, Math.max(rows.get(key) ?? 0, labels[type] ?? 0));
    }
    for (const s of SPLITS) {
      const sp = ds.splits[s];
      for (let k = 0; k < sp.user.length; k++) {
        const u = ds.vocab.users[sp.user[k] ?? 0];
        const i = ds.vocab.items[sp.item[k] ?? 0];
        assert.ok(u && u !== '<unk>' && i && i !== '<unk>');
        assert.ok(rows.has(`${u}|${i}|${sp.timestamp[k]}`), `${s} row ${k}: ${u} ${i} not in events.csv`);
      }
    }
    // Item features: category and brand by vocabulary; the price after the outlier policy is finite and standardized.
    const items = readFileSync(join(shopDir, 'items.csv'), 'utf8').trim().split('\n').slice(1);
    for (const line of items.slice(0, 50)) {
      const [id, category, brand] = line.split(',') as [string, string, string];
      const idx = ds.vocab.items.indexOf(id);
      assert.equal(ds.vocab.categories[ds.items.category[idx] ?? 0], category || '<unk>');
      assert.equal(ds.vocab.brands[ds.items.brand[idx] ?? 0], brand || '<unk>');
    }
    // Display titles (the run report's) as written in items.csv, by item index.
    const titles = JSON.parse(readFileSync(join(ds.dir, TITLES_FILE), 'utf8')) as string[];
    assert.equal(titles.length, ds.vocab.items.length);
    const rowsCsv = parseCsv<{ item_id: string; title: string }>(readFileSync(join(shopDir, 'items.csv'), 'utf8'), {
      columns: true,
    });
    for (const r of rowsCsv.slice(0, 200)) assert.equal(titles[ds.vocab.items.indexOf(r.item_id)], r.title.trim());
    let mean = 0;
    for (let i = 1; i < ds.items.price.length; i++) {
      assert.ok(Number.isFinite(ds.items.price[i]) && Math.abs(ds.items.price[i] ?? 0) < 6);
      mean += (ds.items.price[i] ?? 0) / (ds.items.price.length - 1);
    }
    assert.ok(Math.abs(mean) < 0.05);
    assert.ok(ds.items.titleTokens.some((t) => t > 0));
    assert.ok(ds.manifest.stats['items.price']?.histogram?.counts.length);
  });

  it('the same input reuses the dataset; drift is zero against itself and positive against another shop', async () => {
    const store = new ArtifactStore(join(tempHome(), 'c'));
    const a = await prepared(store);
    const again = await prepared(store);
    assert.equal(again.reused, true);
    assert.equal(again.ds.manifest.id, a.ds.manifest.id);
    const same = await compareDatasets(store, { baseId: a.ds.manifest.id, candidateId: a.ds.manifest.id });
    assert.equal(same.maxPsi, 0);
    assert.equal(same.newUserRate, 0);
    assert.equal(same.drifted, false);
    const other = await prepared(store, { ...SHOP, seed: 6, users: 800, items: 400 });
    const drift = await compareDatasets(store, { baseId: a.ds.manifest.id, candidateId: other.ds.manifest.id });
    assert.ok(drift.maxPsi > 0.05, JSON.stringify(drift.psi));
    assert.ok(Math.abs(drift.newUserRate - 0.5) < 1e-9, String(drift.newUserRate));
    assert.ok(Math.abs(drift.newItemRate - 150 / 400) < 1e-9, String(drift.newItemRate));
  });

  it('a MovieLens-style file goes through the same path', async () => {
    const dir = join(tempHome(), 'ml');
    mkdirSync(dir);
    const lines = ['userId,movieId,rating,timestamp'];
    for (let k = 0; k < 600; k++)
      lines.push(`${(k % 30) + 1},${((k * 13) % 45) + 1},${1 + (k % 9) * 0.5},${1_700_000_000 + k * 600}`);
    writeFileSync(join(dir, 'ratings.csv'), `${lines.join('\n')}\n`);
    const movies = ['movieId,title,genres'];
    for (let m = 1; m <= 45; m++)
      movies.push(`${m},"Movie ${m}, The (199${m % 10})",${m % 2 ? 'Comedy|Drama' : 'Action'}`);
    writeFileSync(join(dir, 'movies.csv'), `${movies.join('\n')}\n`);
    const store = new ArtifactStore(join(tempHome(), 'd'));
    const res = await prepareDataset(store, { source: { kind: 'dir', path: dir } });
    const ds = await loadDataset(res.dataset.path);
    assert.equal(ds.manifest.source.kind, 'movielens');
    assert.equal(ds.vocab.users.length, 31);
    assert.deepEqual(ds.vocab.categories.slice().sort(), ['<unk>', 'Action', 'Comedy']);
    assert.ok(ds.vocab.tokens.includes('movie'));
    assert.equal(
      res.rows.train + res.rows.validation + res.rows.test,
      ds.manifest.counts.train + ds.manifest.counts.validation + ds.manifest.counts.test,
    );
    // rating 5 -> purchase (label 1), rating 1 -> view (0.25)
    const all = SPLITS.flatMap((s) => [...ds.splits[s].label]);
    assert.ok(all.includes(1) && all.includes(0.25));
    // epoch seconds read as seconds: times in ms within the file's range
    const t0 = ds.splits.train.timestamp[0] ?? 0;
    assert.ok(t0 >= 1_700_000_000_000 && t0 < 1_700_000_000_000 + 600 * 600_000, String(t0));
  });
});
