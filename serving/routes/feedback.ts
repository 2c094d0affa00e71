/**
 * `POST /v1/feedback`: a click (or cart, purchase, dismiss) on an item of a response, counted once, on any replica
 * (serving/feedback.ts has the rules). The body names the response by its `token` (the `feedbackToken` it carried;
 * any replica accepts it) or by `requestId` (a recent response of this replica only).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { feedbackOwner, type Peer, type ServedResponse } from '../feedback';
import { feedbackSchema, type FeedbackBody, type FeedbackEvent, type FeedbackResponse } from '../schemas';

/** Header that marks feedback one replica forwarded to another (the receiver counts it, never forwards again). */
export const FORWARDED_HEADER = 'x-recflow-forwarded-by';
const FORWARD_TIMEOUT_MS = 2000;

/**
 * Count one claimed event: recommendation or search CTR, each its own series (Prometheus `kind`, the bucketed
 * clicks' series kind) or, for score, apart.
 */
function count(app: FastifyInstance, r: ServedResponse, event: FeedbackEvent): void {
  const labels = { variant: r.variant, version: r.version, event };
  if (r.kind === 'score') {
    app.metrics.scoreFeedback.inc(labels);
    return;
  }
  app.metrics.feedback.inc({ ...labels, kind: r.kind });
  if (event === 'click')
    app.bucketed.add({ variant: r.variant, version: r.version, salt: r.salt, kind: r.kind }, 'clicks', r.bucket, r.t);
}

type Forwarded = { status: number; body: FeedbackResponse & { message?: string } };

/** POST the same feedback to `peer`; undefined when it cannot answer (down, 5xx, timeout). */
async function forward(peer: Peer, body: FeedbackBody, self: string): Promise<Forwarded | undefined> {
  const res = await fetch(`${peer.url}/v1/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [FORWARDED_HEADER]: self },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
  });
  if (res.status >= 500) {
    await res.body?.cancel();
    return undefined;
  }
  return { status: res.status, body: (await res.json()) as Forwarded['body'] };
}

export const feedbackRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/feedback', { schema: feedbackSchema }, async (req) => {
    const { token, requestId, itemId, event } = req.body;
    let r: ServedResponse | undefined;
    if (token !== undefined) {
      r = app.feedback.signer.verify(token);
      if (!r) throw app.httpErrors.badRequest('the feedback token is not valid (altered, or not from this fleet)');
      if (requestId !== undefined && requestId !== r.rid)
        throw app.httpErrors.badRequest(`requestId ${requestId} is not the request of the token (${r.rid})`);
    } else if (requestId !== undefined) {
      r = app.feedback.lookup(requestId);
      if (!r)
        throw app.httpErrors.notFound(
          `requestId ${requestId} is unknown to this replica (served by another, or too old): send the response's feedbackToken as token`,
        );
    } else throw app.httpErrors.badRequest("body must have the response's feedbackToken as token (or its requestId)");
    req.served = { variant: r.variant, version: r.version };
    if (!app.feedback.served(r, itemId))
      throw app.httpErrors.badRequest(`itemId ${itemId} was not in the response to ${r.rid}`);

    const self = app.reconciler?.replicaId ?? 'local';
    if (r.rep !== self && req.headers[FORWARDED_HEADER] === undefined) {
      const owner = feedbackOwner(r, await app.peers());
      if (owner && owner.replicaId !== self) {
        const fwd = await forward(owner, req.body, self).catch((err: unknown) => {
          req.log.warn({ err, owner: owner.replicaId }, 'could not forward feedback; counting it here');
          return undefined;
        });
        if (fwd && fwd.status === 200) {
          app.metrics.feedbackForwarded.inc({ outcome: 'forwarded' });
          const body = fwd.body as FeedbackResponse;
          return { ...body, requestId: req.id, countedBy: body.countedBy ?? owner.replicaId };
        }
        if (fwd) throw app.httpErrors.createError(fwd.status, String(fwd.body.message ?? 'refused by the owner'));
        app.metrics.feedbackForwarded.inc({ outcome: 'fallback' });
      }
    }

    const claim = app.feedback.claim(r, itemId, event);
    if (claim === true) count(app, r, event);
    else app.metrics.feedbackNotCounted.inc({ reason: claim });
    return {
      requestId: req.id,
      model: { version: r.version, variant: r.variant, precision: r.precision },
      accepted: true,
      counted: claim === true,
      countedAs: r.kind,
      ...(claim === true ? {} : { reason: claim }),
      ...(r.rep === self ? {} : { countedBy: self }),
    };
  });
};
