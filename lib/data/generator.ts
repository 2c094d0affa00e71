/**
 * The synthetic shop: a seeded, deterministic e-commerce export (`users.csv`, `items.csv`, `events.csv`) drawn
 * from a hidden preference model (lib/data/ground-truth.ts) written apart under `ground-truth/`, with realistic
 * dirt at a configurable rate. Events are written in order as they are drawn, in 1 MiB chunks with back-pressure,
 * so memory stays bounded whatever the number of events (it grows with users and items only).
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../errors';
import { writeJsonAtomic } from '../fs-atomic';
import { AliasTable, gauss, mulberry32 } from '../rng';
import {
  GROUND_TRUTH_FILES,
  preferenceByIndex,
  type GroundTruth,
  type GroundTruthMeta,
  type GroundTruthParams,
} from './ground-truth';

/** Bump when the generator's output for the same options changes (it is part of the shop's artifact id). */
export const GENERATOR_VERSION = 2;

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
  dirt: Record<string, number>;
}

export const DEFAULT_SHOP: Required<ShopOptions> = {
  seed: 42,
  users: 2000,
  items: 1000,
  events: 50_000,
  dirt: 0.01,
  start: Date.UTC(2026, 0, 1),
  days: 60,
};

const CATEGORIES = [
  'electronics',
  'books',
  'home',
  'garden',
  'toys',
  'sports',
  'beauty',
  'grocery',
  'fashion',
  'shoes',
  'jewelry',
  'music',
  'movies',
  'games',
  'pets',
  'baby',
  'auto',
  'tools',
  'office',
  'health',
];
const SEGMENTS = ['bargain', 'regular', 'premium', 'family', 'student'];
const REGIONS = ['north', 'south', 'east', 'west', 'central', 'islands', 'capital', 'coast', 'mountains', 'abroad'];
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ra', 'tu', 'vo', 'zen', 'pi', 'so', 'dax', 'el', 'fin', 'gro', 'hul'];
const COMMON_WORDS = ['pro', 'max', 'mini', 'classic', 'plus', 'eco', 'smart', 'ultra', 'set', 'pack', 'new', 'lite'];
const EVENT_TYPES = ['view', 'click', 'add_to_cart', 'purchase'] as const;
const DIM = 8;
const DAY_MS = 86_400_000;

export const DEFAULT_PARAMS: GroundTruthParams = {
  intercept: -1.6,
  popularityWeight: 0.4,
  recencyWeight: 0.8,
  recencyDays: 10,
  cartRate: 0.35,
  purchaseRate: 0.5,
};

