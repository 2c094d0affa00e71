/**
 * The sequential recommender (SASRec, Kang & McAuley 2018), defined once: hyperparameters and their validation,
 * weight names and shapes, and the checkpoint format (weights plus, optionally, the Adam moments, so that a resumed
 * run continues exactly where the interrupted one stopped).
 *
 * Architecture (pre-LayerNorm Transformer over the user's last `maxLength` items, most recent last, 0-padded left):
 *   x_0 = E[s_t] + P[t]; dropout; padding rows zeroed
 *   block b: x = x + Dropout(Wo . MHA_causal(LN1(x)));  x = x + Dropout(W2 . relu(W1 . LN2(x)));  padding rows zeroed
 *   h = LN_final(x);  logit(item i at step t) = <h_t, E[i]>   (E shared by the input and the output layer)
 * With `itemFeatures`, an item's vector is `E_item[i] + E_category[category(i)] + E_brand[brand(i)]`, so items of the
 * same category share what the data says about the category (rare and new items gain most); the export folds the
 * sum into one table, the graphs are the same.
 * Multi-head attention: one fused `[d, 3d]` QKV projection, `heads` heads of width `d / heads`, scaled dot
 * products, a causal mask combined with the padding mask (masked scores get -1e9 before the softmax).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadedDataset } from '../../lib/data/dataset';
import { ErrorType, RecflowError } from '../../lib/errors';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/fs-atomic';

/** Hyperparameters of the sequential recommender, one typed config with defaults ({@link DEFAULT_SEQUENTIAL_CONFIG}). */
export interface SequentialConfig {
  /** Items of history the model reads (the most recent ones). @default 50 */
  maxLength: number;
  /** Width of the item and position embeddings and of every block. @default 64 */
  hiddenDim: number;
  /** Self-attention blocks. @default 2 */
  blocks: number;
  /** Attention heads per block; must divide `hiddenDim`. @default 2 */
  heads: number;
  /** Hidden width of the point-wise feed-forward network. @default 128 */
  innerDim: number;
  /** Dropout rate on the embeddings, the attention output and the feed-forward layers. @default 0.2 */
  dropout: number;
  /** @default 40 */
  epochs: number;
  /** Sequences (training windows of `maxLength` steps) per batch. @default 128 */
  batchSize: number;
  /** Adam learning rate at epoch 0. @default 0.001 */
  learningRate: number;
  /** Multiplied into the learning rate after each epoch. @default 1 */
  learningRateDecay: number;
  /**
   * Negatives of the sampled softmax: this many items drawn uniformly per batch, shared by every position of the
   * batch. 0, or at least the catalogue size, means the full softmax over the catalogue. @default 256
   */
  negatives: number;
  /**
   * How the sampled softmax draws its negatives: `uniform` over the catalogue, or `popularity` (proportional to
   * (training count + 1)^0.75, the head items a ranking must order) with the logQ correction (each logit minus the
   * log of its sampling probability), so both estimate the full softmax.
   * @default 'popularity'
   */
  negativeSampling: NegativeSampling;
  /**
   * How far ahead each step's target lies: 1 is SASRec's next-item objective; k > 1 draws each step's target
   * uniformly among its next k items in the window (redrawn every epoch, at the cost of the next-item objective),
   * which teaches the interest of the next sessions rather than of the next click alone. 8 was chosen on the
   * validation split of the synthetic shop v3 (validation NDCG@10 0.049 against 0.045 for 1 and 0.049 for 50).
   * @default 8
   */
  targetsAhead: number;
  /** Weight each next-item target by its label strength (view 0.25 ... purchase 1) instead of 1. @default false */
  weightByLabel: boolean;
  /** Add category and brand embeddings to each item's vector (input and output). @default true */
  itemFeatures: boolean;
  /** L2 penalty on the embedding rows a batch touches (mean squared norm). @default 0 */
  l2: number;
  /** Stop when validation NDCG@10 has not improved for this many epochs. @default 3 */
  earlyStoppingPatience: number;
  /** Seed of the initialization, the window order, the negatives and dropout. @default 42 */
  seed: number;
}

