/**
 * The HTTP contract every route shares: errors as `{error, message, requestId}` (5xx messages hidden from clients
 * and logged with the request, unless the error was made with `expose: true`), and the answer for a path no route
 * serves.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { RecflowError } from '../../lib/errors';

/** The reason phrase of a status code. */
export function httpReason(status: number): string {
  return (
    (
      {
        400: 'Bad Request',
        401: 'Unauthorized',
        403: 'Forbidden',
        404: 'Not Found',
        405: 'Method Not Allowed',
        409: 'Conflict',
        410: 'Gone',
        413: 'Payload Too Large',
        415: 'Unsupported Media Type',
        429: 'Too Many Requests',
        500: 'Internal Server Error',
        502: 'Bad Gateway',
        503: 'Service Unavailable',
        504: 'Gateway Timeout',
      } as Record<number, string>
    )[status] ?? 'Error'
  );
}

/** Error handler and not-found handler. */
export const httpPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((err: FastifyError & { expose?: boolean }, req, reply) => {
      const status = err instanceof RecflowError ? 400 : (err.statusCode ?? 500);
      // A 5xx says `internal error` unless it was made to be shown (`expose`: no model yet, an injected fault).
      if (status >= 500 && err.expose !== true) {
        req.log.error({ err }, 'request failed');
        return reply.code(status).send({ error: httpReason(status), message: 'internal error', requestId: req.id });
      }
      if (status === 401) void reply.header('www-authenticate', 'Bearer');
      return reply.code(status).send({ error: httpReason(status), message: err.message, requestId: req.id });
    });
    app.setNotFoundHandler((req, reply) =>
      reply.code(404).send({ error: 'Not Found', message: `no route ${req.method} ${req.url}`, requestId: req.id }),
    );
  },
  { name: 'recflow-http' },
);
