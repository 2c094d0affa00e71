/**
 * The synthetic shop's natural-language catalogue: product types by category (with synonyms and a small
 * Spanish / German / French dictionary), colours (with synonyms and translations), materials, sizes, and the title
 * templates an item's title is written with. Pure data and pure functions over a seeded PRNG: the generator
 * (lib/data/generator.ts) draws items from it, the search truth (lib/data/search-truth.ts) renders queries with the
 * vocabulary it wrote to `ground-truth/search.json`, so a shop stays readable if this table changes later.
 */

/** Languages of the query dictionary. */
export const LANGUAGES = ['es', 'de', 'fr'] as const;
export type Language = (typeof LANGUAGES)[number];

/** How an item's size is written: shoe sizes (36-46), clothing (XS-XL), laptop or screen inches, or none. */
export type SizeKind = 'shoe' | 'clothing' | 'laptop' | 'screen';

/** One product type: canonical name first in `names`, then its synonyms. */
export interface ProductType {
  /** Canonical name, then synonyms (all lowercase). */
  names: string[];
  /** Translation per language (lowercase). */
  foreign: Record<Language, string>;
  /** Category name (one of {@link CATEGORIES}). */
  category: string;
  /** Whether items of this type have a colour. */
  color: boolean;
  /** Materials (or finishes / formats) items of this type are made of; empty: none. */
  materials: string[];
  size?: SizeKind;
  /** Types whose items complement this one (bought after it), by canonical name. */
  complements: string[];
}

/** A colour: canonical name first in `names`, then synonyms. */
export interface Colour {
  names: string[];
  foreign: Record<Language, string>;
}

/** A material: canonical name first, then spelling variants. */
export interface Material {
  names: string[];
}

/** The catalogue vocabulary a shop was generated with (written to `ground-truth/search.json`). */
export interface CatalogVocab {
  categories: string[];
  types: ProductType[];
  colours: Colour[];
  materials: Material[];
  /** Size values per kind, canonical form (`42`, `M`, `27 inch`), with their query variants. */
  sizes: Array<{ kind: SizeKind; value: string; variants: string[] }>;
  /** Brand names (capitalised), all categories. */
  brands: string[];
}

