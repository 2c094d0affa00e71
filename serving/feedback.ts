/**
 * What `/v1/feedback` refers to: the recent responses of this replica (request id to variant, version and items).
 */
import type { Variant } from './model-slot';

/** One served response, as feedback needs it. */
export interface ServedResponse {
  variant: Variant;
  version: string;
  precision: string;
  items: string[];
}

/** Options of {@link FeedbackLedger}. */
export interface FeedbackLedgerOptions {
  /** How many recent responses `/v1/feedback` can refer to by request id. @default 50000 */
  memory?: number;
}

/** The recent responses of a replica. */
export class FeedbackLedger {
  private readonly memory = new Map<string, ServedResponse>();
  private readonly limit: number;

  constructor(opts: FeedbackLedgerOptions = {}) {
    this.limit = opts.memory ?? 50_000;
  }

  /** Remember a response (the oldest is forgotten beyond the limit). */
  remember(requestId: string, r: ServedResponse): void {
    this.memory.set(requestId, r);
    if (this.memory.size > this.limit) this.memory.delete(this.memory.keys().next().value as string);
  }

  /** A recent response of this replica, or undefined. */
  lookup(requestId: string): ServedResponse | undefined {
    return this.memory.get(requestId);
  }
}
