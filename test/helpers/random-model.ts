/**
 * Random two-tower models and datasets for tests and benches: ModelWeights with the shapes of lib/model-spec.ts,
 * TowerFeatures, and (when a dataset folder is needed) a full dataset written with writeTable whose interactions are
 * drawn from the model itself, so a good model beats the popularity baseline on it.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactStore } from '../../lib/artifacts';
import { TITLE_LEN, writeTable, type DatasetManifest, type Vocabularies } from '../../lib/data/dataset';
import { writeJsonAtomic } from '../../lib/fs-atomic';
import {
  DEFAULT_MODEL_CONFIG,
  WEIGHT_NAMES,
  userVector,
  weightShapes,
  writeCheckpoint,
  type ModelConfig,
  type ModelSizes,
  type ModelWeights,
  type TowerFeatures,
} from '../../kinds/two-tower/spec';
import { computeItemMatrix } from '../../kinds/two-tower/export';
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
};

export interface RandomModel {
  config: ModelConfig;
  sizes: ModelSizes;
  weights: ModelWeights;
  features: TowerFeatures;
}

/** Random weights (embeddings ~ N(0, 0.3), kernels Glorot-scaled) and random tower features. */
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
      : name.endsWith('/bias')
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
  const features: TowerFeatures = {
    userSegment: Int32Array.from({ length: sizes.users }, (_, u) => (u === 0 ? 0 : pick(sizes.segments))),
    userRegion: Int32Array.from({ length: sizes.users }, (_, u) => (u === 0 ? 0 : pick(sizes.regions))),
    itemCategory: Int32Array.from({ length: sizes.items }, (_, i) => (i === 0 ? 0 : pick(sizes.categories))),
    itemBrand: Int32Array.from({ length: sizes.items }, (_, i) => (i === 0 ? 0 : pick(sizes.brands))),
    itemPrice: Float32Array.from({ length: sizes.items }, () => gauss(r)),
    itemTitleTokens: titles,
  };
  return { config, sizes, weights, features };
}

/**
 * Write a dataset folder for a random model: interactions sampled per user from softmax(model logits / 0.5) over
 * the catalog (with a popularity bias), split by time 70/15/15. A tenth of the users appear only in the test split
 * (new users). Returns the manifest.
 */
export async function writeRandomDataset(
  dir: string,
  m: RandomModel,
  opts: { id?: string; eventsPerUser?: number; seed?: number } = {},
): Promise<DatasetManifest> {
  const r = rng(opts.seed ?? 7);
  const { sizes, weights, features } = m;
  const im = computeItemMatrix(weights, features);
  const d = m.config.outputDim;
  const perUser = opts.eventsPerUser ?? 12;
  const events: Array<{ u: number; i: number; t: number; l: number }> = [];
  const t0 = Date.UTC(2026, 0, 1);
  const logits = new Float64Array(sizes.items);
  for (let u = 1; u < sizes.users; u++) {
    const uv = userVector(weights, features, u);
    let max = -Infinity;
    for (let i = 1; i < sizes.items; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (uv[j] ?? 0) * (im[i * d + j] ?? 0);
      s = s / 0.5 - 0.002 * i; // low indices a little more popular
      logits[i] = s;
      max = Math.max(max, s);
    }
    let z = 0;
    for (let i = 1; i < sizes.items; i++) z += Math.exp((logits[i] ?? 0) - max);
    const newUser = u % 10 === 0;
    for (let e = 0; e < perUser; e++) {
      let x = r() * z;
      let item = sizes.items - 1;
      for (let i = 1; i < sizes.items; i++) {
        x -= Math.exp((logits[i] ?? 0) - max);
        if (x <= 0) {
          item = i;
          break;
        }
      }
      const frac = newUser ? 0.86 + r() * 0.14 : r();
      events.push({
        u,
        i: item,
        t: t0 + Math.floor(frac * 86_400_000 * 30),
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
      { config: model.config, sizes: model.sizes, datasetId, backend: 'cpu', gpu: false, epoch: 0, history: [] },
      model.weights,
    ),
  );
  return { store, model, datasetId, checkpointId };
}
