/**
 * `GET|PUT|DELETE /v1/admin/faults`: fault injection per variant (serving/faults.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { faultSchema } from '../../schemas';

export const faultRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/faults', async (req) => ({ requestId: req.id, faults: app.faults.list() }));
  app.put('/faults', { schema: faultSchema }, async (req) => {
    const set = app.faults.set(req.body);
    req.log.warn({ fault: req.body }, set ? 'fault injection on' : 'fault injection off');
    return { requestId: req.id, faults: app.faults.list() };
  });
  app.delete('/faults', async (req) => {
    app.faults.clear();
    req.log.warn('fault injection cleared');
    return { requestId: req.id, faults: app.faults.list() };
  });
};
