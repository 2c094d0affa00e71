import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactStore } from '../../../lib/artifacts';
import { prepareDataset, validateData } from '../../../lib/data/pipeline';
import { validateSource } from '../../../lib/data/validate';
import { itemSearchText, validateSearch } from '../../../lib/data/validate-search';
import { RecflowError } from '../../../lib/errors';
import { tempHome } from '../../helpers/temporal';

const T0 = Date.UTC(2026, 0, 1);
const iso = (m: number) => new Date(T0 + m * 60_000).toISOString();
const USERS = ['user_id,segment', ...Array.from({ length: 20 }, (_, k) => `u${k + 1},s${k % 2}`)];
const ITEMS = [
  'item_id,category,brand,price,title,product_type,color,material,size',
  ...Array.from(
    { length: 30 },
    (_, k) =>
      `i${k + 1},shoes,Nordwind,${10 + k},"Nordwind Crimson Leather Trainers, Size ${36 + (k % 10)}",sneakers,crimson,leather,${36 + (k % 10)}`,
  ),
];
const EVENTS = [
  'user_id,item_id,event_type,timestamp',
  ...Array.from({ length: 200 }, (_, k) => `u${(k % 20) + 1},i${(k % 30) + 1},view,${iso(k)}`),
];
const QUERIES = [
  'query_id,user_id,timestamp,query',
  ...Array.from(
    { length: 100 },
    (_, k) => `q${k + 1},${k % 7 ? `u${(k % 20) + 1}` : ''},${iso(2 * k)},red trainers ${k % 5}`,
  ),
];
const SEARCH_EVENTS = [
  'query_id,item_id,event,timestamp',
  ...Array.from(
    { length: 200 },
    (_, k) =>
      `q${(k % 100) + 1},i${(k % 30) + 1},${['click', 'add_to_cart', 'purchase'][k % 3]},${iso(2 * (k % 100) + 1)}`,
  ),
];

type Name = 'users' | 'items' | 'events' | 'queries' | 'search_events';

/** A folder with a search log; `edit` changes one file's lines (or returns bytes; null leaves the file out). */
function folder(edit: Partial<Record<Name, (lines: string[]) => string[] | Buffer | null>> = {}): string {
  const dir = join(tempHome(), 'data');
  mkdirSync(dir);
  const files: Record<Name, string[]> = {
    users: USERS,
    items: ITEMS,
    events: EVENTS,
    queries: QUERIES,
    search_events: SEARCH_EVENTS,
  };
  for (const [name, lines] of Object.entries(files) as Array<[Name, string[]]>) {
    const out = edit[name] ? edit[name](lines.slice()) : lines;
    if (out === null) continue;
    writeFileSync(join(dir, `${name}.csv`), Buffer.isBuffer(out) ? out : `${out.join('\n')}\n`);
  }
  return dir;
}

async function hardMessage(dir: string): Promise<string> {
  try {
    const res = await validateSearch(dir);
    const hard = res.anomalies.filter((a) => a.severity === 'hard');
    assert.ok(hard.length > 0, `expected a hard anomaly, got: ${res.anomalies.map((a) => a.message).join('; ')}`);
    return hard[0]?.message ?? '';
  } catch (err) {
    assert.ok(err instanceof RecflowError, String(err));
    assert.equal(err.type, 'InvalidData');
    return err.message;
  }
}

