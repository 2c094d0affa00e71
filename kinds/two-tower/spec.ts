/**
 * The two-tower recommender, defined once: hyperparameters, weight names and shapes, the checkpoint format, and a
 * plain-JS forward pass (the reference that the tfjs model, the ONNX export and the int8 model are checked against).
 *
 * User tower: concat(E_user[u], E_segment[seg(u)], E_region[reg(u)]) -> Dense(hidden, relu) -> Dense(outDim)
 * Item tower: concat(E_item[i], E_category[cat(i)], E_brand[brand(i)], mean(E_token[title(i)] over non-zero tokens),
 *             price(i)) -> Dense(hidden, relu) -> Dense(outDim)
 * Score: sigmoid(dot(user vector, item vector)).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TITLE_LEN, type LoadedDataset } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/fs-atomic';

/** Training hyperparameters, one typed config with defaults ({@link DEFAULT_MODEL_CONFIG}). */
export interface ModelConfig {
  /** Width of the user and item id embeddings. @default 32 */
  embeddingDim: number;
  /** Width of the side-feature embeddings (segment, region, category, brand, token). @default 8 */
  featureDim: number;
  /** Hidden units of each tower. @default 64 */
  hiddenUnits: number;
  /** Output width of each tower (the dot-product space). @default 32 */
  outputDim: number;
  /** @default 8 */
  epochs: number;
  /** @default 1024 */
  batchSize: number;
  /** Adam learning rate at epoch 0. @default 0.005 */
  learningRate: number;
  /** Multiplied into the learning rate after each epoch. @default 0.9 */
  learningRateDecay: number;
  /** Sampled negatives per positive. @default 4 */
  negativesPerPositive: number;
  /** L2 penalty on the embeddings. @default 1e-6 */
  l2: number;
  /** Stop when validation NDCG@10 has not improved for this many epochs. @default 2 */
  earlyStoppingPatience: number;
  /** Seed for initialization and negative sampling. @default 42 */
  seed: number;
}

export const DEFAULT_MODEL_CONFIG: ModelConfig = {
  embeddingDim: 32,
  featureDim: 8,
  hiddenUnits: 64,
  outputDim: 32,
  epochs: 8,
  batchSize: 1024,
  learningRate: 0.005,
  learningRateDecay: 0.9,
  negativesPerPositive: 4,
  l2: 1e-6,
  earlyStoppingPatience: 2,
  seed: 42,
};

/** Vocabulary sizes a model is built for (each includes index 0). */
export interface ModelSizes {
  users: number;
  items: number;
  segments: number;
  regions: number;
  categories: number;
  brands: number;
  tokens: number;
}

export function sizesOf(ds: LoadedDataset): ModelSizes {
  const v = ds.vocab;
  return {
    users: v.users.length,
    items: v.items.length,
    segments: v.segments.length,
    regions: v.regions.length,
    categories: v.categories.length,
    brands: v.brands.length,
    tokens: v.tokens.length,
  };
}

/** Weight names in checkpoint order, and their shapes. Renaming one breaks old checkpoints. */
export function weightShapes(c: ModelConfig, s: ModelSizes): Record<WeightName, number[]> {
  const userIn = c.embeddingDim + 2 * c.featureDim;
  const itemIn = c.embeddingDim + 3 * c.featureDim + 1;
  return {
    user_embedding: [s.users, c.embeddingDim],
    segment_embedding: [s.segments, c.featureDim],
    region_embedding: [s.regions, c.featureDim],
    'user_dense1/kernel': [userIn, c.hiddenUnits],
    'user_dense1/bias': [c.hiddenUnits],
    'user_dense2/kernel': [c.hiddenUnits, c.outputDim],
    'user_dense2/bias': [c.outputDim],
    item_embedding: [s.items, c.embeddingDim],
    category_embedding: [s.categories, c.featureDim],
    brand_embedding: [s.brands, c.featureDim],
    token_embedding: [s.tokens, c.featureDim],
    'item_dense1/kernel': [itemIn, c.hiddenUnits],
    'item_dense1/bias': [c.hiddenUnits],
    'item_dense2/kernel': [c.hiddenUnits, c.outputDim],
    'item_dense2/bias': [c.outputDim],
  };
}

export const WEIGHT_NAMES = [
  'user_embedding',
  'segment_embedding',
  'region_embedding',
  'user_dense1/kernel',
  'user_dense1/bias',
  'user_dense2/kernel',
  'user_dense2/bias',
  'item_embedding',
  'category_embedding',
  'brand_embedding',
  'token_embedding',
  'item_dense1/kernel',
  'item_dense1/bias',
  'item_dense2/kernel',
  'item_dense2/bias',
] as const;
export type WeightName = (typeof WEIGHT_NAMES)[number];

/** A weight tensor, row-major float32. */
export interface Weight {
  shape: number[];
  data: Float32Array;
}
export type ModelWeights = Record<WeightName, Weight>;

/** What a checkpoint records besides the weights. */
export interface CheckpointMeta {
  config: ModelConfig;
  sizes: ModelSizes;
  datasetId: string;
  /** The tfjs backend that trained it: `tensorflow` (tfjs-node / -gpu), `wasm` or `cpu`. */
  backend: string;
  /** Whether the GPU build of tfjs-node ran. */
  gpu: boolean;
  /** Last finished epoch (0-based). */
  epoch: number;
  /** Per-epoch history: loss, validation metrics, seconds. */
  history: Array<Record<string, number>>;
}

/**
 * Write `checkpoint.json` and `weights.bin` into a folder (each atomically).
 */
