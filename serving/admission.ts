/**
 * Admission control: shed model requests early, before their body is read, when the time a new request would wait
 * behind those already admitted exceeds a budget, so the requests that are admitted keep their latency under
 * overload (a 503 with `Retry-After` costs the client one round trip; a queue that grows costs everyone). It sits
 * in the HTTP server itself ({@link admissionServerFactory}, used by serving/server.ts): a shed request is answered
 * by a few bytes written before fastify, the body parser or the model see it, so shedding stays cheap while the
 * replica is saturated.
 *
 * The expected wait is Little's law on what the replica measures itself: `admitted in flight x service time per
 * request`, the service time being the busy time per completion, measured over periods of at least `periodMs` of
 * busy time (completions come in bursts with micro-batching: a per-interval average would be low right after each
 * burst) and smoothed across periods. Feedback, health and admin routes are never shed (dropping feedback would bias
 * CTR).
 */

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  /** Most expected queueing time in ms; 0 admits everything. @default 50 */
  budgetMs?: number;
  /** `Retry-After` of a shed request, in seconds. @default 1 */
  retryAfterS?: number;
  /**
   * Never shed while fewer requests than this are in flight: a queue this short is not an overload (a stalled host
   * is: a 50 ms stall would make 32 in flight look like 50 ms of queue), and shedding it would turn a few clients'
   * retries into a storm of cheap 503s. @default 64
   */
  minInFlight?: number;
  /** Busy time over which one service-time sample is taken, ms. @default 50 */
  periodMs?: number;
  /** Weight of a new period's sample in the moving average. @default 0.3 */
  alpha?: number;
  /** Service time assumed before anything was measured, in ms. @default 1 */
  initialServiceMs?: number;
  /** Clock in ms (tests). @default performance.now */
  now?: () => number;
}

/** One replica's admission state. */
export class Admission {
  readonly budgetMs: number;
  readonly retryAfterS: number;
  private readonly minInFlight: number;
  private readonly alpha: number;
  private readonly periodMs: number;
  private readonly now: () => number;
  private periodBusy = 0;
  private periodDone = 0;
  private inflight = 0;
  private serviceMs: number;
  private lastDone = Number.NaN;
  /** Requests stayed in flight after the last completion: the replica was busy since. */
  private busy = false;

  constructor(opts: AdmissionOptions = {}) {
    this.budgetMs = opts.budgetMs ?? 50;
    this.retryAfterS = opts.retryAfterS ?? 1;
    this.minInFlight = opts.minInFlight ?? 64;
    this.alpha = opts.alpha ?? 0.3;
    this.periodMs = opts.periodMs ?? 50;
    this.serviceMs = opts.initialServiceMs ?? 1;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Admitted requests not finished yet. */
  get inFlight(): number {
    return this.inflight;
  }

  /** The expected wait of a request admitted now, in ms. */
  get expectedWaitMs(): number {
    return this.inflight * this.serviceMs;
  }

  /** The moving average of the service time per request, in ms. */
  get serviceTimeMs(): number {
    return this.serviceMs;
  }

  /** Admit a request (pair with {@link done}), or refuse it: false when its expected wait exceeds the budget. */
  admit(): boolean {
    if (this.budgetMs > 0 && this.inflight >= this.minInFlight && this.expectedWaitMs > this.budgetMs) return false;
    this.inflight++;
    return true;
  }

  /** An admitted request finished. */
  done(): void {
    const t = this.now();
    // The time since the last completion is busy time only if requests stayed in flight meanwhile.
    if (this.busy && Number.isFinite(this.lastDone)) {
      this.periodBusy += Math.min(1000, t - this.lastDone);
      this.periodDone++;
      if (this.periodBusy >= this.periodMs) {
        this.serviceMs += this.alpha * (this.periodBusy / this.periodDone - this.serviceMs);
        this.periodBusy = 0;
        this.periodDone = 0;
      }
    }
    this.inflight = Math.max(0, this.inflight - 1);
    this.busy = this.inflight > 0;
    this.lastDone = t;
  }
}

/** The paths admission control guards (POST only). */
export const ADMITTED_PATHS = new Set(['/v1/recommend', '/v1/score', '/v1/search']);

/**
 * A fastify `serverFactory`: an HTTP server that asks `admission` about every model request (POST of
 * {@link ADMITTED_PATHS}) as soon as its headers are in, answers a refused one itself with 503, `Retry-After` and
 * the error body of the API, and hands everything else to fastify (`onShed` is told the path of each shed request).
 */
export function admissionServerFactory(
  admission: Admission,
  onShed: (path: string) => void,
): (handler: (req: IncomingMessage, res: ServerResponse) => void) => Server {
  return (handler) =>
    createServer((req, res) => {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (req.method !== 'POST' || !ADMITTED_PATHS.has(path)) return handler(req, res);
      if (!admission.admit()) {
        onShed(path);
        const requestId = randomUUID();
        const body = JSON.stringify({
          error: 'Service Unavailable',
          message: `overloaded: a request would wait about ${Math.round(admission.expectedWaitMs)} ms, over the ${admission.budgetMs} ms budget; retry after ${admission.retryAfterS} s`,
          requestId,
        });
        res.writeHead(503, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(body),
          'retry-after': String(admission.retryAfterS),
          'x-request-id': requestId,
        });
        res.end(body);
        return;
      }
      res.once('close', () => admission.done());
      handler(req, res);
    });
}
