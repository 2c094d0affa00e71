/**
 * `GET /v1/admin/fleet` (desired state and what this replica applied) and `PUT /v1/admin/fleet` (change the
 * desired state and apply it here at once).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { assertBundleInRoots } from '../../model-slot';
import { fleetPatchSchema } from '../../schemas';

export const fleetRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/fleet', async (req) => ({
    requestId: req.id,
    desired: (await app.reconciler?.source.read()) ?? null,
    applied: app.reconciler?.snapshot() ?? null,
  }));
  app.put('/fleet', { schema: fleetPatchSchema }, async (req) => {
    const { reconciler } = app;
    if (!reconciler) throw app.httpErrors.conflict('this server has no desired-state source');
    for (const slot of [req.body.stable, req.body.canary])
      if (slot) await assertBundleInRoots(slot.bundlePath, app.bundleRoots);
    const { desired, changed } = await reconciler.source.update(req.body);
    await reconciler.tick();
    req.log.info({ generation: desired.generation, changed, reason: req.body.reason }, 'fleet state changed');
    return { requestId: req.id, desired, changed, applied: reconciler.snapshot() };
  });
};
