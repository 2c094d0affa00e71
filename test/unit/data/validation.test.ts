import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactStore } from '../../../lib/artifacts';
import { prepareDataset, validateData } from '../../../lib/data/pipeline';
import { detectDataFormat, parseTimestamp, validateSource } from '../../../lib/data/validate';
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

/** A MovieLens-style folder: ratings.csv (epoch seconds) and movies.csv. */
function movielens(seconds: (k: number) => number): string {
  const dir = join(tempHome(), 'ml');
  mkdirSync(dir);
  const lines = ['userId,movieId,rating,timestamp'];
  for (let k = 0; k < 300; k++) lines.push(`${(k % 20) + 1},${((k * 7) % 30) + 1},${1 + (k % 9) * 0.5},${seconds(k)}`);
  writeFileSync(join(dir, 'ratings.csv'), `${lines.join('\n')}\n`);
  const movies = ['movieId,title,genres', ...Array.from({ length: 30 }, (_, m) => `${m + 1},Movie ${m + 1},Drama`)];
  writeFileSync(join(dir, 'movies.csv'), `${movies.join('\n')}\n`);
  return dir;
}

describe('the date policy (issue 15, item 7)', () => {
  it('accepts MovieLens ratings from the 1990s by default', async () => {
    const t1996 = Date.UTC(1996, 3, 1) / 1000;
    const { report, data } = await validateSource(
      movielens((k) => t1996 + k * 3600),
      { collect: true },
    );
    assert.deepEqual(report.hard, []);
    assert.deepEqual(report.soft, []);
    assert.equal(data?.events.length, 300);
    assert.equal(data?.events.timestamp[0], t1996 * 1000);
  });

  it('accepts dates before 1990 with a warning; the policy can refuse dates before a floor', async () => {
    const old = (l: string[]) =>
      // Distinct times (k seconds after a 1985 date), so no row becomes a duplicate of another.
      l.map((x, k) =>
        k > 0 && k % 10 === 0 ? x.replace(/,[^,]+$/, `,${new Date(Date.UTC(1985, 5, 1) + k * 1000).toISOString()}`) : x,
      );
    const { report, data } = await validateSource(folder({ events: old }), { collect: true });
    assert.deepEqual(report.hard, []);
    assert.equal(report.soft.length, 2, report.soft.map((a) => a.message).join('\n'));
    const warn = report.soft.find((a) => a.code === 'old_timestamp');
    assert.equal(
      warn?.message,
      "events.csv row 11, column timestamp, value '1985-06-01T00:00:10.000Z': before 1990-01-01 (the policy's warnBefore): accepted; a wrong year or a placeholder date?; 40 of 400 rows (10.0%)",
    );
    assert.equal(data?.events.length, 400, 'the old rows are kept');
    const floor = await validateSource(folder({ events: old }), { policy: { minTimestamp: '2000-01-01' } });
    assert.equal(
      floor.report.hard[0]?.message,
      "events.csv row 11, column timestamp, value '1985-06-01T00:00:10.000Z': before 2000-01-01, the policy's minTimestamp; 10.0% of rows (40 of 400) exceed the 1.0% limit",
    );
    const quiet = await validateSource(folder({ events: old }), { policy: { warnBefore: null } });
    assert.equal(quiet.report.soft.filter((a) => a.code === 'old_timestamp').length, 0);
  });

  it('refuses dates beyond the future tolerance, which the policy sets', async () => {
    const at = (k: number) => new Date(Date.now() + 3 * 86_400_000 + k * 1000).toISOString();
    const soon: string[] = [];
    const future = (l: string[]) =>
      l.map((x, k) => {
        if (k === 0 || k % 8 !== 0) return x;
        soon[k] = at(k);
        return x.replace(/,[^,]+$/, `,${soon[k]}`);
      });
    const msg = await hardMessage(folder({ events: future }));
    assert.ok(msg.startsWith(`events.csv row 9, column timestamp, value '${soon[8]}': in the future: after `), msg);
    assert.match(
      msg,
      /\(now plus the policy's maxFutureMs, 86400000 ms\); 12\.5% of rows \(50 of 400\) exceed the 1\.0% limit$/,
    );
    const week = await validateSource(folder({ events: future }), { policy: { maxFutureMs: 7 * 86_400_000 } });
    assert.deepEqual(week.report.hard, []);
  });

  it('a malformed policy is refused as input, and the policy reaches the gate through the pipeline', async () => {
    await assert.rejects(
      validateSource(folder(), { policy: { minTimestamp: 'last tuesday' } }),
      (err: RecflowError) =>
        err.type === 'InvalidInput' &&
        /^validation policy minTimestamp "last tuesday": expected an ISO 8601 date/.test(err.message),
    );
    const store = new ArtifactStore(join(tempHome(), 'artifacts'));
    const dir = movielens((k) => Date.UTC(1997, 0, 1) / 1000 + k * 60);
    const ok = await validateData(store, { source: { kind: 'dir', path: dir } });
    assert.equal(ok.hard, 0);
    await assert.rejects(
      validateData(store, { source: { kind: 'dir', path: dir }, policy: { minTimestamp: '2000-01-01' } }),
      (err: RecflowError) =>
        /^ratings\.csv row 2, column timestamp, value '852076800': before 2000-01-01, the policy's minTimestamp/.test(
          err.message,
        ),
    );
  });
});

