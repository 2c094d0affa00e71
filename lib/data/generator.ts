/**
 * The synthetic shop: a seeded, deterministic e-commerce export (`users.csv`, `items.csv`, `events.csv`, and the
 * search log `queries.csv`, `search_events.csv`) drawn from a hidden model (lib/data/ground-truth.ts for
 * recommendations, lib/data/search-truth.ts for search) written apart under `ground-truth/`, with realistic dirt at
 * a configurable rate. The catalogue is natural language (lib/data/catalog.ts): product types, colours, materials,
 * sizes and brands, titles written from varied templates with synonyms. Rows are written in order as they are drawn,
 * in 1 MiB chunks with back-pressure, so memory stays bounded whatever the number of events or queries (it grows
 * with users and items only).
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../errors';
import { writeJsonAtomic } from '../fs-atomic';
import { AliasTable, gauss, mulberry32 } from '../rng';
import { buildVocab, itemTitle, materialIndex, sizesOf, type ItemAttributes } from './catalog';
import {
  GROUND_TRUTH_FILES,
  PreferenceScorer,
  type GroundTruth,
  type GroundTruthMeta,
  type GroundTruthParams,
} from './ground-truth';
import {
  DEFAULT_SEARCH_PARAMS,
  SEARCH_TRUTH_FILES,
  drawQuery,
  engineScore,
  relevanceAt,
  searchClickProbability,
  type SearchItems,
  type SearchTruthMeta,
} from './search-truth';

/** Bump when the generator's output for the same options changes (it is part of the shop's artifact id). */
export const GENERATOR_VERSION = 3;

/** Options of {@link generateShop}. */
export interface ShopOptions {
  /** @default 42 */
  seed?: number;
  /** @default 2000 */
  users?: number;
  /** @default 1000 */
  items?: number;
  /** Clean events drawn from the model; dirt rows come on top. @default 50000 */
  events?: number;
  /** Search queries in `queries.csv` (0: no search log). @default 3000 */
  queries?: number;
  /** Share of rows with one kind of dirt (duplicates, missing values, unknown ids, out-of-order times, price outliers). @default 0.01 */
  dirt?: number;
  /** First event time, epoch ms. @default 2026-01-01T00:00:00Z */
  start?: number;
  /** Length of the event range in days. @default 60 */
  days?: number;
}

/** What {@link generateShop} wrote. */
export interface ShopCounts {
  users: number;
  items: number;
  /** Rows of events.csv, dirt included. */
  events: number;
  cleanEvents: number;
  /** Rows of queries.csv and search_events.csv (dirt included). */
  queries: number;
  searchEvents: number;
  dirt: Record<string, number>;
}

/** The options' defaults. */
export const DEFAULT_SHOP: Required<ShopOptions> = {
  seed: 42,
  users: 2000,
  items: 1000,
  events: 50_000,
  queries: 3000,
  dirt: 0.01,
  start: Date.UTC(2026, 0, 1),
  days: 60,
};

const SEGMENTS = ['bargain', 'regular', 'premium', 'family', 'student'];
const REGIONS = ['north', 'south', 'east', 'west', 'central', 'islands', 'capital', 'coast', 'mountains', 'abroad'];
const EVENT_TYPES = ['view', 'click', 'add_to_cart', 'purchase'] as const;
const SEARCH_EVENTS = ['click', 'add_to_cart', 'purchase'] as const;
const DIM = 8;
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const BRANDS_PER_CATEGORY = 6;
const COMPLEMENTS_PER_ITEM = 4;
/** Share of new items that are a variant (another colour or size) of an earlier product of the same category. */
const VARIANT_RATE = 0.35;

/** The preference model's parameters (`sessionMinutes` grows in small shops: see {@link generateShop}). */
export const DEFAULT_PARAMS: GroundTruthParams = {
  intercept: -1.6,
  popularityWeight: 0.4,
  recencyWeight: 0.8,
  recencyDays: 10,
  cartRate: 0.35,
  purchaseRate: 0.5,
  driftAngle: 0.9,
  sessionCategoryWeight: 1.2,
  sessionTypeWeight: 0.8,
  sessionMinutes: 30,
  complementWeight: 2,
  complementDays: 7,
  sessionViews: 4,
  typeFactorShare: 0.5,
};

