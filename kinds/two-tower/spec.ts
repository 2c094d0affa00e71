/**
 * The two-tower recommender, defined once: hyperparameters, weight names and shapes, the checkpoint format, and a
 * plain-JS forward pass (the reference that the tfjs model, the ONNX export and the int8 model are checked against).
 *
 * Item tower (every item of the catalogue, new ones included):
 *   x_i = concat(g_i * E_item[i], E_category[cat(i)], E_brand[brand(i)], mean(E_token[title(i)]), price(i))
 *   [v_i, b_i] = Dense(outputDim + 1)(relu(Dense(hidden)(x_i)))     (v_i the item vector, b_i its bias)
 *   g_i = 1 when item i has at least `minItemInteractions` training interactions (`itemHasId`), else 0: a new or
 *   rare item is scored from its features only (training drops ids at random, `itemIdDropout`, so the feature path
 *   carries the signal for every item).
 * User tower (no per-user parameters: a user is their history, so new users need no retraining):
 *   h = sum_k w_k v_{hist_k} / sum_k w_k over the user's last `historyLength` distinct items, rank k = 0 the most
 *       recent, w_k = exp(history_position[k]) (a learned recency weighting, initialised to a half-life of
 *       {@link POSITION_HALF_LIFE} items);
 *   u = h + Dense(outputDim)(relu(Dense(hidden)(concat(h, E_segment[seg(u)], E_region[reg(u)]))))
 * Ranking score:
 *   s(u, i) = u . v_i + b_i + priorWeight * log(PRIOR_FLOOR + prior_i)
 *   where prior is the recent-popularity score (lib/recsys/recent-popularity.ts, window chosen on validation; an
 *   item without any training interaction gets the median log-prior, {@link logPrior}) and `priorWeight` is chosen
 *   on validation each epoch. A request with no usable history item scores `prior_i`
 *   itself (the cold-start ranking is recent popularity).
 * Probability: Platt scaling fitted on validation pairs, `sigmoid(a s + b)`, one calibration for model scores and one
 *   for prior scores (lib/recsys/calibration.ts).
 *
 * History rows as the graphs and {@link historyRanks} read them: item indices oldest first, most recent last,
 * 0-padded (anywhere); an item counts once, at its last position; indices outside `[1, items)` are ignored. A
 * trained user's stored history (the last training items, {@link TowerFeatures.historyItems}) comes first, then the
 * request's `history`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TITLE_LEN, type LoadedDataset } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/fs-atomic';
import { NO_CALIBRATION, type Calibration } from '../../lib/recsys/calibration';
import { userHistories } from '../../lib/recsys/interactions';
import type { RecentPopularityConfig } from '../../lib/recsys/recent-popularity';

/** Training hyperparameters, one typed config with defaults ({@link DEFAULT_MODEL_CONFIG}). */
export interface ModelConfig {
  /** Width of the item id embedding. @default 32 */
  embeddingDim: number;
  /** Width of the side-feature embeddings (segment, region, category, brand, token). @default 16 */
  featureDim: number;
  /** Hidden units of each tower. @default 128 */
  hiddenUnits: number;
  /** Output width of each tower (the dot-product space). @default 64 */
  outputDim: number;
  /** Most recent distinct items of a user's history the user tower pools. @default 50 */
  historyLength: number;
  /** @default 40 */
  epochs: number;
  /** Examples (next-item targets) per step. @default 512 */
  batchSize: number;
  /** Adam learning rate at epoch 0. @default 0.002 */
  learningRate: number;
  /** Multiplied into the learning rate after each epoch. @default 0.95 */
  learningRateDecay: number;
  /**
   * Decoupled weight decay (AdamW) on every embedding table and kernel: each step multiplies them by
   * `1 - learningRate * l2`. @default 0.05
   */
  l2: number;
  /** Dropout rate of the user tower's input (training only). @default 0.2 */
  dropout: number;
  /** Share of history items left out of each training example (at least one kept). @default 0.2 */
  historyDropout: number;
  /**
   * A training example's history ends a random gap before its target, drawn uniformly up to this many validation
   * windows (`validationEnd - trainEnd`): the evaluation and a bundle's stored history see the user as of the end of
   * training, a window or more before what they predict. 0: the items just before the target. @default 1
   */
  historyGap: number;
  /** Share of item ids hidden in each training step, so the feature path learns to carry every item. @default 0.2 */
  itemIdDropout: number;
  /** Training interactions an item needs for its id embedding to be used. @default 3 */
  minItemInteractions: number;
  /**
   * Catalogue size up to which every step scores the whole catalogue (full softmax); larger catalogues score the
   * batch's items plus this many uniformly drawn ones, with the sampling correction. @default 8192
   */
  sampledItems: number;
  /** Stop when validation NDCG@10 has not improved for this many epochs. @default 4 */
  earlyStoppingPatience: number;
  /** Seed for initialization, sampling and dropout. @default 42 */
  seed: number;
}

