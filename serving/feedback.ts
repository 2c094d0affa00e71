/**
 * Feedback counted once, on any replica.
 *
 * Every `/v1/recommend`, `/v1/score` and `/v1/search` response carries a **feedback token**: a payload naming the replica,
 * request id, variant, version, rollout salt, the user's stats bucket, the serve time and the served items (a
 * 32-bit FNV-1a hash per item id), signed with HMAC-SHA256 by a key derived from the fleet secret
 * (lib/fleet/secret.ts), so every replica of the fleet can verify a token another one issued. `POST /v1/feedback`
 * takes the token (or, the older way, the request id of a recent response of this replica) and:
 * - counts one event per (request, item, event): a repeat answers 200 with `counted: false` (`reason: duplicate`);
 * - counts only items that response served (else 400);
 * - counts feedback on a `/v1/score` response apart (`recflow_score_feedback_events_total`, `scoreFeedback` in the
 *   stats): never toward recommendation CTR; feedback on a `/v1/search` response counts toward search CTR, a
 *   series apart from recommendation CTR (`kind: search` in Prometheus and in the bucketed stats);
 * - attributes a click to its impression's serve time and bucket (serving/stats.ts), so a stats window that ends
 *   at T counts every click on impressions served before T, whenever it arrives;
 * - when the token names another replica that is live in the fleet reports, forwards the feedback there (its
 *   memory deduplicates exactly); when that replica is gone, the live replica chosen by rendezvous hashing of the
 *   request id counts it (so retries still meet the same dedup memory while the live set stands), and if
 *   forwarding fails the receiving replica counts it from the token. Never a 404 because a load balancer picked
 *   another replica.
 * Dedup memory is bounded: tokens older than `ttlMs` are answered `counted: false` (`reason: expired`), and at
 * most `maxDedup` (request, item, event) keys are kept (oldest forgotten first).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { deriveKey } from '../lib/fleet/secret';
import type { FeedbackEvent } from './schemas';
import { fnv1a } from './router';
import type { Variant } from './model-slot';

/** What a response was, as feedback needs it (the payload of a feedback token). */
export interface ServedResponse {
  /** Request id (issued by the serving replica). */
  rid: string;
  /** Replica that served it. */
  rep: string;
  variant: Variant;
  version: string;
  precision: string;
  salt: string;
  /** The user's stats bucket under `salt` (serving/stats.ts). */
  bucket: number;
  /** Serve time, epoch ms. */
  t: number;
  /** The route that served it: feedback on `score` is counted apart, on `search` as search CTR. */
  kind: 'recommend' | 'score' | 'search';
  /** FNV-1a hashes of the served item ids, in order. */
  items: number[];
}

/** The hash of an item id in a token. */
export const itemHash = (itemId: string): number => fnv1a(itemId);

function b64u(buf: Buffer): string {
  return buf.toString('base64url');
}

/** Signs and verifies feedback tokens with a key derived from the fleet secret. */
export class FeedbackSigner {
  private readonly key: Buffer;

  constructor(secret: Buffer) {
    this.key = Buffer.from(deriveKey(secret, 'feedback-token'), 'hex');
  }

  private mac(payload: string): Buffer {
    return createHmac('sha256', this.key).update(payload).digest();
  }

  /** `<base64url(JSON payload)>.<base64url(HMAC-SHA256)>`; items are packed as base64url uint32s. */
  sign(r: ServedResponse): string {
    const packed = Buffer.alloc(4 * r.items.length);
    r.items.forEach((h, i) => packed.writeUInt32LE(h >>> 0, 4 * i));
    const body = {
      v: 1,
      rid: r.rid,
      rep: r.rep,
      var: r.variant,
      ver: r.version,
      prec: r.precision,
      salt: r.salt,
      b: r.bucket,
      t: r.t,
      kind: r.kind,
      ih: b64u(packed),
    };
    const payload = b64u(Buffer.from(JSON.stringify(body)));
    return `${payload}.${b64u(this.mac(payload))}`;
  }

