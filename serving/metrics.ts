/**
 * Prometheus metrics of a replica (prom-client, one registry per app so several apps can live in one process):
 * requests by route, variant, version and status; request and inference latency histograms; micro-batch sizes;
 * impressions and feedback events by variant and version (CTR per variant = clicks / impressions); the loaded
 * models; process metrics. {@link ServingMetrics.stats} sums them per variant and version for `/v1/admin/stats`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ModelTask } from '../lib/kinds';
import type { ModelSlots, Variant } from './model-slot';

/** Latency buckets in seconds (fine below 10 ms, where serving lives). */
export const LATENCY_BUCKETS = [
  0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2, 5,
];

/** Cumulative counters of one (variant, version): what readFleetStats takes deltas of. */
export interface VariantCounters {
  variant: Variant;
  version: string;
  /** What the version serves (a version is a recommender or a search model): its clicks are that kind's CTR. */
  kind?: ModelTask;
  requests: number;
  errors: number;
  impressions: number;
  clicks: number;
  /** Cumulative counts per bucket of {@link LATENCY_BUCKETS} (same order), then +Inf. */
  latencyBuckets: number[];
}

/** The metrics of one serving app. */
export class ServingMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'variant' | 'version' | 'status'>;
  readonly requestDuration: Histogram<'route' | 'variant' | 'version'>;
  readonly inferenceDuration: Histogram<'graph' | 'version'>;
  readonly batchSize: Histogram<'graph'>;
  readonly impressions: Counter<'variant' | 'version' | 'kind'>;
  readonly feedback: Counter<'variant' | 'version' | 'event' | 'kind'>;
  readonly scoreFeedback: Counter<'variant' | 'version' | 'event'>;
  readonly feedbackNotCounted: Counter<'reason'>;
  readonly feedbackForwarded: Counter<'outcome'>;
  readonly shed: Counter<'route'>;
  readonly modelInfo: Gauge<'slot' | 'version' | 'precision'>;
  readonly generation: Gauge;
  readonly canaryWeight: Gauge;
  readonly swaps: Counter;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'recflow_http_requests_total',
      help: 'HTTP requests by route, variant, model version and status code',
      labelNames: ['route', 'variant', 'version', 'status'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'recflow_http_request_duration_seconds',
      help: 'Whole-request latency (routing, lookups, inference, serialisation)',
      labelNames: ['route', 'variant', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.inferenceDuration = new Histogram({
      name: 'recflow_inference_duration_seconds',
      help: 'onnxruntime session.run latency per micro-batch',
      labelNames: ['graph', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: 'recflow_inference_batch_size',
      help: 'Requests per micro-batch',
      labelNames: ['graph'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    });
    this.impressions = new Counter({
      name: 'recflow_impressions_total',
      help: 'Items returned by /v1/recommend (kind recommend) and /v1/search (kind search), by variant and version',
      labelNames: ['variant', 'version', 'kind'],
      registers,
    });
    this.feedback = new Counter({
      name: 'recflow_feedback_events_total',
      help: 'Feedback events on recommendations (kind recommend) and search results (kind search), by variant, version and event (click, add_to_cart, purchase, dismiss)',
      labelNames: ['variant', 'version', 'event', 'kind'],
      registers,
    });
    this.scoreFeedback = new Counter({
      name: 'recflow_score_feedback_events_total',
      help: 'Feedback events on /v1/score responses (kept apart: never counted toward recommendation CTR)',
      labelNames: ['variant', 'version', 'event'],
      registers,
    });
    this.feedbackNotCounted = new Counter({
      name: 'recflow_feedback_not_counted_total',
      help: 'Feedback answered counted: false, by reason (duplicate, expired)',
      labelNames: ['reason'],
      registers,
    });
    this.feedbackForwarded = new Counter({
      name: 'recflow_feedback_forwarded_total',
      help: 'Feedback for another replica: forwarded to it, or counted here when forwarding failed (fallback)',
      labelNames: ['outcome'],
      registers,
    });
    this.shed = new Counter({
      name: 'recflow_shed_requests_total',
      help: 'Model requests refused by admission control (503 + Retry-After) before any work',
      labelNames: ['route'],
      registers,
    });
    this.modelInfo = new Gauge({
      name: 'recflow_model_info',
      help: 'Loaded models: 1 per slot with its version and precision',
      labelNames: ['slot', 'version', 'precision'],
      registers,
    });
    this.generation = new Gauge({
      name: 'recflow_fleet_generation_applied',
      help: 'Generation of the fleet desired state this replica applied',
      registers,
    });
    this.canaryWeight = new Gauge({
      name: 'recflow_canary_weight_percent',
      help: 'Percent of users routed to the canary',
      registers,
    });
    this.swaps = new Counter({ name: 'recflow_model_swaps_total', help: 'Applied slot changes', registers });
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'recflow_' });
  }

  /** Refresh the model gauges from the slots. */
  observeSlots(slots: ModelSlots): void {
    this.modelInfo.reset();
    for (const v of ['stable', 'canary'] as const) {
      const m = slots.get(v);
      if (m) this.modelInfo.set({ slot: v, version: m.version, precision: m.precision }, 1);
    }
    this.generation.set(slots.generation);
    this.canaryWeight.set(slots.canaryWeight);
    this.swaps.inc();
  }

  /** Cumulative counters per (variant, version) of the model routes (recommend and score, or search). */
  async stats(): Promise<VariantCounters[]> {
    const byKey = new Map<string, VariantCounters>();
    const entry = (variant: string, version: string): VariantCounters => {
      const key = `${variant}|${version}`;
      let e = byKey.get(key);
      if (!e) {
        e = {
          variant: variant as Variant,
          version,
          kind: 'recommend',
          requests: 0,
          errors: 0,
          impressions: 0,
          clicks: 0,
          latencyBuckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0),
        };
        byKey.set(key, e);
      }
      return e;
    };
    const isModelRoute = (r: unknown) => r === '/v1/recommend' || r === '/v1/score' || r === '/v1/search';
    const known = (v: unknown, ver: unknown) => (v === 'stable' || v === 'canary') && typeof ver === 'string';
    for (const s of (await this.requests.get()).values) {
      const { route, variant, version, status } = s.labels;
      if (!isModelRoute(route) || !known(variant, version)) continue;
      const e = entry(String(variant), String(version));
      if (route === '/v1/search') e.kind = 'search';
      e.requests += s.value;
      if (Number(status) >= 500) e.errors += s.value;
    }
    for (const s of (await this.requestDuration.get()).values) {
      const { route, variant, version } = s.labels;
      if (s.metricName !== 'recflow_http_request_duration_seconds_bucket') continue;
      if (!isModelRoute(route) || !known(variant, version)) continue;
      const le = (s.labels as Record<string, unknown>).le;
      const i = le === '+Inf' ? LATENCY_BUCKETS.length : LATENCY_BUCKETS.indexOf(Number(le));
      const e = entry(String(variant), String(version));
      if (i >= 0) e.latencyBuckets[i] = (e.latencyBuckets[i] ?? 0) + s.value;
    }
    for (const s of (await this.impressions.get()).values) {
      const { variant, version } = s.labels;
      if (known(variant, version)) entry(String(variant), String(version)).impressions += s.value;
    }
    for (const s of (await this.feedback.get()).values) {
      const { variant, version, event } = s.labels;
      if (known(variant, version) && event === 'click') entry(String(variant), String(version)).clicks += s.value;
    }
    return [...byKey.values()];
  }
}

