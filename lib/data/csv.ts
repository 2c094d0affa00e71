/**
 * CSV reading with the checks a real export needs: empty file, UTF-16 or invalid UTF-8 bytes, an over-long line, a
 * wrong delimiter, missing columns, malformed quotes. Every failure is a `RecflowError(InvalidData)` naming the file,
 * the row and, where it applies, the column and value.
 *
 * **Row numbers** (one rule for every message recflow writes about a CSV file): row N is line N of the file as a text
 * editor or a spreadsheet numbers it. The header is row 1, the first data row is row 2; empty lines count; a record
 * whose quoted field spans several lines is named by the row where it starts.
 *
 * The reader scans bytes: the file is read in large blocks, each block's complete lines are checked at once (line
 * length, UTF-8), and a record without a double quote is split on commas with no per-field allocation; only records
 * with a quote go through the RFC 4180 state machine (quoted fields, `""` escapes, line breaks inside quotes), which
 * copies their unescaped bytes to a scratch buffer. Handlers see a {@link CsvRecord}: field bounds into a buffer, so
 * typed columns can be filled from bytes ({@link scanCsv}); {@link readCsv} hands out strings.
 */
import { isUtf8 } from 'node:buffer';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ErrorType, RecflowError } from '../errors';

/** Longest accepted physical line, and longest record, in bytes. @default 65536 */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;

/** Options of {@link readCsv} and {@link scanCsv}. */
export interface ReadCsvOptions {
  /** Columns that must be in the header. */
  required: readonly string[];
  /** Longest accepted line (and quoted record), in bytes. @default {@link DEFAULT_MAX_LINE_BYTES} */
  maxLineBytes?: number;
  /** Awaited every `progressEvery` rows (heartbeats). */
  onProgress?: (rows: number) => void | Promise<void>;
  /** @default 100000 */
  progressEvery?: number;
  /** Called once with the header (names trimmed) after the required columns are checked; may throw. */
  onHeader?: (header: string[], columns: ReadonlyMap<string, number>) => void;
  /** Size of the read blocks in bytes (tests use small ones). @default max(1 MiB, 4 x maxLineBytes) */
  blockBytes?: number;
}

/**
 * One data row as strings. `row` is the row number of the file-wide rule (the header is row 1, the first data row is
 * row 2; see the module comment); `columns` maps header names (trimmed) to field indices.
 */
export type RowHandler = (fields: string[], row: number, columns: ReadonlyMap<string, number>) => void;

/**
 * One data row as bytes: field `k` is `rec.buf[rec.starts[k] .. rec.ends[k])`, quotes removed and `""` unescaped.
 * The record is reused for the next row: copy what you keep. `row` as in {@link RowHandler}.
 */
export type RecordHandler = (rec: CsvRecord, row: number, columns: ReadonlyMap<string, number>) => void;

/** Whether a byte is whitespace that `String.prototype.trim` removes (the ASCII ones: tab, LF, VT, FF, CR, space). */
export const isAsciiSpace = (b: number): boolean => b === 0x20 || (b >= 0x09 && b <= 0x0d);

/**
 * The fields of one CSV record, as bounds into a buffer (the read block, or a scratch buffer for a record with
 * quotes). Reused from row to row.
 */
export class CsvRecord {
  /** The bytes the bounds point into. */
  buf: Buffer = Buffer.alloc(0);
  /** Number of fields. */
  length = 0;
  /**
   * Whether the record went through the quoted-field parser (its fields were copied to a scratch buffer, one after
   * the other). When false the fields lie in the read block as in the file: `buf[starts[0] .. ends[length - 1])`
   * is the line, fields separated by single commas.
   */
  quoted = false;
  /** Start offset of each field in {@link buf}. */
  starts = new Int32Array(64);
  /** End offset (exclusive) of each field in {@link buf}. */
  ends = new Int32Array(64);
  /** Set by {@link bounds}: the trimmed field's first byte. */
  from = 0;
  /** Set by {@link bounds}: the trimmed field's end (exclusive). */
  to = 0;

  /** Field `k` as a string; '' for a field past the end of the row. */
  text(k: number): string {
    if (k >= this.length) return '';
    return this.buf.toString('utf8', this.starts[k], this.ends[k]);
  }

