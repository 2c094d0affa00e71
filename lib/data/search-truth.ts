/**
 * The hidden truth of the synthetic shop's search log (`<shop>/ground-truth/search.json`, `search_intents.jsonl`,
 * `item_attrs.i32`): every query comes from an intent (a product type plus 0-3 attributes), rendered as text in one
 * of several ways, and the graded relevance of an (intent, item) pair is a fixed function of the item's attributes:
 *
 *   3  the type matches and every attribute matches (a type-only intent: the type matches)
 *   2  the type matches and at least half of the attributes (two or more attributes)
 *   1  the type matches
 *   0  otherwise
 *
 * Attribute-only queries ("crimson leather") have no type (`type: null`): 3 when every attribute matches, 2 when a
 * strict majority does (three attributes), else 0. Synonyms of a type ("trainers" for "sneakers") are the same type.
 *
 * Rendering (rates in {@link SearchParams}): each English concept word (type, colour, material) is a non-canonical
 * synonym with `synonymRate`; with `foreignRate` the type and colour are written in Spanish, German or French; with
 * `typoRate` one word gets a character edit; with `partialRate` a word is cut to its first letters; with
 * `attributeOnlyRate` the type is left out (the intent then has no type). Searchers see a result list ranked by the
 * shop's engine (relevance plus noise plus popularity), and click, add to cart and buy with rates that grow with
 * relevance, damped by position (1 / log2(rank + 2)). The canary simulator draws new queries with
 * {@link SearchTruth.sampleQuery} and clicks with {@link SearchTruth.clickProbability}.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, RecflowError } from '../errors';
import { AliasTable, gauss } from '../rng';
import { LANGUAGES, sizesOf, type CatalogVocab, type Language } from './catalog';
import { groundTruthDir, indexOfId } from './ground-truth';

/** An attribute kind of an intent (and of an item). */
export type AttributeKind = 'color' | 'material' | 'size' | 'brand';
/** Attribute kinds in the order intents list them. */
export const ATTRIBUTE_KINDS: readonly AttributeKind[] = ['color', 'material', 'size', 'brand'];

/** What a searcher wants: a product type (null for an attribute-only query) and attribute values (vocab indices). */
export interface SearchIntent {
  type: number | null;
  attrs: Array<{ kind: AttributeKind; value: number }>;
}

/** How a query's text was rendered from its intent. */
export interface QueryStyle {
  /** Language of the type and colour words, or null (English). */
  language: Language | null;
  /** English concept words (type, colour, material) that have synonyms, and how many were written as a synonym. */
  concepts: number;
  synonyms: number;
  typo: boolean;
  partial: boolean;
  attributeOnly: boolean;
}

/** A query with its hidden intent. */
export interface RenderedQuery {
  text: string;
  intent: SearchIntent;
  style: QueryStyle;
}

/** Rates and click behaviour of the search log. */
export interface SearchParams {
  /** Per English concept word with synonyms: written as a non-canonical synonym. */
  synonymRate: number;
  /** Per query: type and colour in another language (es, de, fr). */
  foreignRate: number;
  /** Per query: one character edit in one word. */
  typoRate: number;
  /** Per query: one word cut to a prefix. */
  partialRate: number;
  /** Per query: the type left out (an intent with at least two attributes). */
  attributeOnlyRate: number;
  /** Probability of 0, 1, 2, 3 attributes in an intent (capped by what the target item has). */
  attributeCounts: [number, number, number, number];
  /** Relative weight of each attribute kind when an intent's attributes are drawn. */
  attributeWeights: Record<AttributeKind, number>;
  /** Per intent: one attribute value replaced by a random one (a combination the catalogue may not have). */
  offCatalogRate: number;
  /** P(click | shown at rank 0) by relevance grade 0..3; damped by 1 / log2(rank + 2). */
  clickRate: [number, number, number, number];
  /** P(add_to_cart | click) by grade. */
  cartRate: [number, number, number, number];
  /** P(purchase | add_to_cart) by grade. */
  purchaseRate: [number, number, number, number];
  /** Results shown per query. */
  resultsShown: number;
  /** Standard deviation of the shop engine's noise on the relevance grade. */
  engineNoise: number;
  /** Weight of item popularity in the shop engine's ranking. */
  popularityNoise: number;
}

