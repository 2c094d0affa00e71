import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactStore } from '../../../lib/artifacts';
import { loadDataset, type SearchSplit } from '../../../lib/data/dataset';
import { makeShop, prepareDataset } from '../../../lib/data/pipeline';
import { tokenize } from '../../../lib/data/preprocess';
import { loadSearchTruth } from '../../../lib/data/search-truth';
import { tempHome } from '../../helpers/temporal';

const T0 = Date.UTC(2026, 0, 1);
const iso = (m: number) => new Date(T0 + m * 60_000).toISOString();

function write(dir: string, name: string, lines: string[]): void {
  writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
}

/** 200 events one minute apart: train before minute 160, validation before 180, test after. */
function baseFolder(): string {
  const dir = join(tempHome(), 'data');
  mkdirSync(dir);
  write(dir, 'users.csv', ['user_id', ...Array.from({ length: 10 }, (_, k) => `u${k + 1}`)]);
  write(dir, 'items.csv', [
    'item_id,category,brand,price,title,product_type,color',
    ...Array.from(
      { length: 10 },
      (_, k) => `i${k + 1},shoes,Nordwind,${10 + k},Crimson Trainers ${k},sneakers,crimson`,
    ),
  ]);
  write(dir, 'events.csv', [
    'user_id,item_id,event_type,timestamp',
    ...Array.from({ length: 200 }, (_, k) => `u${(k % 10) + 1},i${(k % 10) + 1},click,${iso(k)}`),
  ]);
  return dir;
}

const judged = (s: SearchSplit, q: number) =>
  Array.from({ length: (s.offsets[q + 1] ?? 0) - (s.offsets[q] ?? 0) }, (_, k) => {
    const j = (s.offsets[q] ?? 0) + k;
    return [s.judgements.item[j], s.judgements.grade[j]];
  });

