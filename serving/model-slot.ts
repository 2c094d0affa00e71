/**
 * Loaded models and the two slots (stable, canary). A model is loaded and warmed before it takes traffic; a swap
 * points the slot at the new model at once, then the old one is released only when its last request in flight has
 * finished (reference counting), so a swap never fails a request.
 */
import { createHash } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ONNX_IO, type BundleManifest, type Precision } from '../lib/bundle';
import type { ModelTask } from '../lib/kinds';
import { ErrorType, RecflowError } from '../lib/errors';
import { locateBundle } from '../lib/fleet/locate';
import type { SlotState } from '../lib/fleet/types';
import { historyOf, loadBundle, readHistories, type UserHistories } from '../lib/onnx/bundle-io';
import { Batcher } from './batcher';
import { RefCountedModel } from './refcount';
import { routeUser } from './router';
import { LoadedSearch } from './search-model';

/** The two slots of a replica. */
export type Variant = 'stable' | 'canary';
export const VARIANTS: readonly Variant[] = ['stable', 'canary'];

/** Options of model loading. */
export interface ModelOptions {
  /**
   * onnxruntime intra-op threads per session (`--threads`, `RECFLOW_ORT_THREADS`). One thread and no spinning is
   * what a small-request server wants: the default pool costs about twice the CPU per request on a busy host.
   * @default 1
   */
  intraOpThreads?: number;
  /** Let onnxruntime's pool threads spin while waiting for work (only matters with more than one thread). @default false */
  spinning?: boolean;
  /** Largest micro-batch. @default 64 */
  maxBatch?: number;
  /** Batch observer (metrics). */
  onBatch?: (graph: 'score' | 'recommend' | 'search', version: string, size: number, seconds: number) => void;
  /**
   * Folders bundles may be loaded from (symlinks resolved); a slot elsewhere is refused before anything is read.
   * `recflow serve` confines a fleet replica to the artifact store. @default anywhere
   */
  bundleRoots?: string[];
}

/**
 * Refuse a bundle path outside `roots` (after resolving symlinks and `..`): the desired state, written by whoever
 * holds the fleet folder or the admin token, cannot make a replica read files elsewhere.
 * @throws {RecflowError} `InvalidInput` naming the path and the roots; `ArtifactMissing` when it does not exist.
 */
export async function assertBundleInRoots(bundlePath: string, roots: string[] | undefined): Promise<void> {
  if (!roots?.length) return;
  const real = await realpath(bundlePath).catch(() => {
    throw new RecflowError(ErrorType.ArtifactMissing, `bundle ${bundlePath} does not exist`);
  });
  for (const root of roots) {
    const r = await realpath(root).catch(() => undefined);
    if (!r) continue;
    const rel = relative(r, real);
    if (rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel))) return;
  }
  throw new RecflowError(
    ErrorType.InvalidInput,
    `bundle path ${bundlePath} is outside the bundle roots (${roots.join(', ')}): refused`,
  );
}

export interface RecommendInput {
  user: number;
  k: number;
  exclude: number[];
  /** Item indices, oldest first, for a graph with a `history` input (ignored otherwise). */
  history?: ArrayLike<number>;
}
export interface RecommendOutput {
  items: number[];
  scores: number[];
}
export interface ScoreInput {
  user: number;
  items: number[];
  /** Item indices, oldest first, for a score graph with a `history` input (ignored otherwise). */
  history?: ArrayLike<number>;
}

/** One bundle at one precision, with its two sessions, vocabularies and batchers. */
export class LoadedModel extends RefCountedModel {
  /** What it serves: `/v1/recommend` and `/v1/score`. */
  readonly task = 'recommend' as const;
  readonly recommendBatcher: Batcher<RecommendInput, RecommendOutput>;
  readonly scoreBatcher: Batcher<ScoreInput, number[]>;
  /** Width of the recommend graph's `history` input (its most), or 0 when the graph has none. */
  readonly historyLength: number;
  /** The graph's `history` width is static: feed exactly {@link historyLength}. */
  private readonly historyFixed: boolean;
  /** The score graph's `history` input (two-tower v3 graphs take one in both graphs). */
  private readonly scoreHistory: { width: number; fixed: boolean };

