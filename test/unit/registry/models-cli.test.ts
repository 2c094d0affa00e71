import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileModelRegistry } from '../../../lib/registry';

const bin = join(__dirname, '..', '..', '..', 'bin', 'recflow.js');

void describe('recflow models list|show|diff', () => {
  let home: string;
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [bin, 'models', ...args], {
      env: { ...process.env, RECFLOW_HOME: home },
      encoding: 'utf8',
    });
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'recflow-cli-'));
    const reg = new FileModelRegistry(join(home, 'registry'));
    for (const [n, auc] of [
      [1, 0.71],
      [2, 0.74],
    ] as const)
      await reg.register({
        model: 'two-tower',
        bundle: { id: `b${n}`, contentHash: `h${n}` },
        lineage: {
          datasetId: `ds${n}`,
          datasetHash: 'x',
          checkpointId: `ck${n}`,
          trainingBackend: 'wasm',
          metrics: { 'int8.auc': auc },
        },
      });
    await reg.setAlias('two-tower', 'champion', 1);
  });
  after(() => rm(home, { recursive: true, force: true }));

  void it('lists models and versions as tables and JSON', () => {
    const t = cli('list');
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /MODEL\s+VERSIONS\s+LATEST\s+ALIASES/);
    assert.match(t.stdout, /two-tower\s+2\s+v2\s+champion=v1/);
    const j = JSON.parse(cli('list', '--json').stdout);
    assert.equal(j[0].latest, 2);
    const v = cli('list', 'two-tower');
    assert.match(v.stdout, /v1\s+candidate\s+champion\s+ds1\s+wasm\s+0.71/);
  });

  void it('shows by alias and diffs two versions with metric deltas', () => {
    const s = JSON.parse(cli('show', 'two-tower@champion', '--json').stdout);
    assert.equal(s.version, 1);
    const d = cli('diff', 'two-tower@v1', 'two-tower@v2');
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout, /metrics\.int8\.auc\s+0\.71\s+0\.74\s+\+0\.03/);
    const dj = JSON.parse(cli('diff', 'two-tower@v1', 'two-tower@v2', '--json').stdout);
    assert.ok(dj.fields.some((f: { field: string }) => f.field === 'lineage.datasetId'));
  });

  void it('exits 2 on a malformed reference and 1 on a missing version, with a clear message', () => {
    const bad = cli('show', '../x');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /invalid model name/);
    const missing = cli('show', 'two-tower@v9');
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /two-tower@v9 not found/);
  });
});
