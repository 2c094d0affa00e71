/**
 * Dynamic micro-batching: requests that arrive while a batch is running (or in the same event-loop turn) are run
 * together in the next batch. Nothing waits on a timer: at low load a request runs alone at once (after the current
 * turn's other requests, via `setImmediate`), under load batches grow with the queue (up to `maxBatch`), and the next
 * batch starts as soon as the previous one finishes (in its completion, not a turn later: under overload an
 * event-loop turn is long). One batch runs at a time per batcher.
 */
export interface BatcherOptions {
  /** Largest batch. @default 64 */
  maxBatch?: number;
  /** Called after each batch with its size and duration in seconds (metrics). */
  onBatch?: (size: number, seconds: number) => void;
}

interface Pending<I, O> {
  input: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

/** Groups concurrent `submit` calls into calls of `run` (one output per input, same order). */
export class Batcher<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private running = false;
  private scheduled = false;
  private readonly maxBatch: number;

  constructor(
    private readonly run: (inputs: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions = {},
  ) {
    this.maxBatch = Math.max(1, opts.maxBatch ?? 64);
  }

  /** Requests waiting for a batch. */
  get pending(): number {
    return this.queue.length;
  }

  /** Queue one input; resolves with its output, or rejects with the batch's error. */
  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.scheduled || !this.queue.length) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.running || !this.queue.length) return;
    this.running = true;
    const batch = this.queue.splice(0, this.maxBatch);
    const t0 = process.hrtime.bigint();
    try {
      const out = await this.run(batch.map((p) => p.input));
      if (out.length !== batch.length) throw new Error(`batch returned ${out.length} outputs for ${batch.length}`);
      this.opts.onBatch?.(batch.length, Number(process.hrtime.bigint() - t0) / 1e9);
      batch.forEach((p, i) => p.resolve(out[i] as O));
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.running = false;
      // What queued meanwhile goes at once: waiting for the next turn would cost a whole poll phase under load.
      if (this.queue.length) void this.flush();
    }
  }
}
