/**
 * A real, tiny search bundle for serving tests: a random 2-layer BERT (test/helpers/search-model.ts) with the base
 * model's tokenizer, exported by kinds/search/export.ts into `teacher/` (fp32 and int8-dynamic search graphs with the
 * item index inside), with the bundle files serving reads (`bundle.json` with `task: 'search'` and its `search`
 * section, `items.json`, `vocab.json`) in the layout of kinds/search/bundle.ts. The catalogue is every colour x
 * product of test/helpers/search-pairs.ts (64 items, id `<colour>-<product>`, text `<colour> <product>`).
 */
import { createHash } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleManifest, SearchBundleInfo, SearchVariantInfo } from '../../lib/bundle';
import type { SlotState } from '../../lib/fleet/types';
import { loadBaseModel, type BertConfig, type BertWeights } from '../../kinds/search/base-model';
import type { HybridFile } from '../../kinds/search/bundle';
import { exportSearchModel } from '../../kinds/search/export';
import type { EncoderPrecision } from '../../kinds/search/onnx-encoder';
import { mulberry32 } from '../../lib/rng';
import type { SearchClicks } from '../../serving/simulator';
import { writeTinyBert } from './search-model';
import { COLOURS, THINGS } from './search-pairs';

/** One catalogue item of the test bundles. */
export interface TestSearchItem {
  id: string;
  text: string;
  colour: string;
  thing: string;
}

/** The 64 items, in index order. */
export const SEARCH_ITEMS: TestSearchItem[] = COLOURS.flatMap((colour) =>
  THINGS.map((thing) => ({ id: `${colour}-${thing.replace(/ /g, '-')}`, text: `${colour} ${thing}`, colour, thing })),
);

export interface TestSearchBundle {
  dir: string;
  /** Item ids and the texts the index was built from (shuffled when asked). */
  items: Array<{ id: string; text: string }>;
  slot: (version: string, precision?: 'fp32' | 'int8') => SlotState;
}

/**
 * Write a search bundle under `root/<name>` (`hybridWeights` as {@link SearchBundleInput}). With `shuffleTexts` the
 * ids keep their order but each gets another item's text (seeded): a model whose ranking ignores what the items are
 * (the simulator's "bad" model).
 */
export async function makeSearchBundle(
  root: string,
  name: string,
  opts: { seed?: number; shuffleTexts?: number; users?: string[]; hybridWeights?: Record<string, number> } = {},
): Promise<TestSearchBundle> {
  const dir = join(root, name);
  const base = await loadBaseModel(writeTinyBert(join(root, `${name}-base`), opts.seed ?? 5));
  const texts = SEARCH_ITEMS.map((i) => i.text);
  if (opts.shuffleTexts !== undefined) {
    const r = mulberry32(opts.shuffleTexts);
    for (let i = texts.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [texts[i], texts[j]] = [texts[j]!, texts[i]!];
    }
  }
  const items = SEARCH_ITEMS.map((it, r) => ({ id: it.id, text: texts[r]! }));
  await writeSearchBundle(dir, {
    weights: base.weights,
    config: base.config,
    tokenizerDir: base.dir,
    items,
    queryMaxLength: 16,
    itemMaxLength: 16,
    users: opts.users,
    ...(opts.hybridWeights ? { hybridWeights: opts.hybridWeights } : {}),
  });
  return { dir, items, slot: (version, precision = 'fp32') => ({ version, bundlePath: dir, precision }) };
}

/** A test searcher's query: the text sent and the item it wants. */
export interface WantedItem {
  text: string;
  colour: string;
  thing: string;
}

/** P(click at rank 0) by relevance grade 0..3 (the synthetic shop's default rates). */
export const SEARCH_CLICK_RATE = [0.02, 0.15, 0.4, 0.7];

const byId = new Map(SEARCH_ITEMS.map((i) => [i.id, i]));

/** Graded relevance of an item for a wanted item: 3 the item, 1 the same product in another colour, else 0. */
export function wantedGrade(q: WantedItem, itemId: string): number {
  const it = byId.get(itemId);
  if (!it || it.thing !== q.thing) return 0;
  return it.colour === q.colour ? 3 : 1;
}

/**
 * Searchers of the test catalogue: each wants one item (uniform) and types `<colour> <product>` or
 * `<product> in <colour>`; clicks by {@link wantedGrade} with {@link SEARCH_CLICK_RATE}, damped by 1 / log2(rank + 2).
 * `onClick` sees every probability drawn (to compare the clicks with their expectation).
 */
export function catalogueSearchers(onClick?: (p: number) => void): SearchClicks<WantedItem> {
  return {
    sampleQuery: (r) => {
      const it = SEARCH_ITEMS[Math.floor(r() * SEARCH_ITEMS.length)]!;
      return { text: r() < 0.5 ? it.text : `${it.thing} in ${it.colour}`, colour: it.colour, thing: it.thing };
    },
    click: (q, itemId, rank) => {
      const p = (SEARCH_CLICK_RATE[wantedGrade(q, itemId)] ?? 0) / Math.log2(rank + 2);
      onClick?.(p);
      return p;
    },
  };
}

