/**
 * A stand-in search shop for bench/search.ts until the shop's natural-language catalogue and search log (branch
 * `data`) land: item titles built from product type, colour, material, brand and audience; queries that name a
 * wanted product through synonyms ("crimson trainers" for a red running shoe), other languages, misspellings and
 * partial descriptions; graded relevance from the attributes (3: every named attribute matches, 1: the type matches
 * but one named attribute does not, 0 otherwise; a type-only query finds every item of the type at 2). Seeded.
 */
import { mulberry32 } from '../lib/rng';

const TYPES: Array<{ name: string; synonyms: string[]; es: string; fr: string; de: string }> = [
  {
    name: 'running shoes',
    synonyms: ['trainers', 'sneakers', 'runners'],
    es: 'zapatillas',
    fr: 'baskets',
    de: 'Laufschuhe',
  },
  {
    name: 'rain jacket',
    synonyms: ['raincoat', 'waterproof jacket', 'anorak'],
    es: 'chubasquero',
    fr: 'imperméable',
    de: 'Regenjacke',
  },
  { name: 'sweater', synonyms: ['jumper', 'pullover', 'knitwear'], es: 'jersey', fr: 'pull', de: 'Pullover' },
  { name: 't-shirt', synonyms: ['tee', 'tshirt', 'short sleeve top'], es: 'camiseta', fr: 'tee-shirt', de: 'T-Shirt' },
  { name: 'jeans', synonyms: ['denim trousers', 'denims', 'denim pants'], es: 'vaqueros', fr: 'jean', de: 'Jeans' },
  { name: 'backpack', synonyms: ['rucksack', 'daypack', 'school bag'], es: 'mochila', fr: 'sac à dos', de: 'Rucksack' },
  { name: 'sofa', synonyms: ['couch', 'settee', 'loveseat'], es: 'sofá', fr: 'canapé', de: 'Sofa' },
  { name: 'mug', synonyms: ['coffee cup', 'tea cup', 'beaker'], es: 'taza', fr: 'tasse', de: 'Tasse' },
  {
    name: 'desk lamp',
    synonyms: ['table lamp', 'reading light', 'task light'],
    es: 'lámpara de escritorio',
    fr: 'lampe de bureau',
    de: 'Schreibtischlampe',
  },
  {
    name: 'headphones',
    synonyms: ['earphones', 'headset', 'cans'],
    es: 'auriculares',
    fr: 'casque audio',
    de: 'Kopfhörer',
  },
  {
    name: 'water bottle',
    synonyms: ['flask', 'drinking bottle', 'hydration bottle'],
    es: 'botella de agua',
    fr: 'gourde',
    de: 'Trinkflasche',
  },
  { name: 'frying pan', synonyms: ['skillet', 'saute pan', 'fry pan'], es: 'sartén', fr: 'poêle', de: 'Bratpfanne' },
  { name: 'duvet', synonyms: ['comforter', 'quilt', 'doona'], es: 'edredón', fr: 'couette', de: 'Bettdecke' },
  { name: 'handbag', synonyms: ['purse', 'tote bag', 'shoulder bag'], es: 'bolso', fr: 'sac à main', de: 'Handtasche' },
  {
    name: 'sunglasses',
    synonyms: ['shades', 'sunnies', 'sun glasses'],
    es: 'gafas de sol',
    fr: 'lunettes de soleil',
    de: 'Sonnenbrille',
  },
  { name: 'watch', synonyms: ['wristwatch', 'timepiece', 'analog watch'], es: 'reloj', fr: 'montre', de: 'Armbanduhr' },
  { name: 'scarf', synonyms: ['muffler', 'shawl', 'neck warmer'], es: 'bufanda', fr: 'écharpe', de: 'Schal' },
  {
    name: 'yoga mat',
    synonyms: ['exercise mat', 'fitness mat', 'pilates mat'],
    es: 'esterilla de yoga',
    fr: 'tapis de yoga',
    de: 'Yogamatte',
  },
];
const COLOURS: Array<{ name: string; synonyms: string[]; es: string; fr: string; de: string }> = [
  { name: 'red', synonyms: ['crimson', 'scarlet', 'cherry'], es: 'rojo', fr: 'rouge', de: 'rot' },
  { name: 'blue', synonyms: ['navy', 'cobalt', 'azure'], es: 'azul', fr: 'bleu', de: 'blau' },
  { name: 'green', synonyms: ['olive', 'emerald', 'khaki'], es: 'verde', fr: 'vert', de: 'grün' },
  { name: 'black', synonyms: ['jet black', 'ebony', 'onyx'], es: 'negro', fr: 'noir', de: 'schwarz' },
  { name: 'white', synonyms: ['ivory', 'off-white', 'snow'], es: 'blanco', fr: 'blanc', de: 'weiß' },
  { name: 'grey', synonyms: ['gray', 'charcoal', 'slate'], es: 'gris', fr: 'gris', de: 'grau' },
  { name: 'pink', synonyms: ['rose', 'blush', 'fuchsia'], es: 'rosa', fr: 'rose', de: 'rosa' },
  { name: 'yellow', synonyms: ['mustard', 'lemon', 'gold'], es: 'amarillo', fr: 'jaune', de: 'gelb' },
  { name: 'brown', synonyms: ['chocolate', 'tan', 'camel'], es: 'marrón', fr: 'marron', de: 'braun' },
  { name: 'purple', synonyms: ['violet', 'plum', 'lilac'], es: 'morado', fr: 'violet', de: 'lila' },
];
const MATERIALS: Array<{ name: string; synonyms: string[] }> = [
  { name: 'cotton', synonyms: ['organic cotton'] },
  { name: 'merino wool', synonyms: ['wool', 'woollen'] },
  { name: 'leather', synonyms: ['genuine leather', 'hide'] },
  { name: 'recycled polyester', synonyms: ['polyester', 'synthetic'] },
  { name: 'linen', synonyms: ['flax'] },
  { name: 'stainless steel', synonyms: ['steel', 'metal'] },
  { name: 'ceramic', synonyms: ['porcelain', 'stoneware'] },
  { name: 'bamboo', synonyms: ['bamboo fibre'] },
];
const BRANDS = [
  'Acme',
  'Northwind',
  'Fjordline',
  'Sunpeak',
  'Kestrel',
  'Orla',
  'Brightway',
  'Tundra',
  'Meridian',
  'Halcyon',
  'Vantage',
  'Juniper',
  'Corvid',
  'Alder & Co',
  'Pinecrest',
  'Mistral',
  'Lumen',
  'Oakhurst',
  'Solstice',
  'Quill',
];
const AUDIENCE = ["men's", "women's", "kids'", 'unisex'];
const EXTRAS = ['lightweight', 'classic', 'premium', 'slim fit', 'everyday', 'compact', 'vintage', 'eco', 'deluxe', ''];

