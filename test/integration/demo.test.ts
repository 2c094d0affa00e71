/**
 * README command 1, unattended: `recflow demo --auto-approve --small` as a user runs it (a child process, its own
 * embedded Temporal dev server, workers, two serving replicas, the simulator), on a fresh home. It must finish with a
 * champion and a challenger that was promoted or rolled back by the canary, for recommendations and then for search,
 * and leave the registry and both fleets agreeing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FleetStore } from '../../lib/fleet/store';
import { FileModelRegistry } from '../../lib/registry';
import { tempHome } from '../helpers/temporal';

const root = join(__dirname, '..', '..');

describe('npm run demo (unattended)', () => {
  it('runs two lifecycles end to end and prints the outcome', async () => {
    const home = tempHome('recflow-demo-');
    const child = spawn(process.execPath, [join(root, 'bin', 'recflow.js'), 'demo', '--auto-approve', '--small'], {
      cwd: root,
      env: { ...process.env, RECFLOW_HOME: home, RECFLOW_TEMPORAL_PORT: '0', RECFLOW_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.resume();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, out.slice(-3000));
    assert.match(out, /== champion: recflow-lifecycle-shop-recs-champion-/);
    assert.match(out, /== challenger: recflow-lifecycle-shop-recs-challenger-/);
    // The recommender's line (the search run prints its own `search result:` later).
    const result = /^result: (promoted|rolled_back) - /m.exec(out);
    assert.ok(result, out.slice(-2000));
    assert.match(out, /training: (wasm|cpu|tensorflow) on recflow-(gpu|cpu)/);

    const registry = new FileModelRegistry(join(home, 'registry'));
    const champion = await registry.get('shop-recs@champion');
    assert.equal(champion.version, result[1] === 'promoted' ? 2 : 1);
    assert.equal((await registry.get('shop-recs@v2')).approver, 'auto-approve');
    const desired = await new FleetStore(join(home, 'registry'), 'default').readDesired();
    assert.equal(desired?.stable?.version, `shop-recs@v${champion.version}`);
    assert.equal(desired?.canary, null);

    // Search after it: the zero-shot champion, then a fine-tuned challenger that the canary decides (no gate stops it).
    const searched = /^search result: (promoted|rolled_back) - /m.exec(out);
    assert.ok(searched, out.slice(-2000));
    const searchChampion = await registry.get('shop-search@champion');
    assert.equal(searchChampion.version, searched[1] === 'promoted' ? 2 : 1);
    const searchFleet = await new FleetStore(join(home, 'registry'), 'search').readDesired();
    assert.equal(searchFleet?.stable?.version, `shop-search@v${searchChampion.version}`);
    assert.equal(searchFleet?.canary, null);
  });
});