/** Feedback events on score responses, per variant, version and event (`/v1/admin/stats` `scoreFeedback`). */
export async function scoreFeedbackStats(
  m: ServingMetrics,
): Promise<Array<{ variant: string; version: string; event: string; count: number }>> {
  return (await m.scoreFeedback.get()).values.map((v) => ({
    variant: String(v.labels.variant),
    version: String(v.labels.version),
    event: String(v.labels.event),
    count: v.value,
  }));
}

/** Requests shed by admission control so far (all routes). */
export async function shedTotal(m: ServingMetrics): Promise<number> {
  return (await m.shed.get()).values.reduce((a, v) => a + v.value, 0);
}

/**
 * Quantile (0..1) in seconds from cumulative histogram bucket counts over {@link LATENCY_BUCKETS} (+Inf last),
 * interpolated linearly inside the bucket; 0 when empty.
 */
export function quantileFromBuckets(cumulative: number[], q: number): number {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (total <= 0) return 0;
  const rank = q * total;
  for (let i = 0; i < cumulative.length; i++) {
    const c = cumulative[i] ?? 0;
    if (c >= rank) {
      const lo = i === 0 ? 0 : (LATENCY_BUCKETS[i - 1] ?? 0);
      const hi = LATENCY_BUCKETS[i] ?? LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1] ?? 0;
      const prev = i === 0 ? 0 : (cumulative[i - 1] ?? 0);
      const frac = c > prev ? (rank - prev) / (c - prev) : 1;
      return lo + (hi - lo) * frac;
    }
  }
  return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1] ?? 0;
}