export const DEFAULT_MODEL_CONFIG: ModelConfig = {
  embeddingDim: 32,
  featureDim: 16,
  hiddenUnits: 128,
  outputDim: 64,
  historyLength: 50,
  epochs: 40,
  batchSize: 512,
  learningRate: 0.002,
  learningRateDecay: 0.95,
  l2: 0.05,
  dropout: 0.2,
  historyDropout: 0.2,
  historyGap: 1,
  itemIdDropout: 0.2,
  minItemInteractions: 3,
  sampledItems: 8192,
  earlyStoppingPatience: 4,
  seed: 42,
};

/** Initial half-life, in history positions, of the learned recency weighting. */
export const POSITION_HALF_LIFE = 10;

/** `log(PRIOR_FLOOR + prior)`: the floor keeps an item never seen recently finite (prior scores are in [0, 1.5)). */
export const PRIOR_FLOOR = 0.01;

/** Weights of the recency log-prior tried on validation after each epoch (0: the model alone). */
export const PRIOR_WEIGHT_GRID: readonly number[] = [0, 0.25, 0.5, 1, 2];

/** Training items per user kept by {@link towerFeatures} (the export stores the last `historyLength`). */
export const STORED_HISTORY_CAP = 200;

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
  const itemIn = c.embeddingDim + 3 * c.featureDim + 1;
  const userIn = c.outputDim + 2 * c.featureDim;
  return {
    item_embedding: [s.items, c.embeddingDim],
    category_embedding: [s.categories, c.featureDim],
    brand_embedding: [s.brands, c.featureDim],
    token_embedding: [s.tokens, c.featureDim],
    'item_dense1/kernel': [itemIn, c.hiddenUnits],
    'item_dense1/bias': [c.hiddenUnits],
    'item_dense2/kernel': [c.hiddenUnits, c.outputDim + 1],
    'item_dense2/bias': [c.outputDim + 1],
    history_position: [c.historyLength],
    segment_embedding: [s.segments, c.featureDim],
    region_embedding: [s.regions, c.featureDim],
    'user_dense1/kernel': [userIn, c.hiddenUnits],
    'user_dense1/bias': [c.hiddenUnits],
    'user_dense2/kernel': [c.hiddenUnits, c.outputDim],
    'user_dense2/bias': [c.outputDim],
  };
}

export const WEIGHT_NAMES = [
  'item_embedding',
  'category_embedding',
  'brand_embedding',
  'token_embedding',
  'item_dense1/kernel',
  'item_dense1/bias',
  'item_dense2/kernel',
  'item_dense2/bias',
  'history_position',
  'segment_embedding',
  'region_embedding',
  'user_dense1/kernel',
  'user_dense1/bias',
  'user_dense2/kernel',
  'user_dense2/bias',
] as const;
export type WeightName = (typeof WEIGHT_NAMES)[number];

/** Weights that weight decay applies to (tables and kernels; not biases nor the recency weighting). */
export const DECAYED_WEIGHTS: ReadonlySet<WeightName> = new Set(
  WEIGHT_NAMES.filter((n) => !n.endsWith('/bias') && n !== 'history_position'),
);

/** A weight tensor, row-major float32. */
export interface Weight {
  shape: number[];
  data: Float32Array;
}
export type ModelWeights = Record<WeightName, Weight>;

/** What training fits besides the weights (all by item index). */
export interface ModelExtras {
  /** 1 where the item's id embedding is used (enough training interactions), 0 where only its features are. */
  itemHasId: Uint8Array;
  /** Recent-popularity scores: the cold-start ranking and the log-prior of the score. */
  prior: Float32Array;
  /** The recent-popularity setting validation chose (null: none fitted, e.g. a test model). */
  priorConfig: RecentPopularityConfig | null;
  /** Weight of `log(PRIOR_FLOOR + prior)` in the score, chosen on validation. */
  priorWeight: number;
  /** Probabilities: `model` for model scores, `prior` for prior scores (cold requests). */
  calibration: { model: Calibration; prior: Calibration };
}

