/**
 * Model kinds, as the workflows see them: names and what the orchestration needs to know about each (the task it
 * serves, where it trains). The implementations live in `kinds/<name>/` (Node only) and are registered in
 * `kinds/index.ts`. Sandbox-safe: workflows import this module.
 */

/** Every model kind recflow can train and ship. The name is the wire name: renaming one is a breaking change. */
export const KIND_NAMES = ['two-tower', 'als', 'ease', 'sequential', 'search'] as const;
export type KindName = (typeof KIND_NAMES)[number];

/** What a kind's bundles serve: `/v1/recommend` + `/v1/score`, or `/v1/search`. */
export type ModelTask = 'recommend' | 'search';

/** What the lifecycle needs to know about a kind. */
export interface KindInfo {
  task: ModelTask;
  /** Train on the GPU task queue (with the CPU fallback), else on the CPU queue. */
  trainsOnGpu: boolean;
  /** One line for `--help`, the report and the docs. */
  description: string;
}

export const KIND_INFO: Record<KindName, KindInfo> = {
  'two-tower': {
    task: 'recommend',
    trainsOnGpu: true,
    description: 'two-tower neural recommender (tfjs): user and item towers, dot product',
  },
  als: { task: 'recommend', trainsOnGpu: false, description: 'implicit-feedback ALS (Hu, Koren, Volinsky 2008)' },
  ease: { task: 'recommend', trainsOnGpu: false, description: 'EASE^R item-item model (Steck 2019)' },
  sequential: {
    task: 'recommend',
    trainsOnGpu: true,
    description: 'SASRec-style Transformer over the user history (tfjs)',
  },
  search: {
    task: 'search',
    trainsOnGpu: true,
    description: 'product search: a pretrained BERT bi-encoder fine-tuned on the search log, with BM25 hybrid',
  },
};

/** The kind a run trains when its input names none: `auto`, the best of {@link AUTO_CANDIDATES} on validation. */
export const DEFAULT_KIND = 'auto' as const;
/** The kind of an activity input that names none (inputs from before kinds existed were two-tower). */
export const LEGACY_KIND: KindName = 'two-tower';

/** A run's kind: one kind, or `auto`. */
export type RunKind = KindName | 'auto';

/** What `auto` trains by default (cheapest first), and ships the best of by validation NDCG@10. */
export const AUTO_CANDIDATES: readonly KindName[] = ['ease', 'als', 'two-tower', 'sequential'];

/** The kind whose hyperparameters `train.config` holds when the run's kind is `auto` (the first version's meaning). */
export const AUTO_CONFIG_KIND: KindName = 'two-tower';

/** Whether a string names a kind. */
export function isKindName(x: unknown): x is KindName {
  return typeof x === 'string' && (KIND_NAMES as readonly string[]).includes(x);
}