  private constructor(
    readonly slot: SlotState,
    /** The folder it was loaded from (the slot's path, or where its bundle id was found). */
    readonly dir: string,
    readonly userIndex: Map<string, number>,
    readonly itemIds: string[],
    readonly itemIndex: Map<string, number>,
    /** Item indices by popularity (the fallback for unknown users). */
    readonly popular: number[],
    private readonly scoreSession: ort.InferenceSession,
    private readonly recommendSession: ort.InferenceSession,
    /** The known users' training histories (absent in older bundles). */
    readonly histories: UserHistories | undefined,
    opts: ModelOptions,
  ) {
    super();
    const h = historyInput(recommendSession, histories);
    this.historyLength = h.width;
    this.historyFixed = h.fixed;
    this.scoreHistory = historyInput(scoreSession, histories);
    const batch = { maxBatch: opts.maxBatch ?? 64 };
    this.recommendBatcher = new Batcher((xs) => this.runRecommend(xs), {
      ...batch,
      onBatch: (n, s) => opts.onBatch?.('recommend', slot.version, n, s),
    });
    this.scoreBatcher = new Batcher((xs) => this.runScore(xs), {
      ...batch,
      onBatch: (n, s) => opts.onBatch?.('score', slot.version, n, s),
    });
  }

  get version(): string {
    return this.slot.version;
  }
  get precision(): Precision {
    return this.slot.precision;
  }
  /** Key of what is loaded: same key, same model. */
  get key(): string {
    return slotKey(this.slot);
  }

  /**
   * Load a bundle folder (lib/bundle.ts) at the slot's precision and warm both graphs.
   * @throws {RecflowError} `ArtifactMissing` (missing or truncated files) or `InvalidData` (vocab hash mismatch).
   */
  static async load(slot: SlotState, opts: ModelOptions = {}): Promise<LoadedModel> {
    const dir = await locateBundle(slot, opts.bundleRoots);
    await assertBundleInRoots(dir, opts.bundleRoots);
    const bundle = await loadBundle(dir);
    const vocabText = await readFile(join(dir, 'vocab.json'), 'utf8');
    const hash = createHash('sha256').update(vocabText).digest('hex');
    if (hash !== bundle.manifest.vocabHash)
      throw new RecflowError(
        ErrorType.InvalidData,
        `bundle ${dir}: vocab.json sha256 ${hash} does not match bundle.json vocabHash ${bundle.manifest.vocabHash}`,
      );
    const vocab = JSON.parse(vocabText) as { users: string[]; items: string[] };
    const popularIds = JSON.parse(await readFile(join(dir, 'popular.json'), 'utf8')) as string[];
    const histories = await readHistories(dir, bundle.manifest);
    if (histories && histories.offsets.length !== vocab.users.length + 1)
      throw new RecflowError(
        ErrorType.InvalidData,
        `bundle ${dir}: ${bundle.manifest.history?.file} has ${histories.offsets.length - 1} users, vocab.json ${vocab.users.length}`,
      );
    const userIndex = new Map<string, number>();
    vocab.users.forEach((u, i) => i > 0 && userIndex.set(u, i));
    const itemIndex = new Map<string, number>();
    vocab.items.forEach((it, i) => i > 0 && itemIndex.set(it, i));
    const popular = popularIds.map((id) => itemIndex.get(id)).filter((i): i is number => i !== undefined);
    const so = sessionOptions(opts);
    const paths = bundle.paths[slot.precision];
    const score = await ort.InferenceSession.create(paths.score, so);
    const recommend = await ort.InferenceSession.create(paths.recommend, so).catch(async (err: unknown) => {
      await score.release();
      throw err;
    });
    const m = new LoadedModel(slot, dir, userIndex, vocab.items, itemIndex, popular, score, recommend, histories, opts);
    await m.warm();
    return m;
  }

  /** The user's stored history (item indices, oldest first); empty for unknown users or bundles without one. */
  seen(user: number | undefined): Int32Array {
    return user === undefined || !this.histories ? new Int32Array(0) : historyOf(this.histories, user);
  }

  /** Number of catalog items (index 0 excluded). */
  get itemCount(): number {
    return this.itemIds.length - 1;
  }

  /** Run both graphs once so the first request does not pay for lazy initialisation. */
  async warm(): Promise<void> {
    const user = Math.min(1, this.userIndex.size);
    await this.runRecommend([{ user, k: Math.min(10, this.itemCount), exclude: [] }]);
    await this.runScore([{ user, items: [Math.min(1, this.itemCount)] }]);
  }

  protected async releaseSessions(): Promise<void> {
    await this.scoreSession.release();
    await this.recommendSession.release();
  }

