/**
 * Fault injection for game days and the reliability suite, in the spirit of Envoy's HTTP fault filter: per variant
 * (stable or canary), delay a share of the model requests (`/v1/recommend`, `/v1/score`, `/v1/search`), abort a
 * share with an HTTP 5xx, and/or answer a share of recommendations with random catalogue items (a model whose
 * weights did not load right: it still answers 200, and only the CTR analysis can catch it). Faults live in the replica's memory only (a restart clears them) and are set through the admin API
 * (`PUT /v1/admin/faults`, bearer token), so a canary can be made to misbehave on a real fleet and the analysis be
 * seen to catch it. Aborted requests count as errors in the replica's stats exactly like real failures.
 */
import { mulberry32 } from '../lib/rng';
import type { Variant } from './model-slot';

/** One variant's faults. Rates are shares of requests in 0..1. */
export interface FaultSpec {
  variant: Variant;
  /** Share of requests answered with `abortStatus` instead of a model answer. @default 0 */
  abortRate?: number;
  /** @default 503 */
  abortStatus?: number;
  /** Extra latency added to a delayed request, in ms. @default 0 */
  delayMs?: number;
  /** Share of requests delayed by `delayMs`. @default 1 when delayMs > 0 */
  delayRate?: number;
  /** Share of `/v1/recommend` requests answered with random catalogue items (seen items still left out). @default 0 */
  randomItemsRate?: number;
}

/** What to do with one request. */
export interface FaultDecision {
  delayMs: number;
  abortStatus: number | null;
  /** Answer with random catalogue items. */
  randomItems: boolean;
}

const NONE: FaultDecision = { delayMs: 0, abortStatus: null, randomItems: false };

/** The faults of one replica, by variant. */
export class FaultInjector {
  private readonly specs = new Map<Variant, Required<FaultSpec>>();
  private readonly random: () => number;

  constructor(seed = Date.now()) {
    this.random = mulberry32(seed);
  }

  /** Set (replace) the faults of `spec.variant`; a spec with nothing to inject clears them. */
  set(spec: FaultSpec): Required<FaultSpec> | null {
    const full: Required<FaultSpec> = {
      variant: spec.variant,
      abortRate: spec.abortRate ?? 0,
      abortStatus: spec.abortStatus ?? 503,
      delayMs: spec.delayMs ?? 0,
      delayRate: spec.delayRate ?? (spec.delayMs ? 1 : 0),
      randomItemsRate: spec.randomItemsRate ?? 0,
    };
    if (full.abortRate <= 0 && (full.delayMs <= 0 || full.delayRate <= 0) && full.randomItemsRate <= 0) {
      this.specs.delete(spec.variant);
      return null;
    }
    this.specs.set(spec.variant, full);
    return full;
  }

  /** Clear one variant's faults, or all. */
  clear(variant?: Variant): void {
    if (variant) this.specs.delete(variant);
    else this.specs.clear();
  }

  list(): Array<Required<FaultSpec>> {
    return [...this.specs.values()];
  }

  /** Draw what happens to one request served by `variant`. */
  decide(variant: Variant): FaultDecision {
    const s = this.specs.get(variant);
    if (!s) return NONE;
    const delayMs = s.delayMs > 0 && this.random() < s.delayRate ? s.delayMs : 0;
    const abortStatus = s.abortRate > 0 && this.random() < s.abortRate ? s.abortStatus : null;
    const randomItems = s.randomItemsRate > 0 && this.random() < s.randomItemsRate;
    return { delayMs, abortStatus, randomItems };
  }
}
