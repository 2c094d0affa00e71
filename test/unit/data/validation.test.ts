import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactStore } from '../../../lib/artifacts';
import { prepareDataset, validateData } from '../../../lib/data/pipeline';
import { parseTimestamp, validateSource } from '../../../lib/data/validate';
import { RecflowError } from '../../../lib/errors';
import { tempHome } from '../../helpers/temporal';

const USERS = ['user_id,segment,region', ...Array.from({ length: 50 }, (_, k) => `u${k + 1},seg${k % 3},reg${k % 4}`)];
const ITEMS = [
  'item_id,category,brand,price,title',
  ...Array.from(
    { length: 40 },
    (_, k) => `i${k + 1},cat${k % 5},brand${k % 7},${(5 + k * 1.5).toFixed(2)},Blue thing ${k}`,
  ),
];
const TYPES = ['view', 'click', 'add_to_cart', 'purchase'];
function events(n = 400): string[] {
  const t0 = Date.UTC(2026, 0, 1);
  return [
    'user_id,item_id,event_type,timestamp',
    ...Array.from(
      { length: n },
      (_, k) => `u${(k % 50) + 1},i${((k * 7) % 40) + 1},${TYPES[k % 4]},${new Date(t0 + k * 60_000).toISOString()}`,
    ),
  ];
}

/** A valid folder; `edit` changes one file's lines before writing. */
function folder(
  edit: Partial<Record<'users' | 'items' | 'events', (lines: string[]) => string[] | Buffer>> = {},
): string {
  const dir = join(tempHome(), 'data');
  mkdirSync(dir);
  const files = { users: USERS, items: ITEMS, events: events() };
  for (const [name, lines] of Object.entries(files) as Array<[keyof typeof files, string[]]>) {
    const out = edit[name] ? edit[name](lines.slice()) : lines;
    writeFileSync(join(dir, `${name}.csv`), Buffer.isBuffer(out) ? out : `${out.join('\n')}\n`);
  }
  return dir;
}

async function hardMessage(dir: string): Promise<string> {
  try {
    const { report } = await validateSource(dir);
    assert.ok(
      report.hard.length > 0,
      `expected a hard anomaly, got soft: ${report.soft.map((a) => a.message).join('; ')}`,
    );
    return report.hard[0]?.message ?? '';
  } catch (err) {
    assert.ok(err instanceof RecflowError, String(err));
    assert.equal(err.type, 'InvalidData');
    return err.message;
  }
}