  private async runRecommend(xs: RecommendInput[]): Promise<RecommendOutput[]> {
    const b = xs.length;
    const k = Math.max(1, Math.min(this.itemCount, Math.max(...xs.map((x) => x.k))));
    const e = Math.max(0, ...xs.map((x) => x.exclude.length));
    const user = BigInt64Array.from(xs, (x) => BigInt(x.user));
    const exclude = new BigInt64Array(b * e);
    xs.forEach((x, r) => x.exclude.forEach((it, c) => (exclude[r * e + c] = BigInt(it))));
    const feeds: Record<string, ort.Tensor> = {
      [ONNX_IO.user]: new ort.Tensor('int64', user, [b]),
      [ONNX_IO.k]: new ort.Tensor('int64', BigInt64Array.of(BigInt(k)), [1]),
      [ONNX_IO.exclude]: new ort.Tensor('int64', exclude, [b, e]),
    };
    if (this.historyLength > 0) feeds[ONNX_IO.history] = historyTensor(xs, this.historyLength, this.historyFixed);
    const out = await this.recommendSession.run(feeds);
    const scores = out[ONNX_IO.scores]?.data as Float32Array;
    const items = out[ONNX_IO.topItems]?.data as BigInt64Array;
    return xs.map((x, r) => {
      const n = Math.min(x.k, k);
      return {
        items: Array.from(items.subarray(r * k, r * k + n), Number),
        scores: Array.from(scores.subarray(r * k, r * k + n)),
      };
    });
  }

  private async runScore(xs: ScoreInput[]): Promise<number[][]> {
    const b = xs.length;
    const n = Math.max(1, ...xs.map((x) => x.items.length));
    const items = new BigInt64Array(b * n);
    xs.forEach((x, r) => x.items.forEach((it, c) => (items[r * n + c] = BigInt(it))));
    const feeds: Record<string, ort.Tensor> = {
      [ONNX_IO.user]: new ort.Tensor(
        'int64',
        BigInt64Array.from(xs, (x) => BigInt(x.user)),
        [b],
      ),
      [ONNX_IO.items]: new ort.Tensor('int64', items, [b, n]),
    };
    if (this.scoreHistory.width > 0)
      feeds[ONNX_IO.history] = historyTensor(xs, this.scoreHistory.width, this.scoreHistory.fixed);
    const out = await this.scoreSession.run(feeds);
    const scores = out[ONNX_IO.scores]?.data as Float32Array;
    return xs.map((x, r) => Array.from(scores.subarray(r * n, r * n + x.items.length)));
  }
}

/** onnxruntime session options: one intra-op thread, no spinning, unless configured otherwise. */
export function sessionOptions(
  opts: Pick<ModelOptions, 'intraOpThreads' | 'spinning'>,
): ort.InferenceSession.SessionOptions {
  const spin = opts.spinning ? '1' : '0';
  return {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.intraOpThreads ?? 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  };
}

/**
 * A graph's `history` input: its static width, else the bundle's cap per user (or 50) as the most fed;
 * width 0 when the graph takes no history.
 */
function historyInput(
  session: ort.InferenceSession,
  histories: UserHistories | undefined,
): { width: number; fixed: boolean } {
  if (!session.inputNames.includes(ONNX_IO.history)) return { width: 0, fixed: false };
  const meta = session.inputMetadata.find((m) => m.name === ONNX_IO.history);
  const dim = meta?.isTensor ? meta.shape[1] : undefined;
  if (typeof dim === 'number' && dim > 0) return { width: dim, fixed: true };
  return { width: histories?.maxPerUser ?? 50, fixed: false };
}

/**
 * The `history` input of a batch: `[B, L]`, each row's last `L` items, 0-padded on the left, most recent last. `L`
 * is `width` for a static graph dimension, else the longest row (at least 1, at most `width`).
 */
function historyTensor(xs: Array<{ history?: ArrayLike<number> }>, width: number, fixed: boolean): ort.Tensor {
  const l = fixed ? width : Math.max(1, ...xs.map((x) => Math.min(width, x.history?.length ?? 0)));
  const data = new BigInt64Array(xs.length * l);
  xs.forEach((x, r) => {
    const h = x.history ?? [];
    const n = Math.min(l, h.length);
    for (let j = 0; j < n; j++) data[r * l + (l - n) + j] = BigInt(h[h.length - n + j] ?? 0);
  });
  return new ort.Tensor('int64', data, [xs.length, l]);
}

/** A model a slot holds: a recommender (`/v1/recommend`, `/v1/score`) or a search model (`/v1/search`). */
export type ServedModel = LoadedModel | LoadedSearch;

/** The served model of a task. */
export type ModelOfTask<T extends ModelTask> = T extends 'search' ? LoadedSearch : LoadedModel;

