/**
 * The serving app builder (never listens; serving/server.ts does): routes with schemas, request ids, routing to
 * the stable or canary slot, popularity fallback, feedback, metrics, and the admin API. Tests build it and call it
 * over real HTTP or `inject`.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { RecflowError } from '../lib/errors';
import type { FleetPatch } from '../lib/fleet/store';
import { FaultInjector, type FaultSpec } from './faults';
import { type ServingMetrics } from './metrics';
import { assertBundleInRoots, type LoadedModel, type ModelSlots, type Variant } from './model-slot';
import type { Reconciler } from './reconcile';
import {
  BODY_LIMIT,
  faultSchema,
  feedbackSchema,
  fleetPatchSchema,
  recommendSchema,
  scoreSchema,
  type FeedbackBody,
  type RecommendBody,
  type ScoreBody,
} from './schemas';

/** Options of {@link buildApp}. */
export interface AppOptions {
  slots: ModelSlots;
  metrics: ServingMetrics;
  /** The reconciler: the admin API writes to its source and applies at once. */
  reconciler?: Reconciler;
  /** Bearer token of the admin API (`RECFLOW_ADMIN_TOKEN`); without it changes are refused (403). */
  adminToken?: string;
  /** pino logger (fastify's request logger derives from it); false for silence. @default false */
  logger?: Logger | false;
  /** How many recent responses `/v1/feedback` can refer to. @default 50000 */
  feedbackMemory?: number;
  /** Injected faults (`/v1/admin/faults`). @default a new, empty injector */
  faults?: FaultInjector;
  /** Where bundles may come from: `PUT /v1/admin/fleet` refuses (400) a slot elsewhere. @default anywhere */
  bundleRoots?: string[];
}

interface Served {
  variant: Variant | 'none';
  version: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    served: Served;
  }
}

interface Remembered {
  variant: Variant;
  version: string;
  precision: string;
  items: string[];
}

const REQUEST_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

function modelInfo(variant: Variant, m: LoadedModel) {
  return { version: m.version, variant, precision: m.precision };
}