/** One catalogue item: its attributes and title. */
export interface ShopItem {
  id: string;
  type: number;
  colour: number;
  material: number;
  brand: number;
  title: string;
}

/** One query with its spec and graded judgements over the catalogue (row -> grade > 0). */
export interface ShopQuery {
  text: string;
  spec: { type: number; colour?: number; material?: number; brand?: number };
  grades: Map<number, number>;
}

/** Catalogue and query sets (query texts disjoint between the sets). */
export interface SearchShop {
  items: ShopItem[];
  train: ShopQuery[];
  validation: ShopQuery[];
  test: ShopQuery[];
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function misspell(r: () => number, w: string): string {
  if (w.length < 4) return w;
  const i = 1 + Math.floor(r() * (w.length - 2));
  const kind = r();
  if (kind < 0.4) return w.slice(0, i) + w.slice(i + 1); // drop
  if (kind < 0.8) return w.slice(0, i) + w[i + 1] + w[i] + w.slice(i + 2); // swap
  return w.slice(0, i) + w[i] + w.slice(i); // double
}

/** The grade of `item` for a query spec. */
export function grade(item: ShopItem, spec: ShopQuery['spec']): number {
  if (item.type !== spec.type) return 0;
  const named = (['colour', 'material', 'brand'] as const).filter((k) => spec[k] !== undefined);
  if (!named.length) return 2;
  const wrong = named.filter((k) => item[k] !== spec[k]).length;
  return wrong === 0 ? 3 : wrong === 1 ? 1 : 0;
}

/** Generate a shop: `items` catalogue rows and about `queries` queries split 80/10/10 (train/validation/test). */
export function makeSearchShop(opts: { items?: number; queries?: number; seed?: number } = {}): SearchShop {
  const r = mulberry32(opts.seed ?? 20261201);
  const nItems = opts.items ?? 3000;
  const items: ShopItem[] = [];
  for (let i = 0; i < nItems; i++) {
    const type = Math.floor(r() * TYPES.length);
    const colour = Math.floor(r() * COLOURS.length);
    const material = Math.floor(r() * MATERIALS.length);
    const brand = Math.floor(r() * BRANDS.length);
    const t = TYPES[type]!;
    const parts = [
      BRANDS[brand]!,
      r() < 0.5 ? pick(r, AUDIENCE) : '',
      pick(r, EXTRAS),
      COLOURS[colour]!.name,
      MATERIALS[material]!.name,
      t.name,
    ];
    let title = parts.filter(Boolean).join(' ');
    if (r() < 0.4) title += `, size ${pick(r, ['S', 'M', 'L', 'XL', '42', '10', 'one size'])}`;
    items.push({ id: `item-${i}`, type, colour, material, brand, title });
  }
  const seen = new Set<string>();
  const all: ShopQuery[] = [];
  const want = opts.queries ?? 5000;
  let guard = 0;
  while (all.length < want && guard++ < want * 20) {
    const spec: ShopQuery['spec'] = { type: Math.floor(r() * TYPES.length) };
    if (r() < 0.75) spec.colour = Math.floor(r() * COLOURS.length);
    if (r() < 0.25) spec.material = Math.floor(r() * MATERIALS.length);
    if (r() < 0.12) spec.brand = Math.floor(r() * BRANDS.length);
    const t = TYPES[spec.type]!;
    const lang = r() < 0.1 ? pick(r, ['es', 'fr', 'de'] as const) : undefined;
    const words: string[] = [];
    if (spec.brand !== undefined) words.push(BRANDS[spec.brand]!);
    if (spec.colour !== undefined) {
      const c = COLOURS[spec.colour]!;
      words.push(lang ? c[lang] : r() < 0.35 ? c.name : pick(r, c.synonyms));
    }
    if (spec.material !== undefined) {
      const m = MATERIALS[spec.material]!;
      words.push(r() < 0.5 ? m.name : pick(r, m.synonyms));
    }
    const typeWord = lang ? t[lang] : r() < 0.3 ? t.name : pick(r, t.synonyms);
    if (lang === 'es' || lang === 'fr') words.unshift(typeWord);
    else words.push(typeWord);
    if (r() < 0.2) words.push(pick(r, ['for men', 'for women', 'cheap', 'best', 'sale', 'gift', 'for kids']));
    let text = words.join(' ');
    if (r() < 0.12) {
      const ws = text.split(' ');
      const j = Math.floor(r() * ws.length);
      ws[j] = misspell(r, ws[j]!);
      text = ws.join(' ');
    }
    if (r() < 0.3) text = text.toLowerCase();
    if (seen.has(text)) continue;
    seen.add(text);
    const grades = new Map<number, number>();
    items.forEach((it, row) => {
      const g = grade(it, spec);
      if (g > 0) grades.set(row, g);
    });
    if (![...grades.values()].some((g) => g >= 2)) continue;
    all.push({ text, spec, grades });
  }
  const n = all.length;
  return {
    items,
    train: all.slice(0, Math.floor(n * 0.8)),
    validation: all.slice(Math.floor(n * 0.8), Math.floor(n * 0.9)),
    test: all.slice(Math.floor(n * 0.9)),
  };
}
