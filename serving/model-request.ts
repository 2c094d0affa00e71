/**
 * One model request, shared by `/v1/recommend` and `/v1/score`: route the user to a variant (503 before any model
 * is loaded), label the request with it, apply the variant's injected faults, run the handler's work, and release
 * the model (a hot swap waits for the requests in flight).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LoadedModel, Variant } from './model-slot';

/** What the handler's work gets. */
export interface ModelCall {
  variant: Variant;
  model: LoadedModel;
}

/**
 * Serve `userId` with the model that routing picks; `fn`'s result is the answer.
 * @throws an HTTP 503 before any model is loaded, or the injected fault's status.
 */
export async function withModel<T>(
  app: FastifyInstance,
  req: FastifyRequest,
  userId: string,
  fn: (call: ModelCall) => Promise<T>,
): Promise<T> {
  const picked = app.slots.pick(userId);
  if (!picked) throw app.httpErrors.createError(503, 'no model loaded yet', { expose: true });
  const { variant, model } = picked;
  const salt = app.slots.salt;
  req.served = {
    variant,
    version: model.version,
    salt,
    bucket: app.bucketed.bucketOf(userId, salt),
    at: Date.now(),
  };
  try {
    const f = app.faults.decide(variant);
    if (f.delayMs > 0) await new Promise((r) => setTimeout(r, f.delayMs));
    if (f.abortStatus !== null) throw app.httpErrors.createError(f.abortStatus, 'injected fault', { expose: true });
    return await fn({ variant, model });
  } finally {
    model.release();
  }
}

/** Time `fn` into the inference histogram of `graph`. */
export async function timed<T>(
  app: FastifyInstance,
  graph: 'recommend' | 'score',
  version: string,
  fn: () => Promise<T>,
): Promise<T> {
  const t0 = process.hrtime.bigint();
  try {
    return await fn();
  } finally {
    app.metrics.inferenceDuration.observe({ graph, version }, Number(process.hrtime.bigint() - t0) / 1e9);
  }
}