/** Quote a CSV field when it needs it. */
function csv(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Buffered line writer with back-pressure (a CSV file, or JSON lines with `header` null). */
class LineOut {
  private readonly stream: WriteStream;
  private buf: string[] = [];
  private size = 0;
  rows = 0;
  constructor(path: string, header: string | null) {
    this.stream = createWriteStream(path, { encoding: 'utf8' });
    if (header !== null) this.buf.push(`${header}\n`);
  }
  line(s: string): void {
    this.buf.push(s, '\n');
    this.size += s.length + 1;
    this.rows++;
  }
  get full(): boolean {
    return this.size >= 1 << 20;
  }
  async flush(): Promise<void> {
    if (!this.buf.length) return;
    const chunk = this.buf.join('');
    this.buf = [];
    this.size = 0;
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((res, rej) => this.stream.end((err?: Error | null) => (err ? rej(err) : res())));
  }
}

function validate(o: Required<ShopOptions>): void {
  const intIn = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RecflowError(ErrorType.InvalidInput, `shop ${name}=${v}: expected an integer in [${min}, ${max}]`);
    }
  };
  intIn('users', o.users, 1, 50_000_000);
  intIn('items', o.items, 1, 10_000_000);
  intIn('events', o.events, 0, 2_000_000_000);
  intIn('queries', o.queries, 0, 100_000_000);
  intIn('seed', o.seed, 0, 2 ** 32 - 1);
  if (!(o.dirt >= 0 && o.dirt <= 0.5)) {
    throw new RecflowError(ErrorType.InvalidInput, `shop dirt=${o.dirt}: expected a rate in [0, 0.5]`);
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Draw from `alias` (over `pool`, or the whole range) an item launched by `t`; a few tries, then the last draw. */
function drawLaunched(alias: AliasTable, launch: Float64Array, t: number, r: () => number, pool?: Int32Array): number {
  let i = pool ? (pool[alias.draw(r)] ?? 0) : alias.draw(r);
  for (let tries = 0; tries < 4 && (launch[i] ?? 0) > t; tries++) i = pool ? (pool[alias.draw(r)] ?? 0) : alias.draw(r);
  return i;
}

/**
 * Generate a shop into `dir` (created if needed): `users.csv`, `items.csv`, `events.csv`, `queries.csv`,
 * `search_events.csv` and `ground-truth/`. Same options, same bytes. `onProgress` is awaited every 100k events
 * (heartbeats).
 * @throws {RecflowError} `InvalidInput` for out-of-range options.
 */
export async function generateShop(
  dir: string,
  options: ShopOptions = {},
  onProgress?: (p: { events: number; total: number }) => void | Promise<void>,
): Promise<ShopCounts> {
  const o: Required<ShopOptions> = { ...DEFAULT_SHOP, ...options };
  validate(o);
  const r = mulberry32(o.seed);
  const nCat = Math.min(20, Math.max(2, Math.round(Math.sqrt(o.items) / 2)));
  const nSeg = SEGMENTS.length;
  const start = o.start;
  const end = start + o.days * DAY_MS;
  const step = (end - start) / Math.max(1, o.events);
  // Sessions last a few views; in a small shop consecutive events lie far apart, so the session time constant
  // grows to cover about ten event steps.
  const params: GroundTruthParams = {
    ...DEFAULT_PARAMS,
    sessionMinutes: Math.max(DEFAULT_PARAMS.sessionMinutes ?? 30, Math.ceil((10 * step) / MINUTE_MS)),
  };
  const dirt: Record<string, number> = {
    duplicate: 0,
    missingValue: 0,
    unknownUser: 0,
    unknownItem: 0,
    outOfOrder: 0,
    priceOutlier: 0,
    missingItemField: 0,
    missingUserField: 0,
    queryMissingText: 0,
    searchUnknownQuery: 0,
    searchUnknownItem: 0,
    searchMissingEvent: 0,
  };
  const gtDir = join(dir, 'ground-truth');
  await mkdir(gtDir, { recursive: true });

  // The hidden model.
  const vocab = buildVocab(nCat, BRANDS_PER_CATEGORY, r);
  const nTypes = vocab.types.length;
  const segmentCategory = new Float32Array(nSeg * nCat).map(() => gauss(r) * 1.0);
  const userFactors = new Float32Array(o.users * DIM).map(() => gauss(r) * 0.6);
  const userDrift = new Float32Array(o.users * DIM).map(() => gauss(r) * 0.6);
  const itemFactors = new Float32Array(o.items * DIM).map(() => gauss(r) * 0.6);
  const typeFactors = new Float32Array(nTypes * DIM).map(() => gauss(r) * 0.6);
  const userSegment = new Int32Array(o.users);
  const itemCategory = new Int32Array(o.items);
  const itemType = new Int32Array(o.items);
  const itemLaunch = new Float64Array(o.items);
  const itemBias = new Float32Array(o.items);
  const userActivity = new Float64Array(o.users);
  const userSignup = new Float64Array(o.users);
  const attrs: SearchItems = {
    type: itemType,
    color: new Int32Array(o.items).fill(-1),
    material: new Int32Array(o.items).fill(-1),
    size: new Int32Array(o.items).fill(-1),
    brand: new Int32Array(o.items).fill(-1),
  };

  const catTypes = Array.from({ length: nCat }, (_, c) =>
    vocab.types.map((t, k) => (t.category === vocab.categories[c] ? k : -1)).filter((k) => k >= 0),
  );
  const catPrice = Array.from({ length: nCat }, () => Math.exp(2 + r() * 4));

  const usersOut = new LineOut(join(dir, 'users.csv'), 'user_id,segment,region,signup_time');
  for (let u = 0; u < o.users; u++) {
    const seg = Math.floor(r() * r() * nSeg * 1.999) % nSeg;
    userSegment[u] = seg;
    userActivity[u] = Math.exp(gauss(r));
    const newUser = r() < 0.1;
    userSignup[u] = newUser ? start + r() * 0.8 * (end - start) : start - r() * 730 * DAY_MS;
    const fields = [
      `u${u + 1}`,
      SEGMENTS[seg] ?? '',
      REGIONS[Math.floor(r() * REGIONS.length)] ?? '',
      iso(Math.floor(userSignup[u] ?? 0)),
    ];
    if (r() < o.dirt) {
      fields[1 + Math.floor(r() * 3)] = '';
      dirt.missingUserField = (dirt.missingUserField ?? 0) + 1;
    }
    usersOut.line(fields.join(','));
    if (usersOut.full) await usersOut.flush();
  }
  await usersOut.close();

  // Catalogue: a new product (type, brand, material, colour, size of its category), or with VARIANT_RATE another
  // colour or size of an earlier product of the category (near-duplicates that make ranking non-trivial).
  const share = params.typeFactorShare ?? 0;
  const own = Math.sqrt(1 - share * share);
  const lastProduct = new Int32Array(nCat).fill(-1);
  const itemsOut = new LineOut(
    join(dir, 'items.csv'),
    'item_id,category,brand,price,title,launch_time,product_type,color,material,size',
  );
  const basePrice = new Float64Array(o.items);
  for (let i = 0; i < o.items; i++) {
    const c = Math.floor(r() * nCat);
    itemCategory[i] = c;
    // Zipf-like popularity; centered below.
    itemBias[i] = -Math.log((i % 97) + 1 + r() * 50) + gauss(r) * 0.5;
    itemLaunch[i] = r() < 0.7 ? start - r() * 365 * DAY_MS : start + r() * 0.85 * (end - start);
    const base = lastProduct[c] ?? -1;
    const a: ItemAttributes = { type: 0, color: -1, material: -1, size: -1, brand: -1 };
    if (base >= 0 && r() < VARIANT_RATE) {
      a.type = attrs.type[base] ?? 0;
      a.brand = attrs.brand[base] ?? -1;
      a.material = attrs.material[base] ?? -1;
      a.color = attrs.color[base] ?? -1;
      a.size = attrs.size[base] ?? -1;
      const spec = vocab.types[a.type];
      const sizes = sizesOf(vocab, spec?.size);
      if (a.color >= 0 && (r() < 0.7 || !sizes.length)) a.color = Math.floor(r() * vocab.colours.length);
      else if (sizes.length) a.size = sizes[Math.floor(r() * sizes.length)] ?? a.size;
      basePrice[i] = basePrice[base] ?? 10;
    } else {
      const types = catTypes[c] ?? [0];
      a.type = types[Math.floor(r() * types.length)] ?? 0;
      const spec = vocab.types[a.type];
      a.brand = c * BRANDS_PER_CATEGORY + Math.floor(r() * BRANDS_PER_CATEGORY);
      if (spec?.materials.length) {
        a.material = materialIndex(vocab, spec.materials[Math.floor(r() * spec.materials.length)] ?? '');
      }
      if (spec?.color) a.color = Math.floor(r() * vocab.colours.length);
      const sizes = sizesOf(vocab, spec?.size);
      if (sizes.length) a.size = sizes[Math.floor(r() * sizes.length)] ?? -1;
      basePrice[i] = (catPrice[c] ?? 10) * Math.exp(gauss(r) * 0.4);
      lastProduct[c] = i;
    }
    itemType[i] = a.type;
    attrs.color[i] = a.color;
    attrs.material[i] = a.material;
    attrs.size[i] = a.size;
    attrs.brand[i] = a.brand;
    for (let j = 0; j < DIM; j++) {
      itemFactors[i * DIM + j] = share * (typeFactors[a.type * DIM + j] ?? 0) + own * (itemFactors[i * DIM + j] ?? 0);
    }
    const { title, colour } = itemTitle(vocab, a, r);
    let price = ((basePrice[i] ?? 10) * Math.exp(gauss(r) * 0.05)).toFixed(2);
    let brand = vocab.brands[a.brand] ?? '';
    let category = vocab.categories[c] ?? '';
    if (r() < o.dirt) {
      const k = r();
      if (k < 0.5) {
        price = k < 0.2 ? '0' : k < 0.3 ? `-${price}` : (99_999 + r() * 900_000).toFixed(2);
        dirt.priceOutlier = (dirt.priceOutlier ?? 0) + 1;
      } else {
        if (k < 0.75) brand = '';
        else category = '';
        dirt.missingItemField = (dirt.missingItemField ?? 0) + 1;
      }
    }
    const spec = vocab.types[a.type];
    itemsOut.line(
      [
        `i${i + 1}`,
        category,
        brand,
        price,
        csv(title),
        iso(Math.floor(itemLaunch[i] ?? 0)),
        csv(spec?.names[0] ?? ''),
        colour,
        a.material >= 0 ? (vocab.materials[a.material]?.names[0] ?? '') : '',
        a.size >= 0 ? (vocab.sizes[a.size]?.value ?? '') : '',
      ].join(','),
    );
    if (itemsOut.full) await itemsOut.flush();
  }
  await itemsOut.close();
  let meanBias = 0;
  for (const b of itemBias) meanBias += b / o.items;
  for (let i = 0; i < o.items; i++) itemBias[i] = (itemBias[i] ?? 0) - meanBias;

  // Items by type and by category; complements: items of the type's complement types (else of the category's other
  // types), a fixed table of COMPLEMENTS_PER_ITEM per item.
  const byType: number[][] = Array.from({ length: nTypes }, () => []);
  const byCategory: number[][] = Array.from({ length: nCat }, () => []);
  for (let i = 0; i < o.items; i++) {
    byType[itemType[i] ?? 0]?.push(i);
    byCategory[itemCategory[i] ?? 0]?.push(i);
  }
  const typeIndex = new Map(vocab.types.map((t, k) => [t.names[0] ?? '', k]));
  const complementTypes = vocab.types.map((t, k) => {
    let ks = t.complements.map((n) => typeIndex.get(n) ?? -1).filter((x) => x >= 0 && (byType[x]?.length ?? 0) > 0);
    if (!ks.length) {
      const c = vocab.categories.indexOf(t.category);
      ks = (catTypes[c] ?? []).filter((x) => x !== k && (byType[x]?.length ?? 0) > 0);
    }
    return ks;
  });
  const itemComplements = new Int32Array(o.items * COMPLEMENTS_PER_ITEM).fill(-1);
  for (let i = 0; i < o.items; i++) {
    const ks = complementTypes[itemType[i] ?? 0] ?? [];
    if (!ks.length) continue;
    for (let s = 0; s < COMPLEMENTS_PER_ITEM; s++) {
      const pool = byType[ks[s % ks.length] ?? 0] ?? [];
      let j = pool[Math.floor(r() * pool.length)] ?? -1;
      for (
        let tries = 0;
        tries < 4 &&
        (j === i || itemComplements.subarray(i * COMPLEMENTS_PER_ITEM, i * COMPLEMENTS_PER_ITEM + s).includes(j));
        tries++
      ) {
        j = pool[Math.floor(r() * pool.length)] ?? -1;
      }
      if (j !== i) itemComplements[i * COMPLEMENTS_PER_ITEM + s] = j;
    }
  }

  const userState = new Float64Array(o.users * 4);
  for (let u = 0; u < o.users; u++) userState.set([-1, NaN, -1, NaN], u * 4);
  const meta: GroundTruthMeta = {
    format: 'recflow-ground-truth/2',
    seed: o.seed,
    dim: DIM,
    users: o.users,
    items: o.items,
    segments: nSeg,
    categories: nCat,
    types: nTypes,
    complementsPerItem: COMPLEMENTS_PER_ITEM,
    userIdPrefix: 'u',
    itemIdPrefix: 'i',
    start,
    end,
    params,
    cleanEvents: 0,
    dirt,
  };
  const gt: GroundTruth = {
    meta,
    userFactors,
    userDrift,
    itemFactors,
    itemBias,
    segmentCategory,
    userSegment,
    itemCategory,
    itemType,
    itemComplements,
    itemLaunch,
    userState,
  };

  // Events, in sessions: a user views a few items in a row (a session continues with 1 - 1/sessionViews). Each
  // view picks an item among candidates by exp(preference - popularity part): popularity-drawn, plus items of the
  // last event's category while the session is warm, plus the last purchase's complements while it is recent.
  // Then click, add_to_cart, purchase with the model's probabilities; the user's state (last event, last purchase)
  // is what the preference's history terms read.
  const userAlias = new AliasTable(userActivity);
  const popWeights = Array.from(itemBias, (b) => Math.exp((params.popularityWeight ?? 0) * b));
  const itemAlias = new AliasTable(popWeights);
  const catPools = byCategory.map((items) => Int32Array.from(items));
  const catAlias = catPools.map((pool) =>
    pool.length ? new AliasTable(Array.from(pool, (i) => popWeights[i] ?? 1)) : undefined,
  );
  const eventsOut = new LineOut(join(dir, 'events.csv'), 'user_id,item_id,event_type,timestamp');
  const CANDIDATES = 24;
  const THEME_CANDIDATES = 8;
  const cand = new Int32Array(CANDIDATES + COMPLEMENTS_PER_ITEM);
  const weights = new Float64Array(CANDIDATES + COMPLEMENTS_PER_ITEM);
  const scorer = new PreferenceScorer(gt);
  const sessionMs = (params.sessionMinutes ?? 30) * MINUTE_MS;
  const complementMs = (params.complementDays ?? 7) * DAY_MS;
  const continueRate = 1 - 1 / (params.sessionViews ?? 1);
  const popW = params.popularityWeight;
  const state = { lastItem: -1, lastTime: NaN, lastPurchase: -1, lastPurchaseTime: NaN };
  let emitted = 0;
  let unknownSeq = 0;
  let u = 0;
  let inSession = false;
  const emit = (user: number, i: number, type: number, t: number): void => {
    const fields = [`u${user + 1}`, `i${i + 1}`, EVENT_TYPES[type] ?? 'view', iso(t)];
    if (r() >= o.dirt) {
      eventsOut.line(fields.join(','));
      return;
    }
    const kind = Math.floor(r() * 5);
    if (kind === 0) {
      const line = fields.join(',');
      eventsOut.line(line);
      eventsOut.line(line);
      dirt.duplicate = (dirt.duplicate ?? 0) + 1;
      return;
    }
    if (kind === 1) {
      fields[Math.floor(r() * 4)] = '';
      dirt.missingValue = (dirt.missingValue ?? 0) + 1;
    } else if (kind === 2) {
      fields[0] = `u${o.users + 1 + unknownSeq++}`;
      dirt.unknownUser = (dirt.unknownUser ?? 0) + 1;
    } else if (kind === 3) {
      fields[1] = `i${o.items + 1 + unknownSeq++}`;
      dirt.unknownItem = (dirt.unknownItem ?? 0) + 1;
    } else {
      fields[3] = iso(Math.floor(t - (1 + r() * 47) * 3_600_000));
      dirt.outOfOrder = (dirt.outOfOrder ?? 0) + 1;
    }
    eventsOut.line(fields.join(','));
  };
  let nextProgress = 100_000;
  while (emitted < o.events) {
    const t = Math.floor(start + emitted * step + r() * step * 0.5);
    if (!inSession) {
      u = userAlias.draw(r);
      for (let tries = 0; tries < 8 && (userSignup[u] ?? 0) > t; tries++) u = userAlias.draw(r);
      inSession = true;
    }
    const so = u * 4;
    state.lastItem = userState[so] ?? -1;
    state.lastTime = userState[so + 1] ?? NaN;
    state.lastPurchase = userState[so + 2] ?? -1;
    state.lastPurchaseTime = userState[so + 3] ?? NaN;
    scorer.prepare(u, t, state);
    const warm = state.lastItem >= 0 && Math.exp(-(t - state.lastTime) / sessionMs) > 0.2;
    const recentPurchase = state.lastPurchase >= 0 && Math.exp(-(t - state.lastPurchaseTime) / complementMs) > 0.2;
    let n = 0;
    if (recentPurchase) {
      for (let k = 0; k < COMPLEMENTS_PER_ITEM; k++) {
        const j = itemComplements[state.lastPurchase * COMPLEMENTS_PER_ITEM + k] ?? -1;
        if (j >= 0 && (itemLaunch[j] ?? 0) <= t) cand[n++] = j;
      }
    }
    const themeCat = warm ? (itemCategory[state.lastItem] ?? 0) : -1;
    const themeAlias = themeCat >= 0 ? catAlias[themeCat] : undefined;
    const themePool = themeCat >= 0 ? catPools[themeCat] : undefined;
    for (let c = 0; c < CANDIDATES; c++) {
      cand[n++] =
        themeAlias && c < THEME_CANDIDATES
          ? drawLaunched(themeAlias, itemLaunch, t, r, themePool)
          : drawLaunched(itemAlias, itemLaunch, t, r);
    }
    let total = 0;
    for (let c = 0; c < n; c++) {
      const i = cand[c] ?? 0;
      // Candidates come by popularity already: weigh by the rest of the preference.
      const w = Math.exp(scorer.score(i) - popW * (itemBias[i] ?? 0));
      weights[c] = w;
      total += w;
    }
    let x = r() * total;
    let item = cand[n - 1] ?? 0;
    for (let c = 0; c < n; c++) {
      x -= weights[c] ?? 0;
      if (x <= 0) {
        item = cand[c] ?? 0;
        break;
      }
    }
    const pClick = 1 / (1 + Math.exp(-(params.intercept + scorer.score(item))));
    let depth = 0;
    if (r() < pClick) {
      depth = 1;
      if (r() < params.cartRate) {
        depth = 2;
        if (r() < params.purchaseRate) depth = 3;
      }
    }
    let last = t;
    for (let d = 0; d <= depth && emitted < o.events; d++) {
      last = d === 0 ? t : Math.floor(start + emitted * step + r() * step * 0.5);
      emit(u, item, d, last);
      emitted++;
      if (d === 3) {
        userState[so + 2] = item;
        userState[so + 3] = last;
      }
    }
    userState[so] = item;
    userState[so + 1] = last;
    inSession = r() < continueRate;
    if (eventsOut.full) await eventsOut.flush();
    if (onProgress && emitted >= nextProgress) {
      nextProgress += 100_000;
      await onProgress({ events: emitted, total: o.events });
    }
  }
  await eventsOut.close();
  meta.cleanEvents = emitted;

  // The search log, from its own random stream (the recommendation events do not depend on the query count).
  const search =
    o.queries > 0
      ? await generateSearchLog(dir, o, { vocab, attrs, itemBias, itemLaunch, userAlias, userSignup, dirt })
      : { queries: 0, searchEvents: 0 };

  const bin = (a: Float32Array | Int32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const f = GROUND_TRUTH_FILES;
  await writeFile(join(gtDir, f.userFactors), bin(userFactors));
  await writeFile(join(gtDir, f.userDrift), bin(userDrift));
  await writeFile(join(gtDir, f.itemFactors), bin(itemFactors));
  await writeFile(join(gtDir, f.itemBias), bin(itemBias));
  await writeFile(join(gtDir, f.segmentCategory), bin(segmentCategory));
  await writeFile(join(gtDir, f.userSegment), bin(userSegment));
  await writeFile(join(gtDir, f.itemCategory), bin(itemCategory));
  await writeFile(join(gtDir, f.itemType), bin(itemType));
  await writeFile(join(gtDir, f.itemComplements), bin(itemComplements));
  await writeFile(join(gtDir, f.itemLaunch), bin(itemLaunch));
  await writeFile(join(gtDir, f.userState), bin(userState));
  const itemAttrs = new Int32Array(o.items * 5);
  for (let i = 0; i < o.items; i++) {
    itemAttrs.set(
      [itemType[i] ?? 0, attrs.color[i] ?? -1, attrs.material[i] ?? -1, attrs.size[i] ?? -1, attrs.brand[i] ?? -1],
      i * 5,
    );
  }
  await writeFile(join(gtDir, SEARCH_TRUTH_FILES.itemAttrs), bin(itemAttrs));
  const searchMeta: SearchTruthMeta = {
    format: 'recflow-search-truth/1',
    queryIdPrefix: 'q',
    queries: search.queries,
    searchEvents: search.searchEvents,
    params: DEFAULT_SEARCH_PARAMS,
    vocab,
  };
  await writeJsonAtomic(join(gtDir, SEARCH_TRUTH_FILES.meta), searchMeta);
  await writeJsonAtomic(join(gtDir, 'meta.json'), meta);
  return {
    users: o.users,
    items: o.items,
    events: eventsOut.rows,
    cleanEvents: emitted,
    queries: search.queries,
    searchEvents: search.searchEvents,
    dirt,
  };
}

/**
 * `queries.csv`, `search_events.csv` and `ground-truth/search_intents.jsonl`: each query from a drawn intent
 * (lib/data/search-truth.ts), a result list ranked by the shop's noisy engine among the launched items of the
 * intent's type (or sharing an attribute of a typeless intent) plus a few random ones, and the searcher's clicks,
 * carts and purchases by relevance and position.
 */
async function generateSearchLog(
  dir: string,
  o: Required<ShopOptions>,
  s: {
    vocab: ReturnType<typeof buildVocab>;
    attrs: SearchItems;
    itemBias: Float32Array;
    itemLaunch: Float64Array;
    userAlias: AliasTable;
    userSignup: Float64Array;
    dirt: Record<string, number>;
  },
): Promise<{ queries: number; searchEvents: number }> {
  const params = DEFAULT_SEARCH_PARAMS;
  const r = mulberry32((o.seed ^ 0x5ea2c4e1) >>> 0);
  const start = o.start;
  const end = start + o.days * DAY_MS;
  const nItems = s.attrs.type.length;
  const targets = new AliasTable(Array.from(s.itemBias, (b) => Math.exp(b)));
  const byType = new Map<string, number[]>();
  const byAttr = new Map<string, number[]>();
  const push = (m: Map<string, number[]>, key: string, i: number) => {
    const list = m.get(key);
    if (list) list.push(i);
    else m.set(key, [i]);
  };
  for (let i = 0; i < nItems; i++) {
    push(byType, String(s.attrs.type[i] ?? 0), i);
    for (const kind of ['color', 'material', 'size', 'brand'] as const) {
      const v = s.attrs[kind][i] ?? -1;
      if (v >= 0) push(byAttr, `${kind}:${v}`, i);
    }
  }
  const queriesOut = new LineOut(join(dir, 'queries.csv'), 'query_id,user_id,timestamp,query');
  const eventsOut = new LineOut(join(dir, 'search_events.csv'), 'query_id,item_id,event,timestamp');
  const intentsOut = new LineOut(join(dir, 'ground-truth', SEARCH_TRUTH_FILES.intents), null);
  const span = (end - start) / Math.max(1, o.queries);
  const MAX_POOL = 200;
  const RANDOM_EXTRA = 20;
  let unknownSeq = 0;
  for (let q = 1; q <= o.queries; q++) {
    const t = Math.floor(start + (q - 1 + r() * 0.9) * span);
    let u = s.userAlias.draw(r);
    for (let tries = 0; tries < 8 && (s.userSignup[u] ?? 0) > t; tries++) u = s.userAlias.draw(r);
    const rq = drawQuery(s.vocab, s.attrs, targets, params, r);
    const qid = `q${q}`;
    let text = rq.text;
    if (r() < o.dirt) {
      text = '';
      s.dirt.queryMissingText = (s.dirt.queryMissingText ?? 0) + 1;
    }
    queriesOut.line([qid, `u${u + 1}`, iso(t), csv(text)].join(','));
    intentsOut.line(JSON.stringify({ q: qid, ...rq.intent, style: rq.style }));
    // The result list.
    const first = rq.intent.attrs[0];
    const base =
      rq.intent.type !== null
        ? (byType.get(String(rq.intent.type)) ?? [])
        : first
          ? (byAttr.get(`${first.kind}:${first.value}`) ?? [])
          : [];
    const pool: number[] = [];
    if (base.length <= MAX_POOL) {
      for (const i of base) if ((s.itemLaunch[i] ?? 0) <= t) pool.push(i);
    } else {
      for (let k = 0; k < MAX_POOL; k++) {
        const i = base[Math.floor(r() * base.length)] ?? 0;
        if ((s.itemLaunch[i] ?? 0) <= t) pool.push(i);
      }
    }
    for (let k = 0; k < RANDOM_EXTRA; k++) {
      const i = Math.floor(r() * nItems);
      if ((s.itemLaunch[i] ?? 0) <= t) pool.push(i);
    }
    const seen = new Set<number>();
    const scored: Array<{ i: number; g: number; s: number }> = [];
    for (const i of pool) {
      if (seen.has(i)) continue;
      seen.add(i);
      const g = relevanceAt(rq.intent, s.attrs, i);
      scored.push({ i, g, s: engineScore(params, g, s.itemBias[i] ?? 0, r) });
    }
    scored.sort((a, b) => b.s - a.s || a.i - b.i);
    let at = t;
    for (let rank = 0; rank < Math.min(params.resultsShown, scored.length); rank++) {
      const { i, g } = scored[rank] as (typeof scored)[number];
      if (r() >= searchClickProbability(params, g, rank)) continue;
      let depth = 0;
      if (r() < (params.cartRate[g] ?? 0)) depth = r() < (params.purchaseRate[g] ?? 0) ? 2 : 1;
      for (let d = 0; d <= depth; d++) {
        at += Math.floor(3000 + r() * 25_000);
        const fields = [qid, `i${i + 1}`, SEARCH_EVENTS[d] ?? 'click', iso(at)];
        if (r() < o.dirt) {
          const kind = Math.floor(r() * 3);
          if (kind === 0) {
            fields[0] = `q${o.queries + 1 + unknownSeq++}`;
            s.dirt.searchUnknownQuery = (s.dirt.searchUnknownQuery ?? 0) + 1;
          } else if (kind === 1) {
            fields[1] = `i${nItems + 1 + unknownSeq++}`;
            s.dirt.searchUnknownItem = (s.dirt.searchUnknownItem ?? 0) + 1;
          } else {
            fields[2] = '';
            s.dirt.searchMissingEvent = (s.dirt.searchMissingEvent ?? 0) + 1;
          }
        }
        eventsOut.line(fields.join(','));
      }
      if (depth === 2 && r() < 0.5) break;
    }
    if (queriesOut.full) await queriesOut.flush();
    if (eventsOut.full) await eventsOut.flush();
    if (intentsOut.full) await intentsOut.flush();
  }
  await queriesOut.close();
  await eventsOut.close();
  await intentsOut.close();
  return { queries: queriesOut.rows, searchEvents: eventsOut.rows };
}