  /** Field `k` as a string, trimmed as `String.prototype.trim` does; '' past the end. */
  trimmed(k: number): string {
    if (!this.bounds(k)) return this.text(k).trim();
    return this.from === this.to ? '' : this.buf.toString('utf8', this.from, this.to);
  }

  /**
   * Trim field `k`'s ASCII whitespace into {@link from}..{@link to}. Returns false when a byte at either end is not
   * ASCII (it may be Unicode whitespace: use {@link trimmed}); a field past the end is empty.
   */
  bounds(k: number): boolean {
    if (k >= this.length) {
      this.from = this.to = 0;
      return true;
    }
    const b = this.buf;
    let s = this.starts[k] ?? 0;
    let e = this.ends[k] ?? 0;
    while (s < e && isAsciiSpace(b[s] ?? 0)) s++;
    while (e > s && isAsciiSpace(b[e - 1] ?? 0)) e--;
    this.from = s;
    this.to = e;
    return s === e || ((b[s] ?? 0) < 0x80 && (b[e - 1] ?? 0) < 0x80);
  }

  /** All fields as strings. */
  fields(): string[] {
    const out = new Array<string>(this.length);
    for (let k = 0; k < this.length; k++) out[k] = this.text(k);
    return out;
  }

  /** Room for at least `n` fields. */
  ensure(n: number): void {
    if (n <= this.starts.length) return;
    const size = Math.max(n, this.starts.length * 2);
    const s = new Int32Array(size);
    const e = new Int32Array(size);
    s.set(this.starts);
    e.set(this.ends);
    this.starts = s;
    this.ends = e;
  }
}

function invalid(msg: string, details?: Record<string, unknown>): RecflowError {
  return new RecflowError(ErrorType.InvalidData, msg, details);
}

const OTHER_DELIMITERS: Array<[string, string]> = [
  [';', 'semicolon'],
  ['\t', 'tab'],
  ['|', 'pipe'],
];

/** Read the first line of a file (at most `max` bytes). */
async function firstLine(path: string, max: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(max + 1, 1 << 20));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const b = buf.subarray(0, bytesRead);
    const nl = b.indexOf(0x0a);
    return nl >= 0 ? b.subarray(0, nl) : b;
  } finally {
    await fh.close();
  }
}

/** Offset of the first byte of `b` that does not start or continue a valid UTF-8 sequence (b is known invalid). */
function firstBadUtf8(b: Buffer): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] ?? 0;
    const n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0) return i;
    if (n > 0 && !isUtf8(b.subarray(i, i + n + 1))) return i;
    i += n + 1;
  }
  return Math.max(0, b.length - 1);
}

/**
 * Stream a CSV file, calling `onRow` with each data row's fields as strings; returns the header and the number of
 * data rows.
 * @throws {RecflowError} `InvalidData`: empty file, bad encoding, an over-long line, wrong delimiter, missing
 * columns, a malformed quote; the message names the file and row.
 */
export async function readCsv(
  path: string,
  opts: ReadCsvOptions,
  onRow: RowHandler,
): Promise<{ header: string[]; rows: number }> {
  return scanCsv(path, opts, (rec, row, columns) => onRow(rec.fields(), row, columns));
}

/**
 * Stream a CSV file, calling `onRecord` with each data row's field bounds (no strings are made unless the handler
 * asks); returns the header and the number of data rows. Same checks and errors as {@link readCsv}; empty lines are
 * skipped, rows may have more or fewer fields than the header.
 * @throws {RecflowError} `InvalidData`, as {@link readCsv}.
 */
