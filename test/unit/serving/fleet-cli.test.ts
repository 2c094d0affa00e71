import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FleetStore } from '../../../lib/fleet/store';

const bin = join(__dirname, '..', '..', '..', 'bin', 'recflow.js');

void describe('recflow fleet set|status', () => {
  let home: string;
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [bin, 'fleet', ...args], {
      env: { ...process.env, RECFLOW_HOME: home },
      encoding: 'utf8',
    });
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'recflow-fleet-cli-'));
  });
  after(() => rm(home, { recursive: true, force: true }));

  void it('sets slots and weight, keeps unset fields, reports unchanged, rolls back', async () => {
    const none = cli('status');
    assert.equal(none.status, 0, none.stderr);
    assert.match(none.stdout, /no desired state/);
    assert.match(none.stdout, /no live replicas/);
    const a = cli('set', '--stable-version', 'm@v1', '--stable-bundle', '/b/1', '--reason', 'first');
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout, /generation 1/);
    const b = cli('set', '--canary-version', 'm@v2', '--canary-bundle', '/b/2', '--canary-precision', 'int8');
    assert.equal(b.status, 2); // --reason is required
    const c = cli(
      'set',
      '--canary-version',
      'm@v2',
      '--canary-bundle',
      '/b/2',
      '--canary-precision',
      'int8',
      '--weight',
      '25',
      '--reason',
      'canary',
    );
    assert.equal(c.status, 0, c.stderr);
    const same = cli('set', '--weight', '25', '--reason', 'again');
    assert.match(same.stdout, /unchanged \(generation 2\)/);
    const st = cli('status');
    assert.match(st.stdout, /generation 2/);
    assert.match(st.stdout, /stable\s+m@v1 \[fp32\]/);
    assert.match(st.stdout, /canary\s+m@v2 \[int8\]\s+weight 25%/);
    const bad = cli('set', '--canary-version', 'm@v3', '--reason', 'x');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--canary-version and --canary-bundle go together/);
    const badW = cli('set', '--weight', '101', '--reason', 'x');
    assert.equal(badW.status, 2);
    const rb = cli('set', '--no-canary', '--reason', 'rollback by alice');
    assert.equal(rb.status, 0, rb.stderr);
    const d = await new FleetStore(join(home, 'registry')).readDesired();
    assert.deepEqual(
      { g: d?.generation, canary: d?.canary, w: d?.canaryWeight, stable: d?.stable?.version, reason: d?.reason },
      { g: 3, canary: null, w: 0, stable: 'm@v1', reason: 'rollback by alice' },
    );
    const j = JSON.parse(cli('status', '--json').stdout) as { desired: { generation: number }; replicas: unknown[] };
    assert.equal(j.desired.generation, 3);
    assert.deepEqual(j.replicas, []);
  });
});