/** The rates and click behaviour the generator uses (written to `search.json`). */
export const DEFAULT_SEARCH_PARAMS: SearchParams = {
  synonymRate: 0.5,
  foreignRate: 0.12,
  typoRate: 0.15,
  partialRate: 0.1,
  attributeOnlyRate: 0.07,
  attributeCounts: [0.15, 0.35, 0.32, 0.18],
  attributeWeights: { color: 0.4, material: 0.3, size: 0.15, brand: 0.15 },
  offCatalogRate: 0.1,
  clickRate: [0.02, 0.15, 0.4, 0.7],
  cartRate: [0.02, 0.1, 0.25, 0.45],
  purchaseRate: [0.1, 0.2, 0.4, 0.6],
  resultsShown: 20,
  engineNoise: 0.9,
  popularityNoise: 0.3,
};

/** `ground-truth/search.json`. */
export interface SearchTruthMeta {
  format: 'recflow-search-truth/1';
  /** Query ids are `<queryIdPrefix><n>`, n from 1. */
  queryIdPrefix: string;
  queries: number;
  searchEvents: number;
  params: SearchParams;
  vocab: CatalogVocab;
}

/** Item attributes by ground-truth item index (vocab indices; -1: none). */
export interface SearchItems {
  type: Int32Array;
  color: Int32Array;
  material: Int32Array;
  size: Int32Array;
  brand: Int32Array;
}

/** File names of the search truth under `ground-truth/`. */
export const SEARCH_TRUTH_FILES = {
  meta: 'search.json',
  /** `items x 5` int32: type, color, material, size, brand. */
  itemAttrs: 'item_attrs.i32',
  /** One JSON object per query: `{q, type, attrs, style}`. */
  intents: 'search_intents.jsonl',
} as const;

/**
 * The graded relevance (0-3) of an item with attributes `item` for `intent` (the rules in this file's header).
 */
export function searchRelevance(intent: SearchIntent, item: Record<'type' | AttributeKind, number>): 0 | 1 | 2 | 3 {
  if (intent.type !== null && item.type !== intent.type) return 0;
  const n = intent.attrs.length;
  if (n === 0) return intent.type === null ? 0 : 3;
  let m = 0;
  for (const a of intent.attrs) if (item[a.kind] === a.value) m++;
  if (m === n) return 3;
  if (intent.type === null) return 2 * m > n ? 2 : 0;
  if (n >= 2 && 2 * m >= n) return 2;
  return 1;
}

/** Relevance of item index `i` of `items`. */
export function relevanceAt(intent: SearchIntent, items: SearchItems, i: number): 0 | 1 | 2 | 3 {
  return searchRelevance(intent, {
    type: items.type[i] ?? -1,
    color: items.color[i] ?? -1,
    material: items.material[i] ?? -1,
    size: items.size[i] ?? -1,
    brand: items.brand[i] ?? -1,
  });
}

/** P(click) of a result of relevance `grade` shown at 0-based `rank`. */
export function searchClickProbability(params: SearchParams, grade: number, rank: number): number {
  return (params.clickRate[grade] ?? 0) / Math.log2(rank + 2);
}

function pick<T>(r: () => number, xs: readonly T[]): T | undefined {
  return xs[Math.floor(r() * xs.length)];
}

