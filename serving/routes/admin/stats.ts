/**
 * `GET /v1/admin/stats[?servedBefore=<epoch ms>]`: this replica's counters, what readFleetStats reads.
 * - `counters`: cumulative totals and latency histograms per (variant, version), as before (serving/metrics.ts);
 * - `bucketed`: per (variant, version, salt, kind: recommend or search) and user bucket, requests, errors, impressions and clicks attributed
 *   to their serve time; with `servedBefore`, only what was served before it, with all its clicks so far
 *   (serving/stats.ts); 409 when `servedBefore` is older than the replica's recent horizon;
 * - `shed`: model requests refused by admission control (no variant: they were never routed);
 * - `scoreFeedback`: feedback on score responses, kept apart from CTR;
 * - `startedAt`: when this replica started (a new value means its counters restarted from zero).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { scoreFeedbackStats, shedTotal } from '../../metrics';
import { statsSchema } from '../../schemas';
import { HorizonError } from '../../stats';

export const statsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/stats', { schema: statsSchema }, async (req) => {
    const before = req.query.servedBefore === undefined ? undefined : Number(req.query.servedBefore);
    let bucketed;
    try {
      bucketed = app.bucketed.read(before);
    } catch (err) {
      if (err instanceof HorizonError) throw app.httpErrors.conflict(err.message);
      throw err;
    }
    return {
      requestId: req.id,
      replicaId: app.reconciler?.replicaId ?? null,
      generation: app.slots.generation,
      startedAt: app.startedAt,
      now: Date.now(),
      counters: await app.metrics.stats(),
      bucketed,
      shed: await shedTotal(app.metrics),
      scoreFeedback: await scoreFeedbackStats(app.metrics),
    };
  });
};
