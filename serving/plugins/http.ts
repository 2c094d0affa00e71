/**
 * The HTTP contract every route shares:
 * - errors as `{error, message, requestId}`; 5xx messages are hidden from clients (`internal error`) and logged with
 *   the request, unless the error was made with `expose: true` (no model loaded yet, an injected fault);
 * - bodies are JSON (`application/json`): a `__proto__` or `constructor.prototype` key is refused as such, malformed
 *   JSON says where, other media types get 415 naming the accepted one (with `Accept: application/json`), and
 *   text/plain that holds JSON is told to say so;
 * - 413 states the limit; a known path with another method gets 405 with `Allow`; other paths 404.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
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

/** The media type request bodies must have. */
export const ACCEPTED_TYPE = 'application/json';

const kib = (n: number) => (n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`);

/** A 400 whose message is safe to show. */
function badRequest(message: string): FastifyError {
  const err: FastifyError = Object.assign(new Error(message), { statusCode: 400, code: 'RECFLOW_BAD_BODY' });
  return err;
}

/** A key that would change the prototype of objects built from the body, or undefined. */
function poisonKey(text: string): string | undefined {
  if (!text.includes('__proto__') && !text.includes('constructor') && !text.includes('\\u')) return undefined;
  let found: string | undefined;
  JSON.parse(text, function (this: unknown, key: string, value: unknown) {
    if (found) return value;
    if (key === '__proto__') found = '__proto__';
    else if (key === 'constructor' && value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype'))
      found = 'constructor.prototype';
    return value;
  });
  return found;
}

/** Parse a JSON body, refusing prototype-poisoning keys with their own message. */
export function parseJsonBody(text: string): unknown {
  if (text === '') throw badRequest(`the body is empty: send a JSON object (content-type ${ACCEPTED_TYPE})`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badRequest(`the body is not valid JSON: ${(err as Error).message}`);
  }
  const key = poisonKey(text);
  if (key) throw badRequest(`the body has a '${key}' key, which is refused (it could change object prototypes)`);
  return value;
}

/** Error contract, body parsers, 404 and 405. */
export const httpPlugin = fp(
  async (app: FastifyInstance, opts: { bodyLimit: number }) => {
    app.removeContentTypeParser(['application/json', 'text/plain']);
    app.addContentTypeParser(ACCEPTED_TYPE, { parseAs: 'string' }, (_req, body, done) => {
      try {
        done(null, parseJsonBody(body as string));
      } catch (err) {
        done(err as FastifyError, undefined);
      }
    });
    app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) => {
      let json = false;
      try {
        JSON.parse(body as string);
        json = true;
      } catch {
        /* not JSON either */
      }
      const err = app.httpErrors.unsupportedMediaType(
        json
          ? `the body is JSON but its content-type is text/plain: send it with content-type ${ACCEPTED_TYPE}`
          : `content-type text/plain is not accepted: send a JSON body with content-type ${ACCEPTED_TYPE}`,
      );
      done(err, undefined);
    });

    const mediaType = (req: FastifyRequest) => req.headers['content-type']?.split(';')[0]?.trim() || '(none)';
    app.setErrorHandler((err: FastifyError & { expose?: boolean }, req, reply) => {
      let status = err instanceof RecflowError ? 400 : (err.statusCode ?? 500);
      let message = err.message;
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
        message = `the body is larger than the limit of ${opts.bodyLimit} bytes (${kib(opts.bodyLimit)})`;
      else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        status = 415;
        message = `content-type ${mediaType(req)} is not accepted: send ${ACCEPTED_TYPE}`;
      }
      // A 5xx says `internal error` unless it was made to be shown (`expose`: no model yet, an injected fault).
      if (status >= 500 && err.expose !== true) {
        req.log.error({ err }, 'request failed');
        return reply.code(status).send({ error: httpReason(status), message: 'internal error', requestId: req.id });
      }
      if (status === 401) void reply.header('www-authenticate', 'Bearer');
      if (status === 415) void reply.header('accept', ACCEPTED_TYPE);
      return reply.code(status).send({ error: httpReason(status), message, requestId: req.id });
    });

    // Methods per path, for 405 with `Allow` (HEAD comes with GET).
    const methods = new Map<string, Set<string>>();
    app.addHook('onRoute', (r) => {
      const set = methods.get(r.url) ?? new Set<string>();
      for (const m of Array.isArray(r.method) ? r.method : [r.method]) set.add(m);
      methods.set(r.url, set);
    });
    app.setNotFoundHandler((req, reply) => {
      const path = req.url.split('?')[0] ?? req.url;
      const allowed = methods.get(path);
      if (allowed?.size) {
        const allow = [...allowed].sort().join(', ');
        return reply
          .code(405)
          .header('allow', allow)
          .send({ error: 'Method Not Allowed', message: `${req.method} ${path}: use ${allow}`, requestId: req.id });
      }
      return reply.code(404).send({ error: 'Not Found', message: `no route ${req.method} ${path}`, requestId: req.id });
    });
  },
  { name: 'recflow-http' },
);
