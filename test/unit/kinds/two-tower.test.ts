/**
 * The two-tower kind end to end on a planted dataset (segments prefer categories; titles carry category tokens):
 * trained with tfjs, exported to ONNX, queried as serving queries it. Cold start and calibration.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadDataset, type LoadedDataset } from '../../../lib/data/dataset';
import { evaluateBundle } from '../../../lib/eval/evaluate';
import { selectBackend } from '../../../lib/train/backend';
import { writeBundle } from '../../../kinds/two-tower/bundle';
import {
  DEFAULT_MODEL_CONFIG,
  itemOutput,
  sizesOf,
  towerFeatures,
  type ModelConfig,
  type ModelExtras,
  type ModelWeights,
} from '../../../kinds/two-tower/spec';
import { trainTwoTower } from '../../../kinds/two-tower/trainer';
import { tempHome } from '../../helpers/temporal';
import { preferredCategories, writeTinyDataset } from '../../helpers/tiny-dataset';

const CONFIG: ModelConfig = {
  ...DEFAULT_MODEL_CONFIG,
  embeddingDim: 16,
  featureDim: 8,
  hiddenUnits: 32,
  outputDim: 16,
  historyLength: 8,
  epochs: 8,
  batchSize: 256,
  learningRate: 0.01,
};
const CATEGORIES = 8;

const i64 = (xs: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), dims);

void describe('two-tower kind: cold start and calibration', () => {
  let ds: LoadedDataset;
  let weights: ModelWeights;
  let extras: ModelExtras;
  let bundle: string;
  /** An item whose every training interaction was removed before training. */
  let unseen: number;
  let rec: ort.InferenceSession;

  const recommend = async (user: number, history: number[], k = 10): Promise<number[]> => {
    const out = await rec.run({
      user: i64([user], [1]),
      k: i64([k], [1]),
      exclude: i64([], [1, 0]),
      history: i64(history, [1, history.length]),
    });
    return Array.from(out.items!.data as BigInt64Array, Number);
  };
  const categoryOf = (i: number) => ds.items.category[i]!;

  before(async () => {
    await selectBackend('wasm');
    const dir = tempHome('recflow-two-tower-kind-');
    await writeTinyDataset(join(dir, 'data'), { users: 240, items: 120, perUser: 14, categories: CATEGORIES });
    ds = await loadDataset(join(dir, 'data'));
    // Take item `unseen` out of the training split: the model never sees it interacted with.
    unseen = ds.splits.train.item[0]!;
    const keep = Array.from(ds.splits.train.item, (i) => i !== unseen);
    const t = ds.splits.train;
    const pick = <T extends Int32Array | Float32Array | Float64Array>(a: T): T => a.filter((_, r) => keep[r]) as T;
    ds.splits.train = { user: pick(t.user), item: pick(t.item), label: pick(t.label), timestamp: pick(t.timestamp) };
    ds.items.popularity[unseen] = 0;
    const r = await trainTwoTower(ds, CONFIG);
    weights = r.weights;
    extras = r.extras;
    bundle = join(dir, 'bundle');
    await mkdir(bundle);
    await writeBundle(bundle, {
      modelName: 'two-tower',
      datasetId: ds.manifest.id,
      checkpointId: 'ck',
      weights,
      features: towerFeatures(ds),
      meta: { config: CONFIG, sizes: sizesOf(ds), extras },
      vocab: ds.vocab,
      popularity: ds.items.popularity,
    });
    rec = await ort.InferenceSession.create(join(bundle, 'recommend.fp32.onnx'));
  });

  void it('a new user with a history gets a personalised ranking that beats recent popularity on the planted signal', async () => {
    // For each segment: a user unknown to the model (index 0) whose history is 5 items of the segment's categories.
    let model = 0;
    let prior = 0;
    const byPrior = [...Array(ds.vocab.items.length).keys()]
      .slice(1)
      .sort((a, b) => extras.prior[b]! - extras.prior[a]!);
    for (let s = 1; s <= 4; s++) {
      const cats = new Set(preferredCategories(s, CATEGORIES));
      const history = byPrior.filter((i) => cats.has(categoryOf(i)) && i !== unseen).slice(0, 5);
      const top = await recommend(0, history);
      model += top.filter((i) => cats.has(categoryOf(i))).length;
      prior += byPrior
        .filter((i) => !history.includes(i))
        .slice(0, 10)
        .filter((i) => cats.has(categoryOf(i))).length;
    }
    // 2 of 8 categories: chance is 25% of the top 10.
    assert.ok(model >= 0.8 * 40, `top-10 items in the history's categories: model ${model}/40, prior ${prior}/40`);
    assert.ok(model > prior + 10, `model ${model}/40 vs recent popularity ${prior}/40`);
  });

  void it('a user with no history gets the recent-popularity ranking', async () => {
    const byPrior = [...Array(ds.vocab.items.length).keys()]
      .slice(1)
      .sort((a, b) => extras.prior[b]! - extras.prior[a]! || a - b);
    assert.deepEqual(await recommend(0, [], 20), byPrior.slice(0, 20));
    assert.deepEqual(await recommend(0, [0, 0, 0], 20), byPrior.slice(0, 20), 'padding only');
    assert.ok(extras.priorConfig, 'the prior is recent popularity fitted on validation');
  });

  void it('an item never seen in training is scored from its features (no id), high for users of its category', async () => {
    assert.equal(extras.itemHasId[unseen], 0);
    assert.equal(ds.items.popularity[unseen], 0);
    // Its vector is the features-only tower: the id embedding, trained or not, does not enter.
    const withId = itemOutput(weights, towerFeatures(ds), unseen, true);
    const without = itemOutput(weights, towerFeatures(ds), unseen, false);
    assert.ok(
      withId.some((x, j) => Math.abs(x - without[j]!) > 1e-6),
      'the gate matters',
    );
    // Rank of the unseen item for a history in its category vs in other categories.
    const c = categoryOf(unseen);
    const byPrior = [...Array(ds.vocab.items.length).keys()]
      .slice(1)
      .sort((a, b) => extras.prior[b]! - extras.prior[a]!);
    const rankFor = async (cat: number) => {
      const history = byPrior.filter((i) => categoryOf(i) === cat && i !== unseen).slice(0, 5);
      const all = await recommend(0, history, ds.vocab.items.length - 1);
      return all.indexOf(unseen);
    };
    // Segments prefer categories in pairs (1 and 2, 3 and 4, ...): a history of the partner category is as close.
    const partner = c % 2 === 1 ? c + 1 : c - 1;
    const own = await rankFor(c);
    const others: number[] = [];
    for (let cat = 1; cat <= CATEGORIES; cat++) if (cat !== c && cat !== partner) others.push(await rankFor(cat));
    const n = ds.vocab.items.length - 1;
    assert.ok(own < n / 4, `rank ${own} of ${n} for a history of its own category`);
    assert.ok(
      others.every((r) => r > own),
      `own category rank ${own}, unrelated categories ${others.join(', ')}`,
    );
  });

  void it('the calibration improves log loss: below the base rate and below the uncalibrated sigmoid', async () => {
    const report = await evaluateBundle(bundle, ds, { precisions: ['fp32'], baselines: false });
    const m = report.models.fp32!.overall;
    // The pointwise protocol has 1 positive per 4 negatives: a constant 0.2 scores the base rate's log loss.
    const base = -(0.2 * Math.log(0.2) + 0.8 * Math.log(0.8));
    const raw = join(tempHome('recflow-two-tower-raw-'), 'bundle');
    await mkdir(raw);
    await writeBundle(raw, {
      modelName: 'two-tower',
      datasetId: ds.manifest.id,
      checkpointId: 'ck-raw',
      weights,
      features: towerFeatures(ds),
      meta: {
        config: CONFIG,
        sizes: sizesOf(ds),
        extras: { ...extras, calibration: { model: { a: 1, b: 0 }, prior: { a: 1, b: 0 } } },
      },
      vocab: ds.vocab,
      popularity: ds.items.popularity,
    });
    const uncal = (await evaluateBundle(raw, ds, { precisions: ['fp32'], baselines: false })).models.fp32!.overall;
    assert.ok(m.logLoss! < base, `log loss ${m.logLoss} vs base rate ${base}`);
    assert.ok(m.logLoss! < uncal.logLoss!, `calibrated ${m.logLoss} vs uncalibrated ${uncal.logLoss}`);
    // Calibration keeps the order: AUC and rankings are the same.
    assert.ok(Math.abs(m.auc! - uncal.auc!) < 1e-9 && m['ndcg@10'] === uncal['ndcg@10']);
  });
});
