/**
 * The signal that order reveals in the synthetic shop: sessions share a theme, purchases are followed by their
 * complements, taste drifts over time; the oracle given a user's history ranks what comes next better than without,
 * and the history it reads is the one the generator kept.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ArtifactStore } from '../../../lib/artifacts';
import { loadDataset } from '../../../lib/data/dataset';
import { generateShop } from '../../../lib/data/generator';
import {
  PreferenceScorer,
  datasetHistories,
  datasetHistoryScorer,
  datasetScorer,
  finalHistory,
  loadGroundTruth,
  preferenceByIndex,
  sequenceState,
  type GroundTruth,
} from '../../../lib/data/ground-truth';
import { makeShop, prepareDataset } from '../../../lib/data/pipeline';
import { rankingMetrics } from '../../../lib/eval/metrics';
import { tempHome } from '../../helpers/temporal';

const SHOP = { users: 1000, items: 600, events: 60_000, queries: 0, seed: 8, dirt: 0 };
const TYPES = ['view', 'click', 'add_to_cart', 'purchase'];

interface Event {
  u: number;
  i: number;
  type: number;
  t: number;
}

describe('synthetic shop: sessions, complements, drift', () => {
  let dir = '';
  let gt: GroundTruth;
  let events: Event[] = [];
  before(async () => {
    dir = join(tempHome(), 'shop');
    await generateShop(dir, SHOP);
    gt = await loadGroundTruth(dir);
    events = readFileSync(join(dir, 'events.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => {
        const [u = '', i = '', type = '', t = ''] = l.split(',');
        return { u: Number(u.slice(1)) - 1, i: Number(i.slice(1)) - 1, type: TYPES.indexOf(type), t: Date.parse(t) };
      });
  });

  it('the next purchase is a complement of the last one far above chance', () => {
    const k = gt.meta.complementsPerItem ?? 0;
    assert.equal(k, 4);
    const last = new Map<number, number>();
    let next = 0;
    let complement = 0;
    for (const e of events) {
      if (e.type !== 3) continue;
      const p = last.get(e.u);
      if (p !== undefined) {
        next++;
        if (gt.itemComplements.subarray(p * k, p * k + k).includes(e.i)) complement++;
      }
      last.set(e.u, e.i);
    }
    const share = complement / next;
    const chance = k / SHOP.items;
    console.log(
      `# next purchase a complement of the last: ${(100 * share).toFixed(1)}% (chance ${(100 * chance).toFixed(2)}%)`,
    );
    assert.ok(next > 300, `${next} repeat purchases`);
    assert.ok(share > 15 * chance, `${share} vs chance ${chance}`);
  });

  it("consecutive events in a session share the last item's category far above the base rate", () => {
    const sessionMs = (gt.meta.params.sessionMinutes ?? 30) * 60_000;
    const lastView = new Map<number, Event>();
    const catShare = new Float64Array(gt.meta.categories);
    let same = 0;
    let pairs = 0;
    for (const e of events) {
      if (e.type !== 0) continue;
      const c = gt.itemCategory[e.i] ?? 0;
      catShare[c] = (catShare[c] ?? 0) + 1;
      const p = lastView.get(e.u);
      if (p && e.t - p.t < sessionMs / 4) {
        pairs++;
        if (gt.itemCategory[p.i] === gt.itemCategory[e.i]) same++;
      }
      lastView.set(e.u, e);
    }
    const views = catShare.reduce((a, b) => a + b, 0);
    const base = catShare.reduce((a, c) => a + (c / views) ** 2, 0);
    console.log(
      `# same category as the previous view in a session: ${(same / pairs).toFixed(3)} (base ${base.toFixed(3)})`,
    );
    assert.ok(pairs > 5000);
    assert.ok(same / pairs > 3 * base, `${same / pairs} vs ${base}`);
  });

  it('taste drifts: early events fit the early taste, late events the late one', () => {
    const { start, end, dim } = gt.meta;
    const personal = (u: number, i: number, at: number) => {
      const s = new PreferenceScorer(gt).prepare(u, at);
      // The personal part only: remove the terms that do not depend on the taste.
      const zero = new Float32Array(gt.userFactors.length);
      const base = new PreferenceScorer({ ...gt, userFactors: zero, userDrift: zero }).prepare(u, at);
      return s.score(i) - base.score(i);
    };
    const fit = { early: { start: 0, end: 0 }, late: { start: 0, end: 0 } };
    let n = 0;
    for (const e of events) {
      if (e.type < 1) continue;
      const f = (e.t - start) / (end - start);
      const key = f < 0.2 ? 'early' : f > 0.8 ? 'late' : undefined;
      if (!key || n++ % 3) continue;
      fit[key].start += personal(e.u, e.i, start);
      fit[key].end += personal(e.u, e.i, end);
    }
    assert.ok(fit.early.start > fit.early.end, JSON.stringify(fit));
    assert.ok(fit.late.end > fit.late.start, JSON.stringify(fit));
    assert.equal(dim, 8);
  });

  it('the oracle with the history ranks the next item better than the oracle without it', () => {
    // Next-event prediction over the last quarter of the events: rank of the item each user views next.
    const state = new Map<number, { items: number[]; times: number[]; types: number[] }>();
    const cut = events[Math.floor(events.length * 0.75)]?.t ?? 0;
    const withH = new PreferenceScorer(gt);
    const without = new PreferenceScorer(gt);
    let hitsWith = 0;
    let hitsWithout = 0;
    let n = 0;
    for (const e of events) {
      const h = state.get(e.u) ?? { items: [], times: [], types: [] };
      if (e.t >= cut && e.type === 0 && h.items.length && n < 1500) {
        withH.prepare(e.u, e.t, sequenceState(h, e.t));
        without.prepare(e.u, e.t);
        const rank = (s: PreferenceScorer) => {
          const target = s.score(e.i);
          let above = 0;
          for (let i = 0; i < SHOP.items; i++) if (s.score(i) > target) above++;
          return above;
        };
        if (rank(withH) < 10) hitsWith++;
        if (rank(without) < 10) hitsWithout++;
        n++;
      }
      h.items.push(e.i);
      h.times.push(e.t);
      h.types.push(e.type);
      state.set(e.u, h);
    }
    console.log(`# next view in the oracle's top 10: with history ${hitsWith / n}, without ${hitsWithout / n}`);
    assert.ok(hitsWith > hitsWithout * 1.3, `${hitsWith} vs ${hitsWithout} of ${n}`);
  });

  it('the shop ends with the state the generator kept; histories reduce to it', () => {
    const last = new Map<number, Event>();
    const lastPurchase = new Map<number, Event>();
    for (const e of events) {
      last.set(e.u, e);
      if (e.type === 3) lastPurchase.set(e.u, e);
    }
    for (const [u, e] of [...last].slice(0, 200)) {
      const h = finalHistory(gt, u);
      const s = sequenceState(h);
      assert.equal(s.lastItem, e.i);
      assert.equal(s.lastTime, e.t);
      assert.equal(s.lastPurchase, lastPurchase.get(u)?.i ?? -1);
    }
    const unseen = [...Array(SHOP.users).keys()].find((u) => !last.has(u));
    if (unseen !== undefined) assert.deepEqual(finalHistory(gt, unseen).items, []);
    // A plain item list reads as a live session: no times, no purchases.
    assert.deepEqual(sequenceState([3, -1, 5]), {
      lastItem: 5,
      lastTime: NaN,
      lastPurchase: -1,
      lastPurchaseTime: NaN,
    });
    // History-free calls are the old API.
    assert.equal(preferenceByIndex(gt, 1, 2, gt.meta.end), new PreferenceScorer(gt).prepare(1, gt.meta.end).score(2));
  });

  it('on the dataset, the history-aware oracle beats the oracle without history and both beat popularity', async () => {
    const store = new ArtifactStore(join(tempHome(), 'artifacts'));
    const { shop } = await makeShop(store, { ...SHOP, events: 40_000 });
    const ds = await loadDataset((await prepareDataset(store, { source: { kind: 'shop', id: shop.id } })).dataset.path);
    const truth = await loadGroundTruth(shop.path);
    const at = ds.manifest.split.validationEnd;
    const plain = datasetScorer(truth, ds.vocab, at);
    const scorer = datasetHistoryScorer(truth, ds.vocab);
    const histories = datasetHistories([ds.splits.train, ds.splits.validation], at);
    const relevant = new Map<number, Set<number>>();
    const test = ds.splits.test;
    for (let k = 0; k < test.user.length; k++) {
      const u = test.user[k] ?? 0;
      relevant.set(u, (relevant.get(u) ?? new Set()).add(test.item[k] ?? 0));
    }
    const items = Array.from({ length: ds.vocab.items.length - 1 }, (_, k) => k + 1);
    const rank = (score: (i: number) => number) => {
      const s = new Float64Array(ds.vocab.items.length);
      for (const i of items) s[i] = score(i);
      return items.slice().sort((a, b) => (s[b] ?? 0) - (s[a] ?? 0));
    };
    const byPop = items.slice().sort((a, b) => (ds.items.popularity[b] ?? 0) - (ds.items.popularity[a] ?? 0));
    const metric = (ranking: (u: number) => number[]) =>
      rankingMetrics(
        [...relevant].map(([u, rel]) => ({ ranking: ranking(u), relevant: rel })),
        10,
      ).ndcg;
    const oracle = metric((u) => rank((i) => plain(u, i)));
    const oracleHistory = metric((u) => rank(scorer(u, histories.get(u), at)));
    const pop = metric(() => byPop);
    console.log(
      `# test NDCG@10: oracle with history ${oracleHistory.toFixed(4)}, without ${oracle.toFixed(4)}, popularity ${pop.toFixed(4)}`,
    );
    assert.ok(oracleHistory > oracle * 1.05, `${oracleHistory} vs ${oracle}`);
    assert.ok(oracle > pop * 1.3, `${oracle} vs ${pop}`);
  });

  it('a format 1 ground truth (generator version 2) still loads, without the sequence terms', async () => {
    const old = join(tempHome(), 'old');
    await generateShop(old, { users: 50, items: 40, events: 500, queries: 0, seed: 1, dirt: 0 });
    const g = join(old, 'ground-truth');
    const meta = JSON.parse(readFileSync(join(g, 'meta.json'), 'utf8')) as { format: string };
    meta.format = 'recflow-ground-truth/1';
    writeFileSync(join(g, 'meta.json'), JSON.stringify(meta));
    for (const f of ['user_drift.f32', 'item_type.i32', 'item_complements.i32', 'user_state.f64']) rmSync(join(g, f));
    const v1 = await loadGroundTruth(old);
    assert.equal(
      v1.userDrift.every((x) => x === 0),
      true,
    );
    assert.deepEqual(finalHistory(v1, 0).items, []);
    // The version 2 formula: dot(user, item) + segment x category + popularity + recency.
    const at = v1.meta.start + 86_400_000;
    const p = v1.meta.params;
    let want = 0;
    for (let j = 0; j < 8; j++) want += (v1.userFactors[j] ?? 0) * (v1.itemFactors[3 * 8 + j] ?? 0);
    want += v1.segmentCategory[(v1.userSegment[0] ?? 0) * v1.meta.categories + (v1.itemCategory[3] ?? 0)] ?? 0;
    want += p.popularityWeight * (v1.itemBias[3] ?? 0);
    want += p.recencyWeight * Math.exp(-Math.max(0, at - (v1.itemLaunch[3] ?? 0)) / (p.recencyDays * 86_400_000));
    const got = new PreferenceScorer(v1).prepare(0, at, {
      lastItem: 1,
      lastTime: at,
      lastPurchase: 1,
      lastPurchaseTime: at,
    });
    assert.ok(Math.abs(got.score(3) - want) < 1e-9, `${got.score(3)} vs ${want}`);
  });
});