/** Extras of a model without fitted ones: every id used, `prior` as given (e.g. popularity), no calibration. */
export function defaultExtras(prior: Float32Array): ModelExtras {
  let max = 0;
  for (const p of prior) max = Math.max(max, p);
  return {
    itemHasId: new Uint8Array(prior.length).fill(1),
    prior: Float32Array.from(prior, (p) => (max > 0 ? p / max : 0)),
    priorConfig: null,
    priorWeight: 0,
    calibration: { model: NO_CALIBRATION, prior: NO_CALIBRATION },
  };
}

/** The checkpoint format this trainer writes and reads. */
export const CHECKPOINT_FORMAT = 'recflow-two-tower/3';

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
  extras: ModelExtras;
}

type Entry = { name: string; shape: number[]; offset: number; length: number };

/**
 * Write `checkpoint.json` and `weights.bin` into a folder (each atomically). `weights.bin` holds the weights in
 * {@link WEIGHT_NAMES} order, then the extras' arrays (`extras/itemHasId`, `extras/prior`), all float32.
 */
export async function writeCheckpoint(dir: string, meta: CheckpointMeta, weights: ModelWeights): Promise<void> {
  const shapes = weightShapes(meta.config, meta.sizes);
  const entries: Entry[] = [];
  const parts: Float32Array[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], data: Float32Array) => {
    entries.push({ name, shape, offset, length: data.length });
    parts.push(data);
    offset += data.length;
  };
  for (const name of WEIGHT_NAMES) {
    const w = weights[name];
    const want = shapes[name];
    if (w.shape.join('x') !== want.join('x') || w.data.length !== want.reduce((a, b) => a * b, 1)) {
      throw new RecflowError(
        ErrorType.InvalidInput,
        `weight ${name}: shape ${w.shape.join('x')}, expected ${want.join('x')}`,
      );
    }
    add(name, w.shape, w.data);
  }
  const { itemHasId, prior, ...scalars } = meta.extras;
  if (itemHasId.length !== meta.sizes.items || prior.length !== meta.sizes.items)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `extras: itemHasId ${itemHasId.length} and prior ${prior.length} values, expected ${meta.sizes.items}`,
    );
  add('extras/itemHasId', [itemHasId.length], Float32Array.from(itemHasId));
  add('extras/prior', [prior.length], prior);
  const all = new Float32Array(offset);
  entries.forEach((e, k) => all.set(parts[k]!, e.offset));
  await writeFileAtomic(join(dir, 'weights.bin'), new Uint8Array(all.buffer));
  await writeJsonAtomic(join(dir, 'checkpoint.json'), {
    format: CHECKPOINT_FORMAT,
    ...meta,
    extras: scalars,
    weights: entries,
  });
}

/**
 * Read a checkpoint written by {@link writeCheckpoint}.
 * @throws {RecflowError} `ArtifactMissing` when a file is missing or truncated, or the checkpoint is of another
 *   format (an older trainer's: retrain it).
 */
export async function readCheckpoint(dir: string): Promise<{ meta: CheckpointMeta; weights: ModelWeights }> {
  let parsed: Omit<CheckpointMeta, 'extras'> & {
    format?: string;
    extras: Omit<ModelExtras, 'itemHasId' | 'prior'>;
    weights: Entry[];
  };
  let buf: Buffer;
  try {
    parsed = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'));
    buf = await readFile(join(dir, 'weights.bin'));
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: ${(err as Error).message}`);
  }
  if (parsed.format !== CHECKPOINT_FORMAT)
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `checkpoint ${dir}: format '${parsed.format ?? 'recflow-two-tower/2 or older'}', this trainer reads '${CHECKPOINT_FORMAT}': train it again`,
    );
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  const all = new Float32Array(copy.buffer);
  const arrays = new Map<string, Weight>();
  for (const e of parsed.weights) {
    if (e.offset + e.length > all.length)
      throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: weights.bin truncated`);
    arrays.set(e.name, { shape: e.shape, data: all.slice(e.offset, e.offset + e.length) });
  }
  const weights = {} as ModelWeights;
  for (const name of WEIGHT_NAMES) {
    const w = arrays.get(name);
    if (!w) throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: weight ${name} missing`);
    weights[name] = w;
  }
  const hasId = arrays.get('extras/itemHasId');
  const prior = arrays.get('extras/prior');
  if (!hasId || !prior) throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: extras missing`);
  const { weights: _w, format: _f, extras, ...rest } = parsed;
  return {
    meta: { ...rest, extras: { ...extras, itemHasId: Uint8Array.from(hasId.data), prior: prior.data } },
    weights,
  };
}