export const DEFAULT_SEQUENTIAL_CONFIG: SequentialConfig = {
  maxLength: 50,
  hiddenDim: 64,
  blocks: 2,
  heads: 2,
  innerDim: 128,
  dropout: 0.2,
  epochs: 40,
  batchSize: 128,
  learningRate: 0.001,
  learningRateDecay: 1,
  negatives: 256,
  negativeSampling: 'popularity',
  targetsAhead: 8,
  weightByLabel: false,
  itemFeatures: true,
  l2: 0,
  earlyStoppingPatience: 3,
  seed: 42,
};

/** Largest `maxLength` accepted (the attention costs grow with its square). */
export const MAX_SEQUENCE_LENGTH = 512;

type Range = { min: number; max: number; int: boolean; minExclusive?: boolean };
/** Proposal distributions of the sampled softmax. */
export const NEGATIVE_SAMPLING = ['uniform', 'popularity'] as const;
export type NegativeSampling = (typeof NEGATIVE_SAMPLING)[number];

type BooleanField = 'weightByLabel' | 'itemFeatures';
const BOOLEANS: BooleanField[] = ['weightByLabel', 'itemFeatures'];
const RANGES: Record<Exclude<keyof SequentialConfig, BooleanField | 'negativeSampling'>, Range> = {
  maxLength: { min: 1, max: MAX_SEQUENCE_LENGTH, int: true },
  hiddenDim: { min: 1, max: 4096, int: true },
  blocks: { min: 1, max: 24, int: true },
  heads: { min: 1, max: 64, int: true },
  innerDim: { min: 1, max: 16384, int: true },
  dropout: { min: 0, max: 0.95, int: false },
  epochs: { min: 1, max: 10_000, int: true },
  batchSize: { min: 1, max: 65_536, int: true },
  learningRate: { min: 0, max: 1, int: false },
  learningRateDecay: { min: 0, max: 1, int: false, minExclusive: true },
  negatives: { min: 0, max: 1_000_000, int: true },
  targetsAhead: { min: 1, max: MAX_SEQUENCE_LENGTH, int: true },
  l2: { min: 0, max: 1, int: false },
  earlyStoppingPatience: { min: 0, max: 10_000, int: true },
  seed: { min: 0, max: 2 ** 32 - 1, int: true },
};

/**
 * Fill in the defaults and validate a (partial) config, e.g. from a workflow input or a CLI flag.
 * @param partial fields to override; unknown fields are refused.
 * @param seed overrides `partial.seed` when given.
 * @throws {RecflowError} `InvalidInput` naming the field, its value and what is expected.
 */
export function resolveSequentialConfig(partial: unknown = {}, seed?: number): SequentialConfig {
  if (partial === null || typeof partial !== 'object' || Array.isArray(partial))
    throw new RecflowError(
      ErrorType.InvalidInput,
      `sequential config: expected an object, got ${JSON.stringify(partial)}`,
    );
  const given = partial as Record<string, unknown>;
  for (const key of Object.keys(given))
    if (!(key in DEFAULT_SEQUENTIAL_CONFIG))
      throw new RecflowError(
        ErrorType.InvalidInput,
        `config.${key}: unknown hyperparameter of the sequential recommender (known: ${Object.keys(DEFAULT_SEQUENTIAL_CONFIG).join(', ')})`,
        { field: key },
      );
  const config = {
    ...DEFAULT_SEQUENTIAL_CONFIG,
    ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
    ...(seed !== undefined ? { seed } : {}),
  };
  for (const key of BOOLEANS)
    if (typeof config[key] !== 'boolean')
      throw new RecflowError(
        ErrorType.InvalidInput,
        `config.${key} = ${JSON.stringify(config[key])}: expected true or false`,
        {
          field: key,
        },
      );
  if (!(NEGATIVE_SAMPLING as readonly unknown[]).includes(config.negativeSampling))
    throw new RecflowError(
      ErrorType.InvalidInput,
      `config.negativeSampling = ${JSON.stringify(config.negativeSampling)}: expected one of ${NEGATIVE_SAMPLING.join(', ')}`,
      { field: 'negativeSampling' },
    );
  for (const [key, r] of Object.entries(RANGES) as Array<[keyof typeof RANGES, Range]>) {
    const v = config[key];
    const low = r.minExclusive ? v <= r.min : v < r.min;
    if (typeof v !== 'number' || !Number.isFinite(v) || low || v > r.max || (r.int && !Number.isInteger(v)))
      throw new RecflowError(
        ErrorType.InvalidInput,
        `config.${key} = ${JSON.stringify(v)}: expected ${r.int ? 'an integer' : 'a number'} in ${r.minExclusive ? '(' : '['}${r.min}, ${r.max}]`,
        { field: key },
      );
  }
  if (config.hiddenDim % config.heads !== 0)
    throw new RecflowError(
      ErrorType.InvalidInput,
      `config.heads = ${config.heads}: must divide config.hiddenDim = ${config.hiddenDim}`,
      { field: 'heads' },
    );
  return config;
}

