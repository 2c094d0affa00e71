/**
 * Counters for the canary analysis: per series (variant, version, rollout salt, model kind), cumulative counts **per user
 * bucket** of requests, errors, impressions and clicks. The bucket is a function of the user id and the salt only
 * ({@link statsBucket}), so the same user lands in the same bucket on every replica and sums across replicas are
 * exact. Every count is attributed to the time its impression (or request) was served, in coarse time slots: a
 * click that arrives later is added to its impression's slot, so {@link BucketedCounters.read} with `servedBefore`
 * returns the requests and impressions served before a time and all their clicks so far. Slots older than the
 * recent horizon are folded into one cumulative base per series: memory stays bounded (at most
 * `horizonMs / slotMs` slots of `4 x buckets` uint32 per live series).
 */
import type { ModelTask } from '../lib/kinds';
import { fnv1a } from './router';
import type { Variant } from './model-slot';

/** Users are hashed into this many buckets by default. */
export const DEFAULT_STATS_BUCKETS = 512;
/** Width of a time slot. @default 1000 */
export const DEFAULT_SLOT_MS = 1000;
/** How long slots stay apart before they are folded into the base. @default 5 minutes */
export const DEFAULT_HORIZON_MS = 5 * 60_000;

/** What each series counts, per bucket. */
export const STAT_FIELDS = ['requests', 'errors', 'impressions', 'clicks'] as const;
export type StatField = (typeof STAT_FIELDS)[number];

/**
 * The stats bucket of a user under a rollout's salt: `fnv1a("<salt>|<userId>") mod buckets` (a different string
 * than the routing hash's, so buckets are not aligned with the canary split).
 */
export function statsBucket(userId: string, salt: string, buckets = DEFAULT_STATS_BUCKETS): number {
  return fnv1a(`${salt}|${userId}`) % buckets;
}

/** Which counters a count goes to. */
export interface SeriesKey {
  variant: Variant;
  version: string;
  /** The rollout salt in force when served (`''` when none). */
  salt: string;
  /** What the model serves: search requests, impressions and clicks are a series apart. @default 'recommend' */
  kind?: ModelTask;
}

/** One series read back: per-bucket counts (arrays of length `buckets`) and their totals. */
export interface BucketedSeries extends SeriesKey {
  kind: ModelTask;
  totals: Record<StatField, number>;
  requests: number[];
  errors: number[];
  impressions: number[];
  clicks: number[];
}

/** What `GET /v1/admin/stats` returns under `bucketed`. */
export interface BucketedStats {
  buckets: number;
  slotMs: number;
  horizonMs: number;
  /** The cutoff applied (epoch ms, aligned down to a slot), or null for everything so far. */
  servedBefore: number | null;
  /** Counts served before this (epoch ms) are folded: a `servedBefore` earlier than it cannot be answered. */
  foldedBefore: number;
  series: BucketedSeries[];
}

/** Options of {@link BucketedCounters}. */
export interface BucketedOptions {
  /** @default {@link DEFAULT_STATS_BUCKETS} */
  buckets?: number;
  /** @default {@link DEFAULT_SLOT_MS} */
  slotMs?: number;
  /** @default {@link DEFAULT_HORIZON_MS} */
  horizonMs?: number;
  /** Most series kept; the least recently counted one goes first. @default 64 */
  maxSeries?: number;
  /** Clock (tests). @default Date.now */
  now?: () => number;
}

/** A `servedBefore` older than the recent horizon. */
export class HorizonError extends Error {}

class Series {
  /** Everything in slots before `foldedBefore`, field-major (`field * buckets + bucket`). */
  readonly base: Float64Array;
  foldedBefore = Number.NEGATIVE_INFINITY;
  readonly slots = new Map<number, Uint32Array>();
  touched = 0;

  constructor(
    readonly key: SeriesKey,
    private readonly buckets: number,
  ) {
    this.base = new Float64Array(STAT_FIELDS.length * buckets);
  }

  add(slot: number, field: number, bucket: number, n: number): void {
    const i = field * this.buckets + bucket;
    if (slot < this.foldedBefore) {
      this.base[i] = (this.base[i] ?? 0) + n;
      return;
    }
    let s = this.slots.get(slot);
    if (!s) {
      s = new Uint32Array(STAT_FIELDS.length * this.buckets);
      this.slots.set(slot, s);
    }
    s[i] = (s[i] ?? 0) + n;
  }

