/**
 * `GET /v1/admin/stats`: this replica's cumulative counters per variant and version (what readFleetStats reads).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export const statsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/stats', async (req) => ({
    requestId: req.id,
    replicaId: app.reconciler?.replicaId ?? null,
    generation: app.slots.generation,
    counters: await app.metrics.stats(),
  }));
};