/** Vocabulary sizes a model is built for. */
export interface SequentialSizes {
  /** Items including index 0 (padding / unknown). */
  items: number;
  /** Categories including index 0 (unknown). */
  categories: number;
  /** Brands including index 0 (unknown). */
  brands: number;
}

/** Per-item features the item vectors read with `itemFeatures` (by item index). */
export interface ItemFeatures {
  category: Int32Array;
  brand: Int32Array;
}

/** Sizes and item features of a dataset. */
export function sequentialSizesOf(ds: LoadedDataset): SequentialSizes {
  return { items: ds.vocab.items.length, categories: ds.vocab.categories.length, brands: ds.vocab.brands.length };
}

/** The item features of a dataset. */
export function itemFeaturesOf(ds: LoadedDataset): ItemFeatures {
  return { category: ds.items.category, brand: ds.items.brand };
}

/** Check that the features fit the sizes. @throws {RecflowError} `InvalidInput`. */
export function checkItemFeatures(s: SequentialSizes, f: ItemFeatures): void {
  for (const [what, arr, n] of [
    ['category', f.category, s.categories],
    ['brand', f.brand, s.brands],
  ] as const) {
    if (arr.length !== s.items)
      throw new RecflowError(
        ErrorType.InvalidInput,
        `item features: ${what} has ${arr.length} values, the model has ${s.items} items`,
      );
    for (let i = 0; i < arr.length; i++)
      if ((arr[i] ?? 0) < 0 || (arr[i] ?? 0) >= n)
        throw new RecflowError(
          ErrorType.InvalidInput,
          `item features: ${what} of item ${i} is ${arr[i]}, outside [0, ${n})`,
        );
  }
}

/**
 * The items' vectors `[items, d]` (row-major): the item embedding, plus the category and brand embeddings when the
 * config has `itemFeatures`. The exported graphs embed this table.
 */
export function itemTable(
  c: SequentialConfig,
  s: SequentialSizes,
  w: SequentialWeights,
  f?: ItemFeatures,
): Float32Array {
  const d = c.hiddenDim;
  const out = Float32Array.from(weightOf(w, 'item_embedding').data);
  if (!c.itemFeatures) return out;
  if (!f) throw new RecflowError(ErrorType.InvalidInput, 'sequential model with itemFeatures: item features missing');
  checkItemFeatures(s, f);
  const cat = weightOf(w, 'category_embedding').data;
  const brand = weightOf(w, 'brand_embedding').data;
  for (let i = 0; i < s.items; i++) {
    const ci = (f.category[i] ?? 0) * d;
    const bi = (f.brand[i] ?? 0) * d;
    for (let j = 0; j < d; j++)
      out[i * d + j] = Math.fround((out[i * d + j] ?? 0) + (cat[ci + j] ?? 0) + (brand[bi + j] ?? 0));
  }
  return out;
}

/** Weight names of block `b`. */
export function blockNames(b: number) {
  const p = `block${b}`;
  return {
    ln1Gamma: `${p}/ln1/gamma`,
    ln1Beta: `${p}/ln1/beta`,
    qkvKernel: `${p}/attn/qkv/kernel`,
    qkvBias: `${p}/attn/qkv/bias`,
    outKernel: `${p}/attn/out/kernel`,
    outBias: `${p}/attn/out/bias`,
    ln2Gamma: `${p}/ln2/gamma`,
    ln2Beta: `${p}/ln2/beta`,
    ffn1Kernel: `${p}/ffn1/kernel`,
    ffn1Bias: `${p}/ffn1/bias`,
    ffn2Kernel: `${p}/ffn2/kernel`,
    ffn2Bias: `${p}/ffn2/bias`,
  };
}