describe('dataset search tables', () => {
  it('splits queries by time, grades by the strongest event, deduplicates training pairs', async () => {
    const dir = baseFolder();
    write(dir, 'queries.csv', [
      'query_id,user_id,timestamp,query',
      `q1,u2,${iso(10)},Red Trainers`,
      `q2,,${iso(20)},red  trainers`,
      `q3,u3,${iso(170)},crimson sneakers`,
      `q4,u4,${iso(190)},zapatillas rojo`,
      `q5,u5,${iso(195)},no clicks here`,
    ]);
    write(dir, 'search_events.csv', [
      'query_id,item_id,event,timestamp',
      `q1,i1,click,${iso(10)}`,
      `q1,i1,purchase,${iso(11)}`,
      `q1,i2,add_to_cart,${iso(11)}`,
      `q1,i3,click,${iso(12)}`,
      `q2,i3,Click,${iso(21)}`,
      `q3,i4,click,${iso(171)}`,
      `q4,i5,add_to_cart,${iso(191)}`,
    ]);
    const store = new ArtifactStore(join(tempHome(), 'artifacts'));
    const res = await prepareDataset(store, { source: { kind: 'dir', path: dir } });
    const ds = await loadDataset(res.dataset.path);
    const s = ds.search;
    assert.ok(s);
    const idx = (id: string) => ds.vocab.items.indexOf(id);
    assert.equal(
      s.itemText[idx('i1')],
      'Crimson Trainers 0 | type: sneakers | color: crimson | brand: Nordwind | category: shoes',
    );
    assert.equal(s.itemText[0], '');
    assert.deepEqual(s.splits.train.ids, ['q1', 'q2']);
    assert.deepEqual(s.splits.validation.ids, ['q3']);
    assert.deepEqual(s.splits.test.ids, ['q4', 'q5']);
    assert.deepEqual(s.splits.train.text, ['Red Trainers', 'red  trainers']);
    assert.deepEqual([...s.splits.train.user], [ds.vocab.users.indexOf('u2'), 0]);
    assert.deepEqual(judged(s.splits.train, 0), [
      [idx('i1'), 3],
      [idx('i2'), 2],
      [idx('i3'), 1],
    ]);
    assert.deepEqual(judged(s.splits.train, 1), [[idx('i3'), 1]]);
    assert.deepEqual(judged(s.splits.test, 0), [[idx('i5'), 2]]);
    assert.deepEqual(judged(s.splits.test, 1), []);
    // Pairs: "Red Trainers" and "red  trainers" are one text; (text, i3) was clicked by both queries.
    const pairs = Array.from(s.pairs.query, (q, k) => [
      s.splits.train.text[q],
      ds.vocab.items[s.pairs.item[k] ?? 0],
      s.pairs.grade[k],
      s.pairs.count[k],
    ]);
    assert.deepEqual(pairs, [
      ['Red Trainers', 'i1', 3, 1],
      ['Red Trainers', 'i2', 2, 1],
      ['Red Trainers', 'i3', 1, 2],
    ]);
    assert.deepEqual(ds.manifest.search?.counts, {
      queries: { train: 2, validation: 1, test: 2 },
      labelledQueries: { train: 2, validation: 1, test: 1 },
      judgements: { train: 4, validation: 1, test: 1 },
      pairs: 3,
    });
  });

  it('a source without a search log gives a dataset without search tables, which still loads', async () => {
    const store = new ArtifactStore(join(tempHome(), 'artifacts'));
    const res = await prepareDataset(store, { source: { kind: 'dir', path: baseFolder() } });
    const ds = await loadDataset(res.dataset.path);
    assert.equal(ds.search, undefined);
    assert.equal(ds.manifest.search, undefined);
    assert.equal(ds.splits.train.user.length > 0, true);
  });

  it("a generated shop's observed judgements follow the hidden relevance; the truth outranks lexical overlap on them", async () => {
    const store = new ArtifactStore(join(tempHome(), 'artifacts'));
    const { shop } = await makeShop(store, { users: 400, items: 800, events: 6000, queries: 3000, seed: 12 });
    const ds = await loadDataset((await prepareDataset(store, { source: { kind: 'shop', id: shop.id } })).dataset.path);
    const truth = await loadSearchTruth(shop.path);
    const s = ds.search;
    assert.ok(s);
    const total = s.splits.train.ids.length + s.splits.validation.ids.length + s.splits.test.ids.length;
    assert.ok(total > 2900 && total <= 3000, `${total} queries`);
    assert.ok(s.splits.test.ids.length > 150 && s.pairs.item.length > 2000);
    const gtIndex = (i: number) => Number((ds.vocab.items[i] ?? 'i0').slice(1)) - 1;
    // Mean hidden grade of judged items rises with the observed grade.
    const byGrade = [0, 0, 0, 0];
    const nByGrade = [0, 0, 0, 0];
    const tr = s.splits.train;
    for (let j = 0; j < tr.judgements.item.length; j++) {
      const intent = truth.intents.get(tr.ids[tr.judgements.query[j] ?? 0] ?? '');
      assert.ok(intent);
      const g = tr.judgements.grade[j] ?? 0;
      byGrade[g] = (byGrade[g] ?? 0) + truth.relevance(intent, gtIndex(tr.judgements.item[j] ?? 0));
      nByGrade[g] = (nByGrade[g] ?? 0) + 1;
    }
    const mean = byGrade.map((x, g) => x / (nByGrade[g] || 1));
    assert.ok((mean[3] ?? 0) > (mean[1] ?? 0), JSON.stringify(mean));
    // Test NDCG@10 on observed grades: ranking by the hidden relevance vs IDF-weighted token overlap.
    const docs = s.itemText.map((t) => new Set(tokenize(t)));
    const df = new Map<string, number>();
    for (const d of docs) for (const w of d) df.set(w, (df.get(w) ?? 0) + 1);
    const items = Array.from({ length: docs.length - 1 }, (_, k) => k + 1);
    const te = s.splits.test;
    let lexical = 0;
    let oracle = 0;
    let n = 0;
    for (let q = 0; q < te.ids.length; q++) {
      const j = judged(te, q) as Array<[number, number]>;
      if (!j.length) continue;
      const gain = new Map(j);
      const dcg = (ranking: number[]) =>
        ranking.slice(0, 10).reduce((a, i, k) => a + (2 ** (gain.get(i) ?? 0) - 1) / Math.log2(k + 2), 0);
      const ideal = dcg(j.map(([i]) => i));
      const words = tokenize(te.text[q] ?? '');
      const lex = new Float64Array(docs.length);
      for (const i of items)
        for (const w of words) if (docs[i]?.has(w)) lex[i] = (lex[i] ?? 0) + Math.log(docs.length / (df.get(w) ?? 1));
      const intent = truth.intents.get(te.ids[q] ?? '');
      assert.ok(intent);
      // The oracle ranks by hidden grade, ties by training popularity (what it would show).
      const rel = (i: number) => truth.relevance(intent, gtIndex(i)) + 1e-3 * Math.log1p(ds.items.popularity[i] ?? 0);
      lexical += dcg(items.slice().sort((a, b) => (lex[b] ?? 0) - (lex[a] ?? 0) || a - b)) / ideal;
      oracle += dcg(items.slice().sort((a, b) => rel(b) - rel(a) || a - b)) / ideal;
      n++;
    }
    console.log(
      `# observed test NDCG@10 (${n} queries): hidden-relevance ranking ${(oracle / n).toFixed(3)}, token overlap ${(lexical / n).toFixed(3)}`,
    );
    assert.ok(oracle > lexical * 1.1, `${oracle / n} vs ${lexical / n}`);
  });
});
