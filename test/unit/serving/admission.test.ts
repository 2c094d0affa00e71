/**
 * Admission control (serving/admission.ts): the expected-wait estimate, and a real server shedding model requests
 * with 503 + Retry-After before they reach fastify while feedback and health are never shed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Admission } from '../../../serving/admission';
import { startServer } from '../../../serving/server';
import { makeBundle, post } from './helpers';

void describe('admission control', () => {
  void it('estimates the wait as in-flight x service time, learnt while busy; sheds over the budget', () => {
    let now = 0;
    const a = new Admission({
      budgetMs: 10,
      minInFlight: 2,
      initialServiceMs: 1,
      alpha: 0.5,
      periodMs: 1,
      now: () => now,
    });
    for (let i = 0; i < 5; i++) assert.equal(a.admit(), true);
    assert.equal(a.expectedWaitMs, 5);
    // Completions 4 ms apart while busy: the service time moves toward 4 ms.
    for (let i = 0; i < 4; i++) {
      now += 4;
      a.done();
    }
    assert.ok(a.serviceTimeMs > 3 && a.serviceTimeMs <= 4, String(a.serviceTimeMs));
    assert.equal(a.inFlight, 1);
    assert.equal(a.admit(), true, '1 in flight: under minInFlight');
    assert.equal(a.admit(), true, '2 in flight x 3.8 ms = 7.6 ms, within 10 ms');
    assert.equal(a.admit(), false, `3 in flight x 3.8 ms = ${a.expectedWaitMs} ms, over 10 ms`);
    assert.equal(a.inFlight, 3);
    // An idle gap is not service time.
    const b = new Admission({ budgetMs: 10, initialServiceMs: 1, alpha: 1, periodMs: 1, now: () => now });
    b.admit();
    now += 500;
    b.done();
    b.admit();
    now += 500;
    b.done();
    assert.equal(b.serviceTimeMs, 1);
    assert.equal(new Admission({ budgetMs: 0, minInFlight: 0, initialServiceMs: 1000 }).admit(), true);
    // Bursts (a batch finishing at once) are averaged over the period, not read right after a burst.
    const c = new Admission({ budgetMs: 0, initialServiceMs: 1, alpha: 1, periodMs: 60, now: () => now });
    for (let i = 0; i < 25; i++) c.admit();
    for (let burst = 0; burst < 3; burst++) {
      now += 32; // a batch of 8 takes 32 ms, then all 8 finish together
      for (let i = 0; i < 8; i++) c.done();
    }
    assert.equal(c.serviceTimeMs, 4, 'busy time per completion over the period');
  });

  void it('a real server sheds model requests with 503 + Retry-After; feedback and health are never shed', async () => {
    const root = await mkdtemp(join(tmpdir(), 'recflow-serve-adm-'));
    try {
      const b = await makeBundle(root, 'b', 2);
      const server = await startServer({
        port: 0,
        bundle: b.dir,
        version: 'm@v1',
        logger: false,
        processMetrics: false,
        adminToken: 'tok',
        admission: { budgetMs: 1, minInFlight: 2, initialServiceMs: 50 },
      });
      try {
        const first = await post(`${server.url}/v1/recommend`, { userId: 'u1', k: 3 });
        assert.equal(first.status, 200);
        // Admitted requests hold on for 300 ms (an injected delay), so the ones behind them queue up.
        const faults = (method: string, body?: unknown) =>
          fetch(`${server.url}/v1/admin/faults`, {
            method,
            headers: { authorization: 'Bearer tok', ...(body ? { 'content-type': 'application/json' } : {}) },
            body: body ? JSON.stringify(body) : undefined,
          });
        assert.equal((await faults('PUT', { variant: 'stable', delayMs: 300 })).status, 200);
        const all = await Promise.all(
          Array.from({ length: 40 }, (_, i) => post(`${server.url}/v1/recommend`, { userId: `u${i + 1}`, k: 3 })),
        );
        const shed = all.filter((r) => r.status === 503);
        assert.ok(shed.length > 0, 'some were shed');
        assert.ok(
          all.some((r) => r.status === 200),
          'some were admitted',
        );
        assert.equal((await faults('DELETE')).status, 200);
        const s = shed[0]!;
        assert.equal(s.headers.get('retry-after'), '1');
        assert.equal(s.body.error, 'Service Unavailable');
        assert.match(s.body.message, /overloaded: a request would wait about \d+ ms, over the 1 ms budget/);
        assert.equal(s.headers.get('x-request-id'), s.body.requestId);
        // Feedback under the same load is never shed.
        const fb = await Promise.all([
          ...Array.from({ length: 20 }, () => post(`${server.url}/v1/recommend`, { userId: 'u2', k: 3 })),
          post(`${server.url}/v1/feedback`, {
            token: first.body.feedbackToken,
            itemId: first.body.items[0].itemId,
            event: 'click',
          }),
        ]);
        assert.equal(fb.at(-1)?.status, 200);
        assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
        const stats = (await (
          await fetch(`${server.url}/v1/admin/stats`, { headers: { authorization: 'Bearer tok' } })
        ).json()) as { shed: number };
        assert.ok(stats.shed >= shed.length);
        assert.equal(server.admission.inFlight, 0, 'every admitted request was released');
      } finally {
        await server.close();
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