describe('data hints (issue 16, item 9)', () => {
  it('epoch seconds where epoch milliseconds are expected: says they look like seconds and what to do', async () => {
    const seconds = (l: string[]) =>
      l.map((x, k) => (k === 0 ? x : x.replace(/,[^,]+$/, `,${Date.UTC(2026, 0, 1) / 1000 + (k - 1) * 60}`)));
    assert.equal(
      await hardMessage(folder({ events: seconds })),
      "events.csv row 2, column timestamp, value '1767225600': looks like epoch seconds (2026-01-01), but recflow reads a plain number as epoch milliseconds (1970-01-21T10:53:45.600Z): multiply by 1000, or write ISO 8601 (2026-01-31T12:00:00Z); 100.0% of rows (400 of 400) exceed the 1.0% limit",
    );
    const micros = (l: string[]) =>
      l.map((x, k) => (k === 0 ? x : x.replace(/,[^,]+$/, `,${Date.UTC(2026, 0, 1) * 1000}`)));
    assert.match(
      await hardMessage(folder({ events: micros })),
      /it looks like epoch microseconds \(2026-01-01\).*divide by 1000/,
    );
  });

  it("add-to-cart, AddToCart and 'add to cart' are refused with 'did you mean add_to_cart?'", async () => {
    for (const v of ['add-to-cart', 'AddToCart', 'add to cart']) {
      const dir = folder({ events: (l) => l.map((x) => x.replace(',add_to_cart,', `,${v},`)) });
      assert.match(
        await hardMessage(dir),
        new RegExp(
          `^events\\.csv row 4, column event_type, value '${v}': not one of view, click, add_to_cart, purchase; did you mean add_to_cart\\?; 25\\.0% of rows`,
        ),
      );
    }
    // The first bad value has no hint: a later one's is added.
    const mixed = folder({
      events: (l) =>
        l.map((x, k) => (k === 2 ? x.replace(/,click,/, ',like,') : x.replace(',add_to_cart,', ',Add-To-Cart,'))),
    });
    assert.match(
      await hardMessage(mixed),
      /^events\.csv row 3, column event_type, value 'like': not one of view, click, add_to_cart, purchase; 25\.3% of rows \(101 of 400\) exceed the 1\.0% limit; row 4, value 'Add-To-Cart': did you mean add_to_cart\?$/,
    );
  });

  it('a 0-byte (or header-only) users.csv is treated as absent, with a warning', async () => {
    for (const [users, why] of [
      [() => Buffer.alloc(0), '0 bytes'],
      [(l: string[]) => l.slice(0, 1), 'a header and no data rows'],
    ] as const) {
      const { report, data } = await validateSource(folder({ users }), { collect: true });
      assert.deepEqual(report.hard, []);
      assert.deepEqual(
        report.soft.map((a) => a.message),
        [`users.csv is empty (${why}): treated as absent; users come from the events, with unknown features`],
      );
      assert.equal(data?.hasUsers, false);
      assert.equal(data?.events.length, 400);
      assert.equal(report.rows.users, 0);
    }
  });

  it("rows are numbered once (the header is row 1): the same line is the same row in every message, and none says 'line'", async () => {
    const priceAt5 = (l: string[]) => l.map((x, k) => (k === 4 ? x.replace(/,[0-9.]+,Blue/, ',cheap,Blue') : x));
    assert.match(await hardMessage(folder({ items: priceAt5 })), /^items\.csv row 5, column price, value 'cheap'/);
    const latinAt5 = (l: string[]) => Buffer.from(`${l.join('\n')}\n`.replace('Blue thing 3', 'Caf\u00e9 3'), 'latin1');
    assert.match(await hardMessage(folder({ items: latinAt5 })), /^items\.csv row 5, byte 24: bad encoding/);
    const messages = [
      await hardMessage(folder({ items: latinAt5 })),
      await hardMessage(folder({ events: (l) => l.map((x) => x.split(',').slice(0, 3).join(',')) })),
      await hardMessage(folder({ events: (l) => l.map((x) => x.replaceAll(',', '|')) })),
      await hardMessage(folder({ items: (l) => [...l.slice(0, 3), `i99,c,b,1,${'x'.repeat(70_000)}`, ...l.slice(3)] })),
      await hardMessage(folder({ items: (l) => [...l.slice(0, 2), 'i98,c,b,1,"unclosed', ...l.slice(2)] })),
      await hardMessage(folder({ items: (l) => [...l.slice(0, 2), 'i98,c,b,1,"closed"x', ...l.slice(2)] })),
      await hardMessage(folder({ users: (l) => Buffer.from(`\ufeff${l.join('\n')}`, 'utf16le') })),
      await hardMessage(folder({ items: priceAt5 })),
      await hardMessage(
        folder({ events: (l) => l.map((x, k) => (k > 0 && k % 10 === 0 ? x.replace(/^u\d+/, 'ghost') : x)) }),
      ),
    ];
    for (const m of messages) assert.doesNotMatch(m, /\bline \d/, m);
  });
});

