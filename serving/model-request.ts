/**
 * One model request, shared by `/v1/recommend`, `/v1/score` and `/v1/search`: route the user to a variant (503
 * before any model is loaded), refuse a route of the other task (409: a recommender does not search, a search model
 * does not recommend), label the request with the variant, apply the variant's injected faults, run the handler's
 * work, and release the model (a hot swap waits for the requests in flight).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { itemHash } from './feedback';
import type { ModelTask } from '../lib/kinds';
import type { ModelOfTask, Variant } from './model-slot';

/** What the handler's work gets. */
export interface ModelCall<K extends ModelTask = 'recommend'> {
  variant: Variant;
  model: ModelOfTask<K>;
  /** Injected fault (serving/faults.ts `randomItemsRate`): answer with random catalogue items. */
  randomItems: boolean;
}

/** The routes of each task, for the 409 that names the right one. */
const ROUTES_OF: Record<ModelTask, string> = {
  recommend: 'POST /v1/recommend or /v1/score',
  search: 'POST /v1/search',
};

/**
 * Serve `userId` with the model that routing picks, which must serve `task`; `fn`'s result is the answer.
 * @throws an HTTP 503 before any model is loaded, 409 when the routed model serves the other task, or the injected
 * fault's status.
 */
export async function withModel<K extends ModelTask, T>(
  app: FastifyInstance,
  req: FastifyRequest,
  userId: string,
  task: K,
  fn: (call: ModelCall<K>) => Promise<T>,
): Promise<T> {
  const picked = app.slots.pick(userId);
  if (!picked) throw app.httpErrors.createError(503, 'no model loaded yet', { expose: true });
  const { variant, model } = picked;
  if (model.task !== task) {
    model.release();
    throw app.httpErrors.conflict(
      `${req.method} ${req.routeOptions.url ?? req.url} needs a ${task} model, but the ${variant} model ` +
        `${model.version} is a ${model.task} model: use ${ROUTES_OF[model.task]}`,
    );
  }
  const salt = app.slots.salt;
  req.served = {
    variant,
    version: model.version,
    kind: task,
    salt,
    bucket: app.bucketed.bucketOf(userId, salt),
    at: Date.now(),
  };
  try {
    const f = app.faults.decide(variant);
    if (f.delayMs > 0) await new Promise((r) => setTimeout(r, f.delayMs));
    if (f.abortStatus !== null) throw app.httpErrors.createError(f.abortStatus, 'injected fault', { expose: true });
    return await fn({ variant, model: model as ModelOfTask<K>, randomItems: f.randomItems });
  } finally {
    model.release();
  }
}

/** Time `fn` into the inference histogram of `graph`. */
export async function timed<T>(
  app: FastifyInstance,
  graph: 'recommend' | 'score' | 'search',
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

/**
 * Record what a model request served and return its feedback token: the impressions (Prometheus and the per-user
 * buckets the canary reads; a score answer shows nothing, so it counts none) and the signed token that lets any
 * replica count one click per (request, item), apart for each kind.
 */
export function servedToken(
  app: FastifyInstance,
  req: FastifyRequest,
  variant: Variant,
  model: { version: string; precision: string },
  kind: 'recommend' | 'score' | 'search',
  itemIds: string[],
): string {
  const { salt = '', bucket = 0, at = Date.now() } = req.served;
  if (kind !== 'score') {
    app.metrics.impressions.inc({ variant, version: model.version, kind }, itemIds.length);
    // Recommendation series keep their ids from before search existed (no `kind` key).
    app.bucketed.add(
      { variant, version: model.version, salt, ...(kind === 'search' ? { kind } : {}) },
      'impressions',
      bucket,
      at,
      itemIds.length,
    );
  }
  return app.feedback.remember({
    rid: req.id,
    rep: app.reconciler?.replicaId ?? 'local',
    variant,
    version: model.version,
    precision: model.precision,
    salt,
    bucket,
    t: at,
    kind,
    items: itemIds.map(itemHash),
  });
}