/** Features the towers read, from the dataset (the same tables the ONNX graphs embed). */
export interface TowerFeatures {
  userSegment: Int32Array;
  userRegion: Int32Array;
  itemCategory: Int32Array;
  itemBrand: Int32Array;
  itemPrice: Float32Array;
  itemTitleTokens: Int32Array;
  /**
   * Each user's stored history: the distinct training items, oldest first, at most {@link STORED_HISTORY_CAP}:
   * `historyItems[historyPtr[u] .. historyPtr[u + 1])`. `historyPtr` has `users + 1` entries.
   */
  historyPtr: Int32Array;
  historyItems: Int32Array;
}

/** Each user's training items (distinct, most recent last) as CSR. */
export function historyCsr(
  ds: LoadedDataset,
  cap = STORED_HISTORY_CAP,
): { historyPtr: Int32Array; historyItems: Int32Array } {
  const users = ds.vocab.users.length;
  const hist = userHistories(ds.splits.train, cap);
  const historyPtr = new Int32Array(users + 1);
  let n = 0;
  for (let u = 0; u < users; u++) {
    n += hist.get(u)?.length ?? 0;
    historyPtr[u + 1] = n;
  }
  const historyItems = new Int32Array(n);
  for (const [u, h] of hist) historyItems.set(h, historyPtr[u]);
  return { historyPtr, historyItems };
}

export function towerFeatures(ds: LoadedDataset): TowerFeatures {
  return {
    userSegment: ds.users.segment,
    userRegion: ds.users.region,
    itemCategory: ds.items.category,
    itemBrand: ds.items.brand,
    itemPrice: ds.items.price,
    itemTitleTokens: ds.items.titleTokens,
    ...historyCsr(ds),
  };
}

/** A user's stored history (oldest first). */
export function storedHistory(f: TowerFeatures, user: number): Int32Array {
  if (user <= 0 || user + 1 >= f.historyPtr.length) return new Int32Array(0);
  return f.historyItems.subarray(f.historyPtr[user], f.historyPtr[user + 1]);
}

/**
 * The items a history row pools, most recent first (rank 0), each once, at most `limit`: the row is read from its
 * end, skipping 0, indices outside `[1, items)` and items already taken.
 */
