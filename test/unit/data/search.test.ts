/**
 * The synthetic shop's search log against its hidden truth: relevance grades follow the intents' rules (checked
 * against items.csv's own columns), rendering styles occur at the configured rates, searchers' events follow
 * relevance, and lexical matching is measurably worse than the truth (while knowing synonyms recovers much of it).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { generateShop } from '../../../lib/data/generator';
import { tokenize } from '../../../lib/data/preprocess';
import { mulberry32 } from '../../../lib/rng';
import {
  DEFAULT_SEARCH_PARAMS,
  loadSearchTruth,
  misspell,
  searchRelevance,
  type SearchTruth,
} from '../../../lib/data/search-truth';
import type { CatalogVocab } from '../../../lib/data/catalog';
import { tempHome } from '../../helpers/temporal';

const SHOP = { users: 500, items: 1000, events: 4000, queries: 4000, seed: 5, dirt: 0 };

function rows(path: string): Array<Record<string, string>> {
  return parse<Record<string, string>>(readFileSync(path, 'utf8'), { columns: true });
}

/** NDCG@10 of `ranking` with graded gains 2^g - 1 (g = gains(item)), ideal from `allGains`. */
function ndcg10(ranking: number[], gain: (i: number) => number, allGains: number[]): number {
  const dcg = (gs: number[]) => gs.slice(0, 10).reduce((s, g, k) => s + (2 ** g - 1) / Math.log2(k + 2), 0);
  const ideal = dcg([...allGains].sort((a, b) => b - a));
  return ideal > 0 ? dcg(ranking.map(gain)) / ideal : NaN;
}

/** IDF-weighted token overlap (a BM25-style lexical ranker without length normalization). */
function lexicalRanker(itemTexts: string[], normalize: (s: string) => string[]) {
  const docs = itemTexts.map((t) => new Set(normalize(t)));
  const df = new Map<string, number>();
  for (const d of docs) for (const w of d) df.set(w, (df.get(w) ?? 0) + 1);
  return (query: string): number[] => {
    const q = normalize(query);
    const score = docs.map((d) => q.reduce((s, w) => s + (d.has(w) ? Math.log(docs.length / (df.get(w) ?? 1)) : 0), 0));
    return docs.map((_, i) => i).sort((a, b) => (score[b] ?? 0) - (score[a] ?? 0) || a - b);
  };
}

/** Maps every synonym and translation of a type, colour or material to one token (what a model that knows synonyms does). */
function synonymNormalizer(vocab: CatalogVocab): (s: string) => string[] {
  const phrases: Array<[string, string]> = [];
  vocab.types.forEach((t, k) => {
    for (const n of [...t.names, ...Object.values(t.foreign)]) phrases.push([n, `type${k}`]);
  });
  vocab.colours.forEach((c, k) => {
    for (const n of [...c.names, ...Object.values(c.foreign)]) phrases.push([n, `colour${k}`]);
  });
  vocab.materials.forEach((m, k) => {
    for (const n of m.names) phrases.push([n, `material${k}`]);
  });
  phrases.sort((a, b) => b[0].length - a[0].length);
  return (s) => {
    let t = ` ${tokenize(s).join(' ')} `;
    for (const [p, c] of phrases) t = t.replaceAll(` ${tokenize(p).join(' ')} `, ` ${c} `);
    return t.split(' ').filter(Boolean);
  };
}

