import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { readCsv, scanCsv } from '../../../lib/data/csv';
import { RecflowError } from '../../../lib/errors';
import { mulberry32 } from '../../../lib/rng';
import { tempHome } from '../../helpers/temporal';

function write(name: string, content: string | Buffer): string {
  const dir = join(tempHome(), 'csv');
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

async function read(path: string, blockBytes?: number): Promise<{ records: string[][]; rows: number[] }> {
  const records: string[][] = [];
  const rows: number[] = [];
  const res = await readCsv(path, { required: [], blockBytes }, (f, row) => {
    records.push(f);
    rows.push(row);
  });
  return { records: [res.header, ...records], rows };
}

async function failure(path: string, opts: { required?: string[]; blockBytes?: number } = {}): Promise<string> {
  try {
    await readCsv(path, { required: opts.required ?? [], blockBytes: opts.blockBytes }, () => undefined);
  } catch (err) {
    assert.ok(err instanceof RecflowError, String(err));
    assert.equal(err.type, 'InvalidData');
    return err.message;
  }
  assert.fail(`no error for ${path}`);
}

/** A random CSV file (consistent line endings) with the fields csv-parse should read and each data row's line. */
function randomCsv(r: () => number): { text: string; lines: number[] } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const plain = ['a', 'u12', 'view', '2026-01-01T00:00:00.000Z', '', ' sp ', 'café', '漢字', '🙂', 'x y', '12.5'];
  const nasty = ['a,b', 'say "hi"', 'two\nlines', 'cr\r\nlf', '"', ',', '', ' "q" ', 'é,"漢"\n'];
  const eol = r() < 0.5 ? '\n' : '\r\n';
  const cols = 1 + Math.floor(r() * 5);
  const field = () => {
    if (r() < 0.25) return `"${pick(nasty).replaceAll('"', '""')}"`;
    if (r() < 0.1) return `"${pick(plain).replaceAll('"', '""')}"`;
    return pick(plain);
  };
  const record = () => {
    const n = r() < 0.1 ? 1 + Math.floor(r() * 7) : cols;
    const fields = Array.from({ length: n }, field);
    // A single empty field would be an empty line, which both readers skip.
    if (n === 1 && fields[0] === '') fields[0] = 'z';
    return fields.join(',');
  };
  let text = r() < 0.2 ? '\ufeff' : '';
  let line = 1;
  const lines: number[] = [];
  const head = Array.from({ length: cols }, (_, k) => (r() < 0.2 ? `"c,${k}"` : `c${k}`)).join(',');
  text += head + eol;
  line += 1 + (head.match(/\n/g)?.length ?? 0);
  const n = Math.floor(r() * 40);
  for (let k = 0; k < n; k++) {
    if (r() < 0.1) {
      text += eol;
      line++;
    }
    const rec = record();
    lines.push(line);
    text += rec + (k < n - 1 || r() < 0.7 ? eol : '');
    line += 1 + (rec.match(/\n/g)?.length ?? 0);
  }
  return { text, lines };
}