/** Draw an intent from a target item drawn by `targets` (e.g. popularity); `minAttrs` forces at least that many. */
export function sampleIntent(
  vocab: CatalogVocab,
  items: SearchItems,
  targets: AliasTable,
  params: SearchParams,
  r: () => number,
  minAttrs = 0,
): SearchIntent | undefined {
  for (let tries = 0; tries < 30; tries++) {
    const i = targets.draw(r);
    const available: Array<{ kind: AttributeKind; value: number }> = [];
    for (const kind of ATTRIBUTE_KINDS) {
      const v = items[kind][i] ?? -1;
      if (v >= 0) available.push({ kind, value: v });
    }
    if (available.length < minAttrs) continue;
    let x = r();
    let n = 0;
    for (let k = 0; k < 4; k++) {
      x -= params.attributeCounts[k] ?? 0;
      if (x < 0) {
        n = k;
        break;
      }
      n = k;
    }
    n = Math.min(available.length, Math.max(n, minAttrs));
    // n attributes without replacement, weighted by kind.
    const chosen: typeof available = [];
    for (let k = 0; k < n; k++) {
      let total = 0;
      for (const a of available) total += params.attributeWeights[a.kind];
      let y = r() * total;
      let at = available.length - 1;
      for (let j = 0; j < available.length; j++) {
        y -= params.attributeWeights[(available[j] as (typeof available)[number]).kind];
        if (y < 0) {
          at = j;
          break;
        }
      }
      chosen.push(...available.splice(at, 1));
    }
    const attrs = chosen.sort((a, b) => ATTRIBUTE_KINDS.indexOf(a.kind) - ATTRIBUTE_KINDS.indexOf(b.kind));
    const type = items.type[i] ?? 0;
    if (attrs.length && r() < params.offCatalogRate) {
      const a = attrs[Math.floor(r() * attrs.length)] as (typeof attrs)[number];
      const spec = vocab.types[type];
      if (a.kind === 'color') a.value = Math.floor(r() * vocab.colours.length);
      else if (a.kind === 'brand') a.value = Math.floor(r() * vocab.brands.length);
      else if (a.kind === 'material' && spec?.materials.length) {
        const name = pick(r, spec.materials) ?? '';
        a.value = Math.max(
          0,
          vocab.materials.findIndex((m) => m.names[0] === name),
        );
      } else if (a.kind === 'size') a.value = pick(r, sizesOf(vocab, spec?.size)) ?? a.value;
    }
    return { type, attrs };
  }
  return undefined;
}

const KEYBOARD_NEIGHBOURS: Record<string, string> = {
  a: 'qsz',
  b: 'vgn',
  c: 'xdv',
  d: 'sfe',
  e: 'wrd',
  f: 'dgr',
  g: 'fht',
  h: 'gjy',
  i: 'uok',
  j: 'hku',
  k: 'jli',
  l: 'kop',
  m: 'nj',
  n: 'bmh',
  o: 'ipl',
  p: 'ol',
  q: 'wa',
  r: 'etf',
  s: 'adw',
  t: 'ryg',
  u: 'yij',
  v: 'cbf',
  w: 'qes',
  x: 'zcs',
  y: 'tuh',
  z: 'xa',
};

/** One character edit (delete, transpose, substitute with a keyboard neighbour, double) of a word of >= 4 letters. */
export function misspell(word: string, r: () => number): string {
  if (word.length < 4) return word;
  for (let tries = 0; tries < 8; tries++) {
    const p = 1 + Math.floor(r() * (word.length - 1));
    const ch = word[p] ?? '';
    const k = Math.floor(r() * 4);
    let out = word;
    if (k === 0) out = word.slice(0, p) + word.slice(p + 1);
    else if (k === 1 && p < word.length - 1) out = word.slice(0, p) + (word[p + 1] ?? '') + ch + word.slice(p + 2);
    else if (k === 2) {
      const nb = KEYBOARD_NEIGHBOURS[ch];
      if (nb) out = word.slice(0, p) + (nb[Math.floor(r() * nb.length)] ?? ch) + word.slice(p + 1);
    } else out = word.slice(0, p) + ch + word.slice(p);
    if (out !== word) return out;
  }
  return `${word.slice(0, -1)}`;
}

/**
 * Render an intent as query text with the rates of `params`: the style flags are drawn here and returned. An
 * attribute-only rendering needs two attributes; it drops the intent's type.
 */