export async function scanCsv(
  path: string,
  opts: ReadCsvOptions,
  onRecord: RecordHandler,
): Promise<{ header: string[]; rows: number }> {
  const file = basename(path);
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a file');
    size = st.size;
  } catch {
    throw invalid(`${file}: not found at ${path}`);
  }
  const expected = opts.required.join(',');
  if (size === 0) throw invalid(`${file} is empty (0 bytes): expected a header line with the columns ${expected}`);
  const head = await firstLine(path, maxLineBytes);
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    throw invalid(`${file}: bad encoding, the file is UTF-16 (byte order mark at row 1); save it as UTF-8`, {
      file,
      row: 1,
    });
  }
  const headText = head
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .replace(/\r$/, '');
  if (headText.trim() === '' && size <= head.length + 2) {
    throw invalid(`${file} is empty (blank header line): expected the columns ${expected}`);
  }
  if (headText.includes('\r') && !headText.includes('"')) {
    throw invalid(
      `${file} row 1: the line breaks are CR only (classic Mac): save the file with LF or CRLF line breaks`,
      { file, row: 1 },
    );
  }
  if (!headText.includes(',')) {
    for (const [d, name] of OTHER_DELIMITERS) {
      const parts = headText.split(d).map((s) => s.trim());
      if (parts.length > 1 && opts.required.every((c) => parts.includes(c))) {
        throw invalid(
          `${file} row 1: wrong delimiter, the header is ${name}-separated ('${headText.slice(0, 80)}'); recflow reads comma-separated files`,
          { file, row: 1 },
        );
      }
    }
  }
  const every = opts.progressEvery ?? 100_000;
  const sc = new Scanner(file, opts, headText, onRecord);
  const fh = await open(path, 'r');
  try {
    let first = true;
    for (;;) {
      if (!sc.eof) {
        sc.compact();
        const { bytesRead } = await fh.read(sc.buf, sc.len, sc.buf.length - sc.len, null);
        if (bytesRead === 0) sc.eof = true;
        sc.len += bytesRead;
        if (first) {
          first = false;
          sc.skipBom();
        }
      }
      // Parse what is complete; stop at each progress boundary to await the callback.
      for (;;) {
        const more = sc.parse(opts.onProgress ? every - (sc.rows % every) : Infinity);
        if (!more) break;
        await opts.onProgress?.(sc.rows);
      }
      if (sc.eof) {
        if (sc.pos < sc.len) {
          // Only a quoted record can stop early, and at the end of the file it was parsed as the last.
          throw sc.malformed('CSV_QUOTE_NOT_CLOSED', sc.line, 'an unfinished record at the end of the file');
        }
        break;
      }
    }
  } finally {
    await fh.close();
  }
  if (!sc.header) throw invalid(`${file} is empty: expected a header line with the columns ${expected}`);
  return { header: sc.header, rows: sc.rows };
}

/** The state of one {@link scanCsv}: the read block, the checks, the parser. Synchronous, so V8 keeps it fast. */
class Scanner {
  header: string[] | undefined;
  columns: ReadonlyMap<string, number> = new Map();
  rows = 0;
  readonly rec = new CsvRecord();
  buf: Buffer;
  scratch: Buffer;
  /** Bytes in buf. */
  len = 0;
  /** Start of the first unparsed record. */
  pos = 0;
  /** Bytes of buf already checked (line length, UTF-8). */
  checked = 0;
  /** Physical line number at `pos`. */
  line = 1;
  /** Physical line number at `checked`. */
  checkLine = 1;
  /** Offset in buf of the line being checked. */
  lineStart = 0;
  eof = false;
  private readonly maxLineBytes: number;

  constructor(
    private readonly file: string,
    private readonly opts: ReadCsvOptions,
    private readonly headText: string,
    private readonly onRecord: RecordHandler,
  ) {
    this.maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const capacity = opts.blockBytes ?? Math.max(1 << 20, 4 * this.maxLineBytes + 4);
    this.buf = Buffer.allocUnsafe(capacity);
    this.scratch = Buffer.allocUnsafe(Math.min(capacity, 2 * this.maxLineBytes + 4));
  }

