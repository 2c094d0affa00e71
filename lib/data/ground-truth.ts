/**
 * The hidden preference model of the synthetic shop, kept apart from what the shop exports (`<shop>/ground-truth/`).
 * The generator draws every event from it; the traffic simulator (canary analysis) and the oracle ranking (quality
 * ceiling) read it back with {@link loadGroundTruth}. On-disk format: docs/data.md, "Ground truth".
 *
 *   preference(u, i, t) = dot(userFactor[u], itemFactor[i]) + segmentCategory[segment(u)][category(i)]
 *                         + popularityWeight * itemBias[i] + recencyWeight * exp(-age(i, t) / recencyDays)
 *   clickProbability(u, i, t) = sigmoid(intercept + preference(u, i, t))
 *
 * A view picks an item among popularity-drawn candidates with probability proportional to exp(preference); the view
 * becomes a click with `clickProbability`, a click an add_to_cart with `cartRate`, a cart a purchase with
 * `purchaseRate`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../errors';

/** Scalar parameters of the preference model. */
export interface GroundTruthParams {
  /** Click logit of an average item for an average user. */
  intercept: number;
  popularityWeight: number;
  recencyWeight: number;
  /** Time constant of the recency boost, in days. */
  recencyDays: number;
  /** P(add_to_cart | click). */
  cartRate: number;
  /** P(purchase | add_to_cart). */
  purchaseRate: number;
}

/** `ground-truth/meta.json`. */
export interface GroundTruthMeta {
  format: 'recflow-ground-truth/1';
  seed: number;
  dim: number;
  users: number;
  items: number;
  segments: number;
  categories: number;
  /** External ids are `<prefix><index + 1>`: user index 0 is `u1`. */
  userIdPrefix: string;
  itemIdPrefix: string;
  /** Event time range, epoch ms. */
  start: number;
  end: number;
  params: GroundTruthParams;
  /** Clean events drawn from the model, and the dirt rows added on top, by kind (what validation should find). */
  cleanEvents: number;
  dirt: Record<string, number>;
}

/** The ground truth in memory: factors and lookups by index (0-based; id `u1` is index 0). */
export interface GroundTruth {
  meta: GroundTruthMeta;
  /** `users x dim`, row-major. */
  userFactors: Float32Array;
  /** `items x dim`, row-major. */
  itemFactors: Float32Array;
  /** Centered log-popularity of each item. */
  itemBias: Float32Array;
  /** `segments x categories`, row-major. */
  segmentCategory: Float32Array;
  userSegment: Int32Array;
  itemCategory: Int32Array;
  /** Item launch time, epoch ms: an item is never viewed before it. */
  itemLaunch: Float64Array;
}

/** File names under `ground-truth/`, with their dtypes. */
export const GROUND_TRUTH_FILES = {
  userFactors: 'user_factors.f32',
  itemFactors: 'item_factors.f32',
  itemBias: 'item_bias.f32',
  segmentCategory: 'segment_category.f32',
  userSegment: 'user_segment.i32',
  itemCategory: 'item_category.i32',
  itemLaunch: 'item_launch.f64',
} as const;

const DAY_MS = 86_400_000;

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Index of an external id (`u17` -> 16), or -1 when it is not one of the shop's. */
export function indexOfId(id: string, prefix: string, count: number): number {
  if (!id.startsWith(prefix)) return -1;
  const rest = id.slice(prefix.length);
  if (!/^[1-9][0-9]*$/.test(rest)) return -1;
  const n = Number(rest) - 1;
  return n < count ? n : -1;
}

/** The preference logit (without the intercept) by indices; `at` (epoch ms) adds the recency boost. */
export function preferenceByIndex(gt: GroundTruth, u: number, i: number, at?: number): number {
  const { dim, categories, params } = gt.meta;
  let s = 0;
  for (let j = 0; j < dim; j++) s += (gt.userFactors[u * dim + j] ?? 0) * (gt.itemFactors[i * dim + j] ?? 0);
  s += gt.segmentCategory[(gt.userSegment[u] ?? 0) * categories + (gt.itemCategory[i] ?? 0)] ?? 0;
  s += params.popularityWeight * (gt.itemBias[i] ?? 0);
  if (at !== undefined) {
    const age = Math.max(0, at - (gt.itemLaunch[i] ?? 0));
    s += params.recencyWeight * Math.exp(-age / (params.recencyDays * DAY_MS));
  }
  return s;
}

/**
 * Probability that `userId` clicks `itemId` when shown it (at time `at`, epoch ms, when given; otherwise without
 * the recency boost). Unknown users or items get the base rate `sigmoid(intercept)`.
 */
export function clickProbability(gt: GroundTruth, userId: string, itemId: string, at?: number): number {
  const u = indexOfId(userId, gt.meta.userIdPrefix, gt.meta.users);
  const i = indexOfId(itemId, gt.meta.itemIdPrefix, gt.meta.items);
  if (u < 0 || i < 0) return sigmoid(gt.meta.params.intercept);
  return sigmoid(gt.meta.params.intercept + preferenceByIndex(gt, u, i, at));
}