describe('detectDataFormat (issue 15 item 7, issue 16 item 4)', () => {
  it('tells recflow from MovieLens folders', () => {
    assert.equal(detectDataFormat(folder()), 'recflow');
    assert.equal(detectDataFormat(movielens((k) => 1e9 + k)), 'movielens');
  });

  it('names what is missing when neither format matches, and what the folder holds', () => {
    const dir = join(tempHome(), 'odd');
    mkdirSync(dir);
    const fails = (re: RegExp, type = 'InvalidData') =>
      assert.throws(
        () => detectDataFormat(dir),
        (err: RecflowError) => err.type === type && re.test(err.message),
      );
    fails(
      /: no events\.csv nor ratings\.csv, so neither data format matches \(recflow needs events\.csv and items\.csv \(users\.csv optional\); MovieLens needs ratings\.csv \(movies\.csv optional\)\); it is empty$/,
    );
    writeFileSync(join(dir, 'Events.csv'), 'user_id\n');
    writeFileSync(join(dir, 'ratings.dat'), '1::2::5::978300760\n');
    fails(
      /; it holds Events\.csv, ratings\.dat; Events\.csv should be named events\.csv \(names are case-sensitive\); ratings\.dat \(MovieLens 1M\/10M, '::'-separated\) is not read: convert it to ratings\.csv$/,
    );
    writeFileSync(join(dir, 'events.csv'), 'user_id\n');
    fails(
      /: events\.csv found \(recflow format\) but items\.csv is missing; the recflow format needs events\.csv and items\.csv/,
    );
    assert.throws(
      () => detectDataFormat(join(dir, 'nope')),
      (err: RecflowError) => err.type === 'InvalidInput' && /^data folder .*nope does not exist$/.test(err.message),
    );
    assert.throws(
      () => detectDataFormat(join(dir, 'events.csv')),
      (err: RecflowError) => err.type === 'InvalidInput' && /is not a folder$/.test(err.message),
    );
  });
});
