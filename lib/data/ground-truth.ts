/**
 * The hidden preference model of the synthetic shop, kept apart from what the shop exports (`<shop>/ground-truth/`).
 * The generator draws every event from it; the traffic simulator (canary analysis) and the oracle ranking (quality
 * ceiling) read it back with {@link loadGroundTruth}. On-disk format: docs/data.md, "Ground truth".
 *
 *   preference(u, i, t, h) = dot(userFactor(u, t), itemFactor[i]) + segmentCategory[segment(u)][category(i)]
 *                            + popularityWeight * itemBias[i] + recencyWeight * exp(-age(i, t) / recencyDays)
 *                            + session(i, t, h) + complement(i, t, h)
 *   userFactor(u, t)       = cos(driftAngle * f) * userFactors[u] + sin(driftAngle * f) * userDrift[u],
 *                            f = (t - start) / (end - start) clamped to [0, 1]            (taste that drifts)
 *   session(i, t, h)       = exp(-(t - time(last)) / sessionMinutes)
 *                            * (sessionCategoryWeight * [category(i) = category(last)]
 *                               + sessionTypeWeight * [type(i) = type(last)])              (sessions share a theme)
 *   complement(i, t, h)    = complementWeight * exp(-(t - time(lastPurchase)) / complementDays)
 *                            * [i in complements(lastPurchase)]                            (complementary items)
 *   clickProbability       = sigmoid(intercept + preference)
 *
 * `h` is the user's history before `t`: `last` is its last event (any type), `lastPurchase` its last purchase. The
 * generator keeps exactly that state per user, so an oracle given the same history scores what the generator drew
 * from. Events come in sessions: a user views `sessionViews` items on average in a row; each view picks an item among
 * candidates (popularity-drawn, plus items of the last item's category and the last purchase's complements) with
 * probability proportional to exp(preference - popularityWeight * itemBias); the view becomes a click with
 * `clickProbability`, a click an add_to_cart with `cartRate`, a cart a purchase with `purchaseRate`.
 *
 * Format 1 shops (generator version 2) have no drift, sessions or complements: their terms read as 0.
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
  /** Angle (radians) the user factors turn through between `start` and `end`. Absent (format 1): 0. */
  driftAngle?: number;
  /** Session boost of an item in the last event's category. Absent: 0. */
  sessionCategoryWeight?: number;
  /** Extra session boost of an item of the last event's product type. Absent: 0. */
  sessionTypeWeight?: number;
  /** Time constant of the session boost, minutes. */
  sessionMinutes?: number;
  /** Boost of a complement of the last purchase. Absent: 0. */
  complementWeight?: number;
  /** Time constant of the complement boost, days. */
  complementDays?: number;
  /** Mean views per session (generation only). */
  sessionViews?: number;
  /** Share of an item's factor vector that comes from its product type (generation only). */
  typeFactorShare?: number;
}

/** `ground-truth/meta.json`. */
export interface GroundTruthMeta {
  format: 'recflow-ground-truth/1' | 'recflow-ground-truth/2';
  seed: number;
  dim: number;
  users: number;
  items: number;
  segments: number;
  categories: number;
  /** Product types (format 2). */
  types?: number;
  /** Complements per item in `item_complements.i32` (format 2; -1 pads). */
  complementsPerItem?: number;
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
  /** `users x dim`, row-major: the taste at `start`. */
  userFactors: Float32Array;
  /** `users x dim`: the direction the taste drifts to (zeros in format 1). */
  userDrift: Float32Array;
  /** `items x dim`, row-major. */
  itemFactors: Float32Array;
  /** Centered log-popularity of each item. */
  itemBias: Float32Array;
  /** `segments x categories`, row-major. */
  segmentCategory: Float32Array;
  userSegment: Int32Array;
  itemCategory: Int32Array;
  /** Product type of each item (index into the search vocabulary's types; zeros in format 1). */
  itemType: Int32Array;
  /** `items x complementsPerItem` item indices, -1 padded. */
  itemComplements: Int32Array;
  /** Item launch time, epoch ms: an item is never viewed before it. */
  itemLaunch: Float64Array;
  /** `users x 4`: each user's state at the end of the shop: last item, its time, last purchase, its time (-1 / NaN: none). */
  userState: Float64Array;
}

/** File names under `ground-truth/`, with their dtypes. */
export const GROUND_TRUTH_FILES = {
  userFactors: 'user_factors.f32',
  userDrift: 'user_drift.f32',
  itemFactors: 'item_factors.f32',
  itemBias: 'item_bias.f32',
  segmentCategory: 'segment_category.f32',
  userSegment: 'user_segment.i32',
  itemCategory: 'item_category.i32',
  itemType: 'item_type.i32',
  itemComplements: 'item_complements.i32',
  itemLaunch: 'item_launch.f64',
  userState: 'user_state.f64',
} as const;