export function renderQuery(
  vocab: CatalogVocab,
  intent: SearchIntent,
  params: SearchParams,
  r: () => number,
  attributeOnly = false,
): RenderedQuery {
  const style: QueryStyle = {
    language: null,
    concepts: 0,
    synonyms: 0,
    typo: false,
    partial: false,
    attributeOnly: attributeOnly && intent.attrs.length >= 2,
  };
  const foreign = r() < params.foreignRate;
  const language = foreign ? (LANGUAGES[Math.floor(r() * LANGUAGES.length)] ?? 'es') : null;
  const english = (names: readonly string[]): string => {
    if (names.length < 2) return names[0] ?? '';
    style.concepts++;
    if (r() < params.synonymRate) {
      style.synonyms++;
      return names[1 + Math.floor(r() * (names.length - 1))] ?? names[0] ?? '';
    }
    return names[0] ?? '';
  };
  const spec = intent.type !== null ? vocab.types[intent.type] : undefined;
  let typeWord = '';
  if (spec && !style.attributeOnly) {
    if (language) {
      typeWord = spec.foreign[language];
      style.language = language;
    } else typeWord = english(spec.names);
  }
  const words: Partial<Record<AttributeKind, string>> = {};
  for (const a of intent.attrs) {
    if (a.kind === 'color') {
      const col = vocab.colours[a.value];
      if (!col) continue;
      if (language) {
        words.color = col.foreign[language];
        style.language = language;
      } else words.color = english(col.names);
    } else if (a.kind === 'material') words.material = english(vocab.materials[a.value]?.names ?? []);
    else if (a.kind === 'size') words.size = pick(r, vocab.sizes[a.value]?.variants ?? []) ?? '';
    else words.brand = (vocab.brands[a.value] ?? '').toLowerCase();
  }
  const { color = '', material = '', size = '', brand = '' } = words;
  const join = (...xs: string[]) => xs.filter(Boolean).join(' ');
  let text: string;
  if (style.attributeOnly) {
    text = r() < 0.5 ? join(brand, color, material, size) : join(color, material, size, brand);
  } else if (language) {
    // Adjectives after the noun in Spanish and French, before it in German.
    text =
      language === 'de' ? join(brand, color, material, typeWord, size) : join(typeWord, color, material, size, brand);
  } else {
    const k = Math.floor(r() * 4);
    if (k === 0) text = join(brand, color, material, typeWord, size);
    else if (k === 1) text = join(typeWord, color, material, size, brand);
    else if (k === 2 && color) text = join(join(material, typeWord), 'in', color, size, brand);
    else text = join(color, material, typeWord, size, brand && `by ${brand}`);
  }
  const tokens = text.split(' ').filter(Boolean);
  if (r() < params.typoRate) {
    const candidates = tokens.map((w, k) => (/^\p{L}{4,}$/u.test(w) ? k : -1)).filter((k) => k >= 0);
    const k = pick(r, candidates);
    if (k !== undefined) {
      tokens[k] = misspell(tokens[k] ?? '', r);
      style.typo = true;
    }
  }
  if (r() < params.partialRate) {
    for (let k = tokens.length - 1; k >= 0; k--) {
      const w = tokens[k] ?? '';
      if (/^\p{L}{5,}$/u.test(w)) {
        tokens[k] = w.slice(0, Math.max(3, Math.floor(w.length * 0.6)));
        style.partial = true;
        break;
      }
    }
  }
  text = tokens.join(' ');
  if (r() < 0.15) text = text.charAt(0).toUpperCase() + text.slice(1);
  const outIntent: SearchIntent = { type: style.attributeOnly ? null : intent.type, attrs: intent.attrs };
  return { text, intent: outIntent, style };
}

/** Draw a new query: an intent from a popularity-drawn item, rendered with the shop's rates. */
export function drawQuery(
  vocab: CatalogVocab,
  items: SearchItems,
  targets: AliasTable,
  params: SearchParams,
  r: () => number,
): RenderedQuery {
  const attributeOnly = r() < params.attributeOnlyRate;
  const intent = sampleIntent(vocab, items, targets, params, r, attributeOnly ? 2 : 0) ??
    sampleIntent(vocab, items, targets, params, r) ?? { type: items.type[0] ?? 0, attrs: [] };
  return renderQuery(vocab, intent, params, r, attributeOnly);
}

/** One line of `search_intents.jsonl`. */
export interface StoredIntent extends SearchIntent {
  /** Query id. */
  q: string;
  style: QueryStyle;
}

