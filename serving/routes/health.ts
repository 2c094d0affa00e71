/**
 * `GET /healthz` (the process answers) and `GET /readyz` (200 once a stable model is loaded and warmed, else 503).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const stableInfo = () => {
    const m = app.slots.get('stable');
    return m ? { version: m.version, variant: 'stable' as const, precision: m.precision } : null;
  };
  app.get('/healthz', async (req) => ({ status: 'ok', requestId: req.id, model: stableInfo() }));
  app.get('/readyz', async (req, reply) => {
    const { slots } = app;
    return reply.code(slots.ready ? 200 : 503).send({
      ready: slots.ready,
      requestId: req.id,
      model: stableInfo(),
      canary: slots.get('canary')?.version ?? null,
      canaryWeight: slots.canaryWeight,
      generation: slots.generation,
    });
  });
};