/** Weight names in checkpoint order and their shapes. Renaming one breaks old checkpoints. */
export function weightShapes(c: SequentialConfig, s: SequentialSizes): Array<[string, number[]]> {
  const d = c.hiddenDim;
  const out: Array<[string, number[]]> = [
    ['item_embedding', [s.items, d]],
    ...(c.itemFeatures
      ? ([
          ['category_embedding', [s.categories, d]],
          ['brand_embedding', [s.brands, d]],
        ] as Array<[string, number[]]>)
      : []),
    ['position_embedding', [c.maxLength, d]],
  ];
  for (let b = 0; b < c.blocks; b++) {
    const n = blockNames(b);
    out.push(
      [n.ln1Gamma, [d]],
      [n.ln1Beta, [d]],
      [n.qkvKernel, [d, 3 * d]],
      [n.qkvBias, [3 * d]],
      [n.outKernel, [d, d]],
      [n.outBias, [d]],
      [n.ln2Gamma, [d]],
      [n.ln2Beta, [d]],
      [n.ffn1Kernel, [d, c.innerDim]],
      [n.ffn1Bias, [c.innerDim]],
      [n.ffn2Kernel, [c.innerDim, d]],
      [n.ffn2Bias, [d]],
    );
  }
  out.push(['final_ln/gamma', [d]], ['final_ln/beta', [d]]);
  return out;
}

/** A weight tensor, row-major float32. */
export interface Weight {
  shape: number[];
  data: Float32Array;
}
/** Weights by name ({@link weightShapes}). */
export type SequentialWeights = Record<string, Weight>;

/** The weight of `name`, or an `InvalidInput` error naming it. */
export function weightOf(w: SequentialWeights, name: string): Weight {
  const x = w[name];
  if (!x) throw new RecflowError(ErrorType.InvalidInput, `sequential weights: '${name}' is missing`);
  return x;
}

/** Check that `w` holds every weight of the config with its shape. @throws {RecflowError} `InvalidInput`. */
export function checkWeights(c: SequentialConfig, s: SequentialSizes, w: SequentialWeights): void {
  for (const [name, shape] of weightShapes(c, s)) {
    const x = weightOf(w, name);
    const n = shape.reduce((a, b) => a * b, 1);
    if (x.shape.join('x') !== shape.join('x') || x.data.length !== n)
      throw new RecflowError(
        ErrorType.InvalidInput,
        `sequential weight ${name}: shape ${x.shape.join('x')} (${x.data.length} values), expected ${shape.join('x')}`,
      );
  }
}

/**
 * The Adam optimizer's state: the step count and the first and second moments of every weight, in
 * {@link weightShapes} order (what tfjs' `AdamOptimizer.getWeights` holds).
 */
export interface OptimizerState {
  iterations: number;
  m: SequentialWeights;
  v: SequentialWeights;
}

