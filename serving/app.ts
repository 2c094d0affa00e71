/**
 * The serving app builder, the fastify/demo way: it never listens (serving/server.ts does). It registers
 * `plugins/external` (sensible), `plugins/http` (the error contract), `plugins/app` (decorators: slots, metrics,
 * faults, reconciler, feedback) and the routes under `routes/` as plugins; the admin routes sit in one scope behind
 * one bearer-token hook. Tests build it and call `app.inject`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerFactory,
} from 'fastify';
import type { Logger } from 'pino';
import { FaultInjector } from './faults';
import { FeedbackLedger, FeedbackSigner, type FeedbackLedgerOptions, type Peer } from './feedback';
import type { ServingMetrics } from './metrics';
import type { ModelSlots } from './model-slot';
import { appPlugin } from './plugins/app';
import { externalPlugins } from './plugins/external';
import { httpPlugin } from './plugins/http';
import type { Reconciler } from './reconcile';
import { adminRoutes } from './routes/admin';
import { feedbackRoutes } from './routes/feedback';
import { healthRoutes } from './routes/health';
import { metricsRoutes } from './routes/metrics';
import { recommendRoutes } from './routes/recommend';
import { scoreRoutes } from './routes/score';
import { searchRoutes } from './routes/search';
import { BODY_LIMIT } from './schemas';
import { BucketedCounters, type BucketedOptions } from './stats';

/** Options of {@link buildApp}. */
export interface AppOptions {
  slots: ModelSlots;
  metrics: ServingMetrics;
  /** The reconciler: the admin API writes to its source and applies at once. */
  reconciler?: Reconciler;
  /** Bearer token of the admin API (`RECFLOW_ADMIN_TOKEN`); without it changes are refused (403). */
  adminToken?: string;
  /** Read-only bearer token (GET) of the admin API: the fleet's stats reader (lib/fleet/secret.ts). */
  readToken?: string;
  /** pino logger (fastify's request logger derives from it); false for silence. @default false */
  logger?: Logger | false;
  /** How many recent responses `/v1/feedback` can refer to by request id. @default 50000 */
  feedbackMemory?: number;
  /** Feedback ledger limits (TTL, dedup bound). */
  feedback?: Omit<FeedbackLedgerOptions, 'memory'>;
  /** The fleet secret that signs feedback tokens. @default a random one (tokens then verify on this app only) */
  feedbackSecret?: Buffer;
  /** The fleet's live replicas, for forwarding feedback to the replica that served it. @default none */
  peers?: () => Promise<Peer[]>;
  /** Bucketed stats (buckets, time slots, horizon). */
  stats?: BucketedOptions;
  /**
   * The HTTP server factory (serving/server.ts passes one that sheds overload before fastify sees the request:
   * serving/admission.ts). @default fastify's
   */
  serverFactory?: FastifyServerFactory;
  /** Injected faults (`/v1/admin/faults`). @default a new, empty injector */
  faults?: FaultInjector;
  /** Where bundles may come from: `PUT /v1/admin/fleet` refuses (400) a slot elsewhere. @default anywhere */
  bundleRoots?: string[];
}

/** Build the serving app (not listening; `await app.ready()` or `app.inject` loads its plugins). */
export function buildApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: (opts.logger || undefined) as FastifyBaseLogger | undefined,
    bodyLimit: BODY_LIMIT,
    // The server issues every request id (a client's `x-request-id` is only logged: plugins/app.ts).
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    return503OnClosing: true,
    ...(opts.serverFactory ? { serverFactory: opts.serverFactory } : {}),
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<TypeBoxTypeProvider>();

  void app.register(externalPlugins);
  void app.register(httpPlugin, { bodyLimit: BODY_LIMIT });
  void app.register(appPlugin, {
    slots: opts.slots,
    metrics: opts.metrics,
    faults: opts.faults ?? new FaultInjector(),
    reconciler: opts.reconciler ?? null,
    feedback: new FeedbackLedger(new FeedbackSigner(opts.feedbackSecret ?? randomBytes(32)), {
      ...opts.feedback,
      memory: opts.feedbackMemory,
    }),
    bucketed: new BucketedCounters(opts.stats),
    peers: opts.peers ?? (async () => []),
    bundleRoots: opts.bundleRoots,
  });
  void app.register(recommendRoutes);
  void app.register(scoreRoutes);
  void app.register(searchRoutes);
  void app.register(feedbackRoutes);
  void app.register(healthRoutes);
  void app.register(metricsRoutes);
  void app.register(adminRoutes, { prefix: '/v1/admin', adminToken: opts.adminToken, readToken: opts.readToken });
  return app;
}
