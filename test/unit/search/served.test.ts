/**
 * The ranker a search bundle serves (kinds/search/served.ts) on real, tiny bundles (test/helpers/search-bundle.ts,
 * onnxruntime): a variant with a dense weight below 1 answers `/v1/search` with the hybrid of BM25 and its own dense
 * scores over the whole catalogue (checked against the formula by hand), a variant at weight 1 and every variant of a
 * bundle without per-variant weights (written before them) answer the graph's dense top-k as before, and the
 * evaluation whose gates bless the model (kinds/search/evaluate.ts `models.fp32`/`models.int8`) ranks each test
 * query exactly as `/v1/search` does: the same per-query NDCG@10 for every query, at weight 1 and below.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Bm25Index, topK } from '../../../kinds/search/bm25';
import { loadSearchVariant, loadServedSearch, readSearchBundle } from '../../../kinds/search/bundle';
import { evaluateSearchBundle } from '../../../kinds/search/evaluate';
import { hybridScores } from '../../../kinds/search/hybrid';
import { perQueryNdcg } from '../../../kinds/search/rank';
import { ServedRanker, servedWeight } from '../../../kinds/search/served';
import type { LoadedDataset } from '../../../lib/data/dataset';
import type { SlotState } from '../../../lib/fleet/types';
import { buildApp } from '../../../serving/app';
import { ServingMetrics } from '../../../serving/metrics';
import { ModelSlots } from '../../../serving/model-slot';
import { LoadedSearch } from '../../../serving/search-model';
import { makeSearchBundle, SEARCH_ITEMS, wantedGrade, type TestSearchBundle } from '../../helpers/search-bundle';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON answers
type AnyJson = any;

const SYNONYM: Record<string, string> = { red: 'crimson', blue: 'navy', green: 'olive', black: 'jet' };

/**
 * Test queries: every third item named plainly, by `<product> in <colour>`, or with a colour synonym that BM25
 * cannot match; graded by {@link wantedGrade} (3 the item, 1 the same product in another colour).
 */
const QUERIES = SEARCH_ITEMS.filter((_, i) => i % 3 === 0).map((it, i) => ({
  text:
    i % 3 === 0
      ? it.text
      : i % 3 === 1
        ? `${it.thing} in ${it.colour}`
        : `${SYNONYM[it.colour] ?? it.colour} ${it.thing}`,
  colour: it.colour,
  thing: it.thing,
}));

/** A dataset holding only what search evaluation reads: the catalogue's ids and the judged test queries. */
function testDataset(): LoadedDataset {
  const grades: Array<[number, number, number]> = [];
  QUERIES.forEach((q, r) =>
    SEARCH_ITEMS.forEach((it, row) => {
      const g = wantedGrade(q, it.id);
      if (g > 0) grades.push([r, row + 1, g]);
    }),
  );
  const offsets = Int32Array.from({ length: QUERIES.length + 1 }, (_, r) => grades.filter(([q]) => q < r).length);
  const split = {
    ids: QUERIES.map((_, i) => `q${i}`),
    text: QUERIES.map((q) => q.text),
    user: new Int32Array(QUERIES.length),
    timestamp: new Float64Array(QUERIES.length),
    judgements: {
      query: Int32Array.from(grades, (g) => g[0]),
      item: Int32Array.from(grades, (g) => g[1]),
      grade: Int32Array.from(grades, (g) => g[2]),
    },
    offsets,
  };
  return {
    dir: '/nowhere',
    manifest: { id: 'ds-served-test', source: { kind: 'test', dir: '/nowhere' } },
    vocab: { users: ['<unk>'], items: ['<unk>', ...SEARCH_ITEMS.map((i) => i.id)] },
    items: { popularity: new Float32Array(SEARCH_ITEMS.length + 1) },
    search: { itemText: ['', ...SEARCH_ITEMS.map((i) => i.text)], splits: { test: split } },
  } as unknown as LoadedDataset;
}

let root: string;
let legacy: TestSearchBundle;
let mixed: TestSearchBundle;
const WEIGHTS = { fp32: 1, 'int8-dynamic': 0.4 };

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'recflow-served-'));
  legacy = await makeSearchBundle(root, 'legacy');
  mixed = await makeSearchBundle(root, 'mixed', { hybridWeights: WEIGHTS });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** An app serving `slot` as the stable model. */
