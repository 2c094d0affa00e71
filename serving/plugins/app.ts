/**
 * The app's own decorators and hooks: the model slots, metrics, injected faults, the reconciler and the feedback
 * ledger as `app.slots`, `app.metrics`, ... (routes reach them there, tests replace nothing), each request's
 * `served` label (which variant and version answered), the response headers that say so, and the request metrics.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { FaultInjector } from '../faults';
import type { FeedbackLedger } from '../feedback';
import type { ServingMetrics } from '../metrics';
import type { ModelSlots, Variant } from '../model-slot';
import type { Reconciler } from '../reconcile';

/** Which model answered a request (`none` before routing, or for routes without a model). */
export interface Served {
  variant: Variant | 'none';
  version: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    slots: ModelSlots;
    metrics: ServingMetrics;
    faults: FaultInjector;
    /** Null when the app was built without one (then the admin fleet API answers 409). */
    reconciler: Reconciler | null;
    feedback: FeedbackLedger;
    /** Folders bundles may come from (`PUT /v1/admin/fleet` refuses others); undefined: anywhere. */
    bundleRoots: string[] | undefined;
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
    app.decorate('bundleRoots', opts.bundleRoots);
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
      opts.metrics.requests.inc({ ...labels, status: String(reply.statusCode) });
      opts.metrics.requestDuration.observe(labels, reply.elapsedTime / 1000);
    });
  },
  { name: 'recflow-app', dependencies: ['recflow-external'] },
);