  /** Fold every slot before `before` into the base. */
  fold(before: number): void {
    if (before <= this.foldedBefore) return;
    for (const [slot, s] of this.slots)
      if (slot < before) {
        for (let i = 0; i < s.length; i++) this.base[i] = (this.base[i] ?? 0) + (s[i] ?? 0);
        this.slots.delete(slot);
      }
    this.foldedBefore = before;
  }

  /** Counts of slots before `cutoff` (all when undefined), field-major. */
  read(cutoff: number | undefined): Float64Array {
    const out = Float64Array.from(this.base);
    for (const [slot, s] of this.slots)
      if (cutoff === undefined || slot < cutoff)
        for (let i = 0; i < s.length; i++) out[i] = (out[i] ?? 0) + (s[i] ?? 0);
    return out;
  }
}

/** The bucketed, time-attributed counters of one replica. */
export class BucketedCounters {
  readonly buckets: number;
  readonly slotMs: number;
  readonly horizonMs: number;
  private readonly maxSeries: number;
  private readonly now: () => number;
  private readonly series = new Map<string, Series>();

  constructor(opts: BucketedOptions = {}) {
    this.buckets = opts.buckets ?? DEFAULT_STATS_BUCKETS;
    this.slotMs = opts.slotMs ?? DEFAULT_SLOT_MS;
    this.horizonMs = opts.horizonMs ?? DEFAULT_HORIZON_MS;
    this.maxSeries = opts.maxSeries ?? 64;
    this.now = opts.now ?? Date.now;
  }

  /** The user's bucket under `salt`. */
  bucketOf(userId: string, salt: string): number {
    return statsBucket(userId, salt, this.buckets);
  }

  /** Add `n` to `field` of `key`'s bucket `bucket`, attributed to the serve time `servedAt` (epoch ms). */
  add(key: SeriesKey, field: StatField, bucket: number, servedAt: number, n = 1): void {
    if (n <= 0 || !Number.isInteger(bucket) || bucket < 0 || bucket >= this.buckets) return;
    const s = this.seriesOf(key);
    s.fold(this.foldBefore());
    s.add(Math.floor(servedAt / this.slotMs), STAT_FIELDS.indexOf(field), bucket, n);
  }

  /**
   * Every series' per-bucket counts of what was served before `servedBefore` (epoch ms, aligned down to a slot)
   * with all its clicks so far, or of everything without it.
   * @throws {HorizonError} when `servedBefore` is older than the recent horizon (the slots are folded).
   */
  read(servedBefore?: number): BucketedStats {
    const fold = this.foldBefore();
    for (const s of this.series.values()) s.fold(fold);
    const cutoff = servedBefore === undefined ? undefined : Math.floor(servedBefore / this.slotMs);
    if (cutoff !== undefined && cutoff < fold)
      throw new HorizonError(
        `servedBefore ${servedBefore} is older than this replica's recent horizon (counts served before ${fold * this.slotMs} are folded; the horizon is ${this.horizonMs} ms)`,
      );
    const B = this.buckets;
    const series: BucketedSeries[] = [];
    for (const s of this.series.values()) {
      const c = s.read(cutoff);
      const field = (f: number) => Array.from(c.subarray(f * B, (f + 1) * B));
      const [requests, errors, impressions, clicks] = [field(0), field(1), field(2), field(3)];
      const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
      series.push({
        ...s.key,
        kind: s.key.kind ?? 'recommend',
        totals: { requests: sum(requests), errors: sum(errors), impressions: sum(impressions), clicks: sum(clicks) },
        requests,
        errors,
        impressions,
        clicks,
      });
    }
    return {
      buckets: B,
      slotMs: this.slotMs,
      horizonMs: this.horizonMs,
      servedBefore: cutoff === undefined ? null : cutoff * this.slotMs,
      foldedBefore: fold * this.slotMs,
      series,
    };
  }

  /** Slots before this index are folded. */
  private foldBefore(): number {
    return Math.floor((this.now() - this.horizonMs) / this.slotMs);
  }

  private seriesOf(key: SeriesKey): Series {
    const kind = key.kind ?? 'recommend';
    const id = `${key.variant}|${key.version}|${key.salt}${kind === 'recommend' ? '' : `|${kind}`}`;
    let s = this.series.get(id);
    if (!s) {
      if (this.series.size >= this.maxSeries) {
        const oldest = [...this.series.entries()].sort((a, b) => a[1].touched - b[1].touched)[0];
        if (oldest) this.series.delete(oldest[0]);
      }
      s = new Series({ variant: key.variant, version: key.version, salt: key.salt, kind }, this.buckets);
      this.series.set(id, s);
    }
    s.touched = this.now();
    return s;
  }
}
