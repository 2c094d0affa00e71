import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FLEET_SECRET_FILE, loadFleetSecret, statsReaderToken } from '../../../lib/fleet/secret';
import { FleetStore } from '../../../lib/fleet/store';
import type { ReplicaReport } from '../../../lib/fleet/types';
import { quantileFromBuckets, LATENCY_BUCKETS } from '../../../serving/metrics';

const slot = (v: string) => ({ version: v, bundlePath: `/bundles/${v}`, precision: 'fp32' as const });

void describe('fleet store', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-fleet-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  void it('keeps undefined fields, bumps the generation only on a change, writes atomically', async () => {
    const s = new FleetStore(root, 'shop');
    assert.equal(await s.readDesired(), null);
    const a = await s.updateDesired({ stable: slot('m@v1'), reason: 'first' });
    assert.equal(a.changed, true);
    assert.equal(a.desired.generation, 1);
    assert.equal(a.desired.canaryWeight, 0);
    const b = await s.updateDesired({ canary: slot('m@v2'), canaryWeight: 10, reason: 'canary' });
    assert.equal(b.desired.generation, 2);
    assert.equal(b.desired.stable?.version, 'm@v1');
    const same = await s.updateDesired({ canaryWeight: 10, reason: 'again' });
    assert.equal(same.changed, false);
    assert.equal(same.desired.generation, 2);
    assert.equal(same.desired.reason, 'canary');
    const cleared = await s.updateDesired({ canary: null, canaryWeight: 0, reason: 'rollback' });
    assert.equal(cleared.desired.generation, 3);
    assert.equal(cleared.desired.canary, null);
    assert.deepEqual((await s.readDesired())?.generation, 3);
    // Concurrent writers never lose an update.
    await Promise.all(Array.from({ length: 10 }, (_, i) => s.updateDesired({ canaryWeight: i + 1, reason: `w${i}` })));
    assert.equal((await s.readDesired())?.generation, 13);
    assert.deepEqual(
      (await readdir(s.dir)).filter((f) => f.includes('.tmp-')),
      [],
    );
  });

  void it('rejects bad patches and bad names with the field in the message', async () => {
    const s = new FleetStore(root, 'shop');
    await assert.rejects(s.updateDesired({ canaryWeight: 101, reason: 'x' }), /canaryWeight 101/);
    await assert.rejects(s.updateDesired({ stable: { ...slot('v'), bundlePath: 'rel' }, reason: 'x' }), /not absolute/);
    await assert.rejects(s.updateDesired({ canaryWeight: 5, reason: '' }), /reason is missing/);
    assert.throws(() => new FleetStore(root, '../etc'), /invalid fleet name/);
    await writeFile(join(root, 'fleets', 'shop', 'desired.json'), '{oops');
    await assert.rejects(s.readDesired(), /desired\.json: not JSON/);
  });

  void it('lists live replica reports only', async () => {
    const s = new FleetStore(root, 'reports');
    const r = (id: string, ageMs: number): ReplicaReport => ({
      replicaId: id,
      url: `http://127.0.0.1/${id}`,
      pid: 1,
      appliedGeneration: 1,
      stable: 'm@v1',
      canary: null,
      canaryWeight: 0,
      healthy: true,
      heartbeatAt: new Date(Date.now() - ageMs).toISOString(),
    });
    await s.writeReport(r('a', 0));
    await s.writeReport(r('b', 60_000));
    assert.deepEqual(
      (await s.readReports()).map((x) => x.replicaId),
      ['a', 'b'],
    );
    assert.deepEqual(
      (await s.readReports({ liveWithinMs: 10_000 })).map((x) => x.replicaId),
      ['a'],
    );
    await s.removeReport('a');
    assert.deepEqual(await s.readReports({ liveWithinMs: 10_000 }), []);
  });
});

void describe('latency quantiles from histogram buckets', () => {
  void it('interpolates inside the bucket that holds the rank', () => {
    const cum = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
    // 100 observations: 50 in (0.001, 0.002], 50 in (0.01, 0.015].
    const i2 = LATENCY_BUCKETS.indexOf(0.002);
    const i15 = LATENCY_BUCKETS.indexOf(0.015);
    for (let i = 0; i < cum.length; i++) cum[i] = i >= i15 ? 100 : i >= i2 ? 50 : 0;
    assert.ok(Math.abs(quantileFromBuckets(cum, 0.5) - 0.002) < 1e-9);
    assert.ok(Math.abs(quantileFromBuckets(cum, 0.99) - (0.01 + 0.005 * 0.98)) < 1e-9);
    assert.equal(quantileFromBuckets(new Array<number>(cum.length).fill(0), 0.5), 0);
  });
});

void describe('fleet secret', () => {
  void it('is created once, mode 0600, and every concurrent reader gets the same; a configured one wins', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'recflow-secret-'));
    try {
      const fleetDir = join(dir, 'fleets', 'f');
      const all = await Promise.all(Array.from({ length: 8 }, () => loadFleetSecret(fleetDir)));
      assert.ok(all.every((s) => s.equals(all[0]!)));
      assert.equal(all[0]!.length, 64);
      const st = await stat(join(fleetDir, FLEET_SECRET_FILE));
      assert.equal(st.mode & 0o777, 0o600);
      assert.deepEqual((await readdir(fleetDir)).sort(), [FLEET_SECRET_FILE]);
      assert.ok((await loadFleetSecret(fleetDir)).equals(all[0]!));
      const configured = await loadFleetSecret(fleetDir, 'x'.repeat(20));
      assert.equal(configured.toString(), 'x'.repeat(20));
      assert.notEqual(statsReaderToken(configured), statsReaderToken(all[0]!));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