/** What a checkpoint records besides the weights. */
export interface SequentialCheckpointMeta {
  kind: 'sequential';
  config: SequentialConfig;
  sizes: SequentialSizes;
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

interface Entry {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

function pack(
  groups: Array<[prefix: string, weights: SequentialWeights]>,
  order: Array<[string, number[]]>,
): { entries: Entry[]; all: Float32Array } {
  const entries: Entry[] = [];
  let offset = 0;
  for (const [prefix, w] of groups)
    for (const [name, shape] of order) {
      const x = weightOf(w, name);
      if (x.shape.join('x') !== shape.join('x'))
        throw new RecflowError(
          ErrorType.InvalidInput,
          `${prefix}${name}: shape ${x.shape.join('x')}, expected ${shape.join('x')}`,
        );
      entries.push({ name: `${prefix}${name}`, shape, offset, length: x.data.length });
      offset += x.data.length;
    }
  const all = new Float32Array(offset);
  let k = 0;
  for (const [, w] of groups) for (const [name] of order) all.set(weightOf(w, name).data, entries[k++]!.offset);
  return { entries, all };
}

/**
 * Write `checkpoint.json` and `weights.bin` (and `optimizer.bin` when `optimizer` is given) into a folder, each
 * atomically. @throws {RecflowError} `InvalidInput` when a weight is missing or has the wrong shape.
 */
export async function writeSequentialCheckpoint(
  dir: string,
  meta: SequentialCheckpointMeta,
  weights: SequentialWeights,
  optimizer?: OptimizerState,
): Promise<void> {
  const order = weightShapes(meta.config, meta.sizes);
  const w = pack([['', weights]], order);
  await writeFileAtomic(join(dir, 'weights.bin'), new Uint8Array(w.all.buffer));
  let opt: { iterations: number; entries: Entry[] } | undefined;
  if (optimizer) {
    const o = pack(
      [
        ['m:', optimizer.m],
        ['v:', optimizer.v],
      ],
      order,
    );
    await writeFileAtomic(join(dir, 'optimizer.bin'), new Uint8Array(o.all.buffer));
    opt = { iterations: optimizer.iterations, entries: o.entries };
  }
  await writeJsonAtomic(join(dir, 'checkpoint.json'), {
    ...meta,
    weights: w.entries,
    ...(opt ? { optimizer: opt } : {}),
  });
}

async function readFloats(file: string, dir: string): Promise<Float32Array> {
  const buf = await readFile(file);
  if (buf.byteLength % 4 !== 0)
    throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: ${file} is truncated`);
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return new Float32Array(copy.buffer);
}

function unpack(all: Float32Array, entries: Entry[], dir: string, prefix = ''): SequentialWeights {
  const out: SequentialWeights = {};
  for (const e of entries) {
    if (!e.name.startsWith(prefix)) continue;
    if (e.offset + e.length > all.length)
      throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: data of ${e.name} truncated`);
    out[e.name.slice(prefix.length)] = { shape: e.shape, data: all.slice(e.offset, e.offset + e.length) };
  }
  return out;
}

/**
 * Read a checkpoint written by {@link writeSequentialCheckpoint}.
 * @throws {RecflowError} `ArtifactMissing` when a file is missing or truncated; `InvalidInput` when it is not a
 *   sequential checkpoint or its weights do not fit its config.
 */
export async function readSequentialCheckpoint(
  dir: string,
): Promise<{ meta: SequentialCheckpointMeta; weights: SequentialWeights; optimizer?: OptimizerState }> {
  let parsed: SequentialCheckpointMeta & { weights: Entry[]; optimizer?: { iterations: number; entries: Entry[] } };
  let all: Float32Array;
  try {
    parsed = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'));
    all = await readFloats(join(dir, 'weights.bin'), dir);
  } catch (err) {
    if (err instanceof RecflowError) throw err;
    throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: ${(err as Error).message}`);
  }
  if (parsed.kind !== 'sequential')
    throw new RecflowError(
      ErrorType.InvalidInput,
      `checkpoint ${dir}: kind ${JSON.stringify(parsed.kind)}, expected "sequential"`,
    );
  const weights = unpack(all, parsed.weights, dir);
  checkWeights(parsed.config, parsed.sizes, weights);
  let optimizer: OptimizerState | undefined;
  if (parsed.optimizer) {
    let o: Float32Array;
    try {
      o = await readFloats(join(dir, 'optimizer.bin'), dir);
    } catch (err) {
      if (err instanceof RecflowError) throw err;
      throw new RecflowError(ErrorType.ArtifactMissing, `checkpoint ${dir}: ${(err as Error).message}`);
    }
    optimizer = {
      iterations: parsed.optimizer.iterations,
      m: unpack(o, parsed.optimizer.entries, dir, 'm:'),
      v: unpack(o, parsed.optimizer.entries, dir, 'v:'),
    };
    checkWeights(parsed.config, parsed.sizes, optimizer.m);
    checkWeights(parsed.config, parsed.sizes, optimizer.v);
  }
  const { weights: _w, optimizer: _o, ...meta } = parsed;
  return { meta, weights, ...(optimizer ? { optimizer } : {}) };
}
