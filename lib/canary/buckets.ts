/**
 * Per-user-bucket counters: what each replica exports per variant so the canary analysis can treat users (the unit
 * of randomisation) as the unit of variance. A user's bucket is a hash of their id alone, so every replica puts a
 * user in the same bucket and summing the replicas' arrays bucket by bucket is exact; a bucket holds whole users,
 * so buckets are independent clusters (docs/canary-statistics.md).
 *
 * Pure and sandbox-safe (no Node built-ins): the rollout workflow may import it.
 */
import { ErrorType, RecflowError } from '../errors';

/** Default number of user buckets B. */
export const DEFAULT_BUCKETS = 512;

/** The counter fields of {@link VariantBuckets}, in a fixed order. */
export const BUCKET_FIELDS = ['requests', 'errors', 'impressions', 'clicks'] as const;
export type BucketField = (typeof BUCKET_FIELDS)[number];

/**
 * One variant's counters per user bucket, each array of length B (index = {@link userBucket}), cumulative since a
 * point in time the reader chooses (a replica: since it started; the analysis: since the period began).
 */
export interface VariantBuckets {
  /** Model requests served (`/v1/recommend` and `/v1/score`), failed ones included. */
  requests: number[];
  /** Requests answered with a 5xx. */
  errors: number[];
  /** Items returned by `/v1/recommend`. */
  impressions: number[];
  /** Clicks counted for those items (once per request and item), in the bucket of the user who was shown them. */
  clicks: number[];
}

/** Both variants' bucket counters over one period of the rollout (a step: one traffic split). */
export interface PeriodBuckets {
  /** Percent of users routed to the canary during the period (0..100). */
  canaryWeight: number;
  stable: VariantBuckets;
  canary: VariantBuckets;
}

/** Sums of a {@link VariantBuckets} over its buckets. */
export interface BucketTotals {
  requests: number;
  errors: number;
  impressions: number;
  clicks: number;
  /** Buckets with at least one request or impression. */
  activeBuckets: number;
}

/** FNV-1a 32-bit over UTF-16 code units, then the murmur3 finalizer so the low bits (`% B`) mix well. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The bucket (0..buckets-1) of a user: a function of the user id (and the fleet's `salt`, the same on every
 * replica) only. Use a salt that does not change during a rollout; it need not be the routing salt.
 */
export function userBucket(userId: string, buckets: number = DEFAULT_BUCKETS, salt = ''): number {
  if (!Number.isInteger(buckets) || buckets < 1)
    throw new RecflowError(ErrorType.InvalidInput, `userBucket: buckets must be a positive integer, got ${buckets}`);
  return hash32(`${salt}\u0000${userId}`) % buckets;
}

/** Zeroed counters for `buckets` buckets. */
export function emptyBuckets(buckets: number = DEFAULT_BUCKETS): VariantBuckets {
  if (!Number.isInteger(buckets) || buckets < 1)
    throw new RecflowError(ErrorType.InvalidInput, `emptyBuckets: buckets must be a positive integer, got ${buckets}`);
  const zeros = () => new Array<number>(buckets).fill(0);
  return { requests: zeros(), errors: zeros(), impressions: zeros(), clicks: zeros() };
}

/**
 * Check that `x` is a {@link VariantBuckets}: the four fields are arrays of one length (`buckets` when given) of
 * finite non-negative numbers. `where` names the source in the message (`replica r2, canary`).
 * @throws {RecflowError} `InvalidData` naming the source, the field and the bucket.
 */
