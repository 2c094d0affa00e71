/**
 * `POST /v1/recommend`: the top-k items for a user. Items the user already has (the bundle's stored history and
 * the request's `history`) are left out unless `includeSeen`; a graph with a `history` input gets the request's
 * history, else the stored one. Users the model never saw get the popularity list (or, with a `history` and a
 * graph that reads it, the model's answer for that history).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { servedToken, timed, withModel } from '../model-request';
import { recommendSchema } from '../schemas';

export const recommendRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/recommend', { schema: recommendSchema }, (req) =>
    withModel(app, req, req.body.userId, 'recommend', async ({ variant, model, randomItems }) => {
      const body = req.body;
      const k = body.k ?? 10;
      const unknownItems: string[] = [];
      const index = (id: string) => {
        const i = model.itemIndex.get(id);
        if (i === undefined) unknownItems.push(id);
        return i;
      };
      const exclude = new Set<number>();
      for (const id of body.exclude ?? []) {
        const i = index(id);
        if (i !== undefined) exclude.add(i);
      }
      const requested: number[] = [];
      for (const id of body.history ?? []) {
        const i = index(id);
        if (i !== undefined) requested.push(i);
      }
      const user = model.userIndex.get(body.userId);
      const stored = model.seen(user);
      let seenExcluded = 0;
      if (!body.includeSeen) {
        const seen = new Set<number>(stored);
        for (const i of requested) seen.add(i);
        seenExcluded = seen.size;
        for (const i of seen) exclude.add(i);
      }
      const history = requested.length ? requested : stored;
      const useModel = user !== undefined || (model.historyLength > 0 && history.length > 0);
      let items: Array<{ itemId: string; score: number | null }>;
      if (randomItems) {
        // The injected random-items fault: k random catalogue items (not the excluded ones), as a broken model would.
        const picked = new Set<number>();
        for (let tries = 0; picked.size < Math.min(k, model.itemCount - exclude.size) && tries < 50 * k; tries++) {
          const i = 1 + Math.floor(Math.random() * model.itemCount);
          if (!exclude.has(i)) picked.add(i);
        }
        items = [...picked].map((i) => ({ itemId: model.itemIds[i] ?? String(i), score: 0.5 }));
      } else if (!useModel) {
        items = model.popular
          .filter((i) => !exclude.has(i))
          .slice(0, k)
          .map((i) => ({ itemId: model.itemIds[i] ?? String(i), score: null }));
      } else {
        const out = await timed(app, 'recommend', model.version, () =>
          model.recommendBatcher.submit({ user: user ?? 0, k, exclude: [...exclude], history }),
        );
        items = [];
        // When k exceeds what is left after exclusions the graph pads with excluded items: drop them.
        out.items.forEach((i, j) => {
          if (!exclude.has(i)) items.push({ itemId: model.itemIds[i] ?? String(i), score: out.scores[j] ?? 0 });
        });
      }
      const feedbackToken = servedToken(
        app,
        req,
        variant,
        model,
        'recommend',
        items.map((x) => x.itemId),
      );
      return {
        requestId: req.id,
        model: { version: model.version, variant, precision: model.precision },
        userKnown: user !== undefined,
        fallback: useModel ? null : 'popularity',
        items,
        unknownItems,
        seenExcluded,
        feedbackToken,
      };
    }),
  );
};