describe('synthetic shop: search log and its truth', () => {
  let dir = '';
  let truth: SearchTruth;
  let items: Array<Record<string, string>> = [];
  let queries: Array<Record<string, string>> = [];
  let events: Array<Record<string, string>> = [];
  before(async () => {
    dir = join(tempHome(), 'shop');
    const counts = await generateShop(dir, SHOP);
    assert.equal(counts.queries, SHOP.queries);
    truth = await loadSearchTruth(dir);
    items = rows(join(dir, 'items.csv'));
    queries = rows(join(dir, 'queries.csv'));
    events = rows(join(dir, 'search_events.csv'));
  });

  it('relevance rules: 3 all attributes, 2 at least half, 1 the type only; typeless intents need a majority', () => {
    const item = { type: 4, color: 1, material: 2, size: -1, brand: 7 };
    assert.equal(searchRelevance({ type: 4, attrs: [] }, item), 3);
    assert.equal(searchRelevance({ type: 5, attrs: [] }, item), 0);
    const c = (value: number) => ({ kind: 'color' as const, value });
    const m = (value: number) => ({ kind: 'material' as const, value });
    const b = (value: number) => ({ kind: 'brand' as const, value });
    assert.equal(searchRelevance({ type: 4, attrs: [c(1), m(2), b(7)] }, item), 3);
    assert.equal(searchRelevance({ type: 4, attrs: [c(1), m(2), b(8)] }, item), 2);
    assert.equal(searchRelevance({ type: 4, attrs: [c(1), m(9)] }, item), 2);
    assert.equal(searchRelevance({ type: 4, attrs: [c(1), m(9), b(8)] }, item), 1);
    assert.equal(searchRelevance({ type: 4, attrs: [c(0)] }, item), 1);
    assert.equal(searchRelevance({ type: 9, attrs: [c(1), m(2)] }, item), 0);
    assert.equal(searchRelevance({ type: null, attrs: [c(1), m(2)] }, item), 3);
    assert.equal(searchRelevance({ type: null, attrs: [c(1), m(9)] }, item), 0);
    assert.equal(searchRelevance({ type: null, attrs: [c(1), m(2), b(8)] }, item), 2);
  });

  it("the stored grades are what the intents say of items.csv's own columns", () => {
    const v = truth.meta.vocab;
    const typeOf = new Map(v.types.map((t, k) => [t.names[0], k]));
    const colourOf = new Map(v.colours.flatMap((c, k) => c.names.map((n) => [n, k] as const)));
    const materialOf = new Map(v.materials.map((m, k) => [m.names[0], k]));
    const sizeOf = new Map(v.sizes.map((s, k) => [`${s.kind}:${s.value}`, k]));
    const brandOf = new Map(v.brands.map((b, k) => [b, k]));
    const attrs = items.map((row) => {
      const type = typeOf.get(row.product_type ?? '') ?? -1;
      const kind = v.types[type]?.size;
      return {
        type,
        color: row.color ? (colourOf.get(row.color) ?? -2) : -1,
        material: row.material ? (materialOf.get(row.material) ?? -2) : -1,
        size: row.size ? (sizeOf.get(`${kind}:${row.size}`) ?? -2) : -1,
        brand: brandOf.get(row.brand ?? '') ?? -2,
      };
    });
    assert.ok(attrs.every((a) => a.type >= 0 && a.color !== -2 && a.material !== -2 && a.size !== -2));
    const hist = [0, 0, 0, 0];
    let n = 0;
    for (const q of queries.slice(0, 400)) {
      const intent = truth.intents.get(q.query_id ?? '');
      assert.ok(intent, q.query_id);
      attrs.forEach((a, i) => {
        const g = truth.relevance(intent, i);
        assert.equal(g, searchRelevance(intent, a), `${q.query_id} item ${i}`);
        hist[g] = (hist[g] ?? 0) + 1;
        n++;
      });
    }
    // Every grade occurs; relevant items are a small share of the catalogue (ranking is not trivial).
    assert.ok(
      hist.every((h) => h > 0),
      JSON.stringify(hist),
    );
    assert.ok((hist[3] ?? 0) / n < 0.02, JSON.stringify(hist));
    assert.equal(truth.relevanceOf({ type: 0, attrs: [] }, 'nope'), 0);
  });

  it('synonyms, other languages, misspellings, partial words and attribute-only queries occur at the configured rates', () => {
    const p = DEFAULT_SEARCH_PARAMS;
    const styles = [...truth.intents.values()].map((s) => s.style);
    const n = styles.length;
    const within = (name: string, observed: number, trials: number, rate: number) => {
      const sd = Math.sqrt((rate * (1 - rate)) / trials);
      assert.ok(Math.abs(observed / trials - rate) < 4 * sd, `${name}: ${observed}/${trials} vs ${rate}`);
    };
    within('foreign', styles.filter((s) => s.language).length, n, p.foreignRate);
    within('typo', styles.filter((s) => s.typo).length, n, p.typoRate);
    within('attribute-only', styles.filter((s) => s.attributeOnly).length, n, p.attributeOnlyRate);
    const concepts = styles.reduce((a, s) => a + s.concepts, 0);
    within(
      'synonym',
      styles.reduce((a, s) => a + s.synonyms, 0),
      concepts,
      p.synonymRate,
    );
    // A partial word needs a word of 5+ letters; nearly every query has one.
    const partial = styles.filter((s) => s.partial).length / n;
    assert.ok(partial > p.partialRate * 0.85 && partial < p.partialRate * 1.1, `partial ${partial}`);
    for (const lang of ['es', 'de', 'fr'] as const)
      assert.ok(
        styles.some((s) => s.language === lang),
        lang,
      );

    // The texts show it: the words of clean queries all come from the vocabulary; a typo leaves a word that does not.
    const v = truth.meta.vocab;
    const words = new Set(
      [
        ...v.types.flatMap((t) => [...t.names, ...Object.values(t.foreign)]),
        ...v.colours.flatMap((c) => [...c.names, ...Object.values(c.foreign)]),
        ...v.materials.flatMap((m) => m.names),
        ...v.sizes.flatMap((s) => s.variants),
        ...v.brands,
        'in',
        'by',
      ].flatMap((w) => w.toLowerCase().split(' ')),
    );
    const foreignWords = new Set(
      [...v.types.flatMap((t) => Object.values(t.foreign)), ...v.colours.flatMap((c) => Object.values(c.foreign))]
        .flatMap((w) => w.split(' '))
        .filter((w) => !v.types.some((t) => t.names.some((n) => n.split(' ').includes(w)))),
    );
    let typoOff = 0;
    let typos = 0;
    let cleanOff = 0;
    let foreignSeen = 0;
    let foreign = 0;
    for (const q of queries) {
      const s = truth.intents.get(q.query_id ?? '');
      if (!s) continue;
      const tokens = (q.query ?? '').toLowerCase().split(' ');
      const off = tokens.some((w) => !words.has(w));
      if (s.style.typo) {
        typos++;
        if (off) typoOff++;
      } else if (!s.style.partial && off) cleanOff++;
      if (s.style.language) {
        foreign++;
        if (tokens.some((w) => foreignWords.has(w))) foreignSeen++;
      }
    }
    assert.equal(cleanOff, 0);
    assert.ok(typoOff / typos > 0.9, `${typoOff} of ${typos} misspelled queries have an unknown word`);
    assert.ok(foreignSeen / foreign > 0.8, `${foreignSeen} of ${foreign} foreign queries have a foreign word`);
    assert.notEqual(misspell('sneakers', mulberry32(1)), 'sneakers');
  });

  it("searchers' clicks and purchases follow the true relevance", () => {
    const itemIndex = (id: string) => Number(id.slice(1)) - 1;
    const byEvent = new Map<string, number[]>();
    for (const e of events) {
      const intent = truth.intents.get(e.query_id ?? '');
      assert.ok(intent);
      const g = truth.relevance(intent, itemIndex(e.item_id ?? ''));
      byEvent.set(e.event ?? '', [...(byEvent.get(e.event ?? '') ?? []), g]);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const click = byEvent.get('click') ?? [];
    const purchase = byEvent.get('purchase') ?? [];
    assert.ok(click.length > SHOP.queries, `${click.length} clicks`);
    assert.ok(mean(purchase) > mean(click), `purchases ${mean(purchase)} vs clicks ${mean(click)}`);
    assert.ok(mean(click) > 1.5, `clicked items' mean grade ${mean(click)}`);
    // Some clicks land on irrelevant items (position and popularity noise).
    assert.ok(click.some((g) => g === 0));
  });

  it('lexical overlap ranks well below the truth; knowing synonyms closes much of the gap', () => {
    const texts = items.map((row) =>
      [row.title, row.product_type, row.color, row.material, row.size, row.brand, row.category].join(' | '),
    );
    const plain = lexicalRanker(texts, tokenize);
    const synonyms = lexicalRanker(texts, synonymNormalizer(truth.meta.vocab));
    const all = items.map((_, i) => i);
    let lexical = 0;
    let aware = 0;
    let n = 0;
    const perStyle = new Map<string, { sum: number; n: number }>();
    for (const q of queries.slice(0, 1500)) {
      const intent = truth.intents.get(q.query_id ?? '');
      if (!intent) continue;
      const gains = all.map((i) => truth.relevance(intent, i));
      const a = ndcg10(plain(q.query ?? ''), (i) => gains[i] ?? 0, gains);
      if (Number.isNaN(a)) continue;
      lexical += a;
      aware += ndcg10(synonyms(q.query ?? ''), (i) => gains[i] ?? 0, gains);
      n++;
      const key = intent.style.language ? 'foreign' : intent.style.synonyms ? 'synonym' : 'other';
      const s = perStyle.get(key) ?? { sum: 0, n: 0 };
      s.sum += a;
      s.n++;
      perStyle.set(key, s);
    }
    lexical /= n;
    aware /= n;
    const style = (k: string) => (perStyle.get(k)?.sum ?? 0) / (perStyle.get(k)?.n ?? 1);
    console.log(
      `# NDCG@10 on true grades: oracle 1, token overlap ${lexical.toFixed(3)}, synonym-aware ${aware.toFixed(3)}; ` +
        `token overlap on foreign ${style('foreign').toFixed(3)}, synonym ${style('synonym').toFixed(3)}, other ${style('other').toFixed(3)}`,
    );
    assert.ok(lexical < 0.8, `token overlap ${lexical}`);
    assert.ok(aware > lexical * 1.12, `synonym-aware ${aware} vs ${lexical}`);
    assert.ok(style('foreign') < 0.6 * style('other'));
  });

  it('loadSearchTruth: new queries are seeded, rendered like the log, and have relevant items', () => {
    const a = Array.from(
      { length: 50 },
      (
        (r) => () =>
          truth.sampleQuery(r)
      )(mulberry32(9)),
    );
    const b = Array.from(
      { length: 50 },
      (
        (r) => () =>
          truth.sampleQuery(r)
      )(mulberry32(9)),
    );
    assert.deepEqual(
      a.map((q) => q.text),
      b.map((q) => q.text),
    );
    let withRelevant = 0;
    for (const q of a) {
      assert.ok(q.text.length > 0);
      if (Array.from({ length: SHOP.items }, (_, i) => truth.relevance(q.intent, i)).some((g) => g >= 1))
        withRelevant++;
    }
    assert.ok(withRelevant >= 45, `${withRelevant} of 50`);
    assert.ok(truth.clickProbability(3, 0) > truth.clickProbability(1, 0));
    assert.ok(truth.clickProbability(3, 0) > truth.clickProbability(3, 5));
  });
});