async function appFor(slot: SlotState) {
  const slots = new ModelSlots({}, () => {});
  await slots.apply({ generation: 1, stable: slot, canary: null, canaryWeight: 0, salt: 's' });
  const app = buildApp({ slots, metrics: new ServingMetrics({ processMetrics: false }), logger: false });
  await app.ready();
  return {
    search: async (query: string, k: number) => {
      const r = await app.inject({ method: 'POST', url: '/v1/search', payload: { query, k } });
      assert.equal(r.statusCode, 200, r.body);
      return r.json<AnyJson>().items as Array<{ itemId: string; score: number }>;
    },
    close: async () => {
      await app.close();
      await slots.close();
    },
  };
}

const rowOf = new Map(SEARCH_ITEMS.map((it, r) => [it.id, r]));
/** Per-query NDCG@10 of served answers, as the evaluation computes it (dataset item = row + 1). */
function servedNdcg(answers: Array<Array<{ itemId: string }>>): number[] {
  return perQueryNdcg(
    answers.map((items, i) => ({
      ranking: items.map((x) => (rowOf.get(x.itemId) ?? -2) + 1),
      grades: new Map(
        SEARCH_ITEMS.flatMap((it, row) => {
          const g = wantedGrade(QUERIES[i]!, it.id);
          return g > 0 ? [[row + 1, g] as const] : [];
        }),
      ),
    })),
  );
}

