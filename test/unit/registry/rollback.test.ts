/**
 * `recflow rollback` on a real registry, artifact store and fleet folder: it checks everything before writing
 * anything, never sends the fleet a version that was not approved and served, and changes fleet and registry
 * together (a registry that fails half way leaves the fleet as it was).
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { rollbackFleet } from '../../../clients/commands/rollback';
import { ArtifactStore } from '../../../lib/artifacts';
import { FleetStore } from '../../../lib/fleet/store';
import { FileModelRegistry } from '../../../lib/registry';
import type { ModelRegistry } from '../../../lib/registry/types';
import { tempHome } from '../../helpers/temporal';

describe('rollbackFleet', () => {
  const home = tempHome('recflow-rollback-');
  const registryDir = join(home, 'registry');
  const artifactsDir = join(home, 'artifacts');
  const registry = new FileModelRegistry(registryDir);
  const fleet = new FleetStore(registryDir, 'default');
  const store = new ArtifactStore(artifactsDir);
  const paths: Record<number, string> = {};

  const state = async () => ({
    desired: (await fleet.readDesired())?.stable?.version,
    statuses: (await registry.listVersions('m')).map((v) => `${v.version}:${v.status}`),
    champion: (await registry.find('m@champion'))?.version,
  });

  before(async () => {
    const ctx = { actor: 'test' };
    for (const v of [1, 2, 3, 4]) {
      const b = await store.put('bundle', `b${v}`, async (dir) => {
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'bundle.json'), `{"v":${v}}`);
      });
      paths[v] = b.path;
      await registry.register({
        model: 'm',
        bundle: { id: b.id, contentHash: b.contentHash },
        lineage: { datasetId: 'd', datasetHash: 'h', checkpointId: `c${v}` },
        workflowId: `w${v}`,
      });
    }
    // v1: approved, served, replaced by v2 (the champion). v3: approved, never served. v4: rejected.
    for (const v of [1, 2, 3]) {
      await registry.setStatus('m', v, 'pending_approval', ctx);
      await registry.recordApproval('m', v, { approved: true, approver: 'bob' }, ctx);
    }
    await registry.setStatus('m', 1, 'production', ctx);
    await registry.setStatus('m', 1, 'archived', ctx);
    await registry.setStatus('m', 2, 'production', ctx);
    await registry.setAlias('m', 'champion', 2, ctx);
    await registry.setStatus('m', 4, 'pending_approval', ctx);
    await registry.recordApproval('m', 4, { approved: false, approver: 'carol', comment: 'no' }, ctx);
    await fleet.updateDesired({
      stable: { version: 'm@v2', bundlePath: paths[2]!, precision: 'int8' },
      reason: 'seed',
    });
  });

  const rollback = (to: string | undefined, as = 'oncall', operators: string[] = [], reg: ModelRegistry = registry) =>
    rollbackFleet({ model: 'm', fleet: 'default', to, as, reason: 'test' }, registryDir, artifactsDir, operators, reg);

  it('refuses a rejected or never-served target, and an actor who is not an operator, writing nothing', async () => {
    const before = await state();
    await assert.rejects(rollback('v4'), /m@v4 \(status rejected\) was rejected/);
    await assert.rejects(rollback('v3'), /m@v3 \(status approved\) never served in production/);
    await assert.rejects(rollback('v1', 'mallory', ['alice', 'oncall']), /mallory may not roll back/);
    await assert.rejects(rollback('v9'), /v9/);
    assert.deepEqual(await state(), before);
  });

  it('undoes the fleet change when the registry fails half way', async () => {
    const before = await state();
    const failing = Object.create(registry) as ModelRegistry;
    let calls = 0;
    // The champion alias moves, then the canary alias fails: both statuses and the alias must be undone.
    failing.setAlias = async (...args: Parameters<ModelRegistry['setAlias']>) => {
      if (++calls === 2) throw new Error('disk full');
      return registry.setAlias(...args);
    };
    await assert.rejects(
      rollback('v1', 'oncall', [], failing),
      /undone: the registry refused \(disk full\).*serves m@v2 again/,
    );
    assert.deepEqual(await state(), before, 'fleet and registry as they were');
  });

  it('rolls back to the previous production version: fleet and registry together', async () => {
    const r = await rollback(undefined, 'oncall', ['oncall']);
    assert.deepEqual([r.from, r.to], ['m@v2', 'm@v1']);
    const s = await state();
    assert.equal(s.desired, 'm@v1');
    assert.equal(s.champion, 1);
    assert.ok(s.statuses.includes('1:production') && s.statuses.includes('2:rolled_back'), s.statuses.join(' '));
  });
});