/**
 * Load a slot's bundle as what its manifest's `task` says it serves: a search bundle (`task: 'search'`) as a
 * {@link LoadedSearch}, anything else as a recommender {@link LoadedModel}.
 * @throws {RecflowError} as {@link LoadedModel.load} and {@link LoadedSearch.load}.
 */
export async function loadServedModel(slot: SlotState, opts: ModelOptions = {}): Promise<ServedModel> {
  const dir = await locateBundle(slot, opts.bundleRoots);
  await assertBundleInRoots(dir, opts.bundleRoots);
  let task: ModelTask | undefined;
  try {
    task = (JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8')) as BundleManifest).task;
  } catch {
    task = undefined; // LoadedModel.load says what is wrong with the file
  }
  if (task === 'search') return LoadedSearch.load(slot, dir, opts);
  return LoadedModel.load(slot, opts);
}

/** Key of a slot state: same key, same loaded model. */
export function slotKey(s: SlotState): string {
  return `${s.bundlePath}|${s.precision}|${s.version}`;
}

/** What a replica wants loaded (the fleet's desired state, or a single bundle). */
export interface SlotsTarget {
  generation: number;
  stable: SlotState | null;
  canary: SlotState | null;
  canaryWeight: number;
  /** Salt of the sticky user hash. */
  salt?: string;
}

/** The stable and canary slots of a replica, the canary weight and the generation applied. */
export class ModelSlots {
  private models: Record<Variant, ServedModel | null> = { stable: null, canary: null };
  canaryWeight = 0;
  generation = 0;
  salt = '';
  private applying: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: ModelOptions = {},
    private readonly onChange?: (slots: ModelSlots) => void,
  ) {}

  /** The model in a slot (no reference taken); with `task`, null when the slot holds a model of the other task. */
  get(variant: Variant): ServedModel | null;
  get<K extends ModelTask>(variant: Variant, task: K): ModelOfTask<K> | null;
  get(variant: Variant, task?: ModelTask): ServedModel | null {
    const m = this.models[variant];
    return task === undefined || m?.task === task ? m : null;
  }

  /** True when a stable model is loaded and warmed. */
  get ready(): boolean {
    return this.models.stable !== null;
  }

  /**
   * Route a user and take a reference on the model that serves them (release it with `model.release()`).
   * Null when no model is loaded.
   */
  pick(userId: string): { variant: Variant; model: ServedModel } | null {
    let variant = routeUser(userId, this.canaryWeight, this.models.canary !== null, this.salt);
    if (!this.models[variant]) variant = variant === 'canary' ? 'stable' : 'canary';
    const model = this.models[variant];
    return model ? { variant, model: model.acquire() } : null;
  }

  /**
   * Make the slots equal to `target`: new models are loaded and warmed first (a model already loaded in either
   * slot is reused), then swapped in together with the weight; the replaced models are closed once drained.
   * Calls are serialised. On a load failure nothing changes and the error is thrown.
   */
  apply(target: SlotsTarget): Promise<void> {
    const run = this.applying.then(() => this.applyNow(target));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyNow(target: SlotsTarget): Promise<void> {
    const loaded = [this.models.stable, this.models.canary].filter((m): m is ServedModel => m !== null);
    const fresh: ServedModel[] = [];
    const resolve = async (s: SlotState | null): Promise<ServedModel | null> => {
      if (!s) return null;
      const have = [...loaded, ...fresh].find((m) => m.key === slotKey(s));
      if (have) return have;
      const m = await loadServedModel(s, this.opts);
      fresh.push(m);
      return m;
    };
    let next: Record<Variant, ServedModel | null>;
    try {
      next = { stable: await resolve(target.stable), canary: await resolve(target.canary) };
    } catch (err) {
      await Promise.all(fresh.map((m) => m.close()));
      throw err;
    }
    const old = loaded.filter((m) => m !== next.stable && m !== next.canary);
    this.models = next;
    this.canaryWeight = target.canaryWeight;
    this.salt = target.salt ?? '';
    this.generation = target.generation;
    this.onChange?.(this);
    await Promise.all(old.map((m) => m.close()));
  }

  /** Close every model (after draining). */
  async close(): Promise<void> {
    await this.applying;
    const ms = [this.models.stable, this.models.canary].filter((m): m is ServedModel => m !== null);
    this.models = { stable: null, canary: null };
    this.onChange?.(this);
    await Promise.all([...new Set(ms)].map((m) => m.close()));
  }
}