void describe('served search ranker', () => {
  void it('reads the per-variant weights; a bundle without them serves dense only (weight 1)', async () => {
    const old = (await readSearchBundle(legacy.dir)).manifest.search;
    assert.equal(old.hybrid.variants, undefined);
    for (const v of ['fp32', 'int8-dynamic']) assert.equal(servedWeight(old, v), 1);
    const m = (await readSearchBundle(mixed.dir)).manifest.search;
    assert.equal(servedWeight(m, 'fp32'), 1);
    assert.equal(servedWeight(m, 'int8-dynamic'), 0.4);
    assert.equal(servedWeight(m, 'student'), 1, 'a variant the export did not tune serves dense');
    const bm25 = JSON.parse(await readFile(join(mixed.dir, 'bm25.json'), 'utf8'));
    assert.equal(bm25.variants['int8-dynamic'].weight, 0.4);
  });

  void it('an old bundle answers /v1/search exactly as before: the graph dense top-k and its cosines', async () => {
    const b = await readSearchBundle(legacy.dir);
    for (const p of ['fp32', 'int8'] as const) {
      const own = (await loadSearchVariant(b, p)).model;
      const loaded = await LoadedSearch.load(legacy.slot('v1', p), legacy.dir);
      const t = await appFor(legacy.slot('v1', p));
      try {
        assert.equal(loaded.hybridWeight, 1);
        const want = await own.searchBatch(
          QUERIES.map((q) => q.text),
          10,
        );
        for (const [i, q] of QUERIES.entries())
          assert.deepEqual(
            (await t.search(q.text, 10)).map((x) => [x.itemId, x.score]),
            want[i]!.map((h) => [h.id, h.score]),
            `${p} ${q.text}`,
          );
      } finally {
        await t.close();
        await loaded.close();
        await own.session.release();
      }
    }
  });

  void it('a variant below weight 1 serves the hybrid of BM25 and its own dense scores (by hand)', async () => {
    const b = await readSearchBundle(mixed.dir);
    const own = (await loadSearchVariant(b, 'int8-dynamic')).model;
    const bm25 = new Bm25Index(b.items.texts, { k1: 1.2, b: 0.75 });
    const t = await appFor(mixed.slot('v1', 'int8'));
    let differs = 0;
    try {
      for (const q of QUERIES) {
        const [all] = await own.searchBatch([q.text], SEARCH_ITEMS.length);
        const dense = new Float32Array(SEARCH_ITEMS.length);
        for (const h of all!) dense[rowOf.get(h.id)!] = h.score;
        const want = topK(hybridScores(bm25.scores(q.text), dense, 0.4), 10);
        const got = await t.search(q.text, 10);
        assert.deepEqual(
          got.map((x) => x.itemId),
          want.map((h) => SEARCH_ITEMS[h.doc]!.id),
          q.text,
        );
        got.forEach((x, j) => assert.ok(Math.abs(x.score - want[j]!.score) < 1e-6, `${q.text}: hybrid score`));
        assert.ok(
          got.every((x) => x.score >= 0 && x.score <= 1),
          'hybrid scores lie in [0, 1]',
        );
        if (
          got.map((x) => x.itemId).join() !==
          all!
            .slice(0, 10)
            .map((h) => h.id)
            .join()
        )
          differs++;
      }
    } finally {
      await t.close();
      await own.session.release();
    }
    assert.ok(differs > 0, 'the hybrid ranks differently from the dense variant alone (else this test proves nothing)');
  });

  void it("the evaluation's gated rankings are /v1/search's, query by query (weight 1 and 0.4)", async () => {
    const ds = testDataset();
    for (const [bundle, label] of [
      [mixed, 'fp32 at weight 1, int8-dynamic at 0.4'],
      [legacy, 'an old bundle: both dense'],
    ] as const) {
      const report = await evaluateSearchBundle(bundle.dir, ds, { baselines: false });
      for (const p of ['fp32', 'int8'] as const) {
        const t = await appFor(bundle.slot('v1', p));
        try {
          const answers = [];
          for (const q of QUERIES) answers.push(await t.search(q.text, 10));
          assert.deepEqual(report.models[p]?.perUser?.['ndcg@10'], servedNdcg(answers), `${label}: ${p}`);
        } finally {
          await t.close();
        }
      }
      const served = report.search?.served;
      assert.equal(served?.int8?.variant, 'int8-dynamic');
      const byName = Object.fromEntries(report.search!.rankers.map((r) => [r.name, r]));
      if (bundle === mixed) {
        assert.deepEqual(served?.int8, { ranker: 'hybrid-int8-dynamic', variant: 'int8-dynamic', weight: 0.4 });
        assert.deepEqual(served?.fp32, { ranker: 'fp32', variant: 'fp32', weight: 1 });
        assert.deepEqual(byName['hybrid-int8-dynamic']?.serves, ['int8']);
        assert.deepEqual(byName['int8-dynamic']?.serves, [], 'the dense int8 row stays in the table, not serving');
        assert.deepEqual(byName.fp32?.serves, ['fp32']);
        assert.deepEqual(report.models.int8?.overall, byName['hybrid-int8-dynamic']?.overall);
        assert.notDeepEqual(report.models.int8?.overall, byName['int8-dynamic']?.overall);
      } else {
        assert.deepEqual(served?.int8, { ranker: 'int8-dynamic', variant: 'int8-dynamic', weight: 1 });
        assert.deepEqual(byName['int8-dynamic']?.serves, ['int8']);
        assert.equal(byName['hybrid-int8-dynamic'], undefined);
        assert.deepEqual(report.models.int8?.overall, byName['int8-dynamic']?.overall);
      }
    }
  });

  void it('refuses a bad weight, a hybrid without BM25, and a hybrid bundle whose index rows differ from items.json', async () => {
    const b = await readSearchBundle(mixed.dir);
    const { model } = await loadSearchVariant(b, 'fp32');
    try {
      const o = { session: model.session, items: 64, queryMaxLength: 16 };
      assert.throws(() => new ServedRanker({ ...o, weight: 1.5 }), /dense weight 1.5 not in \[0, 1\]/);
      assert.throws(() => new ServedRanker({ ...o, weight: 0.5 }), /needs BM25 over the 64 items \(has none\)/);
      assert.throws(
        () => new ServedRanker({ ...o, weight: 0.5, bm25: new Bm25Index(['a', 'b']) }),
        /needs BM25 over the 64 items \(has 2\)/,
      );
    } finally {
      await model.session.release();
    }
    const items = JSON.parse(await readFile(join(mixed.dir, 'items.json'), 'utf8')) as { ids: string[] };
    [items.ids[0], items.ids[1]] = [items.ids[1]!, items.ids[0]!];
    await writeFile(join(mixed.dir, 'items.json'), JSON.stringify(items));
    try {
      const swapped = await readSearchBundle(mixed.dir);
      await assert.rejects(loadServedSearch(swapped, 'int8'), /int8-dynamic index's items differ from items\.json/);
      // Dense only (weight 1) never reads items.json's rows: it loads.
      await (await loadServedSearch(swapped, 'fp32')).model.session.release();
    } finally {
      [items.ids[0], items.ids[1]] = [items.ids[1], items.ids[0]];
      await writeFile(join(mixed.dir, 'items.json'), JSON.stringify(items));
    }
  });
});
