/**
 * `POST /v1/feedback`: a click (or cart, purchase, dismiss) on an item of a response this replica served.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { feedbackSchema } from '../schemas';

export const feedbackRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/feedback', { schema: feedbackSchema }, async (req) => {
    const { requestId, itemId, event } = req.body;
    const r = app.feedback.lookup(requestId);
    if (!r)
      throw app.httpErrors.notFound(
        `requestId ${requestId} is unknown to this replica (never served here, or too old)`,
      );
    req.served = { variant: r.variant, version: r.version };
    if (!r.items.includes(itemId))
      throw app.httpErrors.badRequest(`itemId ${itemId} was not in the response to ${requestId}`);
    app.metrics.feedback.inc({ variant: r.variant, version: r.version, event });
    return {
      requestId: req.id,
      model: { version: r.version, variant: r.variant, precision: r.precision },
      accepted: true,
    };
  });
};