export async function writeCheckpoint(dir: string, meta: CheckpointMeta, weights: ModelWeights): Promise<void> {
  const shapes = weightShapes(meta.config, meta.sizes);
  const entries: Array<{ name: WeightName; shape: number[]; offset: number; length: number }> = [];
  let offset = 0;
  for (const name of WEIGHT_NAMES) {
    const w = weights[name];
    const want = shapes[name];
    if (w.shape.join('x') !== want.join('x') || w.data.length !== want.reduce((a, b) => a * b, 1)) {
      throw new RecflowError(
        ErrorType.InvalidInput,
        `weight ${name}: shape ${w.shape.join('x')}, expected ${want.join('x')}`,
      );
    }
    entries.push({ name, shape: w.shape, offset, length: w.data.length });
    offset += w.data.length;
  }
  const all = new Float32Array(offset);
  for (const e of entries) all.set(weights[e.name].data, e.offset);
  await writeFileAtomic(join(dir, 'weights.bin'), new Uint8Array(all.buffer));
  await writeJsonAtomic(join(dir, 'checkpoint.json'), { ...meta, weights: entries });
}

/** Read a checkpoint written by {@link writeCheckpoint}. */
export async function readCheckpoint(dir: string): Promise<{ meta: CheckpointMeta; weights: ModelWeights }> {
  let parsed: CheckpointMeta & {
    weights: Array<{ name: WeightName; shape: number[]; offset: number; length: number }>;
  };
  let buf: Buffer;
  try {
    parsed = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'));
    buf = await readFile(join(dir, 'weights.bin'));
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: ${(err as Error).message}`);
  }
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  const all = new Float32Array(copy.buffer);
  const weights = {} as ModelWeights;
  for (const e of parsed.weights) {
    if (e.offset + e.length > all.length)
      throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: weights.bin truncated`);
    weights[e.name] = { shape: e.shape, data: all.slice(e.offset, e.offset + e.length) };
  }
  const { weights: _w, ...meta } = parsed;
  return { meta, weights };
}

/** Features the towers read, from the dataset (the same tables the ONNX graphs embed). */
export interface TowerFeatures {
  userSegment: Int32Array;
  userRegion: Int32Array;
  itemCategory: Int32Array;
  itemBrand: Int32Array;
  itemPrice: Float32Array;
  itemTitleTokens: Int32Array;
}

export function towerFeatures(ds: LoadedDataset): TowerFeatures {
  return {
    userSegment: ds.users.segment,
    userRegion: ds.users.region,
    itemCategory: ds.items.category,
    itemBrand: ds.items.brand,
    itemPrice: ds.items.price,
    itemTitleTokens: ds.items.titleTokens,
  };
}

function row(w: Weight, i: number): Float32Array {
  const d = w.shape[1] ?? 1;
  return w.data.subarray(i * d, (i + 1) * d);
}

function dense(x: Float64Array, kernel: Weight, bias: Weight, relu: boolean): Float64Array {
  const [inDim, outDim] = kernel.shape as [number, number];
  const out = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let s = bias.data[o] ?? 0;
    for (let i = 0; i < inDim; i++) s += (x[i] ?? 0) * (kernel.data[i * outDim + o] ?? 0);
    out[o] = relu && s < 0 ? 0 : s;
  }
  return out;
}

/** Reference user tower (float64 arithmetic). */
export function userVector(w: ModelWeights, f: TowerFeatures, user: number): Float64Array {
  const parts = [
    row(w.user_embedding, user),
    row(w.segment_embedding, f.userSegment[user] ?? 0),
    row(w.region_embedding, f.userRegion[user] ?? 0),
  ];
  const x = Float64Array.from(parts.flatMap((p) => Array.from(p)));
  return dense(
    dense(x, w['user_dense1/kernel'], w['user_dense1/bias'], true),
    w['user_dense2/kernel'],
    w['user_dense2/bias'],
    false,
  );
}

/** Reference item tower (float64 arithmetic). Title: mean of the non-zero tokens' embeddings (zeros if none). */
export function itemVector(w: ModelWeights, f: TowerFeatures, item: number): Float64Array {
  const dt = w.token_embedding.shape[1] ?? 0;
  const title = new Float64Array(dt);
  let n = 0;
  for (let t = 0; t < TITLE_LEN; t++) {
    const tok = f.itemTitleTokens[item * TITLE_LEN + t] ?? 0;
    if (tok === 0) continue;
    const r = row(w.token_embedding, tok);
    for (let j = 0; j < dt; j++) title[j] = (title[j] ?? 0) + (r[j] ?? 0);
    n++;
  }
  if (n > 0) for (let j = 0; j < dt; j++) title[j] = (title[j] ?? 0) / n;
  const x = Float64Array.from([
    ...row(w.item_embedding, item),
    ...row(w.category_embedding, f.itemCategory[item] ?? 0),
    ...row(w.brand_embedding, f.itemBrand[item] ?? 0),
    ...title,
    f.itemPrice[item] ?? 0,
  ]);
  return dense(
    dense(x, w['item_dense1/kernel'], w['item_dense1/bias'], true),
    w['item_dense2/kernel'],
    w['item_dense2/bias'],
    false,
  );
}

/** Reference score: sigmoid of the dot product of the towers. */
export function referenceScore(w: ModelWeights, f: TowerFeatures, user: number, item: number): number {
  const u = userVector(w, f, user);
  const v = itemVector(w, f, item);
  let s = 0;
  for (let j = 0; j < u.length; j++) s += (u[j] ?? 0) * (v[j] ?? 0);
  return 1 / (1 + Math.exp(-s));
}