/**
 * The oracle ranking: the `k` items with the highest click probability for `userId`, among `candidateItemIds`
 * (default: the whole catalog), best first. Unknown candidate ids are skipped; an unknown user gets the items
 * ranked by their user-independent part (popularity bias).
 */
export function oracleTopK(
  gt: GroundTruth,
  userId: string,
  k: number,
  candidateItemIds?: readonly string[],
  at?: number,
): Array<{ itemId: string; probability: number }> {
  const { itemIdPrefix, items, userIdPrefix, users, params } = gt.meta;
  const u = indexOfId(userId, userIdPrefix, users);
  const idx: number[] = [];
  if (candidateItemIds) {
    for (const id of candidateItemIds) {
      const i = indexOfId(id, itemIdPrefix, items);
      if (i >= 0) idx.push(i);
    }
  } else for (let i = 0; i < items; i++) idx.push(i);
  const scored = idx.map((i) => {
    const logit = u >= 0 ? preferenceByIndex(gt, u, i, at) : params.popularityWeight * (gt.itemBias[i] ?? 0);
    return { i, logit };
  });
  scored.sort((a, b) => b.logit - a.logit || a.i - b.i);
  return scored.slice(0, Math.max(0, k)).map(({ i, logit }) => ({
    itemId: `${itemIdPrefix}${i + 1}`,
    probability: sigmoid(params.intercept + logit),
  }));
}

async function readTyped<T extends Float32Array | Int32Array | Float64Array>(
  path: string,
  Ctor: { new (buf: ArrayBuffer): T; BYTES_PER_ELEMENT: number },
  expected: number,
): Promise<T> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `ground truth: ${(err as Error).message}`);
  }
  if (buf.byteLength !== expected * Ctor.BYTES_PER_ELEMENT) {
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `ground truth: ${path} has ${buf.byteLength} bytes, expected ${expected * Ctor.BYTES_PER_ELEMENT}`,
    );
  }
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return new Ctor(copy.buffer);
}

/**
 * Load the ground truth of a generated shop (the shop folder, or its `ground-truth/` folder).
 * @throws {RecflowError} `ArtifactMissing` when a file is missing or has the wrong size.
 */
export async function loadGroundTruth(shopDir: string): Promise<GroundTruth> {
  let dir = join(shopDir, 'ground-truth');
  let metaText: string;
  try {
    metaText = await readFile(join(dir, 'meta.json'), 'utf8');
  } catch {
    try {
      dir = shopDir;
      metaText = await readFile(join(dir, 'meta.json'), 'utf8');
    } catch {
      throw new RecflowError(
        ErrorType.ArtifactMissing,
        `no ground truth in ${shopDir} (expected ground-truth/meta.json)`,
      );
    }
  }
  const meta = JSON.parse(metaText) as GroundTruthMeta;
  if (meta.format !== 'recflow-ground-truth/1') {
    throw new RecflowError(ErrorType.ArtifactMissing, `ground truth ${dir}: unknown format '${String(meta.format)}'`);
  }
  const f = GROUND_TRUTH_FILES;
  return {
    meta,
    userFactors: await readTyped(join(dir, f.userFactors), Float32Array, meta.users * meta.dim),
    itemFactors: await readTyped(join(dir, f.itemFactors), Float32Array, meta.items * meta.dim),
    itemBias: await readTyped(join(dir, f.itemBias), Float32Array, meta.items),
    segmentCategory: await readTyped(join(dir, f.segmentCategory), Float32Array, meta.segments * meta.categories),
    userSegment: await readTyped(join(dir, f.userSegment), Int32Array, meta.users),
    itemCategory: await readTyped(join(dir, f.itemCategory), Int32Array, meta.items),
    itemLaunch: await readTyped(join(dir, f.itemLaunch), Float64Array, meta.items),
  };
}

/**
 * The oracle over a dataset's vocabularies: ground-truth click logit by dataset user and item index (index 0,
 * `<unk>`, and ids the ground truth does not know score `-Infinity`), for oracle rankings in evaluation.
 * `at` (epoch ms) adds the recency boost, e.g. the start of the test split.
 */
export function datasetScorer(
  gt: GroundTruth,
  vocab: { users: readonly string[]; items: readonly string[] },
  at?: number,
): (user: number, item: number) => number {
  const u = vocab.users.map((id) => indexOfId(id, gt.meta.userIdPrefix, gt.meta.users));
  const i = vocab.items.map((id) => indexOfId(id, gt.meta.itemIdPrefix, gt.meta.items));
  return (user, item) => {
    const gu = u[user] ?? -1;
    const gi = i[item] ?? -1;
    return gu < 0 || gi < 0 ? -Infinity : gt.meta.params.intercept + preferenceByIndex(gt, gu, gi, at);
  };
}