  /** Move the unparsed bytes to the start of the block (and grow it when it is full). */
  compact(): void {
    const pos = this.pos;
    if (pos > 0) {
      this.buf.copy(this.buf, 0, pos, this.len);
      this.len -= pos;
      this.checked -= pos;
      this.lineStart -= pos;
      this.pos = 0;
    }
    if (this.len === this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
  }

  skipBom(): void {
    const b = this.buf;
    if (this.len >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) this.pos = this.checked = 3;
  }

  tooLong(at: number): RecflowError {
    return invalid(
      `${this.file} row ${at} is longer than ${this.maxLineBytes} bytes: not a CSV export (a binary file, or a missing line break?)`,
      { file: this.file, row: at },
    );
  }

  malformed(code: string, at: number, what: string): RecflowError {
    return invalid(`${this.file} row ${at}: malformed CSV (${code}): ${what}`, { file: this.file, row: at, code });
  }

  private columnName(k: number): string {
    const h = this.header?.[k];
    return h ? ` (column ${h})` : '';
  }

  /** Check the bytes buf[checked .. end): line lengths and UTF-8. */
  private check(end: number): void {
    const buf = this.buf;
    const max = this.maxLineBytes;
    const startLine = this.checkLine;
    let s = this.checked;
    for (;;) {
      const nl = buf.indexOf(0x0a, s);
      if (nl < 0 || nl >= end) {
        if (end - this.lineStart > max) throw this.tooLong(this.checkLine);
        break;
      }
      if (nl - this.lineStart > max) throw this.tooLong(this.checkLine);
      this.checkLine++;
      s = nl + 1;
      this.lineStart = s;
    }
    if (!isUtf8(buf.subarray(this.checked, end))) {
      // Find the line and byte (only on failure).
      let ls = this.checked;
      let at = startLine;
      for (;;) {
        const nl = buf.indexOf(0x0a, ls);
        const stop = nl < 0 || nl >= end ? end : nl + 1;
        const part = buf.subarray(ls, stop);
        if (!isUtf8(part)) {
          const bad = firstBadUtf8(part);
          const near = [...part.subarray(Math.max(0, bad - 4), bad + 4)]
            .map((b) => b.toString(16).padStart(2, '0'))
            .join(' ');
          throw invalid(
            `${this.file} row ${at}, byte ${bad + 1}: bad encoding, not valid UTF-8 (bytes near: ${near}); save it as UTF-8`,
            { file: this.file, row: at, byte: bad + 1 },
          );
        }
        if (stop === end) break;
        ls = stop;
        at++;
      }
      throw invalid(`${this.file} row ${at}: bad encoding, not valid UTF-8; save it as UTF-8`, {
        file: this.file,
        row: at,
      });
    }
    this.checked = end;
  }

  /**
   * Parse the complete records of the block, up to `maxRows` data rows. Returns true when it stopped at `maxRows`
   * (call again after the progress callback), false when the block needs more bytes (or the file is done).
   * @throws {RecflowError} on an over-long line, bad UTF-8, a malformed quote, a bad header.
   */
  parse(maxRows: number): boolean {
    const buf = this.buf;
    const len = this.len;
    // Complete lines end at the last line break (all the bytes at the end of the file).
    let end = len;
    if (!this.eof) {
      const nl = buf.lastIndexOf(0x0a, len - 1);
      end = nl >= this.pos ? nl + 1 : this.pos;
      if (end === this.pos) {
        if (len - this.pos > this.maxLineBytes) throw this.tooLong(this.line);
        return false;
      }
    }
    if (end > this.checked) this.check(end);
    const rec = this.rec;
    const stopAt = this.rows + maxRows;
    let p = this.pos;
    let line = this.line;
    while (p < end) {
      // Fast path: split on commas up to the line break; a quote sends the record to the RFC 4180 parser.
      let st = rec.starts;
      let en = rec.ends;
      let i = p;
      let n = 0;
      let fs = p;
      let quoted = false;
      for (; i < end; i++) {
        const c = buf[i];
        if (c === 0x2c) {
          if (n + 1 >= st.length) {
            rec.ensure(n + 2);
            st = rec.starts;
            en = rec.ends;
          }
          st[n] = fs;
          en[n] = i;
          n++;
          fs = i + 1;
        } else if (c === 0x0a) break;
        else if (c === 0x22) {
          quoted = true;
          break;
        }
      }
      const row = line;
      let next: number;
      if (quoted) {
        this.line = line;
        next = this.parseQuoted(p, end);
        if (next < 0) break; // the record continues past the block: read more
        line = this.line; // past the line breaks inside quotes
      } else {
        let e = i;
        if (e > fs && buf[e - 1] === 0x0d) e--;
        next = i < end ? i + 1 : i;
        if (n === 0 && e === fs) {
          // An empty line.
          p = next;
          line++;
          continue;
        }
        st[n] = fs;
        en[n] = e;
        rec.length = n + 1;
        rec.buf = buf;
        rec.quoted = false;
      }
      line++;
      p = next;
      if (!this.header) {
        this.onHeader();
        continue;
      }
      this.rows++;
      this.onRecord(rec, row, this.columns);
      if (this.rows >= stopAt) {
        this.pos = p;
        this.line = line;
        return true;
      }
    }
    this.pos = p;
    this.line = line;
    return false;
  }

  private onHeader(): void {
    const h = this.rec.fields().map((x) => x.trim());
    this.header = h;
    const opts = this.opts;
    const file = this.file;
    const missing = opts.required.filter((c) => !h.includes(c));
    if (missing.length) {
      const headText = this.headText;
      const delim = OTHER_DELIMITERS.find(([d]) => headText.includes(d) && h.length === 1);
      throw invalid(
        delim
          ? `${file} row 1: wrong delimiter, the header looks ${delim[1]}-separated ('${headText.slice(0, 80)}'); recflow reads comma-separated files`
          : `${file} row 1: missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (header: ${h.join(',')}; expected at least ${opts.required.join(',')})`,
        { file, row: 1, missing },
      );
    }
    this.columns = new Map(h.map((name, i) => [name, i]));
    opts.onHeader?.(h, this.columns);
  }

  /**
   * Parse one record with quotes starting at `p` into `rec` (fields copied, unescaped, to the scratch buffer).
   * Returns the offset after its line break, or -1 when the record is not complete before `end` (more bytes
   * needed); advances `line` by the line breaks inside quotes.
   */
  private parseQuoted(p: number, end: number): number {
    const buf = this.buf;
    const rec = this.rec;
    const max = this.maxLineBytes;
    const last = this.eof;
    const line = this.line;
    if (this.scratch.length < end - p + 4)
      this.scratch = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, end - p + 4));
    const scratch = this.scratch;
    let w = 0;
    let n = 0;
    let i = p;
    let lines = 0; // line breaks inside quotes
    for (;;) {
      // A field starts at i.
      rec.ensure(n + 1);
      rec.starts[n] = w;
      if (i < end && buf[i] === 0x22) {
        i++;
        for (;;) {
          if (i >= end) {
            if (end - p > max) {
              throw this.malformed(
                'CSV_MAX_RECORD_SIZE',
                line,
                `the quoted field ${n + 1}${this.columnName(n)} is not closed within ${max} bytes (an unclosed quote?)`,
              );
            }
            if (!last) return -1;
            throw this.malformed(
              'CSV_QUOTE_NOT_CLOSED',
              line,
              `the quoted field ${n + 1}${this.columnName(n)} opened in row ${line} is not closed by the end of the file`,
            );
          }
          const c = buf[i] ?? 0;
          if (c === 0x22) {
            if (i + 1 < end && buf[i + 1] === 0x22) {
              scratch[w++] = 0x22;
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === 0x0a) lines++;
          scratch[w++] = c;
          i++;
        }
        rec.ends[n] = w;
        n++;
        // After the closing quote: a comma, the line break (CR LF or LF) or the end of the file.
        const c = i < end ? (buf[i] ?? 0) : -1;
        if (c === 0x2c) {
          i++;
          continue;
        }
        if (c === 0x0a || c === -1 || (c === 0x0d && (i + 1 >= end || buf[i + 1] === 0x0a))) {
          i = c === 0x0d ? i + 2 : i + 1;
          break;
        }
        throw this.malformed(
          'CSV_INVALID_CLOSING_QUOTE',
          line + lines,
          `field ${n}${this.columnName(n - 1)} has ${JSON.stringify(String.fromCharCode(c))} after its closing quote; a quoted field ends with '"' followed by a comma or the end of the line (write a quote inside quotes as "")`,
        );
      }
      // An unquoted field: up to a comma or the line break; a quote inside it is an error (as csv-parse).
      for (; i < end; i++) {
        const c = buf[i] ?? 0;
        if (c === 0x2c || c === 0x0a) break;
        if (c === 0x22) {
          throw this.malformed(
            'CSV_INVALID_OPENING_QUOTE',
            line + lines,
            `a quote inside the unquoted field ${n + 1}${this.columnName(n)} ('${buf.toString('utf8', p, Math.min(i + 1, p + 80))}'); quote the whole field and write the quote as ""`,
          );
        }
        scratch[w++] = c;
      }
      const c = i < end ? buf[i] : -1;
      if (c !== 0x2c && w > (rec.starts[n] ?? 0) && scratch[w - 1] === 0x0d) w--;
      rec.ends[n] = w;
      n++;
      if (c === 0x2c) {
        i++;
        continue;
      }
      if (i < end) i++;
      break;
    }
    rec.buf = scratch;
    rec.length = n;
    rec.quoted = true;
    this.line = line + lines;
    return Math.min(i, Math.max(end, p));
  }
}
