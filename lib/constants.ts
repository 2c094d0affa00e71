import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Names that cross process boundaries: task queues, workflow ids, search attributes.
 * Renaming one is a breaking change, like renaming a public API. Sandbox-safe (workflows import it).
 */

/** Task queue for CPU work: data, export, quantization, evaluation, registry, serving control, and the workflows. */
export const CPU_TASK_QUEUE = 'recflow-cpu';
/** Task queue for training on a GPU host (tfjs-node-gpu); CPU fallback goes to {@link CPU_TASK_QUEUE}. */
export const GPU_TASK_QUEUE = 'recflow-gpu';

/** Default Temporal namespace of the embedded dev server. */
export const DEFAULT_NAMESPACE = 'default';

/** Default model name when none is given. */
export const DEFAULT_MODEL_NAME = 'shop-recs';
/** Default model name of a product-search run (`--kind search`): its own registry model, aliases and fleet slot. */
export const DEFAULT_SEARCH_MODEL_NAME = 'shop-search';

/** Serving fleet of a product-search run when none is given (a fleet serves one model: lib/fleet/types.ts). */
export const DEFAULT_SEARCH_FLEET = 'search';

/**
 * The model name a client uses when none is given: {@link DEFAULT_SEARCH_MODEL_NAME} for the `search` kind, else
 * {@link DEFAULT_MODEL_NAME}. (The workflow itself requires `modelName` with kind `search`: lib/lifecycle/input.ts.)
 */
export function defaultModelName(kind: string | undefined): string {
  return kind === 'search' ? DEFAULT_SEARCH_MODEL_NAME : DEFAULT_MODEL_NAME;
}

/** Workflow id of a lifecycle run: says what it is and when it was asked for. */
export function lifecycleWorkflowId(modelName: string, runKey: string): string {
  return `recflow-lifecycle-${modelName}-${runKey}`;
}

/** Workflow id of the nightly retrain workflow started by a schedule. */
export function nightlyWorkflowId(modelName: string): string {
  return `recflow-nightly-${modelName}`;
}

/** Schedule id of the nightly retrain of one model. */
export function nightlyScheduleId(modelName: string): string {
  return `recflow-nightly-${modelName}`;
}

/**
 * Custom search attributes, registered on the embedded dev server and expected on any other server
 * (docs/operations.md: `temporal operator search-attribute create`).
 */
export const MODEL_NAME_SA = defineSearchAttributeKey('RecflowModel', SearchAttributeType.KEYWORD);
/** The lifecycle step a run is in (`train`, `awaiting_approval`, `canary`...). */
export const STAGE_SA = defineSearchAttributeKey('RecflowStage', SearchAttributeType.KEYWORD);
/** How a run ended (`promoted`, `rolled_back`, `rejected`, `expired`, `gate_failed`, `skipped`, `failed`). */
export const OUTCOME_SA = defineSearchAttributeKey('RecflowOutcome', SearchAttributeType.KEYWORD);
/** Every custom search attribute, for server set-up. */
export const SEARCH_ATTRIBUTE_KEYS = [MODEL_NAME_SA, STAGE_SA, OUTCOME_SA];