describe('search log validation', () => {
  it('a clean search log passes; items.csv with or without attribute columns', async () => {
    const res = await validateSearch(folder(), { collect: true });
    assert.equal(res.present, true);
    assert.deepEqual(
      res.anomalies.filter((a) => a.severity === 'hard'),
      [],
    );
    // Anonymous searches (empty user_id) are soft only.
    assert.deepEqual(
      res.anomalies.map((a) => [a.file, a.column, a.severity]),
      [['queries.csv', 'user_id', 'soft']],
    );
    assert.deepEqual(res.rows, { queries: 100, search_events: 200 });
    assert.equal(
      res.data?.items.text[0],
      itemSearchText({
        title: 'Nordwind Crimson Leather Trainers, Size 36',
        product_type: 'sneakers',
        color: 'crimson',
        material: 'leather',
        size: '36',
        brand: 'Nordwind',
        category: 'shoes',
      }),
    );
    assert.equal(
      res.data?.items.text[0],
      'Nordwind Crimson Leather Trainers, Size 36 | type: sneakers | color: crimson | material: leather | size: 36 | brand: Nordwind | category: shoes',
    );
    // The main gate accepts the attribute columns (extra columns) and files without them.
    const { report } = await validateSource(folder());
    assert.deepEqual(report.hard, []);
    const plain = folder({
      items: (l) =>
        l.map((x, k) => (k ? x.replace(/,sneakers,crimson,leather,\d+$/, '') : 'item_id,category,brand,price,title')),
    });
    assert.deepEqual((await validateSource(plain)).report.hard, []);
    const noAttrs = await validateSearch(plain, { collect: true });
    assert.equal(
      noAttrs.data?.items.text[0],
      'Nordwind Crimson Leather Trainers, Size 36 | brand: Nordwind | category: shoes',
    );
  });

  it('empty or missing optional files are absent; events without queries are refused', async () => {
    for (const empty of [() => Buffer.alloc(0), () => Buffer.from('\n  \n'), () => null]) {
      const res = await validateSearch(folder({ queries: empty, search_events: empty }));
      assert.equal(res.present, false);
      assert.deepEqual(res.anomalies, []);
    }
    const headerOnly = await validateSearch(
      folder({ queries: (l) => l.slice(0, 1), search_events: (l) => l.slice(0, 1) }),
    );
    assert.equal(headerOnly.present, false);
    assert.deepEqual(headerOnly.anomalies, []);
    assert.match(
      await hardMessage(folder({ queries: () => null })),
      /^search_events\.csv is present but queries\.csv is missing or has no rows/,
    );
    const noEvents = await validateSearch(folder({ search_events: () => Buffer.alloc(0) }));
    assert.equal(noEvents.present, true);
    assert.match(noEvents.anomalies[1]?.message ?? '', /^queries\.csv has no search_events\.csv/);
  });

  it('unknown item and query ids name the file, row, column and value', async () => {
    assert.equal(
      await hardMessage(
        folder({
          search_events: (l) => l.map((x, k) => (k > 0 && k % 10 === 0 ? x.replace(/,i\d+,/, `,i9${k},`) : x)),
        }),
      ),
      "search_events.csv row 10, column item_id, value 'i910': unknown item id (not in items.csv); 10.0% of rows (20 of 200) exceed the 5.0% limit",
    );
    assert.match(
      await hardMessage(
        folder({ search_events: (l) => l.map((x, k) => (k > 0 && k % 4 === 0 ? x.replace(/^q\d+/, 'q999') : x)) }),
      ),
      /^search_events\.csv row 4, column query_id, value 'q999': unknown query id \(not in queries\.csv\); 25\.0% of rows/,
    );
    const few = await validateSearch(
      folder({ search_events: (l) => l.map((x, k) => (k === 7 ? x.replace(/,i\d+,/, ',i999,') : x)) }),
    );
    assert.match(
      few.anomalies.find((a) => a.column === 'item_id')?.message ?? '',
      /^search_events\.csv row 7, column item_id, value 'i999': unknown item id \(not in items\.csv\); 1 of 200 rows/,
    );
    assert.match(
      await hardMessage(
        folder({ queries: (l) => l.map((x, k) => (k > 0 && k % 5 === 0 ? x.replace(/,u\d+,/, ',ghost,') : x)) }),
      ),
      /^queries\.csv row 5, column user_id, value 'ghost': unknown user id \(not in users\.csv\)/,
    );
  });

  it('bad event names, timestamps, empty and over-long queries, duplicates, missing columns, wrong delimiter', async () => {
    assert.match(
      await hardMessage(
        folder({
          search_events: (l) => l.map((x, k) => (k % 50 === 3 ? x.replace(/,[a-z_]+,2026/, ',like,2026') : x)),
        }),
      ),
      /^search_events\.csv row 3, column event, value 'like': not one of click, add_to_cart, purchase; 2\.0% of rows \(4 of 200\) exceed the 1\.0% limit/,
    );
    assert.match(
      await hardMessage(
        folder({
          queries: (l) => l.map((x, k) => (k > 0 && k % 20 === 0 ? x.replace(/,2026[^,]+,/, ',yesterday,') : x)),
        }),
      ),
      /^queries\.csv row 20, column timestamp, value 'yesterday': not an ISO 8601 date or epoch ms/,
    );
    assert.match(
      await hardMessage(
        folder({ queries: (l) => l.map((x, k) => (k > 0 && k % 10 === 0 ? x.replace(/,[^,]+$/, ',') : x)) }),
      ),
      /^queries\.csv row 10, column query, value '': empty value; 10\.0% of rows \(10 of 100\) exceed the 5\.0% limit/,
    );
    assert.match(
      await hardMessage(
        folder({
          queries: (l) => l.map((x, k) => (k === 2 || k === 9 ? x.replace(/,[^,]+$/, `,${'x'.repeat(1001)}`) : x)),
        }),
      ),
      /^queries\.csv row 2, column query, value 'x{60}': longer than 1000 characters/,
    );
    assert.match(
      await hardMessage(folder({ queries: (l) => [...l, ...l.slice(1, 11)] })),
      /^queries\.csv row 101, column query_id, value 'q1': duplicate query id; 9\.1% of rows/,
    );
    assert.match(
      await hardMessage(folder({ search_events: (l) => l.map((x) => x.split(',').slice(0, 3).join(',')) })),
      /^search_events\.csv line 1: missing column timestamp \(header: query_id,item_id,event;/,
    );
    assert.match(
      await hardMessage(folder({ queries: (l) => l.map((x) => x.replaceAll(',', ';')) })),
      /^queries\.csv line 1: wrong delimiter, the header is semicolon-separated/,
    );
  });

  it('the pipeline gate reports the search files and fails on their hard anomalies without writing a dataset', async () => {
    const store = new ArtifactStore(join(tempHome(), 'artifacts'));
    const ok = await validateData(store, { source: { kind: 'dir', path: folder() } });
    assert.deepEqual(ok.rows, { events: 200, items: 30, users: 20, queries: 100, search_events: 200 });
    const bad = folder({
      search_events: (l) => l.map((x, k) => (k > 0 && k % 2 === 0 ? x.replace(/,i\d+,/, ',nope,') : x)),
    });
    await assert.rejects(
      prepareDataset(store, { source: { kind: 'dir', path: bad } }),
      (err: RecflowError) =>
        err.type === 'InvalidData' &&
        /^search_events\.csv row 2, column item_id, value 'nope': unknown item id/.test(err.message),
    );
    assert.ok(!existsSync(join(store.root, 'dataset')) || readdirSync(join(store.root, 'dataset')).length === 0);
  });
});