/** Event type indices of a {@link History} (as in events.csv: view, click, add_to_cart, purchase). */
export const HISTORY_PURCHASE = 3;

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

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

/**
 * A user's recent events, oldest first, by item index (ground-truth indices here; dataset indices for
 * {@link datasetHistoryScorer}). Only the last event and the last purchase matter to the model.
 */
export interface History {
  items: ArrayLike<number>;
  /** Epoch ms of each event. Absent: every event just before the scoring time (a live session). */
  times?: ArrayLike<number>;
  /** Event type of each (0 view, 1 click, 2 add_to_cart, 3 purchase). Absent: no purchases (no complement term). */
  types?: ArrayLike<number>;
}

/** A {@link History} as plain arrays (what {@link finalHistory} and {@link datasetHistories} return). */
export interface HistoryArrays extends History {
  items: number[];
  times: number[];
  types: number[];
}

/** What the model reads of a history: the last event and the last purchase (-1: none; NaN time: "just now"). */
export interface SequenceState {
  lastItem: number;
  lastTime: number;
  lastPurchase: number;
  lastPurchaseTime: number;
}

/** The empty history. */
export const NO_HISTORY: SequenceState = Object.freeze({
  lastItem: -1,
  lastTime: NaN,
  lastPurchase: -1,
  lastPurchaseTime: NaN,
});

/**
 * Reduce a history (a plain item list, oldest first, or a {@link History}) to the state the model reads. Items
 * below 0 (unknown) are skipped; events later than `at` (when given with times) are ignored.
 */
export function sequenceState(history: History | ArrayLike<number> | undefined, at?: number): SequenceState {
  if (!history) return NO_HISTORY;
  const h: History = 'items' in history ? history : { items: history };
  const s = { lastItem: -1, lastTime: NaN, lastPurchase: -1, lastPurchaseTime: NaN };
  for (let k = 0; k < h.items.length; k++) {
    const item = h.items[k] ?? -1;
    if (item < 0) continue;
    const time = h.times ? (h.times[k] ?? NaN) : NaN;
    if (at !== undefined && time > at) continue;
    s.lastItem = item;
    s.lastTime = time;
    if ((h.types?.[k] ?? 0) === HISTORY_PURCHASE) {
      s.lastPurchase = item;
      s.lastPurchaseTime = time;
    }
  }
  return s;
}

/** The history a user ended the shop with (last event, last purchase), as a {@link History} in ground-truth indices. */
export function finalHistory(gt: GroundTruth, user: number): HistoryArrays {
  const o = user * 4;
  const st = gt.userState;
  const items: number[] = [];
  const times: number[] = [];
  const types: number[] = [];
  const lastPurchase = st[o + 2] ?? -1;
  const lastItem = st[o] ?? -1;
  if (lastPurchase >= 0 && !(lastItem === lastPurchase && st[o + 1] === st[o + 3])) {
    items.push(lastPurchase);
    times.push(st[o + 3] ?? NaN);
    types.push(HISTORY_PURCHASE);
  }
  if (lastItem >= 0) {
    items.push(lastItem);
    times.push(st[o + 1] ?? NaN);
    types.push(lastItem === lastPurchase && st[o + 1] === st[o + 3] ? HISTORY_PURCHASE : 0);
  }
  return { items, times, types };
}

/**
 * Scores items for one (user, time, history) at a time: the user's drifted factor vector and the session terms are
 * computed once by {@link PreferenceScorer.prepare}, then {@link PreferenceScorer.score} costs one dot product. The
 * generator draws with it and the oracle ranks with it: one implementation of the model.
 */
export class PreferenceScorer {
  private readonly uvec: Float64Array;
  private segRow = 0;
  private at: number | undefined;
  private themeWeight = 0;
  private themeCategory = -1;
  private themeType = -1;
  private complementWeight = 0;
  private complementRow = -1;
  private readonly recencyMs: number;
  private readonly p: Required<
    Pick<
      GroundTruthParams,
      | 'driftAngle'
      | 'sessionCategoryWeight'
      | 'sessionTypeWeight'
      | 'sessionMinutes'
      | 'complementWeight'
      | 'complementDays'
    >
  >;

