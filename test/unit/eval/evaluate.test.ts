/* eslint-disable @typescript-eslint/unbound-method, @typescript-eslint/no-unnecessary-type-assertion -- activity methods do not use `this`; env.run cannot infer results */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createEvaluateActivities,
  type CheckServingHealthResult,
  type EvaluateModelResult,
  type EvaluationArtifact,
} from '../../../activities/evaluate';
import { loadConfig } from '../../../lib/config';
import { loadDataset } from '../../../lib/data/dataset';
import { rankingMetrics } from '../../../lib/eval/metrics';
import { catalogScores, itemSide, readCheckpoint, towerFeatures } from '../../../kinds/two-tower/spec';
import { writeBundle } from '../../../kinds/two-tower/bundle';
import { randomModel, rng, storeWithModel } from '../../helpers/random-model';
import { mockActivityEnv } from '../../helpers/activity-env';

void describe('evaluateModel and checkServingHealth activities', () => {
  let root: string;
  let ctx: Awaited<ReturnType<typeof storeWithModel>>;
  const bundleOf = async (checkpointId: string, id: string) => {
    const ds = await loadDataset((await ctx.store.get('dataset', ctx.datasetId)).path);
    const ck = await readCheckpoint((await ctx.store.get('checkpoint', checkpointId)).path);
    await ctx.store.put('bundle', id, async (dir) => {
      await writeBundle(dir, {
        modelName: 'two-tower',
        datasetId: ctx.datasetId,
        checkpointId,
        weights: ck.weights,
        features: towerFeatures(ds),
        meta: ck.meta,
        vocab: ds.vocab,
        popularity: ds.items.popularity,
      });
    });
  };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'recflow-eval-'));
    // The dataset is drawn from model seed 1: that model is "good"; seed 99 is an unrelated (bad) model.
    ctx = await storeWithModel(join(root, 'artifacts'), { seed: 1 });
    await storeWithModel(join(root, 'artifacts'), { model: randomModel({ seed: 99 }), checkpointId: 'ck-bad' });
    await bundleOf(ctx.checkpointId, 'bundle-good');
    await bundleOf('ck-bad', 'bundle-bad');
  });
  after(() => rm(root, { recursive: true, force: true }));
  const acts = () => createEvaluateActivities({ config: loadConfig({ RECFLOW_HOME: root }), store: ctx.store });
  const gates = {
    precision: 'int8' as const,
    absolute: [{ metric: 'auc', min: 0.6 }],
    champion: [{ metric: 'ndcg@10', maxDrop: 0.01 }],
    int8Drop: [{ metric: 'auc', maxDrop: 0.02 }],
    beatPopularity: ['ndcg@10'],
  };

  void it('evaluates the bundle on the test split; ranking metrics equal an independent reference computation', async () => {
    const env = mockActivityEnv();
    const res = (await env.run(acts().evaluateModel, {
      bundleId: 'bundle-good',
      datasetId: ctx.datasetId,
      gates,
      // The reference below excludes training items only.
      options: { historyThrough: 'train' as const },
    })) as EvaluateModelResult;
    const art = JSON.parse(await readFile(join(res.evaluation.path, 'evaluation.json'), 'utf8')) as EvaluationArtifact;
    const fp32 = art.candidate.models.fp32!.overall;
    const int8 = art.candidate.models.int8!.overall;
    assert.ok(fp32.auc! > 0.6, `auc ${fp32.auc}`);
    assert.ok(fp32['ndcg@10']! > art.candidate.popularity.overall['ndcg@10']!, 'good model beats popularity');
    assert.ok(Math.abs(fp32.auc! - int8.auc!) < 0.02);
    assert.ok(art.candidate.models.fp32!.segments['users:new'], 'new-user segment');
    assert.ok(art.candidate.models.fp32!.segments['users:returning'], 'returning segment');
    assert.ok(Object.keys(art.candidate.models.fp32!.segments).some((s) => s.startsWith('category:')));
    assert.equal(res.blessed, true, JSON.stringify(res.gates));
    assert.equal(
      res.gates.find((g) => g.name.startsWith('champion'))!.reason,
      'no champion yet: nothing to regress from',
    );

    // Independent: rank with the JS reference forward (each user's training items as the history), excluding
    // training items; relevant = unseen test items.
    const ds = await loadDataset((await ctx.store.get('dataset', ctx.datasetId)).path);
    const features = towerFeatures(ds);
    const side = itemSide(ctx.model.weights, features, ctx.model.extras);
    const seen = new Map<number, Set<number>>();
    ds.splits.train.user.forEach((u, i) => seen.set(u, (seen.get(u) ?? new Set()).add(ds.splits.train.item[i]!)));
    const rel = new Map<number, Set<number>>();
    ds.splits.test.user.forEach((u, i) => {
      const it = ds.splits.test.item[i]!;
      if (!seen.get(u)?.has(it)) rel.set(u, (rel.get(u) ?? new Set()).add(it));
    });
    const cases = [...rel.entries()].map(([u, relevant]) => {
      const { scores } = catalogScores(ctx.model.weights, features, ctx.model.extras, side, u);
      const scored: Array<[number, number]> = [];
      for (let i = 1; i < ctx.model.sizes.items; i++) if (!seen.get(u)?.has(i)) scored.push([i, scores[i]!]);
      scored.sort((a, b) => b[1] - a[1]);
      return { ranking: scored.slice(0, 50).map((x) => x[0]), relevant };
    });
    const ref = rankingMetrics(cases, 10);
    assert.equal(fp32.users, ref.users);
    assert.ok(Math.abs(fp32['hitRate@10']! - ref.hitRate) < 1e-9, `${fp32['hitRate@10']} vs ${ref.hitRate}`);
    assert.ok(Math.abs(fp32['ndcg@10']! - ref.ndcg) < 1e-6, `${fp32['ndcg@10']} vs ${ref.ndcg}`);

    const again = (await env.run(acts().evaluateModel, {
      bundleId: 'bundle-good',
      datasetId: ctx.datasetId,
      gates,
      options: { historyThrough: 'train' as const },
    })) as EvaluateModelResult;
    assert.equal(again.reused, true);
    assert.equal(again.evaluation.id, res.evaluation.id);
  });

  void it('relative gate: a worse candidate than the champion on the same split is not blessed, and says why', async () => {
    const env = mockActivityEnv();
    const res = (await env.run(acts().evaluateModel, {
      bundleId: 'bundle-bad',
      datasetId: ctx.datasetId,
      championBundleId: 'bundle-good',
      gates,
    })) as EvaluateModelResult;
    assert.equal(res.blessed, false);
    const champ = res.gates.find((g) => g.name === 'champion:int8:ndcg@10')!;
    assert.equal(champ.passed, false);
    assert.match(champ.reason, /vs champion .*worse by/);
    const good = (await env.run(acts().evaluateModel, {
      bundleId: 'bundle-good',
      datasetId: ctx.datasetId,
      championBundleId: 'bundle-bad',
      gates,
    })) as EvaluateModelResult;
    assert.equal(good.gates.find((g) => g.name === 'champion:int8:ndcg@10')!.passed, true);
  });

  void it('a champion with another vocabulary (permuted indices) is mapped by id: same model, same metrics', async () => {
    const ds = await loadDataset((await ctx.store.get('dataset', ctx.datasetId)).path);
    const ck = await readCheckpoint((await ctx.store.get('checkpoint', ctx.checkpointId)).path);
    const permute = (n: number, seed: number) => {
      const r = rng(seed);
      const p = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 1; i--) {
        const j = 1 + Math.floor(r() * i);
        [p[i], p[j]] = [p[j]!, p[i]!];
      }
      return p; // p[old] = new, p[0] = 0
    };
    const pu = permute(ctx.model.sizes.users, 5);
    const pi = permute(ctx.model.sizes.items, 6);
    const rows = <T extends Float32Array | Int32Array>(src: T, width: number, perm: number[]): T => {
      const out = new (src.constructor as new (n: number) => T)(src.length);
      perm.forEach((to, from) => out.set(src.subarray(from * width, (from + 1) * width), to * width));
      return out;
    };
    const w = { ...ck.weights };
    const de = ck.meta.config.embeddingDim;
    w.item_embedding = { shape: w.item_embedding.shape, data: rows(w.item_embedding.data, de, pi) };
    const f = towerFeatures(ds);
    // Stored histories: rows moved with their user, item indices renamed.
    const historyPtr = new Int32Array(f.historyPtr.length);
    const flat: number[] = [];
    const byNew = new Map(pu.map((to, from) => [to, from]));
    for (let to = 0; to < pu.length; to++) {
      const from = byNew.get(to)!;
      for (let k = f.historyPtr[from]!; k < f.historyPtr[from + 1]!; k++) flat.push(pi[f.historyItems[k]!]!);
      historyPtr[to + 1] = flat.length;
    }
    const features = {
      userSegment: rows(f.userSegment, 1, pu),
      userRegion: rows(f.userRegion, 1, pu),
      itemCategory: rows(f.itemCategory, 1, pi),
      itemBrand: rows(f.itemBrand, 1, pi),
      itemPrice: rows(f.itemPrice, 1, pi),
      itemTitleTokens: rows(f.itemTitleTokens, 8, pi),
      historyPtr,
      historyItems: Int32Array.from(flat),
    };
    const e = ck.meta.extras;
    const meta = {
      ...ck.meta,
      extras: {
        ...e,
        itemHasId: Uint8Array.from(rows(Int32Array.from(e.itemHasId), 1, pi)),
        prior: rows(e.prior, 1, pi),
      },
    };
    const vocab = { users: [...ds.vocab.users], items: [...ds.vocab.items] };
    pu.forEach((to, from) => (vocab.users[to] = ds.vocab.users[from]!));
    pi.forEach((to, from) => (vocab.items[to] = ds.vocab.items[from]!));
    await ctx.store.put('bundle', 'bundle-permuted', async (dir) => {
      await writeBundle(dir, {
        modelName: 'two-tower',
        datasetId: 'older-dataset',
        checkpointId: 'ck-permuted',
        weights: w,
        features,
        meta,
        vocab,
        popularity: rows(ds.items.popularity, 1, pi),
      });
    });
    const env = mockActivityEnv();
    const res = (await env.run(acts().evaluateModel, {
      bundleId: 'bundle-good',
      datasetId: ctx.datasetId,
      championBundleId: 'bundle-permuted',
      gates,
      options: { precisions: ['fp32' as const] },
    })) as EvaluateModelResult;
    const art = JSON.parse(await readFile(join(res.evaluation.path, 'evaluation.json'), 'utf8')) as EvaluationArtifact;
    const a = art.candidate.models.fp32!.overall;
    const b = art.champion!.models.fp32!.overall;
    for (const k of ['auc', 'logLoss', 'hitRate@10', 'ndcg@10', 'mrr', 'recall@50', 'coverage@10', 'users', 'pairs'])
      assert.ok(Math.abs(a[k]! - b[k]!) < 1e-6, `${k}: ${a[k]} vs champion ${b[k]}`);
  });

  void it('infra blessing: loads, answers, p99 within budget; fails on an impossible budget and a broken file', async () => {
    const env = mockActivityEnv();
    const ok = (await env.run(acts().checkServingHealth, {
      bundleId: 'bundle-good',
      smokeRequests: 50,
      p99BudgetMs: 1000,
    })) as CheckServingHealthResult;
    assert.equal(ok.blessed, true, JSON.stringify(ok.gates, null, 1));
    assert.deepEqual(
      ok.gates.map((g) => g.name),
      ['infra:loads', 'infra:smoke', 'infra:p99'],
    );
    const slow = (await env.run(acts().checkServingHealth, {
      bundleId: 'bundle-good',
      smokeRequests: 20,
      p99BudgetMs: 0,
    })) as CheckServingHealthResult;
    assert.equal(slow.blessed, false);
    assert.equal(slow.gates.find((g) => g.name === 'infra:p99')!.passed, false);
    const bad = (await ctx.store.get('bundle', 'bundle-bad')).path;
    await truncate(join(bad, 'recommend.int8.onnx'), 100);
    const broken = (await env.run(acts().checkServingHealth, { bundleId: 'bundle-bad' })) as CheckServingHealthResult;
    assert.equal(broken.blessed, false);
    assert.match(broken.gates[0]!.reason, /recommend.int8.onnx is 100 bytes/);
  });
});