describe('csv reader', () => {
  it('reads what csv-parse reads (quotes, escapes, line breaks in quotes, CRLF, BOM, empty lines), across block boundaries', async () => {
    const r = mulberry32(7);
    for (let k = 0; k < 150; k++) {
      const { text, lines } = randomCsv(r);
      const want = parse(text, { bom: true, relax_column_count: true, skip_empty_lines: true });
      const path = write(`f${k}.csv`, text);
      for (const block of [16, 61, 1 << 20]) {
        const got = await read(path, block);
        assert.deepEqual(got.records, want, `file ${k}, block ${block}:\n${JSON.stringify(text)}`);
        assert.deepEqual(got.rows, lines, `row numbers of file ${k}, block ${block}`);
      }
    }
  });

  it('numbers rows as an editor does: the header is row 1, empty lines count, a multi-line record is named by its first row', async () => {
    const path = write('rows.csv', 'id,title\n1,a\n\n2,"two\nlines"\n3,c\n');
    assert.deepEqual((await read(path)).rows, [2, 4, 6]);
    const bad = write('rows-bad.csv', 'id,title\n1,a\n\n2,"two\nlines"\n3,"c"x\n');
    assert.match(
      await failure(bad),
      /^rows-bad\.csv row 6: malformed CSV \(CSV_INVALID_CLOSING_QUOTE\): field 2 \(column title\)/,
    );
  });

  it('hands out field bounds without making strings (scanCsv), with the same fields', async () => {
    const path = write('scan.csv', 'a,b,c\n x ,"y,""z""",\u00a0w\u00a0\n');
    const seen: Array<[string, string, string]> = [];
    await scanCsv(path, { required: ['a'] }, (rec) => {
      seen.push([rec.trimmed(0), rec.trimmed(1), rec.trimmed(2)]);
      assert.equal(rec.bounds(0), true);
      assert.equal(rec.buf.toString('utf8', rec.from, rec.to), 'x');
      assert.equal(rec.bounds(2), false, 'a non-ASCII edge sends the caller to the string path');
      assert.equal(rec.text(9), '');
    });
    assert.deepEqual(seen, [['x', 'y,"z"', 'w']]);
  });

  it('errors name the file and the row, wherever the block boundaries fall', async () => {
    const rows = ['id,name', ...Array.from({ length: 300 }, (_, k) => `${k},n${k}`)];
    for (const block of [32, 1 << 20]) {
      const latin = Buffer.concat([
        Buffer.from(`${rows.slice(0, 200).join('\n')}\n200,caf`),
        Buffer.from([0xe9]),
        Buffer.from('\n'),
      ]);
      assert.match(
        await failure(write('latin.csv', latin), { blockBytes: block }),
        /^latin\.csv row 201, byte 8: bad encoding, not valid UTF-8 \(bytes near: 2c 63 61 66 e9 0a\)/,
      );
      const long = `${rows.slice(0, 150).join('\n')}\n1,${'x'.repeat(70_000)}\n`;
      assert.match(
        await failure(write('long.csv', long), { blockBytes: block }),
        /^long\.csv row 151 is longer than 65536 bytes/,
      );
      assert.match(
        await failure(write('open.csv', `${rows.slice(0, 120).join('\n')}\n7,"open\n8,x\n`), { blockBytes: block }),
        /^open\.csv row 121: malformed CSV \(CSV_QUOTE_NOT_CLOSED\): the quoted field 2 \(column name\) opened in row 121/,
      );
      assert.match(
        await failure(write('inner.csv', `${rows.slice(0, 50).join('\n')}\n7,ab"c\n`), { blockBytes: block }),
        /^inner\.csv row 51: malformed CSV \(CSV_INVALID_OPENING_QUOTE\): a quote inside the unquoted field 2 \(column name\)/,
      );
    }
    assert.match(
      await failure(write('u16.csv', Buffer.from('\ufeffid,name\n', 'utf16le'))),
      /^u16\.csv: bad encoding, the file is UTF-16/,
    );
    assert.match(
      await failure(write('semi.csv', 'id;name\n1;a\n'), { required: ['id', 'name'] }),
      /^semi\.csv row 1: wrong delimiter, the header is semicolon-separated/,
    );
    assert.match(
      await failure(write('cols.csv', 'id\n1\n'), { required: ['id', 'name'] }),
      /^cols\.csv row 1: missing column name \(header: id; expected at least id,name\)/,
    );
    assert.match(await failure(write('zero.csv', '')), /^zero\.csv is empty \(0 bytes\)/);
    assert.match(
      await failure(write('mac.csv', 'id,name\r1,a\r2,b\r')),
      /^mac\.csv row 1: the line breaks are CR only \(classic Mac\): save the file with LF or CRLF line breaks$/,
    );
  });

  it('awaits onProgress every progressEvery rows with the row count', async () => {
    const path = write('many.csv', ['id', ...Array.from({ length: 2500 }, (_, k) => String(k))].join('\n'));
    const calls: number[] = [];
    let seen = 0;
    const res = await readCsv(
      path,
      {
        required: ['id'],
        progressEvery: 1000,
        blockBytes: 100,
        onProgress: async (n) => {
          calls.push(n);
          assert.equal(seen, n, 'every row before the call was handled');
          await new Promise((ok) => setImmediate(ok));
        },
      },
      () => {
        seen++;
      },
    );
    assert.deepEqual(calls, [1000, 2000]);
    assert.equal(res.rows, 2500);
  });
});