/** Buffered CSV writer with back-pressure. */
class CsvOut {
  private readonly stream: WriteStream;
  private buf: string[] = [];
  private size = 0;
  rows = 0;
  constructor(path: string, header: string) {
    this.stream = createWriteStream(path, { encoding: 'utf8' });
    this.buf.push(`${header}\n`);
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
  intIn('seed', o.seed, 0, 2 ** 32 - 1);
  if (!(o.dirt >= 0 && o.dirt <= 0.5)) {
    throw new RecflowError(ErrorType.InvalidInput, `shop dirt=${o.dirt}: expected a rate in [0, 0.5]`);
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function word(r: () => number): string {
  const n = 2 + Math.floor(r() * 2);
  let w = '';
  for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)] ?? '';
  return w;
}

/**
 * Generate a shop into `dir` (created if needed): `users.csv`, `items.csv`, `events.csv`, `ground-truth/`.
 * Same options, same bytes. `onProgress` is awaited every 100k events (heartbeats).
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
  const params = DEFAULT_PARAMS;
  const nCat = Math.min(CATEGORIES.length, Math.max(2, Math.round(Math.sqrt(o.items) / 2)));
  const nSeg = SEGMENTS.length;
  const start = o.start;
  const end = start + o.days * DAY_MS;
  const dirt: Record<string, number> = {
    duplicate: 0,
    missingValue: 0,
    unknownUser: 0,
    unknownItem: 0,
    outOfOrder: 0,
    priceOutlier: 0,
    missingItemField: 0,
    missingUserField: 0,
  };
  await mkdir(join(dir, 'ground-truth'), { recursive: true });

  // The hidden model.
  const segmentCategory = new Float32Array(nSeg * nCat).map(() => gauss(r) * 1.0);
  const userFactors = new Float32Array(o.users * DIM).map(() => gauss(r) * 0.6);
  const itemFactors = new Float32Array(o.items * DIM).map(() => gauss(r) * 0.6);
  const userSegment = new Int32Array(o.users);
  const itemCategory = new Int32Array(o.items);
  const itemLaunch = new Float64Array(o.items);
  const itemBias = new Float32Array(o.items);
  const userActivity = new Float64Array(o.users);
  const userSignup = new Float64Array(o.users);

  // Catalog: categories with their words and brands.
  const catWords = Array.from({ length: nCat }, () => Array.from({ length: 12 }, () => word(r)));
  const catBrands = Array.from({ length: nCat }, () => Array.from({ length: 6 }, () => `${word(r)}co`));
  const catPrice = Array.from({ length: nCat }, () => Math.exp(2 + r() * 4));

  const usersOut = new CsvOut(join(dir, 'users.csv'), 'user_id,segment,region,signup_time');
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

  const itemsOut = new CsvOut(join(dir, 'items.csv'), 'item_id,category,brand,price,title,launch_time');
  for (let i = 0; i < o.items; i++) {
    const c = Math.floor(r() * nCat);
    itemCategory[i] = c;
    // Zipf-like popularity; centered below.
    itemBias[i] = -Math.log((i % 97) + 1 + r() * 50) + gauss(r) * 0.5;
    itemLaunch[i] = r() < 0.7 ? start - r() * 365 * DAY_MS : start + r() * 0.85 * (end - start);
    const words = catWords[c] ?? [];
    const nWords = 2 + Math.floor(r() * 4);
    const title: string[] = [];
    for (let w = 0; w < nWords; w++) {
      title.push(
        r() < 0.75
          ? (words[Math.floor(r() * words.length)] ?? '')
          : (COMMON_WORDS[Math.floor(r() * COMMON_WORDS.length)] ?? ''),
      );
    }
    let price = ((catPrice[c] ?? 10) * Math.exp(gauss(r) * 0.4)).toFixed(2);
    const brands = catBrands[c] ?? [];
    let brand = brands[Math.floor(r() * brands.length)] ?? '';
    let category = CATEGORIES[c] ?? '';
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
    itemsOut.line(
      [`i${i + 1}`, category, brand, price, title.join(' '), iso(Math.floor(itemLaunch[i] ?? 0))].join(','),
    );
    if (itemsOut.full) await itemsOut.flush();
  }
  await itemsOut.close();
  let meanBias = 0;
  for (const b of itemBias) meanBias += b / o.items;
  for (let i = 0; i < o.items; i++) itemBias[i] = (itemBias[i] ?? 0) - meanBias;

  const meta: GroundTruthMeta = {
    format: 'recflow-ground-truth/1',
    seed: o.seed,
    dim: DIM,
    users: o.users,
    items: o.items,
    segments: nSeg,
    categories: nCat,
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
    itemFactors,
    itemBias,
    segmentCategory,
    userSegment,
    itemCategory,
    itemLaunch,
  };

  // Events: sessions in time order. A session: one view among popularity-drawn candidates, chosen by preference;
  // then click, add_to_cart, purchase with the model's probabilities.
  const userAlias = new AliasTable(userActivity);
  const itemAlias = new AliasTable(Array.from(itemBias, (b) => Math.exp(params.popularityWeight * b)));
  const eventsOut = new CsvOut(join(dir, 'events.csv'), 'user_id,item_id,event_type,timestamp');
  const step = (end - start) / Math.max(1, o.events);
  const CANDIDATES = 24;
  const cand = new Int32Array(CANDIDATES);
  const weights = new Float64Array(CANDIDATES);
  let emitted = 0;
  let unknownSeq = 0;
  const emit = (u: number, i: number, type: number, t: number): void => {
    const fields = [`u${u + 1}`, `i${i + 1}`, EVENT_TYPES[type] ?? 'view', iso(Math.floor(t))];
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
    const t = start + emitted * step;
    let u = userAlias.draw(r);
    for (let tries = 0; tries < 8 && (userSignup[u] ?? 0) > t; tries++) u = userAlias.draw(r);
    let total = 0;
    for (let c = 0; c < CANDIDATES; c++) {
      let i = itemAlias.draw(r);
      for (let tries = 0; tries < 4 && (itemLaunch[i] ?? 0) > t; tries++) i = itemAlias.draw(r);
      cand[c] = i;
      // Candidates come by popularity already: weigh by the rest of the preference.
      const w = Math.exp(preferenceByIndex(gt, u, i, t) - params.popularityWeight * (itemBias[i] ?? 0));
      weights[c] = w;
      total += w;
    }
    let x = r() * total;
    let item = cand[CANDIDATES - 1] ?? 0;
    for (let c = 0; c < CANDIDATES; c++) {
      x -= weights[c] ?? 0;
      if (x <= 0) {
        item = cand[c] ?? 0;
        break;
      }
    }
    const pClick = 1 / (1 + Math.exp(-(params.intercept + preferenceByIndex(gt, u, item, t))));
    let depth = 0;
    if (r() < pClick) {
      depth = 1;
      if (r() < params.cartRate) {
        depth = 2;
        if (r() < params.purchaseRate) depth = 3;
      }
    }
    for (let d = 0; d <= depth && emitted < o.events; d++) {
      emit(u, item, d, start + emitted * step + r() * step * 0.5);
      emitted++;
    }
    if (eventsOut.full) await eventsOut.flush();
    if (onProgress && emitted >= nextProgress) {
      nextProgress += 100_000;
      await onProgress({ events: emitted, total: o.events });
    }
  }
  await eventsOut.close();
  meta.cleanEvents = emitted;

  const gtDir = join(dir, 'ground-truth');
  const bin = (a: Float32Array | Int32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const f = GROUND_TRUTH_FILES;
  await writeFile(join(gtDir, f.userFactors), bin(userFactors));
  await writeFile(join(gtDir, f.itemFactors), bin(itemFactors));
  await writeFile(join(gtDir, f.itemBias), bin(itemBias));
  await writeFile(join(gtDir, f.segmentCategory), bin(segmentCategory));
  await writeFile(join(gtDir, f.userSegment), bin(userSegment));
  await writeFile(join(gtDir, f.itemCategory), bin(itemCategory));
  await writeFile(join(gtDir, f.itemLaunch), bin(itemLaunch));
  await writeJsonAtomic(join(gtDir, 'meta.json'), meta);
  return { users: o.users, items: o.items, events: eventsOut.rows, cleanEvents: emitted, dirt };
}
