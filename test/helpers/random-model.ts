/**
 * Random two-tower models and datasets for tests and benches: ModelWeights with the shapes of
 * kinds/two-tower/spec.ts, TowerFeatures (with random stored histories), fitted-looking extras, and (when a dataset
 * folder is needed) a full dataset written with writeTable whose interactions are drawn from the model itself, each
 * user's next item from the model's scores given the items before, so a good model beats the popularity baseline.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactStore } from '../../lib/artifacts';
import { TITLE_LEN, writeTable, type DatasetManifest, type Vocabularies } from '../../lib/data/dataset';
import { writeJsonAtomic } from '../../lib/fs-atomic';
import {
  DEFAULT_MODEL_CONFIG,
  WEIGHT_NAMES,
  catalogScores,
  itemSide,
  weightShapes,
  writeCheckpoint,
  type ModelConfig,
  type ModelExtras,
  type ModelSizes,
  type ModelWeights,
  type TowerFeatures,
} from '../../kinds/two-tower/spec';
import { mulberry32 } from '../../lib/rng';

/** Deterministic PRNG (mulberry32). */
export const rng = mulberry32;

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

export const SMALL_SIZES: ModelSizes = {
  users: 300,
  items: 400,
  segments: 5,
  regions: 6,
  categories: 8,
  brands: 20,
  tokens: 60,
};

export const SMALL_CONFIG: ModelConfig = {
  ...DEFAULT_MODEL_CONFIG,
  embeddingDim: 16,
  featureDim: 4,
  hiddenUnits: 32,
  outputDim: 16,
  historyLength: 10,
};

export interface RandomModel {
  config: ModelConfig;
  sizes: ModelSizes;
  weights: ModelWeights;
  features: TowerFeatures;
  extras: ModelExtras;
}

/**
 * Random weights (embeddings ~ N(0, 0.3), kernels Glorot-scaled), random tower features and stored histories
 * (0 to 15 distinct items per user, none for user 0), and extras: a tenth of the items without an id, a prior
 * falling with the index, prior weight 0.5, non-trivial calibrations.
 */
export function randomModel(opts: { sizes?: ModelSizes; config?: ModelConfig; seed?: number } = {}): RandomModel {
  const sizes = opts.sizes ?? SMALL_SIZES;
  const config = opts.config ?? SMALL_CONFIG;
  const r = rng(opts.seed ?? 1);
  const shapes = weightShapes(config, sizes);
  const weights = {} as ModelWeights;
  for (const name of WEIGHT_NAMES) {
    const shape = shapes[name];
    const n = shape.reduce((a, b) => a * b, 1);
    const std = name.endsWith('/kernel')
      ? Math.sqrt(2 / ((shape[0] ?? 1) + (shape[1] ?? 1))) * 1.5
      : name.endsWith('/bias') || name === 'history_position'
        ? 0.05
        : 0.3;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = gauss(r) * std;
    weights[name] = { shape, data };
  }
  const pick = (k: number) => 1 + Math.floor(r() * (k - 1));
  const titles = new Int32Array(sizes.items * TITLE_LEN);
  for (let i = 0; i < sizes.items; i++) {
    const len = Math.floor(r() * (TITLE_LEN + 1)); // 0..TITLE_LEN tokens, some titles empty
    for (let t = 0; t < len; t++) titles[i * TITLE_LEN + t] = pick(sizes.tokens);
  }
  const historyPtr = new Int32Array(sizes.users + 1);
  const flat: number[] = [];
  for (let u = 0; u < sizes.users; u++) {
    const n = u === 0 ? 0 : Math.floor(r() * 16);
    const seen = new Set<number>();
    while (seen.size < n) seen.add(pick(sizes.items));
    flat.push(...seen);
    historyPtr[u + 1] = flat.length;
  }
  const features: TowerFeatures = {
    userSegment: Int32Array.from({ length: sizes.users }, (_, u) => (u === 0 ? 0 : pick(sizes.segments))),
    userRegion: Int32Array.from({ length: sizes.users }, (_, u) => (u === 0 ? 0 : pick(sizes.regions))),
    itemCategory: Int32Array.from({ length: sizes.items }, (_, i) => (i === 0 ? 0 : pick(sizes.categories))),
    itemBrand: Int32Array.from({ length: sizes.items }, (_, i) => (i === 0 ? 0 : pick(sizes.brands))),
    itemPrice: Float32Array.from({ length: sizes.items }, () => gauss(r)),
    itemTitleTokens: titles,
    historyPtr,
    historyItems: Int32Array.from(flat),
  };
  const extras: ModelExtras = {
    itemHasId: Uint8Array.from({ length: sizes.items }, (_, i) => (i > 0 && r() > 0.1 ? 1 : 0)),
    prior: Float32Array.from({ length: sizes.items }, (_, i) =>
      i === 0 ? 0 : (sizes.items - i) / sizes.items + 0.05 * r(),
    ),
    priorConfig: { windowDays: 7, halfLifeDays: null },
    priorWeight: 0.5,
    // Random weights give logits of tens of units: a small slope keeps probabilities off 0 and 1.
    calibration: { model: { a: 0.15, b: -1.2 }, prior: { a: 3, b: -2.5 } },
  };
  return { config, sizes, weights, features, extras };
}

