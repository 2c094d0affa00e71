/**
 * `GET /metrics`: Prometheus text of this replica's registry.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', app.metrics.registry.contentType);
    return app.metrics.registry.metrics();
  });
};
