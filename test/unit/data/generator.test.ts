import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateShop } from '../../../lib/data/generator';
import { clickProbability, loadGroundTruth, oracleTopK } from '../../../lib/data/ground-truth';
import { validateSource } from '../../../lib/data/validate';
import { validateSearch } from '../../../lib/data/validate-search';
import { tempHome } from '../../helpers/temporal';

const SMALL = { users: 400, items: 300, events: 8000, queries: 1500 };

function filesOf(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = readFileSync(join(d, e.name));
    }
  };
  walk(dir, '');
  return out;
}

describe('synthetic shop generator', () => {
  it('same seed gives the same bytes; another seed differs', async () => {
    const home = tempHome();
    await generateShop(join(home, 'a'), { ...SMALL, seed: 7 });
    await generateShop(join(home, 'b'), { ...SMALL, seed: 7 });
    await generateShop(join(home, 'c'), { ...SMALL, seed: 8 });
    const a = filesOf(join(home, 'a'));
    const b = filesOf(join(home, 'b'));
    const c = filesOf(join(home, 'c'));
    assert.deepEqual(Object.keys(a).sort(), [
      'events.csv',
      'ground-truth/item_attrs.i32',
      'ground-truth/item_bias.f32',
      'ground-truth/item_category.i32',
      'ground-truth/item_complements.i32',
      'ground-truth/item_factors.f32',
      'ground-truth/item_launch.f64',
      'ground-truth/item_type.i32',
      'ground-truth/meta.json',
      'ground-truth/search.json',
      'ground-truth/search_intents.jsonl',
      'ground-truth/segment_category.f32',
      'ground-truth/user_drift.f32',
      'ground-truth/user_factors.f32',
      'ground-truth/user_segment.i32',
      'ground-truth/user_state.f64',
      'items.csv',
      'queries.csv',
      'search_events.csv',
      'users.csv',
    ]);
    for (const k of Object.keys(a)) assert.ok(a[k]?.equals(b[k] ?? Buffer.alloc(0)), `${k} differs for the same seed`);
    assert.ok(!a['events.csv']?.equals(c['events.csv'] ?? Buffer.alloc(0)));
    assert.ok(!a['queries.csv']?.equals(c['queries.csv'] ?? Buffer.alloc(0)));
    assert.ok(!a['ground-truth/user_factors.f32']?.equals(c['ground-truth/user_factors.f32'] ?? Buffer.alloc(0)));
  });

  it('writes the requested volume, event types in order of the funnel, and dirt that validation finds', async () => {
    const dir = join(tempHome(), 'shop');
    const counts = await generateShop(dir, { ...SMALL, seed: 3, dirt: 0.02 });
    assert.equal(counts.cleanEvents, SMALL.events);
    assert.equal(counts.events, SMALL.events + (counts.dirt.duplicate ?? 0));
    const lines = readFileSync(join(dir, 'events.csv'), 'utf8').trim().split('\n');
    assert.equal(lines.length - 1, counts.events);
    const types = new Map<string, number>();
    for (const l of lines.slice(1)) types.set(l.split(',')[2] ?? '', (types.get(l.split(',')[2] ?? '') ?? 0) + 1);
    const n = (t: string) => types.get(t) ?? 0;
    assert.ok(n('view') > n('click') && n('click') > n('add_to_cart') && n('add_to_cart') > n('purchase'));
    assert.ok(n('purchase') > 0);
    const { report } = await validateSource(dir);
    assert.equal(report.hard.length, 0, JSON.stringify(report.hard));
    const soft = (code: string, column?: string) =>
      report.soft.filter((a) => a.code === code && (!column || a.column === column)).reduce((s, a) => s + a.count, 0);
    assert.equal(soft('duplicate'), counts.dirt.duplicate);
    assert.equal(soft('unknown_id', 'user_id'), counts.dirt.unknownUser);
    assert.equal(soft('unknown_id', 'item_id'), counts.dirt.unknownItem);
    assert.equal(soft('out_of_order'), counts.dirt.outOfOrder);
    assert.equal(soft('price_outlier'), counts.dirt.priceOutlier);
    const eventNulls = Object.values(report.files['events.csv']?.nulls ?? {}).reduce((s, x) => s + x, 0);
    assert.equal(eventNulls, counts.dirt.missingValue);
    // The search log's dirt.
    const search = await validateSearch(dir);
    const found = (file: string, code: string, column: string) =>
      search.anomalies.find((a) => a.file === file && a.code === code && a.column === column)?.count ?? 0;
    assert.equal(search.anomalies.filter((a) => a.severity === 'hard').length, 0);
    assert.equal(found('queries.csv', 'null', 'query'), counts.dirt.queryMissingText);
    assert.equal(found('search_events.csv', 'unknown_id', 'query_id'), counts.dirt.searchUnknownQuery);
    assert.equal(found('search_events.csv', 'unknown_id', 'item_id'), counts.dirt.searchUnknownItem);
    assert.equal(found('search_events.csv', 'null', 'event'), counts.dirt.searchMissingEvent);
    assert.ok((counts.dirt.searchUnknownItem ?? 0) > 0 && (counts.dirt.queryMissingText ?? 0) > 0);
  });

  it('ground truth: clicked items have a higher click probability than random ones; the oracle ranks by it', async () => {
    const dir = join(tempHome(), 'shop');
    await generateShop(dir, { ...SMALL, seed: 11, dirt: 0 });
    const gt = await loadGroundTruth(dir);
    assert.equal(gt.meta.users, SMALL.users);
    const lines = readFileSync(join(dir, 'events.csv'), 'utf8').trim().split('\n').slice(1);
    let clicked = 0;
    let viewed = 0;
    let nc = 0;
    let nv = 0;
    for (const l of lines) {
      const [u, i, type] = l.split(',') as [string, string, string];
      const p = clickProbability(gt, u, i);
      assert.ok(p > 0 && p < 1);
      if (type === 'click') {
        clicked += p;
        nc++;
      }
      if (type === 'view') {
        viewed += p;
        nv++;
      }
    }
    assert.ok(clicked / nc > viewed / nv + 0.02, `clicked ${clicked / nc} vs viewed ${viewed / nv}`);
    const top = oracleTopK(gt, 'u1', 10);
    assert.equal(top.length, 10);
    for (let k = 1; k < top.length; k++) assert.ok((top[k - 1]?.probability ?? 0) >= (top[k]?.probability ?? 0));
    const all = Array.from({ length: SMALL.items }, (_, i) => clickProbability(gt, 'u1', `i${i + 1}`));
    assert.equal(top[0]?.probability, Math.max(...all));
    const sub = oracleTopK(gt, 'u1', 2, ['i5', 'i6', 'i7', 'nope']);
    assert.equal(sub.length, 2);
    assert.ok(sub.every((s) => ['i5', 'i6', 'i7'].includes(s.itemId)));
    assert.equal(clickProbability(gt, 'stranger', 'i1'), 1 / (1 + Math.exp(-gt.meta.params.intercept)));
  });

  it('rejects bad options', async () => {
    await assert.rejects(generateShop(join(tempHome(), 'x'), { users: 0 }), /users=0/);
    await assert.rejects(generateShop(join(tempHome(), 'x'), { dirt: 0.9 }), /dirt=0.9/);
  });
});