/** What {@link writeSearchBundle} exports. */
export interface SearchBundleInput {
  weights: BertWeights;
  config: BertConfig;
  tokenizerDir: string;
  items: Array<{ id: string; text: string }>;
  queryMaxLength: number;
  itemMaxLength: number;
  /** The compressed variant `int8` serves. @default 'int8-dynamic' */
  int8?: EncoderPrecision;
  /** Known user ids (`vocab.json`). @default none */
  users?: string[];
  /**
   * Per-variant dense weights (`fp32`, `int8-dynamic`...: what each serves, kinds/search/served.ts), written as the
   * export writes them (`bm25.json`, `search.hybrid.variants`). @default none: a bundle from before per-variant
   * weights (exporter `search-bundle-1`), every variant serving dense only
   */
  hybridWeights?: Record<string, number>;
}

/**
 * Export an encoder as a search bundle into `dir` (kinds/search/bundle.ts layout: `teacher/` with fp32 and one int8
 * variant, `bundle.json` with `task: 'search'`, `items.json`, `vocab.json`), without the export's measurements.
 */
export async function writeSearchBundle(dir: string, input: SearchBundleInput): Promise<void> {
  const { items } = input;
  const int8 = input.int8 ?? 'int8-dynamic';
  await mkdir(join(dir, 'teacher'), { recursive: true });
  const m = await exportSearchModel(join(dir, 'teacher'), {
    weights: input.weights,
    config: input.config,
    tokenizerDir: input.tokenizerDir,
    items,
    precisions: ['fp32', int8],
    queryMaxLength: input.queryMaxLength,
    itemMaxLength: input.itemMaxLength,
    lineage: { modelName: 'shop-search' },
  });
  const variant = (encoder: EncoderPrecision): SearchVariantInfo => ({
    model: 'teacher',
    encoder,
    layers: m.layers,
    files: { encoder: `teacher/${m.files[encoder]!.encoder}`, search: `teacher/${m.files[encoder]!.search}` },
    bytes: 0,
    latencyMs: {},
    validation: { 'ndcg@10': 0, 'mrr@10': 0, 'recall@100': 0, queries: 0 },
    tolerance: 0.02,
    qualifies: encoder !== 'fp32',
  });
  const variants: Record<string, SearchVariantInfo> = { fp32: variant('fp32'), [int8]: variant(int8) };
  const fp32 = variants.fp32!;
  const chosen = variants[int8]!;
  const search: SearchBundleInfo = {
    serves: { fp32: 'fp32', int8 },
    variants,
    choice: { variant: int8, preferred: 'int8', reason: 'test bundle' },
    baseModel: {},
    items: items.length,
    queryMaxLength: m.queryMaxLength,
    itemMaxLength: m.itemMaxLength,
    itemsFile: 'items.json',
    hybrid: {
      file: 'bm25.json',
      weight: input.hybridWeights?.fp32 ?? 1,
      k1: 1.2,
      b: 0.75,
      validationNdcg10: 0,
      ...(input.hybridWeights
        ? {
            variants: Object.fromEntries(
              Object.entries(input.hybridWeights).map(([v, weight]) => [v, { weight, validationNdcg10: 0 }]),
            ),
          }
        : {}),
    },
  };
  if (input.hybridWeights)
    await writeFile(
      join(dir, 'bm25.json'),
      JSON.stringify({
        k1: 1.2,
        b: 0.75,
        weight: search.hybrid.weight,
        dense: 'fp32',
        grid: [],
        variants: Object.fromEntries(
          Object.entries(input.hybridWeights).map(([v, weight]) => [v, { weight, validationNdcg10: 0, grid: [] }]),
        ),
        documents: items.length,
        averageLength: items.reduce((a, i) => a + i.text.split(/\s+/).length, 0) / Math.max(1, items.length),
      } satisfies HybridFile),
    );
  await writeFile(
    join(dir, 'items.json'),
    JSON.stringify({ ids: items.map((i) => i.id), texts: items.map((i) => i.text) }),
  );
  const vocabText = JSON.stringify({
    users: ['<unk>', ...(input.users ?? [])],
    items: ['<unk>', ...items.map((i) => i.id)],
  });
  await writeFile(join(dir, 'vocab.json'), vocabText);
  const files = (v: SearchVariantInfo) => ({ score: v.files.encoder, recommend: v.files.search });
  const size = async (f: string) => (await stat(join(dir, f))).size;
  const sizes = async (v: SearchVariantInfo) => ({
    score: await size(v.files.encoder),
    recommend: await size(v.files.search),
  });
  const manifest: BundleManifest = {
    kind: 'search',
    task: 'search',
    modelName: 'shop-search',
    datasetId: 'ds-search-test',
    checkpointId: `ck-search-${m.sha256[m.files.fp32!.search]!.slice(0, 12)}`,
    opset: m.opset,
    files: { fp32: files(fp32), int8: files(chosen) },
    sizes: { fp32: await sizes(fp32), int8: await sizes(chosen) },
    vocabHash: createHash('sha256').update(vocabText).digest('hex'),
    search,
    createdAt: new Date().toISOString(),
  };
  await writeFile(join(dir, 'bundle.json'), JSON.stringify(manifest, null, 2));
}