/** Build the serving app. */
export function buildApp(opts: AppOptions): FastifyInstance {
  const { slots, metrics } = opts;
  const faults = opts.faults ?? new FaultInjector();
  const app = Fastify({
    loggerInstance: (opts.logger || undefined) as FastifyBaseLogger | undefined,
    bodyLimit: BODY_LIMIT,
    genReqId: (req) => {
      const h = req.headers['x-request-id'];
      return typeof h === 'string' && REQUEST_ID_RE.test(h) ? h : randomUUID();
    },
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    return503OnClosing: true,
    logController: new LogController({ disableRequestLogging: true }),
  });
  const memory = new Map<string, Remembered>();
  const memoryLimit = opts.feedbackMemory ?? 50_000;
  const remember = (id: string, r: Remembered) => {
    memory.set(id, r);
    if (memory.size > memoryLimit) memory.delete(memory.keys().next().value as string);
  };

  app.decorateRequest('served', null as unknown as Served);
  app.addHook('onRequest', async (req, reply) => {
    req.served = { variant: 'none', version: 'none' };
    void reply.header('x-request-id', req.id);
  });
  // While closing, answer in-flight requests with `connection: close` so keep-alive sockets do not hold close().
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (req, reply) => {
    if (closing) void reply.header('connection', 'close');
    if (req.served.variant !== 'none') {
      void reply.header('x-model-version', req.served.version);
      void reply.header('x-model-variant', req.served.variant);
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    if (route === '/metrics') return;
    const labels = { route, variant: req.served.variant, version: req.served.version };
    metrics.requests.inc({ ...labels, status: String(reply.statusCode) });
    metrics.requestDuration.observe(labels, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    const status = err instanceof RecflowError ? 400 : (err.statusCode ?? 500);
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply.code(status).send({ error: 'Internal Server Error', message: 'internal error', requestId: req.id });
    }
    return reply.code(status).send({ error: httpReason(status), message: err.message, requestId: req.id });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'Not Found', message: `no route ${req.method} ${req.url}`, requestId: req.id }),
  );

  const unavailable = (req: FastifyRequest, reply: FastifyReply) =>
    reply.code(503).send({ error: 'Service Unavailable', message: 'no model loaded yet', requestId: req.id });
  /** Apply the variant's injected faults: wait the delay, and answer for the model when the request is aborted. */
  const injected = async (variant: Variant, req: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    const f = faults.decide(variant);
    if (f.delayMs > 0) await new Promise((r) => setTimeout(r, f.delayMs));
    if (f.abortStatus === null) return false;
    await reply
      .code(f.abortStatus)
      .send({ error: httpReason(f.abortStatus), message: 'injected fault', requestId: req.id });
    return true;
  };
  /**
   * Serve one model request: pick the user's variant (503 before any model is loaded), label the response, apply
   * injected faults, run `fn`, and release the model (a hot swap waits for in-flight requests).
   */
  const withModel = async <T>(
    req: FastifyRequest<{ Body: { userId: string } }>,
    reply: FastifyReply,
    fn: (variant: Variant, model: LoadedModel) => Promise<T>,
  ): Promise<T | FastifyReply> => {
    const picked = slots.pick(req.body.userId);
    if (!picked) return unavailable(req, reply);
    const { variant, model } = picked;
    req.served = { variant, version: model.version };
    try {
      if (await injected(variant, req, reply)) return reply;
      return await fn(variant, model);
    } finally {
      model.release();
    }
  };

  app.post<{ Body: RecommendBody }>('/v1/recommend', { schema: recommendSchema }, (req, reply) =>
    withModel(req, reply, async (variant, model) => {
      const k = req.body.k ?? 10;
      const unknownItems: string[] = [];
      const exclude: number[] = [];
      for (const id of req.body.exclude ?? []) {
        const i = model.itemIndex.get(id);
        if (i === undefined) unknownItems.push(id);
        else exclude.push(i);
      }
      const user = model.userIndex.get(req.body.userId);
      let items: Array<{ itemId: string; score: number | null }>;
      if (user === undefined) {
        const ex = new Set(exclude);
        items = model.popular
          .filter((i) => !ex.has(i))
          .slice(0, k)
          .map((i) => ({ itemId: model.itemIds[i] ?? String(i), score: null }));
      } else {
        const t0 = process.hrtime.bigint();
        const out = await model.recommendBatcher.submit({ user, k, exclude });
        metrics.inferenceDuration.observe(
          { graph: 'recommend', version: model.version },
          Number(process.hrtime.bigint() - t0) / 1e9,
        );
        items = out.items.map((i, j) => ({ itemId: model.itemIds[i] ?? String(i), score: out.scores[j] ?? 0 }));
      }
      metrics.impressions.inc({ variant, version: model.version }, items.length);
      remember(req.id, {
        variant,
        version: model.version,
        precision: model.precision,
        items: items.map((x) => x.itemId),
      });
      return {
        requestId: req.id,
        model: modelInfo(variant, model),
        userKnown: user !== undefined,
        fallback: user === undefined ? 'popularity' : null,
        items,
        unknownItems,
      };
    }),
  );

  app.post<{ Body: ScoreBody }>('/v1/score', { schema: scoreSchema }, (req, reply) =>
    withModel(req, reply, async (variant, model) => {
      const unknownItems: string[] = [];
      const known: Array<{ id: string; index: number }> = [];
      for (const id of req.body.itemIds) {
        const i = model.itemIndex.get(id);
        if (i === undefined) unknownItems.push(id);
        else known.push({ id, index: i });
      }
      const user = model.userIndex.get(req.body.userId);
      let scores: Array<{ itemId: string; score: number | null }> = [];
      if (known.length) {
        const t0 = process.hrtime.bigint();
        // Unknown users are scored with the unknown-user row (index 0) of the user tower.
        const out = await model.scoreBatcher.submit({ user: user ?? 0, items: known.map((x) => x.index) });
        metrics.inferenceDuration.observe(
          { graph: 'score', version: model.version },
          Number(process.hrtime.bigint() - t0) / 1e9,
        );
        scores = known.map((x, j) => ({ itemId: x.id, score: out[j] ?? 0 }));
      }
      remember(req.id, {
        variant,
        version: model.version,
        precision: model.precision,
        items: known.map((x) => x.id),
      });
      return {
        requestId: req.id,
        model: modelInfo(variant, model),
        userKnown: user !== undefined,
        scores,
        unknownItems,
      };
    }),
  );

  app.post<{ Body: FeedbackBody }>('/v1/feedback', { schema: feedbackSchema }, async (req, reply) => {
    const r = memory.get(req.body.requestId);
    if (!r)
      return reply.code(404).send({
        error: 'Not Found',
        message: `requestId ${req.body.requestId} is unknown to this replica (never served here, or too old)`,
        requestId: req.id,
      });
    req.served = { variant: r.variant, version: r.version };
    if (!r.items.includes(req.body.itemId))
      return reply.code(400).send({
        error: 'Bad Request',
        message: `itemId ${req.body.itemId} was not in the response to ${req.body.requestId}`,
        requestId: req.id,
      });
    metrics.feedback.inc({ variant: r.variant, version: r.version, event: req.body.event });
    return {
      requestId: req.id,
      model: { version: r.version, variant: r.variant, precision: r.precision },
      accepted: true,
    };
  });

  const stableInfo = () => {
    const m = slots.get('stable');
    return m ? modelInfo('stable', m) : null;
  };
  app.get('/healthz', async (req) => ({ status: 'ok', requestId: req.id, model: stableInfo() }));
  app.get('/readyz', async (req, reply) => {
    const body = {
      ready: slots.ready,
      requestId: req.id,
      model: stableInfo(),
      canary: slots.get('canary')?.version ?? null,
      canaryWeight: slots.canaryWeight,
      generation: slots.generation,
    };
    return reply.code(slots.ready ? 200 : 503).send(body);
  });
  app.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  /** The admin API's changes need the bearer token (403 when none is configured, 401 when missing or wrong). */
  const requireAdmin = async (req: FastifyRequest, reply: FastifyReply) => {
    const expected = opts.adminToken;
    if (!expected)
      return reply.code(403).send({
        error: 'Forbidden',
        message: 'the admin API is disabled: start the server with RECFLOW_ADMIN_TOKEN set',
        requestId: req.id,
      });
    const got = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const a = Buffer.from(got);
    const b = Buffer.from(expected);
    if (a.length !== b.length || !timingSafeEqual(a, b))
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'Unauthorized', message: 'missing or wrong bearer token', requestId: req.id });
  };
  app.get('/v1/admin/stats', async (req) => ({
    requestId: req.id,
    replicaId: opts.reconciler?.replicaId ?? null,
    generation: slots.generation,
    counters: await metrics.stats(),
  }));
  app.get('/v1/admin/fleet', async (req) => ({
    requestId: req.id,
    desired: (await opts.reconciler?.source.read()) ?? null,
    applied: opts.reconciler?.snapshot() ?? null,
  }));
  app.put<{ Body: FleetPatch }>(
    '/v1/admin/fleet',
    {
      schema: fleetPatchSchema,
      onRequest: requireAdmin,
    },
    async (req, reply) => {
      if (!opts.reconciler)
        return reply
          .code(409)
          .send({ error: 'Conflict', message: 'this server has no desired-state source', requestId: req.id });
      for (const slot of [req.body.stable, req.body.canary])
        if (slot) await assertBundleInRoots(slot.bundlePath, opts.bundleRoots);
      const { desired, changed } = await opts.reconciler.source.update(req.body);
      await opts.reconciler.tick();
      req.log.info({ generation: desired.generation, changed, reason: req.body.reason }, 'fleet state changed');
      return { requestId: req.id, desired, changed, applied: opts.reconciler.snapshot() };
    },
  );
  app.get('/v1/admin/faults', async (req) => ({ requestId: req.id, faults: faults.list() }));
  app.put<{ Body: FaultSpec }>('/v1/admin/faults', { schema: faultSchema, onRequest: requireAdmin }, async (req) => {
    const set = faults.set(req.body);
    req.log.warn({ fault: req.body }, set ? 'fault injection on' : 'fault injection off');
    return { requestId: req.id, faults: faults.list() };
  });
  app.delete('/v1/admin/faults', { onRequest: requireAdmin }, async (req) => {
    faults.clear();
    req.log.warn('fault injection cleared');
    return { requestId: req.id, faults: faults.list() };
  });
  return app;
}

function httpReason(status: number): string {
  return (
    (
      {
        400: 'Bad Request',
        401: 'Unauthorized',
        403: 'Forbidden',
        404: 'Not Found',
        405: 'Method Not Allowed',
        409: 'Conflict',
        413: 'Payload Too Large',
        415: 'Unsupported Media Type',
        429: 'Too Many Requests',
        500: 'Internal Server Error',
        502: 'Bad Gateway',
        503: 'Service Unavailable',
        504: 'Gateway Timeout',
      } as Record<number, string>
    )[status] ?? 'Error'
  );
}