  constructor(readonly gt: GroundTruth) {
    this.uvec = new Float64Array(gt.meta.dim);
    const p = gt.meta.params;
    this.recencyMs = p.recencyDays * DAY_MS;
    this.p = {
      driftAngle: p.driftAngle ?? 0,
      sessionCategoryWeight: p.sessionCategoryWeight ?? 0,
      sessionTypeWeight: p.sessionTypeWeight ?? 0,
      sessionMinutes: p.sessionMinutes ?? 30,
      complementWeight: p.complementWeight ?? 0,
      complementDays: p.complementDays ?? 7,
    };
  }

  /**
   * Prepare for user index `u` at `at` (epoch ms; undefined: the taste at the end of the shop, no recency boost,
   * history events "just now") after `state` (default: no history).
   */
  prepare(u: number, at?: number, state: SequenceState = NO_HISTORY): this {
    const { gt, uvec } = this;
    const { dim, categories, start, end } = gt.meta;
    const f = at === undefined ? 1 : Math.min(1, Math.max(0, (at - start) / Math.max(1, end - start)));
    const a = Math.cos(this.p.driftAngle * f);
    const b = Math.sin(this.p.driftAngle * f);
    for (let j = 0; j < dim; j++) {
      uvec[j] = a * (gt.userFactors[u * dim + j] ?? 0) + b * (gt.userDrift[u * dim + j] ?? 0);
    }
    this.segRow = (gt.userSegment[u] ?? 0) * categories;
    this.at = at;
    const since = (t: number) => (at === undefined || Number.isNaN(t) ? 0 : Math.max(0, at - t));
    this.themeWeight = 0;
    this.themeCategory = -1;
    this.themeType = -1;
    if (state.lastItem >= 0 && (this.p.sessionCategoryWeight !== 0 || this.p.sessionTypeWeight !== 0)) {
      this.themeWeight = Math.exp(-since(state.lastTime) / (this.p.sessionMinutes * MINUTE_MS));
      this.themeCategory = gt.itemCategory[state.lastItem] ?? -1;
      this.themeType = gt.itemType[state.lastItem] ?? -1;
    }
    this.complementWeight = 0;
    this.complementRow = -1;
    const k = gt.meta.complementsPerItem ?? 0;
    if (state.lastPurchase >= 0 && k > 0 && this.p.complementWeight !== 0) {
      this.complementWeight =
        this.p.complementWeight * Math.exp(-since(state.lastPurchaseTime) / (this.p.complementDays * DAY_MS));
      this.complementRow = state.lastPurchase * k;
    }
    return this;
  }

  /** The preference logit (without the intercept) of item index `i`. */
  score(i: number): number {
    const { gt, uvec } = this;
    const { dim, params } = gt.meta;
    let s = 0;
    const o = i * dim;
    for (let j = 0; j < dim; j++) s += (uvec[j] ?? 0) * (gt.itemFactors[o + j] ?? 0);
    const cat = gt.itemCategory[i] ?? 0;
    s += gt.segmentCategory[this.segRow + cat] ?? 0;
    s += params.popularityWeight * (gt.itemBias[i] ?? 0);
    if (this.at !== undefined) {
      const age = Math.max(0, this.at - (gt.itemLaunch[i] ?? 0));
      s += params.recencyWeight * Math.exp(-age / this.recencyMs);
    }
    if (this.themeWeight > 0) {
      let theme = 0;
      if (cat === this.themeCategory) theme += this.p.sessionCategoryWeight;
      if ((gt.itemType[i] ?? -2) === this.themeType) theme += this.p.sessionTypeWeight;
      s += this.themeWeight * theme;
    }
    if (this.complementRow >= 0) {
      const k = gt.meta.complementsPerItem ?? 0;
      for (let c = 0; c < k; c++) {
        if (gt.itemComplements[this.complementRow + c] === i) {
          s += this.complementWeight;
          break;
        }
      }
    }
    return s;
  }
}

const scorers = new WeakMap<GroundTruth, { scorer: PreferenceScorer; key: unknown[] }>();

function cachedScorer(gt: GroundTruth, u: number, at: number | undefined, history: unknown): PreferenceScorer {
  let c = scorers.get(gt);
  if (!c) {
    c = { scorer: new PreferenceScorer(gt), key: [] };
    scorers.set(gt, c);
  }
  if (c.key[0] !== u || c.key[1] !== at || c.key[2] !== history || c.key.length === 0) {
    const state = history ? sequenceState(history as History, at) : NO_HISTORY;
    c.scorer.prepare(u, at, state);
    c.key = [u, at, history];
  }
  return c.scorer;
}

/**
 * The preference logit (without the intercept) by indices. `at` (epoch ms) sets the taste's drift and adds the
 * recency boost (undefined: the taste at the end, no recency); `history` (ground-truth item indices, oldest first)
 * adds the session and complement terms.
 */
