/**
 * Third-party plugins, configured once: `@fastify/sensible` (HTTP errors: `app.httpErrors.notFound()`...) for the
 * whole app, and `@fastify/bearer-auth` for the admin scope ({@link adminAuth}: one `onRequest` hook guards every
 * route registered beside it).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import bearerAuth from '@fastify/bearer-auth';
import sensible from '@fastify/sensible';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/** The app-wide external plugins. */
export const externalPlugins = fp(
  async (app: FastifyInstance) => {
    await app.register(sensible);
  },
  { name: 'recflow-external' },
);

/** Options of {@link adminAuth}. */
export interface AdminAuthOptions {
  /** The admin bearer token (`RECFLOW_ADMIN_TOKEN`); without it every admin change is refused (403). */
  adminToken?: string;
  /**
   * A read-only token (the fleet's stats reader, derived from the fleet secret): accepted for `GET` only, so the
   * rollout activities can read `/v1/admin/stats` on a fleet without an admin token.
   */
  readToken?: string;
}

const digest = (s: string) => createHmac('sha256', 'recflow-bearer-compare').update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/**
 * The admin scope's one auth hook: `Authorization: Bearer <token>` checked in constant time by
 * `@fastify/bearer-auth`. 403 when the replica has no token that could allow the call (the admin API is off),
 * 401 (with `www-authenticate: Bearer`) when the token is missing or wrong. Register it inside the scope it guards.
 */
export async function adminAuth(app: FastifyInstance, opts: AdminAuthOptions): Promise<void> {
  const { adminToken, readToken } = opts;
  await app.register(bearerAuth, {
    keys: new Set<string>(),
    addHook: false,
    verifyErrorLogLevel: 'warn',
    auth: (key: string, req: FastifyRequest) =>
      (adminToken !== undefined && same(key, adminToken)) ||
      (readToken !== undefined && (req.method === 'GET' || req.method === 'HEAD') && same(key, readToken)),
  });
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const reading = req.method === 'GET' || req.method === 'HEAD';
    if (!adminToken && !(reading && readToken)) {
      done(
        app.httpErrors.forbidden(
          reading
            ? 'the admin API is disabled: start the server with RECFLOW_ADMIN_TOKEN set'
            : 'admin changes are disabled: start the server with RECFLOW_ADMIN_TOKEN set',
        ),
      );
      return;
    }
    app.verifyBearerAuth!(req, reply, done);
  });
}