export function validateBuckets(x: unknown, where: string, buckets?: number): VariantBuckets {
  if (typeof x !== 'object' || x === null)
    throw new RecflowError(ErrorType.InvalidData, `${where}: bucket counters must be an object, got ${typeof x}`);
  const rec = x as Record<string, unknown>;
  let length = buckets;
  for (const f of BUCKET_FIELDS) {
    const arr = rec[f];
    if (!Array.isArray(arr))
      throw new RecflowError(ErrorType.InvalidData, `${where}: field '${f}' must be an array of counts`, { field: f });
    length ??= arr.length;
    if (arr.length !== length)
      throw new RecflowError(
        ErrorType.InvalidData,
        `${where}: field '${f}' has ${arr.length} buckets, expected ${length}${buckets === undefined ? ` (as '${BUCKET_FIELDS[0]}')` : ''}`,
        { field: f },
      );
    for (let b = 0; b < arr.length; b++) {
      const v: unknown = arr[b];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new RecflowError(
          ErrorType.InvalidData,
          `${where}: field '${f}' bucket ${b} is ${JSON.stringify(v)}, expected a finite count >= 0`,
          { field: f, bucket: b },
        );
    }
  }
  if (!length)
    throw new RecflowError(ErrorType.InvalidData, `${where}: bucket counters have no buckets`, { field: 'requests' });
  return rec as unknown as VariantBuckets;
}

function sameLength(parts: VariantBuckets[], what: string): number {
  const first = parts[0];
  if (!first) throw new RecflowError(ErrorType.InvalidInput, `${what}: no bucket counters given`);
  const n = first.requests.length;
  parts.forEach((p, i) => {
    for (const f of BUCKET_FIELDS)
      if (p[f].length !== n)
        throw new RecflowError(
          ErrorType.InvalidData,
          `${what}: part ${i} field '${f}' has ${p[f].length} buckets, part 0 has ${n}: the replicas disagree on B`,
          { part: i, field: f },
        );
  });
  return n;
}

/**
 * Bucket-by-bucket sum of several replicas' counters (exact, since every replica buckets a user the same way).
 * @throws {RecflowError} `InvalidData` when the lengths differ, `InvalidInput` for an empty list.
 */
export function mergeBuckets(parts: VariantBuckets[]): VariantBuckets {
  const n = sameLength(parts, 'mergeBuckets');
  const out = emptyBuckets(n);
  for (const p of parts)
    for (const f of BUCKET_FIELDS) {
      const src = p[f];
      const dst = out[f];
      for (let b = 0; b < n; b++) dst[b] = (dst[b] ?? 0) + (src[b] ?? 0);
    }
  return out;
}

/**
 * `end − start`, bucket by bucket: the counts of the interval between two reads of cumulative counters (for
 * example a step's counts from the read at its start). `where` names the source in the message.
 * @throws {RecflowError} `InvalidData` when a count went back (the source restarted between the reads, or the reads
 * are swapped), naming the field and bucket.
 */
export function subtractBuckets(end: VariantBuckets, start: VariantBuckets, where = 'subtractBuckets'): VariantBuckets {
  const n = sameLength([end, start], where);
  const out = emptyBuckets(n);
  for (const f of BUCKET_FIELDS)
    for (let b = 0; b < n; b++) {
      const d = (end[f][b] ?? 0) - (start[f][b] ?? 0);
      if (d < 0)
        throw new RecflowError(
          ErrorType.InvalidData,
          `${where}: field '${f}' bucket ${b} went back from ${start[f][b]} to ${end[f][b]} (a restart between the reads?)`,
          { field: f, bucket: b },
        );
      out[f][b] = d;
    }
  return out;
}

/** Sums over buckets, and how many buckets saw traffic. */
export function bucketTotals(x: VariantBuckets): BucketTotals {
  const t: BucketTotals = { requests: 0, errors: 0, impressions: 0, clicks: 0, activeBuckets: 0 };
  for (let b = 0; b < x.requests.length; b++) {
    const r = x.requests[b] ?? 0;
    const i = x.impressions[b] ?? 0;
    t.requests += r;
    t.errors += x.errors[b] ?? 0;
    t.impressions += i;
    t.clicks += x.clicks[b] ?? 0;
    if (r > 0 || i > 0) t.activeBuckets++;
  }
  return t;
}