export function preferenceByIndex(
  gt: GroundTruth,
  u: number,
  i: number,
  at?: number,
  history?: History | ArrayLike<number>,
): number {
  return cachedScorer(gt, u, at, history).score(i);
}

/**
 * Probability that `userId` clicks `itemId` when shown it, at time `at` (epoch ms; undefined: see
 * {@link preferenceByIndex}) after `history` (ground-truth item indices; e.g. {@link finalHistory}). Unknown users or
 * items get the base rate `sigmoid(intercept)`.
 */
export function clickProbability(
  gt: GroundTruth,
  userId: string,
  itemId: string,
  at?: number,
  history?: History | ArrayLike<number>,
): number {
  const u = indexOfId(userId, gt.meta.userIdPrefix, gt.meta.users);
  const i = indexOfId(itemId, gt.meta.itemIdPrefix, gt.meta.items);
  if (u < 0 || i < 0) return sigmoid(gt.meta.params.intercept);
  return sigmoid(gt.meta.params.intercept + preferenceByIndex(gt, u, i, at, history));
}

/**
 * The oracle ranking: the `k` items with the highest click probability for `userId`, among `candidateItemIds`
 * (default: the whole catalog), best first, at `at` after `history` (ground-truth item indices). Unknown candidate
 * ids are skipped; an unknown user gets the items ranked by their user-independent part (popularity bias).
 */
