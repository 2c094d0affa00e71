/**
 * `POST /v1/recommend`: the top-k items for a user (popularity for users the model never saw).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { timed, withModel } from '../model-request';
import { recommendSchema } from '../schemas';

export const recommendRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/recommend', { schema: recommendSchema }, (req) =>
    withModel(app, req, req.body.userId, async ({ variant, model }) => {
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
        const out = await timed(app, 'recommend', model.version, () =>
          model.recommendBatcher.submit({ user, k, exclude }),
        );
        items = out.items.map((i, j) => ({ itemId: model.itemIds[i] ?? String(i), score: out.scores[j] ?? 0 }));
      }
      app.metrics.impressions.inc({ variant, version: model.version }, items.length);
      app.feedback.remember(req.id, {
        variant,
        version: model.version,
        precision: model.precision,
        items: items.map((x) => x.itemId),
      });
      return {
        requestId: req.id,
        model: { version: model.version, variant, precision: model.precision },
        userKnown: user !== undefined,
        fallback: user === undefined ? 'popularity' : null,
        items,
        unknownItems,
      };
    }),
  );
};