  /** The response a token names, or undefined when the token was not signed with this fleet's secret. */
  verify(token: string): ServedResponse | undefined {
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const want = this.mac(payload);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    try {
      const p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
      const packed = Buffer.from(String(p.ih), 'base64url');
      if (p.v !== 1 || (p.var !== 'stable' && p.var !== 'canary')) return undefined;
      if (p.kind !== 'recommend' && p.kind !== 'score' && p.kind !== 'search') return undefined;
      if (packed.length % 4 !== 0) return undefined;
      return {
        rid: String(p.rid),
        rep: String(p.rep),
        variant: p.var,
        version: String(p.ver),
        precision: String(p.prec),
        salt: String(p.salt),
        bucket: Number(p.b),
        t: Number(p.t),
        kind: p.kind,
        items: Array.from({ length: packed.length / 4 }, (_, i) => packed.readUInt32LE(4 * i)),
      };
    } catch {
      return undefined;
    }
  }
}

/** Options of {@link FeedbackLedger}. */
export interface FeedbackLedgerOptions {
  /** How many recent responses `/v1/feedback` can refer to by request id. @default 50000 */
  memory?: number;
  /** Feedback on a response older than this is not counted (`reason: expired`). @default 1 hour */
  ttlMs?: number;
  /** Most (request, item, event) keys remembered for dedup. @default 200000 */
  maxDedup?: number;
  /** Clock (tests). @default Date.now */
  now?: () => number;
}

/** Why feedback was not counted. */
export type NotCounted = 'duplicate' | 'expired';

/** The recent responses of a replica and the feedback it already counted. */
export class FeedbackLedger {
  private readonly memory = new Map<string, ServedResponse>();
  private readonly dedup = new Map<string, number>();
  private readonly limit: number;
  readonly ttlMs: number;
  private readonly maxDedup: number;
  private readonly now: () => number;

  constructor(
    readonly signer: FeedbackSigner,
    opts: FeedbackLedgerOptions = {},
  ) {
    this.limit = opts.memory ?? 50_000;
    this.ttlMs = opts.ttlMs ?? 3_600_000;
    this.maxDedup = opts.maxDedup ?? 200_000;
    this.now = opts.now ?? Date.now;
  }

  /** Remember a response and return its token (the oldest response is forgotten beyond the limit). */
  remember(r: ServedResponse): string {
    this.memory.set(r.rid, r);
    if (this.memory.size > this.limit) this.memory.delete(this.memory.keys().next().value as string);
    return this.signer.sign(r);
  }

  /** A recent response of this replica, or undefined. */
  lookup(requestId: string): ServedResponse | undefined {
    return this.memory.get(requestId);
  }

  /** Whether `itemId` was in the response. */
  served(r: ServedResponse, itemId: string): boolean {
    return r.items.includes(itemHash(itemId));
  }

  /**
   * Claim (request, item, event) for counting: true the first time within the TTL, else why not. Expired
   * responses are never claimed (their dedup keys may be gone).
   */
  claim(r: ServedResponse, itemId: string, event: FeedbackEvent): true | NotCounted {
    const now = this.now();
    if (now - r.t > this.ttlMs) return 'expired';
    // Forget keys past the TTL (the Map is in insertion order, i.e. about time order), and beyond the bound.
    for (const [k, at] of this.dedup) {
      if (now - at <= this.ttlMs && this.dedup.size < this.maxDedup) break;
      this.dedup.delete(k);
    }
    const key = `${r.rid}\u0000${itemId}\u0000${event}`;
    if (this.dedup.has(key)) return 'duplicate';
    this.dedup.set(key, now);
    return true;
  }
}

/** A live replica of the fleet, from its report. */
export interface Peer {
  replicaId: string;
  url: string;
}

/**
 * The replica that counts feedback for `r`: the one that served it when it is live, else the live replica with the
 * highest rendezvous hash of the request id (so every replica picks the same one), else undefined (none live).
 */
export function feedbackOwner(r: ServedResponse, live: Peer[]): Peer | undefined {
  const origin = live.find((p) => p.replicaId === r.rep);
  if (origin) return origin;
  let best: Peer | undefined;
  let bestScore = -1;
  for (const p of live) {
    const score = fnv1a(`${r.rid}|${p.replicaId}`);
    if (score > bestScore || (score === bestScore && best && p.replicaId < best.replicaId)) {
      best = p;
      bestScore = score;
    }
  }
  return best;
}