/**
 * Write a dataset folder for a random model: each user's items drawn one after another, the first from the prior,
 * each next one from softmax(model scores given the items before / 0.5) among the items not taken yet, times
 * increasing per user, split by time 70/15/15. A tenth of the users appear only in the test split (new users).
 * Returns the manifest.
 */
export async function writeRandomDataset(
  dir: string,
  m: RandomModel,
  opts: { id?: string; eventsPerUser?: number; seed?: number } = {},
): Promise<DatasetManifest> {
  const r = rng(opts.seed ?? 7);
  const { sizes, weights, features } = m;
  const side = itemSide(weights, features, m.extras);
  // Scores from the history drawn so far only (not the model's random stored histories).
  const fresh: TowerFeatures = {
    ...features,
    historyPtr: new Int32Array(sizes.users + 1),
    historyItems: new Int32Array(0),
  };
  const perUser = opts.eventsPerUser ?? 12;
  const events: Array<{ u: number; i: number; t: number; l: number }> = [];
  const t0 = Date.UTC(2026, 0, 1);
  const probs = new Float64Array(sizes.items);
  for (let u = 1; u < sizes.users; u++) {
    const newUser = u % 10 === 0;
    const drawn: number[] = [];
    const times = Array.from({ length: perUser }, () => (newUser ? 0.86 + r() * 0.14 : r())).sort((a, b) => a - b);
    for (let e = 0; e < perUser; e++) {
      const { scores, cold } = catalogScores(weights, fresh, m.extras, side, u, drawn);
      let max = -Infinity;
      for (let i = 1; i < sizes.items; i++) if (!drawn.includes(i)) max = Math.max(max, scores[i]!);
      let z = 0;
      for (let i = 1; i < sizes.items; i++) {
        probs[i] = drawn.includes(i) ? 0 : Math.exp(((scores[i] ?? 0) - max) / (cold ? 0.1 : 0.5));
        z += probs[i]!;
      }
      let x = r() * z;
      let item = sizes.items - 1;
      for (let i = 1; i < sizes.items; i++) {
        x -= probs[i]!;
        if (x <= 0 && probs[i]! > 0) {
          item = i;
          break;
        }
      }
      drawn.push(item);
      events.push({
        u,
        i: item,
        t: t0 + Math.floor(times[e]! * 86_400_000 * 30),
        l: [0.25, 0.5, 0.75, 1][Math.floor(r() * 4)] ?? 1,
      });
    }
  }
  events.sort((a, b) => a.t - b.t);
  const trainEnd = t0 + 0.7 * 86_400_000 * 30;
  const validationEnd = t0 + 0.85 * 86_400_000 * 30;
  const split = (lo: number, hi: number) => {
    const es = events.filter((e) => e.t >= lo && e.t < hi);
    return {
      user: Int32Array.from(es, (e) => e.u),
      item: Int32Array.from(es, (e) => e.i),
      label: Float32Array.from(es, (e) => e.l),
      timestamp: Float64Array.from(es, (e) => e.t),
    };
  };
  const train = split(-Infinity, trainEnd);
  const popularity = new Float32Array(sizes.items);
  for (const i of train.item) popularity[i] = (popularity[i] ?? 0) + 1;
  await mkdir(dir, { recursive: true });
  const columns: DatasetManifest['columns'] = {};
  const tables: Record<string, number> = {};
  const write = async (name: string, cols: Parameters<typeof writeTable>[2]) => {
    const res = await writeTable(dir, name, cols);
    Object.assign(columns, res.columns);
    tables[name] = res.rows;
  };
  await write('users', {
    segment: features.userSegment,
    region: features.userRegion,
    signupTime: new Float64Array(sizes.users),
  });
  await write('items', {
    category: features.itemCategory,
    brand: features.itemBrand,
    price: features.itemPrice,
    titleTokens: features.itemTitleTokens,
    popularity,
  });
  const validation = split(trainEnd, validationEnd);
  const test = split(validationEnd, Infinity);
  await write('train', train);
  await write('validation', validation);
  await write('test', test);
  const ids = (prefix: string, n: number) => ['<unk>', ...Array.from({ length: n - 1 }, (_, i) => `${prefix}${i + 1}`)];
  const vocab: Vocabularies = {
    users: ids('u', sizes.users),
    items: ids('i', sizes.items),
    categories: ids('cat', sizes.categories),
    brands: ids('brand', sizes.brands),
    segments: ids('seg', sizes.segments),
    regions: ids('reg', sizes.regions),
    tokens: ids('tok', sizes.tokens),
  };
  await writeJsonAtomic(join(dir, 'vocab.json'), vocab);
  const manifest: DatasetManifest = {
    id: opts.id ?? 'random-dataset',
    createdAt: new Date(t0).toISOString(),
    source: { kind: 'synthetic', dir, inputsHash: 'random' },
    counts: {
      users: sizes.users,
      items: sizes.items,
      events: events.length,
      train: train.user.length,
      validation: validation.user.length,
      test: test.user.length,
    },
    split: { trainEnd, validationEnd },
    columns,
    tables,
    stats: {},
    preprocessing: {},
  };
  await writeJsonAtomic(join(dir, 'manifest.json'), manifest);
  return manifest;
}

/** A temp artifact store holding a random dataset and a checkpoint of a random model trained "on" it. */
export async function storeWithModel(
  root: string,
  opts: { seed?: number; datasetId?: string; checkpointId?: string; model?: RandomModel } = {},
): Promise<{ store: ArtifactStore; model: RandomModel; datasetId: string; checkpointId: string }> {
  const store = new ArtifactStore(root);
  const model = opts.model ?? randomModel({ seed: opts.seed ?? 1 });
  const datasetId = opts.datasetId ?? 'ds-random';
  const checkpointId = opts.checkpointId ?? `ck-random-${opts.seed ?? 1}`;
  await store.put('dataset', datasetId, async (dir) => {
    await writeRandomDataset(dir, model, { id: datasetId });
  });
  await store.put('checkpoint', checkpointId, (dir) =>
    writeCheckpoint(
      dir,
      {
        config: model.config,
        sizes: model.sizes,
        datasetId,
        backend: 'cpu',
        gpu: false,
        epoch: 0,
        history: [],
        extras: model.extras,
      },
      model.weights,
    ),
  );
  return { store, model, datasetId, checkpointId };
}