describe('validation gate', () => {
  it('passes a clean folder with no anomalies', async () => {
    const { report } = await validateSource(folder());
    assert.deepEqual(report.hard, []);
    assert.deepEqual(report.soft, []);
    assert.deepEqual(report.rows, { events: 400, items: 40, users: 50 });
  });

  it('accepts Windows line endings, a UTF-8 byte order mark and quoted fields', async () => {
    const dir = folder({
      events: (l) => Buffer.from(`\ufeff${l.join('\r\n')}\r\n`, 'utf8'),
      items: (l) => l.map((x, k) => (k === 0 ? x : x.replace(/,Blue thing (\d+)$/, ',"Blue, thing ""$1"""'))),
    });
    const { report, data } = await validateSource(dir, { collect: true });
    assert.deepEqual(report.hard, []);
    assert.deepEqual(report.soft, []);
    assert.equal(data?.events.length, 400);
    assert.equal(data?.items.title[2], 'Blue, thing "2"');
  });

  it('empty file (0 bytes)', async () => {
    const msg = await hardMessage(folder({ events: () => Buffer.alloc(0) }));
    assert.match(
      msg,
      /^events\.csv is empty \(0 bytes\): expected a header line with the columns user_id,item_id,event_type,timestamp/,
    );
  });

  it('a header and no rows', async () => {
    assert.equal(await hardMessage(folder({ items: (l) => l.slice(0, 1) })), 'items.csv has a header but no data rows');
  });

  it('missing column', async () => {
    const msg = await hardMessage(folder({ events: (l) => l.map((x) => x.split(',').slice(0, 3).join(',')) }));
    assert.match(msg, /^events\.csv row 1: missing column timestamp \(header: user_id,item_id,event_type;/);
  });

  it('wrong delimiter', async () => {
    const msg = await hardMessage(folder({ events: (l) => l.map((x) => x.replaceAll(',', ';')) }));
    assert.match(msg, /^events\.csv row 1: wrong delimiter, the header is semicolon-separated/);
  });

  it('bad encoding: Latin-1 bytes, and UTF-16', async () => {
    const latin = await hardMessage(
      folder({
        items: (l) => {
          const text = `${l.join('\n')}\n`.replace('Blue thing 3', 'Caf\u00e9 3');
          return Buffer.from(text, 'latin1');
        },
      }),
    );
    assert.match(latin, /^items\.csv row 5, byte 24: bad encoding, not valid UTF-8 \(bytes near: .*e9/);
    const utf16 = await hardMessage(folder({ users: (l) => Buffer.from(`\ufeff${l.join('\n')}`, 'utf16le') }));
    assert.match(utf16, /^users\.csv: bad encoding, the file is UTF-16/);
  });

  it('a 1 MB line', async () => {
    const msg = await hardMessage(
      folder({ items: (l) => [...l.slice(0, 3), `i99,c,b,1,${'x'.repeat(1 << 20)}`, ...l.slice(3)] }),
    );
    assert.match(msg, /^items\.csv row 4 is longer than 65536 bytes/);
  });

  it('malformed quotes', async () => {
    const msg = await hardMessage(
      folder({ items: (l) => [...l.slice(0, 2), 'i98,c,b,1,"unclosed title', ...l.slice(2)] }),
    );
    assert.match(
      msg,
      /^items\.csv row 3: malformed CSV \(CSV_QUOTE_NOT_CLOSED\): the quoted field 5 \(column title\) opened in row 3/,
    );
  });

  it('unknown ids above the limit name the first row, column and value', async () => {
    const dir = folder({
      events: (l) => l.map((x, k) => (k > 0 && k % 10 === 0 ? x.replace(/^u\d+/, `ghost${k}`) : x)),
    });
    const msg = await hardMessage(dir);
    assert.equal(
      msg,
      "events.csv row 11, column user_id, value 'ghost10': unknown user id (not in users.csv); 10.0% of rows (40 of 400) exceed the 5.0% limit",
    );
    const few = folder({ events: (l) => l.map((x, k) => (k === 7 ? x.replace(/,i\d+,/, ',i999,') : x)) });
    const { report } = await validateSource(few);
    assert.equal(report.hard.length, 0);
    assert.match(report.soft[0]?.message ?? '', /^events\.csv row 8, column item_id, value 'i999': unknown item id/);
  });

  it('price outliers', async () => {
    const msg = await hardMessage(
      folder({ items: (l) => l.map((x, k) => (k > 0 && k % 4 === 0 ? x.replace(/,[0-9.]+,Blue/, ',-3,Blue') : x)) }),
    );
    assert.match(
      msg,
      /^items\.csv row 5, column price, value '-3': price outlier \(outside \(0, 10000\]\); 25\.0% of rows/,
    );
    const big = await hardMessage(
      folder({ items: (l) => l.map((x, k) => (k % 3 === 1 ? x.replace(/,[0-9.]+,Blue/, ',25000,Blue') : x)) }),
    );
    assert.match(big, /value '25000': price outlier/);
  });

  it('null rates, bad types and enum values', async () => {
    assert.match(
      await hardMessage(
        folder({ events: (l) => l.map((x, k) => (k > 0 && k % 5 === 0 ? x.replace(/,[a-z_]+,/, ',,') : x)) }),
      ),
      /^events\.csv row 6, column event_type, value '': empty value; 20\.0% of rows \(80 of 400\) exceed the 5\.0% limit/,
    );
    assert.match(
      await hardMessage(
        folder({ events: (l) => l.map((x, k) => (k % 40 === 3 ? x.replace(/,[a-z_]+,/, ',like,') : x)) }),
      ),
      /^events\.csv row 4, column event_type, value 'like': not one of view, click, add_to_cart, purchase/,
    );
    assert.match(
      await hardMessage(
        folder({ events: (l) => l.map((x, k) => (k > 0 && k % 20 === 0 ? x.replace(/,[^,]+$/, ',yesterday') : x)) }),
      ),
      /^events\.csv row 21, column timestamp, value 'yesterday': not an ISO 8601 date or epoch ms/,
    );
    assert.match(
      await hardMessage(
        folder({
          items: (l) => l.map((x, k) => (k > 0 && k % 2 === 0 ? x.replace(/,[0-9.]+,Blue/, ',cheap,Blue') : x)),
        }),
      ),
      /^items\.csv row 3, column price, value 'cheap': not a number/,
    );
  });

  it('NaN and Infinity are not numbers, in prices and in timestamps', async () => {
    for (const bad of ['NaN', 'Infinity', '-Infinity', '1e999']) {
      assert.match(
        await hardMessage(
          folder({
            items: (l) => l.map((x, k) => (k > 0 && k % 2 === 0 ? x.replace(/,[0-9.]+,Blue/, `,${bad},Blue`) : x)),
          }),
        ),
        new RegExp(`^items\\.csv row 3, column price, value '${bad.replace('+', '\\+')}': not a number`),
      );
      assert.match(
        await hardMessage(
          folder({ events: (l) => l.map((x, k) => (k > 0 && k % 20 === 0 ? x.replace(/,[^,]+$/, `,${bad}`) : x)) }),
        ),
        new RegExp(`^events\\.csv row 21, column timestamp, value '${bad}': not an ISO 8601 date or epoch ms`),
      );
    }
    assert.ok(Number.isNaN(parseTimestamp('Infinity')));
    assert.ok(Number.isNaN(parseTimestamp('NaN')));
  });

  it('timestamps: ISO 8601 and epoch ms', () => {
    assert.equal(parseTimestamp('2026-01-02T03:04:05Z'), Date.UTC(2026, 0, 2, 3, 4, 5));
    assert.equal(parseTimestamp('2026-01-02 03:04:05Z'), Date.UTC(2026, 0, 2, 3, 4, 5));
    assert.equal(parseTimestamp('2026-01-02 03:04:05'), Date.UTC(2026, 0, 2, 3, 4, 5));
    assert.equal(parseTimestamp('2026-01-02T03:04:05.250'), Date.UTC(2026, 0, 2, 3, 4, 5, 250));
    assert.equal(parseTimestamp('2026-01-02T03:04:05+02:00'), Date.UTC(2026, 0, 2, 1, 4, 5));
    assert.equal(parseTimestamp('2026-01-02'), Date.UTC(2026, 0, 2));
    assert.equal(parseTimestamp('1767225600000'), 1767225600000);
    assert.equal(parseTimestamp('1767225600', true), 1767225600000);
    assert.ok(Number.isNaN(parseTimestamp('soon')));
  });

  it('volume against the previous dataset, and no dataset written when the gate fails', async () => {
    const store = new ArtifactStore(join(tempHome(), 'artifacts'));
    const big = await prepareDataset(store, { source: { kind: 'dir', path: folder() } });
    const small = folder({ events: (l) => l.slice(0, 101) });
    await assert.rejects(
      validateData(store, { source: { kind: 'dir', path: small }, previousDatasetId: big.dataset.id }),
      (err: RecflowError) =>
        err.type === 'InvalidData' &&
        /^events\.csv: 100 rows is 0\.25x the previous dataset's 400 \(below the 0\.5x minimum\); report: /.test(
          err.message,
        ),
    );
    await assert.rejects(
      prepareDataset(store, { source: { kind: 'dir', path: small }, previousDatasetId: big.dataset.id }),
      /0\.25x the previous dataset/,
    );
    assert.deepEqual(readdirSync(join(store.root, 'dataset')), [big.dataset.id]);
    assert.deepEqual(readdirSync(join(store.root, '.tmp')), []);
  });

  it('CLI: `data validate` exits 1 with the message on hard anomalies, 0 with --json on a clean folder', () => {
    const bin = resolve(__dirname, '../../../bin/recflow.js');
    const env = { ...process.env, RECFLOW_HOME: tempHome() };
    const bad = spawnSync(
      process.execPath,
      [bin, 'data', 'validate', folder({ events: (l) => l.map((x) => x.replaceAll(',', '\t')) })],
      {
        encoding: 'utf8',
        env,
      },
    );
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /recflow: invalid data: events\.csv row 1: wrong delimiter, the header is tab-separated/);
    const good = spawnSync(process.execPath, [bin, 'data', 'validate', folder(), '--json'], { encoding: 'utf8', env });
    assert.equal(good.status, 0, good.stderr);
    assert.deepEqual((JSON.parse(good.stdout) as { rows: unknown }).rows, { events: 400, items: 40, users: 50 });
    assert.ok(existsSync(join(env.RECFLOW_HOME, 'artifacts', 'report')));
  });
});
