/**
 * `POST /v1/score`: the model's probability for each given item (unknown users get the unknown-user row). Its
 * feedback token is marked `score`: feedback on it is counted apart, never toward recommendation CTR.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { itemHash } from '../feedback';
import { timed, withModel } from '../model-request';
import { scoreSchema } from '../schemas';

export const scoreRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/score', { schema: scoreSchema }, (req) =>
    withModel(app, req, req.body.userId, async ({ variant, model }) => {
      const unknownItems: string[] = [];
      const known: Array<{ id: string; index: number }> = [];
      for (const id of req.body.itemIds) {
        const i = model.itemIndex.get(id);
        if (i === undefined) unknownItems.push(id);
        else known.push({ id, index: i });
      }
      const user = model.userIndex.get(req.body.userId);
      let scores: Array<{ itemId: string; score: number | null }> = [];
      if (known.length) {
        // Unknown users are scored with the unknown-user row (index 0) of the user tower.
        const out = await timed(app, 'score', model.version, () =>
          model.scoreBatcher.submit({ user: user ?? 0, items: known.map((x) => x.index), history: model.seen(user) }),
        );
        scores = known.map((x, j) => ({ itemId: x.id, score: out[j] ?? 0 }));
      }
      const { salt = '', bucket = 0, at = Date.now() } = req.served;
      const feedbackToken = app.feedback.remember({
        rid: req.id,
        rep: app.reconciler?.replicaId ?? 'local',
        variant,
        version: model.version,
        precision: model.precision,
        salt,
        bucket,
        t: at,
        kind: 'score',
        items: known.map((x) => itemHash(x.id)),
      });
      return {
        requestId: req.id,
        model: { version: model.version, variant, precision: model.precision },
        userKnown: user !== undefined,
        scores,
        unknownItems,
        feedbackToken,
      };
    }),
  );
};
