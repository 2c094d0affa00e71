/**
 * What the synthetic shop's hidden truth makes measurable (generator version 3), in one run:
 *
 *   node --import tsx bench/shop.ts [--events 1000000]
 *
 * 1. Recommendations: test NDCG@10 (binary, the test split's items per user; all items ranked, and with the
 *    user's train/validation items excluded) of the oracle with the user's history (sessions, complements), the
 *    oracle without it, popularity and recent popularity (last 7 days of validation), on the unit tests' small shop
 *    (3 seeds) and the demo's shop.
 * 2. Search: NDCG@10 on the hidden graded relevance (gains 2^g - 1) of IDF-weighted token overlap (BM25-style) and
 *    of the same ranker with every synonym and translation mapped to one token (an upper bound of what knowing
 *    synonyms gives a lexical ranker), on the first 1500 queries; and on the dataset's observed test judgements
 *    (grades from clicks, carts, purchases) the hidden-relevance ranking against token overlap.
 * 3. Generation time of a shop with `--events` events (default shop otherwise).
 * Writes bench/results/shop.json.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactStore } from '../lib/artifacts';
import { loadDataset, type LoadedDataset } from '../lib/data/dataset';
import { GENERATOR_VERSION, generateShop } from '../lib/data/generator';
import { datasetHistories, datasetHistoryScorer, datasetScorer, loadGroundTruth } from '../lib/data/ground-truth';
import { makeShop, prepareDataset } from '../lib/data/pipeline';
import { tokenize } from '../lib/data/preprocess';
import { loadSearchTruth, type SearchTruth } from '../lib/data/search-truth';
import { rankingMetrics } from '../lib/eval/metrics';
import { numArg, writeResult } from './peer';

const DAY = 86_400_000;

async function recommendation(
  store: ArtifactStore,
  cfg: { users: number; items: number; events: number; seed: number },
) {
  const { shop } = await makeShop(store, { ...cfg, queries: 0 });
  const ds = await loadDataset((await prepareDataset(store, { source: { kind: 'shop', id: shop.id } })).dataset.path);
  const gt = await loadGroundTruth(shop.path);
  const at = ds.manifest.split.validationEnd;
  const plain = datasetScorer(gt, ds.vocab, at);
  const withHistory = datasetHistoryScorer(gt, ds.vocab);
  const histories = datasetHistories([ds.splits.train, ds.splits.validation], at);
  const nI = ds.vocab.items.length;
  const items = Array.from({ length: nI - 1 }, (_, k) => k + 1);
  const seen = new Map<number, Set<number>>();
  for (const s of [ds.splits.train, ds.splits.validation]) {
    for (let k = 0; k < s.user.length; k++) {
      const u = s.user[k] ?? 0;
      seen.set(u, (seen.get(u) ?? new Set()).add(s.item[k] ?? 0));
    }
  }
  const relevant = new Map<number, Set<number>>();
  const t = ds.splits.test;
  for (let k = 0; k < t.user.length; k++) {
    const u = t.user[k] ?? 0;
    relevant.set(u, (relevant.get(u) ?? new Set()).add(t.item[k] ?? 0));
  }
  const recent = new Float64Array(nI);
  const v = ds.splits.validation;
  for (let k = 0; k < v.user.length; k++) {
    const i = v.item[k] ?? 0;
    if ((v.timestamp[k] ?? 0) >= at - 7 * DAY) recent[i] = (recent[i] ?? 0) + 1;
  }
  const pop = ds.items.popularity;
  const byPop = items.slice().sort((a, b) => (pop[b] ?? 0) - (pop[a] ?? 0));
  const byRecent = items.slice().sort((a, b) => (recent[b] ?? 0) - (recent[a] ?? 0) || (pop[b] ?? 0) - (pop[a] ?? 0));
  const sortBy = (score: (i: number) => number) => {
    const s = new Float64Array(nI);
    for (const i of items) s[i] = score(i);
    return items.slice().sort((a, b) => (s[b] ?? 0) - (s[a] ?? 0));
  };
  const out: Record<string, Record<string, number>> = {};
  for (const exclude of [false, true]) {
    const users = [...relevant]
      .map(([u, r]) => ({ u, r: exclude ? new Set([...r].filter((i) => !seen.get(u)?.has(i))) : r }))
      .filter((x) => x.r.size > 0);
    const m = (ranking: (u: number) => number[]) =>
      rankingMetrics(
        users.map(({ u, r }) => ({
          ranking: exclude ? ranking(u).filter((i) => !seen.get(u)?.has(i)) : ranking(u),
          relevant: r,
        })),
        10,
      ).ndcg;
    const row = {
      users: users.length,
      oracleWithHistory: m((u) => sortBy(withHistory(u, histories.get(u), at))),
      oracle: m((u) => sortBy((i) => plain(u, i))),
      popularity: m(() => byPop),
      recentPopularity7d: m(() => byRecent),
    };
    out[exclude ? 'seenExcluded' : 'allItems'] = {
      ...row,
      oracleOverPopularity: row.oracle / row.popularity,
      oracleOverBestPopularity: row.oracle / Math.max(row.popularity, row.recentPopularity7d),
      historyGain: row.oracleWithHistory / row.oracle,
    };
  }
  return { shop: cfg, ...out };
}

function idfRanker(docs: string[][]): (query: string[]) => number[] {
  const sets = docs.map((d) => new Set(d));
  const df = new Map<string, number>();
  for (const d of sets) for (const w of d) df.set(w, (df.get(w) ?? 0) + 1);
  return (q) => {
    const score = sets.map((d) => q.reduce((s, w) => s + (d.has(w) ? Math.log(sets.length / (df.get(w) ?? 1)) : 0), 0));
    return sets.map((_, i) => i).sort((a, b) => (score[b] ?? 0) - (score[a] ?? 0) || a - b);
  };
}

function synonymTokens(truth: SearchTruth): (s: string) => string[] {
  const v = truth.meta.vocab;
  const phrases: Array<[string, string]> = [];
  v.types.forEach((t, k) => [...t.names, ...Object.values(t.foreign)].forEach((n) => phrases.push([n, `type${k}`])));
  v.colours.forEach((c, k) =>
    [...c.names, ...Object.values(c.foreign)].forEach((n) => phrases.push([n, `colour${k}`])),
  );
  v.materials.forEach((m, k) => m.names.forEach((n) => phrases.push([n, `material${k}`])));
  phrases.sort((a, b) => b[0].length - a[0].length);
  return (s) => {
    let t = ` ${tokenize(s).join(' ')} `;
    for (const [p, c] of phrases) t = t.replaceAll(` ${tokenize(p).join(' ')} `, ` ${c} `);
    return t.split(' ').filter(Boolean);
  };
}

const dcg10 = (gains: number[]) => gains.slice(0, 10).reduce((s, g, k) => s + (2 ** g - 1) / Math.log2(k + 2), 0);

async function search(store: ArtifactStore) {
  const cfg = { users: 2000, items: 1000, events: 50_000, queries: 3000, seed: 42 };
  const { shop } = await makeShop(store, cfg);
  const ds: LoadedDataset = await loadDataset(
    (await prepareDataset(store, { source: { kind: 'shop', id: shop.id } })).dataset.path,
  );
  const truth = await loadSearchTruth(shop.path);
  const s = ds.search;
  if (!s) throw new Error('no search tables');
  const gtIndex = (i: number) => Number((ds.vocab.items[i] ?? 'i0').slice(1)) - 1;
  const itemIdx = Array.from({ length: ds.vocab.items.length - 1 }, (_, k) => k + 1);
  const texts = itemIdx.map((i) => s.itemText[i] ?? '');
  const lexical = idfRanker(texts.map(tokenize));
  const syn = synonymTokens(truth);
  const aware = idfRanker(texts.map(syn));
  // 1. Hidden graded relevance, all queries of all splits (first 1500).
  const all = (['train', 'validation', 'test'] as const).flatMap((k) =>
    s.splits[k].ids.map((id, q) => ({ id, text: s.splits[k].text[q] ?? '' })),
  );
  let nTrue = 0;
  let lexTrue = 0;
  let awareTrue = 0;
  for (const q of all.slice(0, 1500)) {
    const intent = truth.intents.get(q.id);
    if (!intent) continue;
    const gains = itemIdx.map((i) => truth.relevance(intent, gtIndex(i)));
    const ideal = dcg10([...gains].sort((a, b) => b - a));
    if (!ideal) continue;
    lexTrue += dcg10(lexical(tokenize(q.text)).map((k) => gains[k] ?? 0)) / ideal;
    awareTrue += dcg10(aware(syn(q.text)).map((k) => gains[k] ?? 0)) / ideal;
    nTrue++;
  }
  // 2. Observed test judgements.
  const te = s.splits.test;
  let nObs = 0;
  let lexObs = 0;
  let oracleObs = 0;
  for (let q = 0; q < te.ids.length; q++) {
    const from = te.offsets[q] ?? 0;
    const to = te.offsets[q + 1] ?? 0;
    if (to === from) continue;
    const gain = new Map<number, number>();
    for (let j = from; j < to; j++) gain.set(te.judgements.item[j] ?? 0, te.judgements.grade[j] ?? 0);
    const ideal = dcg10([...gain.values()].sort((a, b) => b - a));
    const intent = truth.intents.get(te.ids[q] ?? '');
    if (!intent) continue;
    const rel = (i: number) => truth.relevance(intent, gtIndex(i)) + 1e-3 * Math.log1p(ds.items.popularity[i] ?? 0);
    const byTruth = itemIdx.slice().sort((a, b) => rel(b) - rel(a) || a - b);
    lexObs += dcg10(lexical(tokenize(te.text[q] ?? '')).map((k) => gain.get(itemIdx[k] ?? 0) ?? 0)) / ideal;
    oracleObs += dcg10(byTruth.map((i) => gain.get(i) ?? 0)) / ideal;
    nObs++;
  }
  const styles = [...truth.intents.values()].map((x) => x.style);
  const share = (f: (st: (typeof styles)[number]) => boolean) => styles.filter(f).length / styles.length;
  return {
    shop: cfg,
    queries: { ...ds.manifest.search?.counts },
    styles: {
      foreign: share((x) => x.language !== null),
      typo: share((x) => x.typo),
      partial: share((x) => x.partial),
      attributeOnly: share((x) => x.attributeOnly),
      synonymPerConcept: styles.reduce((a, x) => a + x.synonyms, 0) / styles.reduce((a, x) => a + x.concepts, 0),
    },
    hiddenRelevanceNdcg10: {
      queries: nTrue,
      oracle: 1,
      tokenOverlap: lexTrue / nTrue,
      synonymAwareTokenOverlap: awareTrue / nTrue,
    },
    observedTestNdcg10: { queries: nObs, hiddenRelevanceRanking: oracleObs / nObs, tokenOverlap: lexObs / nObs },
  };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'recflow-bench-shop-'));
  try {
    const store = new ArtifactStore(join(work, 'artifacts'));
    const recs = [];
    for (const seed of [2, 3, 4])
      recs.push(await recommendation(store, { users: 300, items: 200, events: 8000, seed }));
    recs.push(await recommendation(store, { users: 3000, items: 1500, events: 200_000, seed: 1 }));
    for (const r of recs) console.log(JSON.stringify(r));
    const s = await search(store);
    console.log(JSON.stringify(s));
    const events = numArg('events', 1_000_000);
    const t0 = performance.now();
    const counts = await generateShop(join(work, 'speed'), { events });
    const generateSeconds = (performance.now() - t0) / 1000;
    console.log(
      `generated ${counts.events} event rows and ${counts.queries} queries in ${generateSeconds.toFixed(2)} s`,
    );
    await writeResult('shop.json', {
      command: 'node --import tsx bench/shop.ts',
      generator: GENERATOR_VERSION,
      recommendation: recs,
      search: s,
      generation: { events, rows: counts.events, queries: counts.queries, seconds: generateSeconds },
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

void main();