export function oracleTopK(
  gt: GroundTruth,
  userId: string,
  k: number,
  candidateItemIds?: readonly string[],
  at?: number,
  history?: History | ArrayLike<number>,
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
  const scorer = u >= 0 ? new PreferenceScorer(gt).prepare(u, at, sequenceState(history, at)) : undefined;
  const scored = idx.map((i) => ({
    i,
    logit: scorer ? scorer.score(i) : params.popularityWeight * (gt.itemBias[i] ?? 0),
  }));
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

/** The ground-truth folder of a shop (the shop folder, or its `ground-truth/` folder) and its meta.json text. */
export async function groundTruthDir(shopDir: string): Promise<{ dir: string; metaText: string }> {
  for (const dir of [join(shopDir, 'ground-truth'), shopDir]) {
    try {
      return { dir, metaText: await readFile(join(dir, 'meta.json'), 'utf8') };
    } catch {
      // try the next
    }
  }
  throw new RecflowError(ErrorType.ArtifactMissing, `no ground truth in ${shopDir} (expected ground-truth/meta.json)`);
}

/**
 * Load the ground truth of a generated shop (the shop folder, or its `ground-truth/` folder). Format 1 (generator
 * version 2) loads with zero drift, no types, no complements and no user state.
 * @throws {RecflowError} `ArtifactMissing` when a file is missing or has the wrong size.
 */
export async function loadGroundTruth(shopDir: string): Promise<GroundTruth> {
  const { dir, metaText } = await groundTruthDir(shopDir);
  const meta = JSON.parse(metaText) as GroundTruthMeta;
  if (meta.format !== 'recflow-ground-truth/1' && meta.format !== 'recflow-ground-truth/2') {
    throw new RecflowError(ErrorType.ArtifactMissing, `ground truth ${dir}: unknown format '${String(meta.format)}'`);
  }
  const v2 = meta.format === 'recflow-ground-truth/2';
  if (!v2) {
    meta.params = {
      ...meta.params,
      driftAngle: 0,
      sessionCategoryWeight: 0,
      sessionTypeWeight: 0,
      complementWeight: 0,
    };
  }
  const f = GROUND_TRUTH_FILES;
  const k = v2 ? (meta.complementsPerItem ?? 0) : 0;
  return {
    meta,
    userFactors: await readTyped(join(dir, f.userFactors), Float32Array, meta.users * meta.dim),
    userDrift: v2
      ? await readTyped(join(dir, f.userDrift), Float32Array, meta.users * meta.dim)
      : new Float32Array(meta.users * meta.dim),
    itemFactors: await readTyped(join(dir, f.itemFactors), Float32Array, meta.items * meta.dim),
    itemBias: await readTyped(join(dir, f.itemBias), Float32Array, meta.items),
    segmentCategory: await readTyped(join(dir, f.segmentCategory), Float32Array, meta.segments * meta.categories),
    userSegment: await readTyped(join(dir, f.userSegment), Int32Array, meta.users),
    itemCategory: await readTyped(join(dir, f.itemCategory), Int32Array, meta.items),
    itemType: v2 ? await readTyped(join(dir, f.itemType), Int32Array, meta.items) : new Int32Array(meta.items),
    itemComplements: v2 ? await readTyped(join(dir, f.itemComplements), Int32Array, meta.items * k) : new Int32Array(0),
    itemLaunch: await readTyped(join(dir, f.itemLaunch), Float64Array, meta.items),
    userState: v2
      ? await readTyped(join(dir, f.userState), Float64Array, meta.users * 4)
      : new Float64Array(meta.users * 4).map((_, j) => (j % 2 === 0 ? -1 : NaN)),
  };
}

function vocabIndices(gt: GroundTruth, vocab: { users: readonly string[]; items: readonly string[] }) {
  return {
    u: vocab.users.map((id) => indexOfId(id, gt.meta.userIdPrefix, gt.meta.users)),
    i: vocab.items.map((id) => indexOfId(id, gt.meta.itemIdPrefix, gt.meta.items)),
  };
}

/**
 * The oracle over a dataset's vocabularies, without history: ground-truth click logit by dataset user and item index
 * (index 0, `<unk>`, and ids the ground truth does not know score `-Infinity`), for oracle rankings in evaluation.
 * `at` (epoch ms) sets the taste's drift and adds the recency boost, e.g. the start of the test split.
 */
export function datasetScorer(
  gt: GroundTruth,
  vocab: { users: readonly string[]; items: readonly string[] },
  at?: number,
): (user: number, item: number) => number {
  const { u, i } = vocabIndices(gt, vocab);
  const scorer = new PreferenceScorer(gt);
  let prepared = -1;
  return (user, item) => {
    const gu = u[user] ?? -1;
    const gi = i[item] ?? -1;
    if (gu < 0 || gi < 0) return -Infinity;
    if (gu !== prepared) {
      scorer.prepare(gu, at);
      prepared = gu;
    }
    return gt.meta.params.intercept + scorer.score(gi);
  };
}

/**
 * The history-aware oracle over a dataset's vocabularies: `scorer(user, history, at)` returns the ground-truth click
 * logit of each dataset item index for dataset user `user` at `at` (epoch ms) after `history` (dataset item indices,
 * oldest first, e.g. from {@link datasetHistories}). Unknown users and items score `-Infinity`. This is the
 * oracle that knows the next-item signal (sessions, complements) as well as the drifted taste.
 */
export function datasetHistoryScorer(
  gt: GroundTruth,
  vocab: { users: readonly string[]; items: readonly string[] },
): (user: number, history: History | ArrayLike<number> | undefined, at?: number) => (item: number) => number {
  const { u, i } = vocabIndices(gt, vocab);
  return (user, history, at) => {
    const gu = u[user] ?? -1;
    const scorer = new PreferenceScorer(gt);
    if (gu >= 0) {
      const h: History | undefined = history && ('items' in history ? history : { items: history });
      const mapped = h && { ...h, items: Array.from(h.items, (x) => i[x] ?? -1) };
      scorer.prepare(gu, at, sequenceState(mapped, at));
    }
    return (item) => {
      const gi = i[item] ?? -1;
      return gu < 0 || gi < 0 ? -Infinity : gt.meta.params.intercept + scorer.score(gi);
    };
  };
}

/** Interactions of a dataset split (lib/data/dataset.ts `Interactions`), as far as histories need them. */
export interface HistorySource {
  user: ArrayLike<number>;
  item: ArrayLike<number>;
  label: ArrayLike<number>;
  timestamp: ArrayLike<number>;
}

/**
 * Each user's history (dataset item indices, times, event types from the labels: 1 purchase, 0.75 add_to_cart, 0.5
 * click, else view) from dataset splits, in time order, events before `before` only (default: all). A split row is
 * one (user, item) with its strongest label and last time, so a purchase's time is read as the pair's last event's.
 */
export function datasetHistories(splits: readonly HistorySource[], before = Infinity): Map<number, HistoryArrays> {
  const rows: Array<[number, number, number, number]> = [];
  for (const s of splits) {
    for (let k = 0; k < s.user.length; k++) {
      const t = s.timestamp[k] ?? 0;
      if (t >= before) continue;
      const label = s.label[k] ?? 0;
      const type = label >= 1 ? 3 : label >= 0.75 ? 2 : label >= 0.5 ? 1 : 0;
      rows.push([s.user[k] ?? 0, t, s.item[k] ?? 0, type]);
    }
  }
  rows.sort((a, b) => a[1] - b[1]);
  const out = new Map<number, HistoryArrays>();
  for (const [user, t, item, type] of rows) {
    let h = out.get(user);
    if (!h) {
      h = { items: [], times: [], types: [] };
      out.set(user, h);
    }
    h.items.push(item);
    h.times.push(t);
    h.types.push(type);
  }
  return out;
}