export function historyRanks(row: ArrayLike<number>, items: number, limit: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  for (let k = row.length - 1; k >= 0 && out.length < limit; k--) {
    const i = row[k] ?? 0;
    if (i <= 0 || i >= items || seen.has(i)) continue;
    seen.add(i);
    out.push(i);
  }
  return out;
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

/**
 * Reference item tower (float64): `[v_i (outputDim), b_i]`. The id embedding counts only where `hasId`; the title
 * is the mean of the non-zero tokens' embeddings (zeros if none).
 */
export function itemOutput(w: ModelWeights, f: TowerFeatures, item: number, hasId: boolean): Float64Array {
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
  const id = hasId
    ? Array.from(row(w.item_embedding, item))
    : new Array<number>(w.item_embedding.shape[1] ?? 0).fill(0);
  const x = Float64Array.from([
    ...id,
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

/** The reference forward's item side for the whole catalogue: vectors `[items, outputDim]` and biases `[items]`. */
export interface ItemSide {
  vectors: Float64Array;
  bias: Float64Array;
  dim: number;
}

export function itemSide(w: ModelWeights, f: TowerFeatures, e: Pick<ModelExtras, 'itemHasId'>): ItemSide {
  const items = w.item_embedding.shape[0] ?? 0;
  const dim = (w['item_dense2/kernel'].shape[1] ?? 1) - 1;
  const vectors = new Float64Array(items * dim);
  const bias = new Float64Array(items);
  for (let i = 0; i < items; i++) {
    const o = itemOutput(w, f, i, e.itemHasId[i] === 1);
    vectors.set(o.subarray(0, dim), i * dim);
    bias[i] = o[dim] ?? 0;
  }
  return { vectors, bias, dim };
}

/**
 * Reference user vector (float64) of a request: the stored history of `user` then `history`, pooled as
 * {@link historyRanks} orders it. `null` when no usable item remains (the request falls back to the prior).
 */
export function userVector(
  w: ModelWeights,
  f: TowerFeatures,
  items: ItemSide,
  user: number,
  history: ArrayLike<number> = [],
): Float64Array | null {
  const L = w.history_position.shape[0] ?? 0;
  const nItems = items.bias.length;
  const ranks = historyRanks([...storedHistory(f, user), ...Array.from(history)], nItems, L);
  if (!ranks.length) return null;
  const d = items.dim;
  const h = new Float64Array(d);
  let z = 0;
  ranks.forEach((i, k) => {
    const wk = Math.exp(w.history_position.data[k] ?? 0);
    z += wk;
    for (let j = 0; j < d; j++) h[j] = (h[j] ?? 0) + wk * (items.vectors[i * d + j] ?? 0);
  });
  for (let j = 0; j < d; j++) h[j] = (h[j] ?? 0) / z;
  const users = f.userSegment.length;
  const known = user > 0 && user < users;
  const x = Float64Array.from([
    ...h,
    ...row(w.segment_embedding, known ? (f.userSegment[user] ?? 0) : 0),
    ...row(w.region_embedding, known ? (f.userRegion[user] ?? 0) : 0),
  ]);
  const m = dense(
    dense(x, w['user_dense1/kernel'], w['user_dense1/bias'], true),
    w['user_dense2/kernel'],
    w['user_dense2/bias'],
    false,
  );
  for (let j = 0; j < d; j++) m[j] = (m[j] ?? 0) + (h[j] ?? 0);
  return m;
}

/**
 * The recency log-prior of every item: `log(PRIOR_FLOOR + prior_i)`; for an item the prior has never seen (score 0:
 * no training interaction at all, e.g. a new item) the median over the items it has seen, so a new item is scored by
 * its features with a neutral prior rather than buried as the least popular. Index 0 gets the floor.
 */
export function logPrior(prior: ArrayLike<number>): Float64Array {
  const seen: number[] = [];
  for (let i = 1; i < prior.length; i++) if ((prior[i] ?? 0) > 0) seen.push(Math.log(PRIOR_FLOOR + prior[i]!));
  seen.sort((a, b) => a - b);
  const median = seen.length ? seen[Math.floor(seen.length / 2)]! : Math.log(PRIOR_FLOOR);
  return Float64Array.from({ length: prior.length }, (_, i) =>
    i === 0 ? Math.log(PRIOR_FLOOR) : (prior[i] ?? 0) > 0 ? Math.log(PRIOR_FLOOR + prior[i]!) : median,
  );
}

/** `priorWeight * logPrior(prior)_i` for every item (the score's recency term). */
export function priorTerm(e: Pick<ModelExtras, 'prior' | 'priorWeight'>): Float64Array {
  return logPrior(e.prior).map((x) => e.priorWeight * x);
}

/**
 * Reference ranking scores of every item for one request (float64): `u . v_i + b_i + prior term`, or the prior
 * itself when the request has no usable history item. `cold` tells which.
 */
export function catalogScores(
  w: ModelWeights,
  f: TowerFeatures,
  e: ModelExtras,
  items: ItemSide,
  user: number,
  history: ArrayLike<number> = [],
): { scores: Float64Array; cold: boolean } {
  const u = userVector(w, f, items, user, history);
  if (!u) return { scores: Float64Array.from(e.prior), cold: true };
  const n = items.bias.length;
  const d = items.dim;
  const pt = priorTerm(e);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = (items.bias[i] ?? 0) + (pt[i] ?? 0);
    for (let j = 0; j < d; j++) s += (u[j] ?? 0) * (items.vectors[i * d + j] ?? 0);
    out[i] = s;
  }
  return { scores: out, cold: false };
}

/** Reference probability of (user, item) for a request, calibrated as the score graph does. */
export function referenceProbability(
  w: ModelWeights,
  f: TowerFeatures,
  e: ModelExtras,
  items: ItemSide,
  user: number,
  item: number,
  history: ArrayLike<number> = [],
): number {
  const { scores, cold } = catalogScores(w, f, e, items, user, history);
  const c = cold ? e.calibration.prior : e.calibration.model;
  return 1 / (1 + Math.exp(-(c.a * (scores[item] ?? 0) + c.b)));
}
