/**
 * The app's own decorators and hooks: the model slots, metrics, bucketed stats, injected faults, the reconciler,
 * the feedback ledger and the fleet's live peers as `app.slots`, `app.metrics`, ... (routes reach them there),
 * each request's `served` label (which variant, version, salt and user bucket answered, and when), the response
 * headers that say so, and the request metrics (Prometheus, and the bucketed counters of serving/stats.ts).
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { ModelTask } from '../../lib/kinds';
import type { FaultInjector } from '../faults';
import type { FeedbackLedger, Peer } from '../feedback';
import type { ServingMetrics } from '../metrics';
import type { ModelSlots, Variant } from '../model-slot';
import type { Reconciler } from '../reconcile';
import type { BucketedCounters } from '../stats';

/** Which model answered a request (`none` before routing, or for routes without a model). */
export interface Served {
  variant: Variant | 'none';
  version: string;
  /** Model requests only: what the model serves (search counts apart from recommendations). */
  kind?: ModelTask;
  /** Model requests only: the rollout salt, the user's stats bucket under it, and the serve time (epoch ms). */
  salt?: string;
  bucket?: number;
  at?: number;
}

/** Routes whose requests and errors the bucketed counters count. */
export const MODEL_ROUTES = new Set(['/v1/recommend', '/v1/score', '/v1/search']);

declare module 'fastify' {
  interface FastifyInstance {
    slots: ModelSlots;
    metrics: ServingMetrics;
    faults: FaultInjector;
    /** Null when the app was built without one (then the admin fleet API answers 409). */
    reconciler: Reconciler | null;
    feedback: FeedbackLedger;
    bucketed: BucketedCounters;
    /** The fleet's live replicas (from their reports; empty outside a fleet). */
    peers: () => Promise<Peer[]>;
    /** Folders bundles may come from (`PUT /v1/admin/fleet` refuses others); undefined: anywhere. */
    bundleRoots: string[] | undefined;
    /** When this app started serving (epoch ms): a replica restart shows as a new value in its stats. */
    startedAt: number;
  }
  interface FastifyRequest {
    served: Served;
  }
}

/** What {@link appPlugin} decorates the app with. */
export interface AppDecorations {
  slots: ModelSlots;
  metrics: ServingMetrics;
  faults: FaultInjector;
  reconciler: Reconciler | null;
  feedback: FeedbackLedger;
  bucketed: BucketedCounters;
  peers: () => Promise<Peer[]>;
  bundleRoots: string[] | undefined;
}

/** Decorators and the request-labelling hooks. */
export const appPlugin = fp(
  async (app: FastifyInstance, opts: AppDecorations) => {
    app.decorate('slots', opts.slots);
    app.decorate('metrics', opts.metrics);
    app.decorate('faults', opts.faults);
    app.decorate('reconciler', opts.reconciler);
    app.decorate('feedback', opts.feedback);
    app.decorate('bucketed', opts.bucketed);
    app.decorate('peers', opts.peers);
    app.decorate('bundleRoots', opts.bundleRoots);
    app.decorate('startedAt', Date.now());
    app.decorateRequest('served', null as unknown as Served);

    app.addHook('onRequest', async (req, reply) => {
      req.served = { variant: 'none', version: 'none' };
      void reply.header('x-request-id', req.id);
      // The server issues request ids; a client's own id is only logged with the request.
      const client = req.headers['x-request-id'];
      if (typeof client === 'string' && client) req.log = req.log.child({ clientRequestId: client.slice(0, 128) });
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
      const { variant, version, kind, salt, bucket, at } = req.served;
      const labels = { route, variant, version };
      opts.metrics.requests.inc({ ...labels, status: String(reply.statusCode) });
      opts.metrics.requestDuration.observe(labels, reply.elapsedTime / 1000);
      if (variant !== 'none' && bucket !== undefined && at !== undefined && MODEL_ROUTES.has(route)) {
        const key = { variant, version, salt: salt ?? '', kind };
        opts.bucketed.add(key, 'requests', bucket, at);
        if (reply.statusCode >= 500) opts.bucketed.add(key, 'errors', bucket, at);
      }
    });
  },
  { name: 'recflow-app', dependencies: ['recflow-external'] },
);
