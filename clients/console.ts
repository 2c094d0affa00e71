/**
 * The terminal a person watches: readable lines, one live progress line that rewrites itself on a TTY (training
 * epochs and batches, data rows, the open canary window), and prompts that nothing interleaves with (log lines that
 * arrive meanwhile wait until the answer is in). Colours only on a TTY and without `NO_COLOR`. Off a TTY the live
 * line is printed only when its text changes in more than its numbers' last digits (no spinner noise in CI logs).
 */
import { createInterface } from 'node:readline/promises';
import { setTerminalSink } from '../lib/log';

const tty = () => !!process.stdout.isTTY;
const colour = (code: string, s: string) => (tty() && !process.env.NO_COLOR ? `\x1b[${code}m${s}\x1b[0m` : s);

/** Colour helpers (no-ops off a TTY or with NO_COLOR). */
export const paint = {
  ok: (s: string) => colour('32', s),
  bad: (s: string) => colour('31', s),
  warn: (s: string) => colour('33', s),
  dim: (s: string) => colour('2', s),
  bold: (s: string) => colour('1', s),
};

export class TerminalConsole {
  private live = '';
  private lastPrintedLive = '';
  private held: string[] | undefined;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    setTerminalSink((line) => this.line(line));
  }

  /** A line above the live progress line. */
  line(text: string): void {
    if (this.held) {
      this.held.push(text);
      return;
    }
    if (tty() && this.live) this.out.write('\r\x1b[K');
    this.out.write(`${text}\n`);
    if (tty() && this.live) this.out.write(this.live);
  }

  /** Replace the live progress line (empty: remove it). */
  progress(text: string): void {
    if (this.held) return;
    if (tty()) {
      this.live = text;
      this.out.write(`\r\x1b[K${text}`);
      return;
    }
    // Off a TTY: a new line only when it says something new (not on every batch).
    const shape = text.replace(/\d+/g, '#');
    const coarse = text.replace(
      /(\d+)\/(\d+)/g,
      (_m, a: string, b: string) => `${Math.floor((10 * Number(a)) / Math.max(1, Number(b)))}/${b}`,
    );
    if (text && (shape !== this.lastPrintedLive.replace(/\d+/g, '#') || coarse !== this.lastCoarse)) {
      this.out.write(`${text}\n`);
      this.lastPrintedLive = text;
      this.lastCoarse = coarse;
    }
  }
  private lastCoarse = '';

  /** End the live line, keeping its last text as a normal line. */
  settle(): void {
    if (tty() && this.live) this.out.write('\n');
    this.live = '';
  }

  /** Ask a question; every other output waits until it is answered. */
  async ask(question: string): Promise<string> {
    this.settle();
    this.held = [];
    const rl = createInterface({ input: process.stdin, output: this.out });
    try {
      return (await rl.question(question)).trim();
    } finally {
      rl.close();
      const held = this.held;
      this.held = undefined;
      for (const l of held) this.line(l);
    }
  }
}
