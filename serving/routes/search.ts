/**
 * `POST /v1/search`: the top-k catalogue items for a query, from the search model of the slot that routing picks
 * (the query encoded and searched in a micro-batch, the item index inside the graph). The answer carries a feedback
 * token like `/v1/recommend`'s: feedback on it counts toward search CTR, a series apart from recommendation CTR.
 * A recommender in the slot answers 409 (use `/v1/recommend`).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { servedToken, timed, withModel } from '../model-request';
import { searchSchema } from '../schemas';

export const searchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/search', { schema: searchSchema }, async (req) => {
    const { query, userId } = req.body;
    const k = req.body.k ?? 10;
    if (!/\S/u.test(query)) throw app.httpErrors.badRequest('body/query must contain a non-space character');
    // Without a user, route and bucket by the request id: anonymous searches spread over the variants.
    return withModel(app, req, userId ?? req.id, 'search', async ({ variant, model }) => {
      const hits = await timed(app, 'search', model.version, () => model.searchBatcher.submit({ query, k }));
      const items = hits.map((h) => ({ itemId: h.id, score: h.score }));
      const truncated = model.isTruncated(query);
      const feedbackToken = servedToken(
        app,
        req,
        variant,
        model,
        'search',
        items.map((x) => x.itemId),
      );
      return {
        requestId: req.id,
        model: { version: model.version, variant, precision: model.precision },
        items,
        truncated,
        feedbackToken,
      };
    });
  });
};