/** The 20 categories of the shop (the first `n` are used by an `n`-category shop). */
export const CATEGORIES = [
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

// t(category, 'canonical|synonym|...', 'es|de|fr', colour?, 'material|...', size, 'complement|...')
function t(
  category: string,
  names: string,
  foreign: string,
  color: boolean,
  materials: string,
  size: SizeKind | '',
  complements = '',
): ProductType {
  const [es = '', de = '', fr = ''] = foreign.split('|');
  return {
    names: names.split('|'),
    foreign: { es, de, fr },
    category,
    color,
    materials: materials ? materials.split('|') : [],
    ...(size ? { size } : {}),
    complements: complements ? complements.split('|') : [],
  };
}

/** Every product type, grouped by category in {@link CATEGORIES} order. */
// prettier-ignore
export const PRODUCT_TYPES: readonly ProductType[] = [
  t('electronics', 'headphones|earphones|headset', 'auriculares|kopfhörer|casque', true, 'plastic|aluminium', '', 'smartphone|charger'),
  t('electronics', 'smartphone|mobile phone|cell phone', 'móvil|handy|portable', true, 'aluminium|glass', '', 'phone case|charger|headphones'),
  t('electronics', 'phone case|phone cover|smartphone case', 'funda|handyhülle|coque', true, 'silicone|leather|plastic', '', 'charger|phone holder'),
  t('electronics', 'charger|charging cable|power adapter', 'cargador|ladegerät|chargeur', true, 'plastic', '', 'phone case'),
  t('electronics', 'monitor|display|screen', 'monitor|bildschirm|écran', true, 'plastic|aluminium', 'screen', 'keyboard|mouse'),
  t('electronics', 'laptop|notebook|notebook computer', 'portátil|laptop|ordinateur portable', true, 'aluminium|plastic', 'laptop', 'mouse|charger|keyboard'),
  t('books', 'novel|fiction book|story book', 'novela|roman|roman', false, 'hardcover|paperback', '', 'bookmark'),
  t('books', 'cookbook|recipe book|cookery book', 'libro de cocina|kochbuch|livre de cuisine', false, 'hardcover|paperback', '', 'olive oil|bookmark'),
  t('books', "children's book|picture book|kids book", 'libro infantil|kinderbuch|livre pour enfants', false, 'hardcover|paperback', '', 'teddy bear|bookmark'),
  t('books', 'bookmark|book mark|page marker', 'marcapáginas|lesezeichen|marque-page', true, 'leather|metal|paper', '', 'novel'),
  t('home', 'sofa|couch|settee', 'sofá|sofa|canapé', true, 'leather|velvet|linen', '', 'cushion|blanket'),
  t('home', 'cushion|throw pillow|pillow', 'cojín|kissen|coussin', true, 'cotton|velvet|linen', '', 'blanket'),
  t('home', 'lamp|light|lantern', 'lámpara|lampe|lampe', true, 'metal|glass|ceramic', '', 'cushion'),
  t('home', 'mug|cup|coffee mug', 'taza|tasse|tasse', true, 'ceramic|glass|porcelain', '', 'coffee|tea'),
  t('home', 'blanket|throw|quilt', 'manta|decke|couverture', true, 'wool|cotton|fleece', '', 'cushion'),
  t('garden', 'garden hose|hosepipe|water hose', 'manguera|gartenschlauch|tuyau d’arrosage', true, 'rubber|pvc', '', 'watering can'),
  t('garden', 'flower pot|planter|plant pot', 'maceta|blumentopf|pot de fleurs', true, 'ceramic|terracotta|plastic', '', 'watering can'),
  t('garden', 'watering can|watering pot|sprinkling can', 'regadera|gießkanne|arrosoir', true, 'metal|plastic', '', 'flower pot'),
  t('garden', 'garden chair|patio chair|outdoor chair', 'silla de jardín|gartenstuhl|chaise de jardin', true, 'wood|metal|rattan', '', 'cushion'),
  t('toys', 'teddy bear|stuffed bear|plush bear', 'osito de peluche|teddybär|ours en peluche', true, 'plush|cotton', '', "children's book"),
  t('toys', 'building blocks|construction bricks|toy bricks', 'bloques de construcción|bausteine|jeu de construction', true, 'plastic|wood', '', 'toy car'),
  t('toys', 'puzzle|jigsaw|jigsaw puzzle', 'rompecabezas|puzzle|puzzle', false, 'cardboard|wood', '', 'board game'),
  t('toys', 'toy car|model car|racing car', 'coche de juguete|spielzeugauto|petite voiture', true, 'plastic|metal', '', 'building blocks'),
  t('sports', 'yoga mat|exercise mat|fitness mat', 'esterilla de yoga|yogamatte|tapis de yoga', true, 'rubber|foam|cork', '', 'water bottle'),
  t('sports', 'water bottle|drinking bottle|sports bottle', 'botella de agua|trinkflasche|gourde', true, 'steel|plastic|glass', '', 'yoga mat'),
  t('sports', 'dumbbell|hand weight|free weight', 'mancuerna|hantel|haltère', true, 'steel|rubber|neoprene', '', 'yoga mat|water bottle'),
  t('sports', 'football|soccer ball|ball', 'balón|fußball|ballon', true, 'leather|rubber', '', 'water bottle'),
  t('beauty', 'lipstick|lip colour|lip stick', 'pintalabios|lippenstift|rouge à lèvres', true, 'matte|glossy|satin', '', 'perfume'),
  t('beauty', 'perfume|fragrance|eau de parfum', 'perfume|parfüm|parfum', false, '', '', 'lipstick|face cream'),
  t('beauty', 'hair brush|hairbrush|paddle brush', 'cepillo|haarbürste|brosse à cheveux', true, 'wood|bamboo|plastic', '', 'face cream'),
  t('beauty', 'face cream|moisturiser|moisturizer', 'crema facial|gesichtscreme|crème visage', false, '', '', 'perfume'),
  t('grocery', 'coffee|coffee beans|ground coffee', 'café|kaffee|café', false, '', '', 'mug|chocolate'),
  t('grocery', 'tea|tea bags|loose leaf tea', 'té|tee|thé', false, '', '', 'mug'),
  t('grocery', 'olive oil|extra virgin olive oil|cooking oil', 'aceite de oliva|olivenöl|huile d’olive', false, '', '', 'cookbook'),
  t('grocery', 'chocolate|chocolate bar|cocoa bar', 'chocolate|schokolade|chocolat', false, '', '', 'coffee|tea'),
  t('fashion', 't-shirt|tee|tee shirt', 'camiseta|t-shirt|tee-shirt', true, 'cotton|linen|polyester', 'clothing', 'jeans'),
  t('fashion', 'jeans|denim trousers|denims', 'vaqueros|jeans|jean', true, 'denim|cotton', 'clothing', 'belt|t-shirt|sneakers'),
  t('fashion', 'hoodie|hooded sweatshirt|hoody', 'sudadera|kapuzenpullover|sweat à capuche', true, 'cotton|fleece|polyester', 'clothing', 'jeans'),
  t('fashion', 'jacket|coat|blazer', 'chaqueta|jacke|veste', true, 'leather|wool|polyester|denim', 'clothing', 'scarf|boots'),
  t('fashion', 'belt|waist belt|leather strap', 'cinturón|gürtel|ceinture', true, 'leather|canvas', '', 'jeans'),
  t('fashion', 'scarf|shawl|neck warmer', 'bufanda|schal|écharpe', true, 'wool|silk|cotton', '', 'jacket'),
  t('shoes', 'sneakers|trainers|running shoes', 'zapatillas|turnschuhe|baskets', true, 'leather|mesh|canvas|suede', 'shoe', 'socks|shoe cleaner'),
  t('shoes', 'boots|ankle boots|booties', 'botas|stiefel|bottes', true, 'leather|suede|rubber', 'shoe', 'socks|shoe cleaner'),
  t('shoes', 'sandals|flip flops|sliders', 'sandalias|sandalen|sandales', true, 'leather|rubber|cork', 'shoe', 'socks'),
  t('shoes', 'socks|ankle socks|sport socks', 'calcetines|socken|chaussettes', true, 'cotton|wool|bamboo', 'clothing', 'sneakers'),
  t('shoes', 'shoe cleaner|shoe polish|sneaker cleaner', 'limpiador de zapatos|schuhpflege|cirage', false, '', '', 'socks'),
  t('jewelry', 'necklace|pendant|chain', 'collar|halskette|collier', false, 'gold|silver|platinum|steel', '', 'earrings'),
  t('jewelry', 'ring|band|signet ring', 'anillo|ring|bague', false, 'gold|silver|platinum|titanium', '', 'necklace'),
  t('jewelry', 'earrings|studs|ear studs', 'pendientes|ohrringe|boucles d’oreilles', false, 'gold|silver', '', 'necklace'),
  t('jewelry', 'watch|wristwatch|timepiece', 'reloj|armbanduhr|montre', true, 'steel|leather|titanium', '', 'ring'),
  t('music', 'guitar|acoustic guitar|six-string', 'guitarra|gitarre|guitare', true, 'wood|maple|mahogany', '', 'guitar strings'),
  t('music', 'guitar strings|string set|strings', 'cuerdas de guitarra|gitarrensaiten|cordes de guitare', false, 'steel|nylon|bronze', '', 'guitar'),
  t('music', 'vinyl record|lp|vinyl', 'disco de vinilo|schallplatte|disque vinyle', false, '', '', 'headphones'),
  t('music', 'digital piano|electric piano|stage piano', 'piano digital|digitalpiano|piano numérique', true, '', '', 'headphones'),
  t('movies', 'dvd|dvd movie|film on dvd', 'película en dvd|dvd|dvd', false, '', '', 'blu-ray'),
  t('movies', 'blu-ray|bluray|blu-ray disc', 'blu-ray|blu-ray|blu-ray', false, '', '', 'dvd'),
  t('movies', 'movie poster|film poster|cinema poster', 'póster de película|filmplakat|affiche de film', false, 'paper|canvas', '', 'dvd'),
  t('movies', 'box set|boxset|collection', 'colección|box-set|coffret', false, '', '', 'blu-ray'),
  t('games', 'board game|tabletop game|family game', 'juego de mesa|brettspiel|jeu de société', false, '', '', 'playing cards'),
  t('games', 'controller|gamepad|joypad', 'mando|controller|manette', true, 'plastic', '', 'video game'),
  t('games', 'video game|console game|computer game', 'videojuego|videospiel|jeu vidéo', false, '', '', 'controller'),
  t('games', 'playing cards|card deck|deck of cards', 'baraja|spielkarten|jeu de cartes', false, 'paper|plastic', '', 'board game'),
  t('pets', 'dog bed|pet bed|dog cushion', 'cama para perro|hundebett|panier pour chien', true, 'fleece|cotton|polyester', '', 'dog leash'),
  t('pets', 'dog leash|dog lead|leash', 'correa|hundeleine|laisse', true, 'nylon|leather', '', 'dog collar'),
  t('pets', 'dog collar|pet collar|collar', 'collar para perro|halsband|collier pour chien', true, 'nylon|leather', '', 'dog leash'),
  t('pets', 'cat toy|kitten toy|cat teaser', 'juguete para gatos|katzenspielzeug|jouet pour chat', true, 'plush|rubber', '', 'cat food'),
  t('pets', 'cat food|kitten food|cat kibble', 'comida para gatos|katzenfutter|nourriture pour chat', false, '', '', 'cat toy'),
  t('baby', 'stroller|pushchair|pram', 'cochecito|kinderwagen|poussette', true, 'aluminium|polyester', '', 'baby bottle'),
  t('baby', 'baby bottle|feeding bottle|nursing bottle', 'biberón|babyflasche|biberon', false, 'glass|plastic', '', 'diapers'),
  t('baby', 'onesie|baby bodysuit|romper', 'body de bebé|strampler|body bébé', true, 'cotton|bamboo', 'clothing', 'diapers'),
  t('baby', 'diapers|nappies|diaper pack', 'pañales|windeln|couches', false, '', '', 'baby bottle'),
  t('auto', 'car seat cover|seat cover|seat protector', 'funda de asiento|sitzbezug|housse de siège', true, 'leather|polyester', '', 'floor mats'),
  t('auto', 'floor mats|car mats|foot mats', 'alfombrillas|fußmatten|tapis de sol', true, 'rubber|carpet', '', 'car seat cover'),
  t('auto', 'phone holder|phone mount|car mount', 'soporte para móvil|handyhalterung|support téléphone', true, 'plastic|metal', '', 'charger'),
  t('auto', 'motor oil|engine oil|car oil', 'aceite de motor|motoröl|huile moteur', false, '', '', 'floor mats'),
  t('tools', 'drill|power drill|cordless drill', 'taladro|bohrmaschine|perceuse', true, 'metal|plastic', '', 'drill bits|toolbox'),
  t('tools', 'drill bits|bit set|drill bit set', 'brocas|bohrer-set|forets', false, 'steel|titanium', '', 'drill'),
  t('tools', 'hammer|claw hammer|mallet', 'martillo|hammer|marteau', true, 'steel|wood|fibreglass', '', 'toolbox'),
  t('tools', 'screwdriver|screwdriver set|driver', 'destornillador|schraubendreher|tournevis', true, 'steel', '', 'toolbox'),
  t('tools', 'toolbox|tool box|tool case', 'caja de herramientas|werkzeugkasten|boîte à outils', true, 'metal|plastic', '', 'hammer|screwdriver'),
  t('office', 'keyboard|computer keyboard|typing keyboard', 'teclado|tastatur|clavier', true, 'plastic|aluminium', '', 'mouse'),
  t('office', 'mouse|computer mouse|wireless mouse', 'ratón|maus|souris', true, 'plastic', '', 'keyboard'),
  t('office', 'desk chair|office chair|swivel chair', 'silla de oficina|bürostuhl|chaise de bureau', true, 'mesh|leather|polyester', '', 'cushion'),
  t('office', 'pen|ballpoint pen|ballpoint', 'bolígrafo|kugelschreiber|stylo', true, 'plastic|metal', '', 'journal'),
  t('office', 'journal|notepad|diary', 'cuaderno|notizbuch|carnet', true, 'leather|paper', '', 'pen'),
  t('health', 'vitamins|multivitamin|supplements', 'vitaminas|vitamine|vitamines', false, '', '', 'water bottle'),
  t('health', 'thermometer|fever thermometer|digital thermometer', 'termómetro|thermometer|thermomètre', true, '', '', 'first aid kit'),
  t('health', 'face mask|mask|protective mask', 'mascarilla|maske|masque', true, 'cotton|polyester', '', 'first aid kit'),
  t('health', 'first aid kit|medical kit|first-aid box', 'botiquín|verbandskasten|trousse de secours', true, '', '', 'thermometer'),
];

function c(names: string, foreign: string): Colour {
  const [es = '', de = '', fr = ''] = foreign.split('|');
  return { names: names.split('|'), foreign: { es, de, fr } };
}

/** Colours with synonyms and translations. */
export const COLOURS: readonly Colour[] = [
  c('red|crimson|scarlet|cherry', 'rojo|rot|rouge'),
  c('blue|navy|azure|cobalt', 'azul|blau|bleu'),
  c('green|olive|emerald|lime', 'verde|grün|vert'),
  c('black|jet black|ebony|onyx', 'negro|schwarz|noir'),
  c('white|ivory|snow white|off-white', 'blanco|weiß|blanc'),
  c('grey|gray|charcoal|slate', 'gris|grau|gris'),
  c('yellow|mustard|lemon|canary', 'amarillo|gelb|jaune'),
  c('pink|rose|blush|fuchsia', 'rosa|rosa|rose'),
  c('brown|chocolate brown|tan|chestnut', 'marrón|braun|marron'),
  c('purple|violet|lilac|plum', 'morado|lila|violet'),
  c('orange|tangerine|rust|apricot', 'naranja|orange|orange'),
  c('beige|sand|cream|camel', 'beige|beige|beige'),
];

/** Spelling variants of materials (the canonical spelling first). */
const MATERIAL_VARIANTS: Record<string, string[]> = {
  aluminium: ['aluminium', 'aluminum'],
  fibreglass: ['fibreglass', 'fiberglass'],
  pvc: ['pvc', 'vinyl'],
  steel: ['steel', 'stainless steel'],
  hardcover: ['hardcover', 'hardback'],
  paperback: ['paperback', 'softcover'],
};

const SHOE_SIZES = ['36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46'];
const CLOTHING_SIZES: Array<[string, string[]]> = [
  ['XS', ['xs', 'extra small']],
  ['S', ['s', 'small']],
  ['M', ['m', 'medium']],
  ['L', ['l', 'large']],
  ['XL', ['xl', 'extra large']],
];
const LAPTOP_INCHES = ['13', '14', '15', '16', '17'];
const SCREEN_INCHES = ['22', '24', '27', '32', '34'];

const BRAND_HEADS = ['nord', 'kal', 'vel', 'sol', 'mar', 'ter', 'lum', 'bri', 'hav', 'ost', 'ren', 'zan', 'cor', 'fel'];
const BRAND_TAILS = ['wind', 'berg', 'ora', 'ix', 'tek', 'ly', 'ana', 'ston', 'ello', 'vik', 'aro', 'une'];

/** A made-up brand name ("Nordwind", "Kalora"). */
export function brandName(r: () => number): string {
  const head = BRAND_HEADS[Math.floor(r() * BRAND_HEADS.length)] ?? 'nord';
  const tail = BRAND_TAILS[Math.floor(r() * BRAND_TAILS.length)] ?? 'wind';
  const name = `${head}${tail}`;
  return name.charAt(0).toUpperCase() + name.slice(1);
}

function inchVariants(v: string): string[] {
  return [`${v} inch`, `${v}in`, `${v}"`, `${v} inches`];
}

/**
 * The vocabulary of an `nCat`-category shop with `brandsPerCategory` brands each (drawn from `r`): the first `nCat`
 * categories and their types, every colour and material those types use, every size.
 */
export function buildVocab(nCat: number, brandsPerCategory: number, r: () => number): CatalogVocab {
  const categories = CATEGORIES.slice(0, nCat);
  const types = PRODUCT_TYPES.filter((p) => categories.includes(p.category));
  const materialNames = [...new Set(types.flatMap((p) => p.materials))].sort();
  const materials = materialNames.map((m) => ({ names: MATERIAL_VARIANTS[m] ?? [m] }));
  const sizes: CatalogVocab['sizes'] = [
    ...SHOE_SIZES.map((v) => ({ kind: 'shoe' as const, value: v, variants: [`size ${v}`, v, `eu ${v}`] })),
    ...CLOTHING_SIZES.map(([v, vs]) => ({ kind: 'clothing' as const, value: v, variants: [`size ${vs[0]}`, ...vs] })),
    ...LAPTOP_INCHES.map((v) => ({ kind: 'laptop' as const, value: `${v} inch`, variants: inchVariants(v) })),
    ...SCREEN_INCHES.map((v) => ({ kind: 'screen' as const, value: `${v} inch`, variants: inchVariants(v) })),
  ];
  const brands: string[] = [];
  for (let k = 0; k < nCat * brandsPerCategory; k++) {
    let b = brandName(r);
    for (let tries = 0; tries < 20 && brands.includes(b); tries++) b = brandName(r);
    if (brands.includes(b)) b = `${b}${k}`;
    brands.push(b);
  }
  return { categories, types, colours: COLOURS.map((x) => ({ ...x })), materials, sizes, brands };
}

/** An item's attributes, as indices into a {@link CatalogVocab} (-1: none). */
export interface ItemAttributes {
  type: number;
  color: number;
  material: number;
  size: number;
  brand: number;
}

/** Indices of the sizes of a kind in `vocab.sizes`. */
export function sizesOf(vocab: CatalogVocab, kind: SizeKind | undefined): number[] {
  if (!kind) return [];
  const out: number[] = [];
  vocab.sizes.forEach((s, k) => {
    if (s.kind === kind) out.push(k);
  });
  return out;
}

/** Index of a material (canonical name) in `vocab.materials`, or -1. */
export function materialIndex(vocab: CatalogVocab, name: string): number {
  return vocab.materials.findIndex((m) => m.names[0] === name);
}

const ADJECTIVES = ['classic', 'essential', 'premium', 'everyday', 'pro', 'urban', 'compact', 'deluxe'];

function pick<T>(r: () => number, xs: readonly T[]): T | undefined {
  return xs[Math.floor(r() * xs.length)];
}

function titleCase(s: string): string {
  return s.replace(/(^|[\s(–-])(\p{Ll})/gu, (_m, pre: string, ch: string) => `${pre}${ch.toUpperCase()}`);
}

/**
 * A natural-language title for an item, from one of several templates; the type and colour appear as one of their
 * synonyms ("Nordwind Crimson Leather Trainers, Size 42", "Leather trainers in red – Nordwind"). `colour` is the
 * colour name the title uses (the seller's name for it, also the item's `color` column).
 */
export function itemTitle(vocab: CatalogVocab, a: ItemAttributes, r: () => number): { title: string; colour: string } {
  const type = vocab.types[a.type];
  const typeWord = pick(r, type?.names ?? ['item']) ?? 'item';
  const colour = a.color >= 0 ? (pick(r, vocab.colours[a.color]?.names ?? []) ?? '') : '';
  const material = a.material >= 0 ? (pick(r, vocab.materials[a.material]?.names ?? []) ?? '') : '';
  const sizeValue = a.size >= 0 ? (vocab.sizes[a.size]?.value ?? '') : '';
  const size = sizeValue
    ? sizeValue.endsWith('inch')
      ? sizeValue.replace(' inch', '-inch')
      : `Size ${sizeValue}`
    : '';
  const brand = a.brand >= 0 ? (vocab.brands[a.brand] ?? '') : '';
  const adj = pick(r, ADJECTIVES) ?? 'classic';
  const join = (...parts: string[]) => parts.filter(Boolean).join(' ');
  const k = Math.floor(r() * 6);
  let title: string;
  if (k === 0) title = titleCase(join(brand, colour, material, typeWord)) + (size ? `, ${size}` : '');
  else if (k === 1) {
    const head = join(material, typeWord);
    title = `${head.charAt(0).toUpperCase()}${head.slice(1)}${colour ? ` in ${colour}` : ''} – ${brand}${size ? ` (${size.toLowerCase()})` : ''}`;
  } else if (k === 2) {
    const extras = [colour, material, size.toLowerCase()].filter(Boolean).join(', ');
    title = `${brand} ${titleCase(typeWord)}${extras ? ` (${extras})` : ''}`;
  } else if (k === 3) {
    title = `${titleCase(join(colour, typeWord))} by ${brand}${material ? `, ${material}` : ''}${size ? `, ${size}` : ''}`;
  } else if (k === 4) {
    title = `${brand} ${titleCase(join(adj, typeWord))}${colour || material ? ` – ${join(colour, material)}` : ''}${size ? ` ${size}` : ''}`;
  } else {
    // Marketplace style: keywords first.
    title = join(titleCase(typeWord), brand, material, colour, size.toLowerCase());
  }
  return { title: title.replace(/\s+/g, ' ').trim(), colour };
}
