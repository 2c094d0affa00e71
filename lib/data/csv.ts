/**
 * Streaming CSV reading with the checks a real export needs before csv-parse sees it: empty file, UTF-16 or
 * invalid UTF-8 bytes, an over-long line, a wrong delimiter, missing columns. Every failure is a
 * `RecflowError(InvalidData)` naming the file, the line and, where it applies, the column and value.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { parse } from 'csv-parse';
import { ErrorType, RecflowError } from '../errors';

/** Longest accepted physical line, in bytes. @default 65536 */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;

/** Options of {@link readCsv}. */
export interface ReadCsvOptions {
  /** Columns that must be in the header. */
  required: readonly string[];
  /** @default {@link DEFAULT_MAX_LINE_BYTES} */
  maxLineBytes?: number;
  /** Awaited every `progressEvery` rows (heartbeats). */
  onProgress?: (rows: number) => void | Promise<void>;
  /** @default 100000 */
  progressEvery?: number;
}

/** One data row: `row` is 1-based among data rows (the header is line 1, row 1 is line 2). */
export type RowHandler = (fields: string[], row: number, columns: ReadonlyMap<string, number>) => void;

function invalid(msg: string, details?: Record<string, unknown>): RecflowError {
  return new RecflowError(ErrorType.InvalidData, msg, details);
}

/** Checks bytes as they stream: valid UTF-8 and no line longer than the limit. */
class ByteGuard extends Transform {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private line = 1;
  private lineBytes = 0;
  private first = true;
  constructor(
    private readonly file: string,
    private readonly maxLineBytes: number,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.first) {
      this.first = false;
      if ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff)) {
        return cb(
          invalid(`${this.file}: bad encoding, the file is UTF-16 (byte order mark at line 1); save it as UTF-8`),
        );
      }
    }
    // Line lengths: jump from newline to newline.
    let start = 0;
    let firstLine = this.line;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const len = (nl < 0 ? chunk.length : nl) - start;
      if (this.lineBytes + len > this.maxLineBytes) {
        return cb(
          invalid(
            `${this.file} line ${this.line} is longer than ${this.maxLineBytes} bytes: not a CSV export (a binary file, or a missing line break?)`,
            { file: this.file, line: this.line },
          ),
        );
      }
      if (nl < 0) {
        this.lineBytes += len;
        break;
      }
      this.line++;
      this.lineBytes = 0;
      start = nl + 1;
    }
    // Encoding: the whole chunk at once; on failure, find the line.
    try {
      this.decoder.decode(chunk, { stream: true });
    } catch {
      const probe = new TextDecoder('utf-8', { fatal: true });
      let s = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, s);
        const part = chunk.subarray(s, nl < 0 ? chunk.length : nl + 1);
        try {
          probe.decode(part, { stream: true });
        } catch {
          const text = part.toString('utf8');
          const at = Math.max(0, Buffer.byteLength(text.slice(0, Math.max(0, text.indexOf('\uFFFD')))));
          const bad = [...part.subarray(Math.max(0, at - 4), at + 4)]
            .map((b) => b.toString(16).padStart(2, '0'))
            .join(' ');
          return cb(
            invalid(
              `${this.file} line ${firstLine}, byte ${at + 1}: bad encoding, not valid UTF-8 (bytes near: ${bad}); save it as UTF-8`,
              { file: this.file, line: firstLine },
            ),
          );
        }
        if (nl < 0) break;
        firstLine++;
        s = nl + 1;
      }
      return cb(invalid(`${this.file} line ${this.line}: bad encoding, not valid UTF-8; save it as UTF-8`));
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    try {
      this.decoder.decode();
      cb();
    } catch {
      cb(invalid(`${this.file} line ${this.line}: bad encoding, truncated UTF-8 sequence at the end of the file`));
    }
  }
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

/**
 * Stream a CSV file, calling `onRow` for each data row; returns the header and the number of data rows.
 * @throws {RecflowError} `InvalidData`: empty file, bad encoding, an over-long line, wrong delimiter, missing
 * columns, a malformed quote; the message names the file and line.
 */
export async function readCsv(
  path: string,
  opts: ReadCsvOptions,
  onRow: RowHandler,
): Promise<{ header: string[]; rows: number }> {
  const file = basename(path);
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw invalid(`${file}: not found at ${path}`);
  }
  const expected = opts.required.join(',');
  if (size === 0) throw invalid(`${file} is empty (0 bytes): expected a header line with the columns ${expected}`);
  const head = await firstLine(path, maxLineBytes);
  const headText = head
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .replace(/\r$/, '');
  if (headText.trim() === '' && size <= head.length + 2) {
    throw invalid(`${file} is empty (blank header line): expected the columns ${expected}`);
  }
  if (!headText.includes(',')) {
    for (const [d, name] of OTHER_DELIMITERS) {
      if (
        headText.split(d).length > 1 &&
        opts.required.every((c) =>
          headText
            .split(d)
            .map((s) => s.trim())
            .includes(c),
        )
      ) {
        throw invalid(
          `${file} line 1: wrong delimiter, the header is ${name}-separated ('${headText.slice(0, 80)}'); recflow reads comma-separated files`,
          { file, line: 1 },
        );
      }
    }
  }
  const every = opts.progressEvery ?? 100_000;
  let header: string[] | undefined;
  let columns = new Map<string, number>();
  let rows = 0;
  const parser = parse({
    bom: true,
    delimiter: ',',
    relax_column_count: true,
    skip_empty_lines: true,
    trim: false,
    max_record_size: maxLineBytes,
  });
  const source = createReadStream(path, { highWaterMark: 1 << 20 });
  const guard = new ByteGuard(file, maxLineBytes);
  source.on('error', (e) => guard.destroy(e));
  guard.on('error', (e) => parser.destroy(e));
  source.pipe(guard).pipe(parser);
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (!header) {
        header = record.map((h) => h.trim());
        const missing = opts.required.filter((c) => !header?.includes(c));
        if (missing.length) {
          const delim = OTHER_DELIMITERS.find(([d]) => headText.includes(d) && header?.length === 1);
          throw invalid(
            delim
              ? `${file} line 1: wrong delimiter, the header looks ${delim[1]}-separated ('${headText.slice(0, 80)}'); recflow reads comma-separated files`
              : `${file} line 1: missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (header: ${header.join(',')}; expected at least ${expected})`,
            { file, line: 1, missing },
          );
        }
        columns = new Map(header.map((h, i) => [h, i]));
        continue;
      }
      rows++;
      onRow(record, rows, columns);
      if (opts.onProgress && rows % every === 0) await opts.onProgress(rows);
    }
  } catch (err) {
    source.destroy();
    if (err instanceof RecflowError) throw err;
    const e = err as Error & { code?: string; lines?: number };
    throw invalid(`${file} line ${e.lines ?? rows + 2}: malformed CSV (${e.code ?? 'error'}): ${e.message}`, {
      file,
      line: e.lines,
    });
  }
  if (!header) throw invalid(`${file} is empty: expected a header line with the columns ${expected}`);
  return { header, rows };
}
