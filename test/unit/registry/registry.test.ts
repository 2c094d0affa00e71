import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileModelRegistry, parseModelRef, type RegisterInput } from '../../../lib/registry';

const input = (n: number, workflowId = 'wf-1'): RegisterInput => ({
  model: 'two-tower',
  bundle: { id: `b${n}`, contentHash: `hash-${n}` },
  lineage: {
    datasetId: 'ds',
    datasetHash: 'dh',
    checkpointId: `ck${n}`,
    trainingBackend: 'wasm',
    metrics: { auc: 0.7 },
  },
  workflowId,
});

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => res({ code, out, err }));
  });
}

void describe('FileModelRegistry', () => {
  let root: string;
  before(async () => (root = await mkdtemp(join(tmpdir(), 'recflow-reg-'))));
  after(() => rm(root, { recursive: true, force: true }));

  void it('registers immutable versions idempotently per bundle and workflow run', async () => {
    const reg = new FileModelRegistry(join(root, 'a'));
    const a = await reg.register(input(1));
    const again = await reg.register(input(1));
    const other = await reg.register(input(1, 'wf-2'));
    assert.deepEqual([a.created, again.created, other.created], [true, false, true]);
    assert.equal(a.version.version, 1);
    assert.equal(again.version.version, 1);
    assert.equal(other.version.version, 2);
    assert.equal(a.version.status, 'candidate');
    assert.equal((await reg.get('two-tower')).version, 2);
    assert.equal((await reg.get('two-tower@v1')).lineage.trainingBackend, 'wasm');
    assert.equal((await reg.events('two-tower')).filter((e) => e.type === 'registered').length, 2);
  });

  void it('status transitions, approvals, aliases and one production version at a time', async () => {
    const reg = new FileModelRegistry(join(root, 'b'));
    await reg.register(input(1));
    await reg.register(input(2));
    await assert.rejects(reg.setStatus('two-tower', 1, 'production'), /cannot go from candidate to production/);
    await reg.setStatus('two-tower', 1, 'pending_approval', { actor: 'wf' });
    const ap = await reg.recordApproval('two-tower', 1, { approved: true, approver: 'alice', comment: 'lgtm' });
    assert.deepEqual([ap.status, ap.approver], ['approved', 'alice']);
    const same = await reg.recordApproval('two-tower', 1, { approved: true, approver: 'alice' });
    assert.equal(same.status, 'approved');
    await reg.setStatus('two-tower', 1, 'production');
    assert.equal(await reg.setAlias('two-tower', 'champion', 1), null);
    await reg.setStatus('two-tower', 2, 'pending_approval');
    await reg.recordApproval('two-tower', 2, { approved: true, approver: 'bob' });
    await reg.setAlias('two-tower', 'canary', 2);
    await reg.setStatus('two-tower', 2, 'production');
    assert.equal(await reg.setAlias('two-tower', 'champion', 2), 1);
    assert.equal((await reg.get('two-tower@v1')).status, 'archived');
    assert.deepEqual((await reg.get('two-tower@champion')).aliases, ['canary', 'champion']);
    await reg.setAlias('two-tower', 'canary', null);
    assert.equal(await reg.find('two-tower@canary'), undefined);
    await assert.rejects(
      reg.recordApproval('two-tower', 2, { approved: false, approver: 'eve' }),
      /cannot go from production to rejected/,
    );
    const [summary] = await reg.listModels();
    assert.deepEqual(summary, {
      model: 'two-tower',
      versions: 2,
      latest: 2,
      aliases: { champion: 2 },
      production: [2],
    });
    const events = await reg.events('two-tower');
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
    );
    assert.ok(
      events.some(
        (e) => e.type === 'status' && e.version === 1 && e.to === 'archived' && e.reason === 'replaced by v2',
      ),
    );
  });

  void it('rejects path traversal and malformed references', async () => {
    const reg = new FileModelRegistry(join(root, 'c'));
    for (const bad of ['../etc', 'a/b', '..', 'A', ''])
      await assert.rejects(reg.register({ ...input(1), model: bad }), /invalid model name/);
    assert.throws(() => parseModelRef('m@../x'), /invalid model reference/);
    assert.deepEqual(parseModelRef('m@v12'), { model: 'm', version: 12 });
    assert.deepEqual(parseModelRef('m@champion'), { model: 'm', alias: 'champion' });
    await assert.rejects(reg.setAlias('two-tower', '../x', 1), /invalid alias/);
    await assert.rejects(reg.get('two-tower@v9'), /not found/);
  });

  void it('recovers a stale lock left by a dead process', async () => {
    const dir = join(root, 'd');
    const reg = new FileModelRegistry(dir, { timeoutMs: 5000 });
    await reg.register(input(1));
    const dead = await run(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    await writeFile(
      join(dir, 'two-tower', '.lock'),
      JSON.stringify({ pid: Number(dead.out), host: hostname(), at: Date.now(), token: 't' }),
    );
    const r = await reg.register(input(2));
    assert.equal(r.version.version, 2);
    // A live holder is waited for, not broken.
    await writeFile(
      join(dir, 'two-tower', '.lock'),
      JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now(), token: 'live' }),
    );
    const slow = new FileModelRegistry(dir, { timeoutMs: 300 });
    await assert.rejects(slow.register(input(3)), /held by pid/);
    assert.equal(JSON.parse(await readFile(join(dir, 'two-tower', '.lock'), 'utf8')).token, 'live');
    await rm(join(dir, 'two-tower', '.lock'));
  });

  void it('concurrent writers in 4 child processes get distinct versions and nothing is lost', async () => {
    const dir = join(root, 'e');
    const procs = 4;
    const each = 6;
    const child = join(__dirname, 'register-child.ts');
    const results = await Promise.all(
      Array.from({ length: procs }, (_, p) =>
        run(process.execPath, ['--import', 'tsx', child, dir, 'two-tower', `p${p}`, String(each)]),
      ),
    );
    for (const r of results) assert.equal(r.code, 0, r.err);
    const versions = results.flatMap((r) => JSON.parse(r.out) as number[]);
    assert.equal(new Set(versions).size, procs * each);
    assert.deepEqual(
      [...versions].sort((a, b) => a - b),
      Array.from({ length: procs * each }, (_, i) => i + 1),
    );
    const reg = new FileModelRegistry(dir);
    const all = await reg.listVersions('two-tower');
    assert.equal(all.length, procs * each);
    assert.equal(new Set(all.map((v) => v.bundle.id)).size, procs * each);
    const events = await reg.events('two-tower');
    assert.equal(events.length, procs * each);
    assert.deepEqual(
      events.map((e) => e.seq),
      Array.from({ length: procs * each }, (_, i) => i + 1),
    );
  });
});
