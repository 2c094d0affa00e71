import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadDataset, type LoadedDataset } from '../../../lib/data/dataset';
import { clearBaselineCache, fitBaselines, type BaselineFitStore } from '../../../lib/eval/baselines';
import { evaluateBundle } from '../../../lib/eval/evaluate';
import { exportAlsBundle } from '../../../kinds/als/export';
import { fitAls } from '../../../kinds/als/fit';
import type { AlsModel } from '../../../kinds/als/spec';
import { writeTinyDataset } from '../../helpers/tiny-dataset';

void describe('strong baselines in the evaluation', () => {
  let root: string;
  let ds: LoadedDataset;
  let als: AlsModel;
  const alsOptions = { factors: 16, iterations: 6, grid: [{ regularization: 1 }, { regularization: 10 }] };
  const options = { precisions: ['fp32' as const], baselines: { als: alsOptions, ease: { lambdaGrid: [20, 200] } } };
  before(async () => {
    clearBaselineCache();
    root = await mkdtemp(join(tmpdir(), 'recflow-baselines-'));
    await writeTinyDataset(join(root, 'ds'), { users: 300, items: 150, perUser: 14, seed: 9 });
    ds = await loadDataset(join(root, 'ds'));
    als = await fitAls(ds, alsOptions);
  });
  after(() => rm(root, { recursive: true, force: true }));

  void it('reports every baseline with its segments, and the ALS bundle scores what the ALS baseline scores', async () => {
    const dir = join(root, 'als');
    await mkdir(dir);
    await exportAlsBundle(dir, als, { modelName: 'als', checkpointId: 'ck', vocab: ds.vocab });
    const r = await evaluateBundle(dir, ds, options);
    assert.deepEqual(Object.keys(r.baselines ?? {}).sort(), ['als', 'ease', 'recentPopularity']);
    for (const b of Object.values(r.baselines!)) {
      assert.ok(b.segments['users:returning'], 'returning-user segment');
      assert.ok(b.overall['ndcg@10']! > 0);
    }
    // Same data, same seed, same settings: the exported graph ranks like the baseline fitted inside the evaluation.
    const fp32 = r.models.fp32!.overall;
    const base = r.baselines!.als!.overall;
    assert.ok(Math.abs(fp32['ndcg@10']! - base['ndcg@10']!) < 1e-6, `${fp32['ndcg@10']} vs ${base['ndcg@10']}`);
    assert.ok(Math.abs(fp32.auc! - base.auc!) < 1e-4);
    assert.ok(r.baselines!.als!.overall['ndcg@10']! > r.popularity.overall['ndcg@10']!);
  });

  void it('users unknown to a bundle are sent as index 0 with their training history (fold-in, not the prior)', async () => {
    // A vocab in which the bundle does not know users 1..150: the evaluation maps them to index 0.
    const users = ds.vocab.users.map((id, i) => (i > 0 && i <= 150 ? `other-${id}` : id));
    const dir = join(root, 'als-cold');
    await mkdir(dir);
    await exportAlsBundle(dir, als, { modelName: 'als', checkpointId: 'ck', vocab: { users, items: ds.vocab.items } });
    const r = await evaluateBundle(dir, ds, options);
    const cold = r.models.fp32!.overall['ndcg@10']!;
    const warm = r.baselines!.als!.overall['ndcg@10']!;
    const prior = r.baselines!.recentPopularity!.overall['ndcg@10']!;
    assert.ok(cold > prior * 1.3, `folded-in users ${cold} should beat the prior ${prior}`);
    assert.ok(cold > warm * 0.8, `folded-in users ${cold} close to fitted users ${warm}`);
  });

  void it('skips EASE^R above its catalogue cap with the reason, and caches fits by dataset and options', async () => {
    const o = { als: false as const, ease: { maxItems: 100 } };
    const a = await fitBaselines(ds, o);
    assert.match(a.skipped.ease!, /151 items is above EASE\^R's maxItems \(100\)/);
    assert.equal(a.skipped.als, 'disabled in the evaluation options');
    assert.deepEqual(
      a.baselines.map((b) => b.name),
      ['recentPopularity'],
    );
    assert.equal(await fitBaselines(ds, o), a, 'same dataset and options: the cached fit');
  });

  void it('keeps fits in a fit store: a later evaluation (another process) loads them instead of refitting', async () => {
    const kept = new Map<string, unknown>();
    const calls: string[] = [];
    const store: BaselineFitStore = {
      async load(kind, config, _read) {
        calls.push(`load ${kind}`);
        return kept.get(`${kind}:${JSON.stringify(config)}`) as never;
      },
      async save(kind, config, model, _write) {
        calls.push(`save ${kind}`);
        kept.set(`${kind}:${JSON.stringify(config)}`, model);
      },
    };
    const o = { als: alsOptions, ease: { lambdaGrid: [20] } };
    clearBaselineCache();
    const first = await fitBaselines(ds, o, () => {}, store);
    assert.deepEqual(calls, ['load als', 'save als', 'load ease', 'save ease']);
    clearBaselineCache(); // a new process: only the store remembers
    const second = await fitBaselines(ds, o, () => {}, store);
    assert.deepEqual(calls.slice(4), ['load als', 'load ease'], 'nothing refitted');
    assert.equal(
      second.baselines.find((b) => b.name === 'als')!.model,
      first.baselines.find((b) => b.name === 'als')!.model,
    );
  });
});
