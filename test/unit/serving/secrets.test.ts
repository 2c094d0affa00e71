/**
 * Secrets never reach the logs: the admin bearer token (right or wrong ones sent by clients) and Authorization
 * headers are not written by a replica's logger, at the most verbose level, across admin calls and errors.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startServer, type RunningServer } from '../../../serving/server';
import { makeBundle, post, type TestBundle } from './helpers';

describe('secrets stay out of the serving logs', () => {
  const TOKEN = 'tok-9f2c1e7a-very-secret';
  const WRONG = 'tok-guessed-by-attacker';
  let root: string;
  let b1: TestBundle;
  let b2: TestBundle;
  let server: RunningServer;
  const lines: string[] = [];
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-serve-secrets-'));
    b1 = await makeBundle(root, 'b1', 1);
    b2 = await makeBundle(root, 'b2', 2);
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    server = await startServer({
      port: 0,
      bundle: b1.dir,
      version: 'm@v1',
      logger: pino({ level: 'trace' }, sink),
      processMetrics: false,
      adminToken: TOKEN,
    });
  });
  after(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  });

  it('logs requests, refusals and errors without the token', async () => {
    const put = (token: string, body: unknown) =>
      fetch(`${server.url}/v1/admin/fleet`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
    assert.equal((await put(WRONG, { canaryWeight: 10, reason: 'x' })).status, 401);
    assert.equal((await put(TOKEN, { canaryWeight: 500, reason: 'x' })).status, 400);
    assert.equal((await put(TOKEN, { canary: b2.slot('m@v2'), canaryWeight: 20, reason: 'ok' })).status, 200);
    assert.equal((await post(`${server.url}/v1/recommend`, { userId: b1.users[1], k: 3 })).status, 200);
    const log = lines.join('');
    assert.ok(lines.length > 3, 'the server logged at trace level');
    assert.ok(!log.includes(TOKEN), 'the admin token is not logged');
    assert.ok(!log.includes(WRONG), 'a wrong token sent by a client is not logged');
    assert.ok(!/authorization"\s*:\s*"Bearer/i.test(log), 'no Authorization header value in the logs');
  });
});