/** The search truth of a shop, loaded by {@link loadSearchTruth}. */
export interface SearchTruth {
  meta: SearchTruthMeta;
  items: SearchItems;
  /** Intent of each query of the shop's log, by query id. */
  intents: Map<string, StoredIntent>;
  /** A new query (text and hidden intent) drawn as the shop's searchers do. */
  sampleQuery(r: () => number): RenderedQuery;
  /** Graded relevance (0-3) of ground-truth item index `item` for `intent`. */
  relevance(intent: SearchIntent, item: number): 0 | 1 | 2 | 3;
  /** Same by external item id (`i17`); 0 for ids the shop does not have. */
  relevanceOf(intent: SearchIntent, itemId: string): 0 | 1 | 2 | 3;
  /** P(click) of a result of `grade` at 0-based `rank` (the searchers' click model). */
  clickProbability(grade: number, rank: number): number;
}

/** Split `items x 5` attributes into columns. */
export function splitItemAttrs(attrs: Int32Array): SearchItems {
  const n = Math.floor(attrs.length / 5);
  const col = (k: number) => Int32Array.from({ length: n }, (_, i) => attrs[i * 5 + k] ?? -1);
  return { type: col(0), color: col(1), material: col(2), size: col(3), brand: col(4) };
}

/**
 * Load a shop's search truth (the shop folder, or its `ground-truth/` folder).
 * @throws {RecflowError} `ArtifactMissing` when the shop has no search truth (generator version 2 or older).
 */
export async function loadSearchTruth(shopDir: string): Promise<SearchTruth> {
  const { dir, metaText } = await groundTruthDir(shopDir);
  const gtMeta = JSON.parse(metaText) as { items: number; itemIdPrefix: string };
  let meta: SearchTruthMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, SEARCH_TRUTH_FILES.meta), 'utf8')) as SearchTruthMeta;
  } catch {
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `no search truth in ${dir} (expected ${SEARCH_TRUTH_FILES.meta})`,
    );
  }
  if (meta.format !== 'recflow-search-truth/1') {
    throw new RecflowError(ErrorType.ArtifactMissing, `search truth ${dir}: unknown format '${String(meta.format)}'`);
  }
  const readI32 = async (name: string, n: number): Promise<Int32Array> => {
    const buf = await readFile(join(dir, name)).catch((err: Error) => {
      throw new RecflowError(ErrorType.ArtifactMissing, `search truth: ${err.message}`);
    });
    if (buf.byteLength !== n * 4) {
      throw new RecflowError(
        ErrorType.ArtifactMissing,
        `search truth: ${name} has ${buf.byteLength} bytes, expected ${n * 4}`,
      );
    }
    const copy = new Uint8Array(buf.byteLength);
    copy.set(buf);
    return new Int32Array(copy.buffer);
  };
  const items = splitItemAttrs(await readI32(SEARCH_TRUTH_FILES.itemAttrs, gtMeta.items * 5));
  const bias = await readFile(join(dir, 'item_bias.f32'));
  const biasArr = new Float32Array(Uint8Array.from(bias).buffer);
  const intents = new Map<string, StoredIntent>();
  const text = await readFile(join(dir, SEARCH_TRUTH_FILES.intents), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    if (!line) continue;
    const s = JSON.parse(line) as StoredIntent;
    intents.set(s.q, s);
  }
  const targets = new AliasTable(Array.from(biasArr, (b) => Math.exp(b)));
  const params = meta.params;
  return {
    meta,
    items,
    intents,
    sampleQuery: (r) => drawQuery(meta.vocab, items, targets, params, r),
    relevance: (intent, i) => (i >= 0 && i < gtMeta.items ? relevanceAt(intent, items, i) : 0),
    relevanceOf: (intent, itemId) => {
      const i = indexOfId(itemId, gtMeta.itemIdPrefix, gtMeta.items);
      return i < 0 ? 0 : relevanceAt(intent, items, i);
    },
    clickProbability: (grade, rank) => searchClickProbability(params, grade, rank),
  };
}

/** The shop engine's noisy ranking score of an item of relevance `grade` and popularity bias `bias`. */
export function engineScore(params: SearchParams, grade: number, bias: number, r: () => number): number {
  return grade + params.engineNoise * gauss(r) + params.popularityNoise * bias;
}
