/**
 * The `search` kind, defined once: its hyperparameters ({@link SearchKindConfig}, validated by
 * {@link resolveSearchConfig}) and its checkpoint format.
 *
 * A checkpoint folder holds `checkpoint.json` ({@link SearchCheckpointMeta}) and
 * - a final checkpoint: `model/` (the fine-tuned encoder as a Hugging Face / sentence-transformers folder,
 *   kinds/search/model-folder.ts) and, with the student on, `student/` (the distilled encoder, same layout);
 * - an epoch checkpoint (the resume point the training activity heartbeats): `finetune/` with the fine-tune's own
 *   resume files (`resume.json`, the epoch's trainable weights and AdamW moments, `best.safetensors`), from which
 *   kinds/search/fine-tune.ts continues exactly.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorType, RecflowError } from '../../lib/errors';
import { writeJsonAtomic } from '../../lib/fs-atomic';
import type { EpochRecord } from '../types';
import { resolveBaseModelDir, type BaseModelSource } from './base-model';
import type { ValidationMetrics } from './fine-tune';
import { ENCODER_PRECISIONS, type EncoderPrecision } from './onnx-encoder';

/** Hyperparameters of the search kind (plain JSON: they travel in workflow inputs and key the checkpoint). */
export interface SearchKindConfig {
  /** Fine-tuning epochs; 0 ships the pretrained encoder as it is (zero-shot). @default 1 */
  epochs: number;
  /** Transformer layers trained, counted from the top (the rest frozen, their outputs cached). @default 2 */
  trainableLayers: number;
  /** Pairs per step (in-batch negatives). @default 32 */
  batchSize: number;
  /** Peak learning rate; unset: the fine-tune's default (5e-5 with frozen layers, 2e-5 for all). */
  learningRate?: number;
  /** What runs a training step (kinds/search/fine-tune.ts `engine`). @default 'auto' */
  engine: 'auto' | 'tfjs' | 'onnxruntime';
  /**
   * BM25-mined hard negatives per training pair (0: in-batch negatives only). Off by default: in a click log most of
   * a query's relevant items were never shown, so the texts BM25 ranks high for it are as often unlabelled positives
   * as true negatives, and training against them pushes relevant items away (the demo's shop: validation NDCG@10
   * 0.437 with one per pair, 0.454 with none, the pretrained encoder 0.439). Turn on for complete judgements.
   * @default 0
   */
  hardNegatives: number;
  /** Smallest observed grade (1 click, 2 cart, 3 purchase) that makes a training positive. @default 1 */
  minGrade: number;
  /** Most training pairs (the most frequent first); 0: all. @default 0 */
  maxPairs: number;
  /** Tokens per query. @default 32 */
  queryMaxLength: number;
  /** Tokens per item text. @default 64 */
  itemMaxLength: number;
  /** Distil a smaller student encoder from the fine-tuned one (exported as its own variants). @default true */
  student: boolean;
  /** Student layers (taken from every other teacher layer); 0: half the teacher's. @default 0 */
  studentLayers: number;
  /** Distillation epochs over the shop's queries and item texts. @default 1 */
  studentEpochs: number;
  /** Teacher encoder precisions to export (`fp32` is always exported). @default fp32, int8-dynamic, int8-weight-only */
  precisions: EncoderPrecision[];
  /** Student encoder precisions to export. @default fp32, int8-dynamic */
  studentPrecisions: EncoderPrecision[];
  /** Seed of batching, negatives and distillation. @default 1 */
  seed: number;
  /**
   * The pretrained encoder's folder (Hugging Face layout). Unset: `RECFLOW_BASE_MODEL`, else the model
   * `npm run setup` installed (kinds/search/base-model.ts `resolveBaseModelDir`).
   */
  baseModel?: string;
  /**
   * sha256 of the base model's `model.safetensors`: filled in by {@link resolveSearchConfig} (from
   * `recflow-source.json` when it records it, else by hashing the file), so a checkpoint id names the weights it
   * started from, and a worker with other base weights refuses to resume it.
   */
  baseModelSha256: string;
}

/** The defaults (without the derived `baseModelSha256`). */
export const DEFAULT_SEARCH_CONFIG: Omit<SearchKindConfig, 'baseModelSha256'> = {
  epochs: 1,
  trainableLayers: 2,
  batchSize: 32,
  engine: 'auto',
  hardNegatives: 0,
  minGrade: 1,
  maxPairs: 0,
  queryMaxLength: 32,
  itemMaxLength: 64,
  student: true,
  studentLayers: 0,
  studentEpochs: 1,
  precisions: ['fp32', 'int8-dynamic', 'int8-weight-only'],
  studentPrecisions: ['fp32', 'int8-dynamic'],
  seed: 1,
};

const FIELDS = new Set([...Object.keys(DEFAULT_SEARCH_CONFIG), 'learningRate', 'baseModel', 'baseModelSha256']);

/** sha256 of a base model folder's weights: `recflow-source.json`'s record, else the file's own hash. */
export function baseModelWeightsSha256(dir: string): string {
  const source = join(dir, 'recflow-source.json');
  if (existsSync(source)) {
    try {
      const rec = JSON.parse(readFileSync(source, 'utf8')) as { files?: Record<string, unknown> };
      const sha = rec.files?.['model.safetensors'];
      if (typeof sha === 'string' && /^[0-9a-f]{64}$/.test(sha)) return sha;
    } catch {
      /* fall through: hash the file */
    }
  }
  const file = join(dir, 'model.safetensors');
  if (!existsSync(file))
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `base model ${dir}: model.safetensors is missing (run \`npm run setup\`, or set config.baseModel / RECFLOW_BASE_MODEL)`,
    );
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * Resolve a partial config over {@link DEFAULT_SEARCH_CONFIG}, check every field, and fill in the base model's
 * checksum.
 * @throws {RecflowError} `InvalidInput` naming the field and its bad value; `ArtifactMissing` without a base model.
 */
export function resolveSearchConfig(partial: Record<string, unknown> = {}, seed?: number): SearchKindConfig {
  for (const key of Object.keys(partial))
    if (!FIELDS.has(key))
      throw new RecflowError(ErrorType.InvalidInput, `config.${key}: unknown hyperparameter of kind search`);
  const c = { ...DEFAULT_SEARCH_CONFIG, ...partial, ...(seed !== undefined ? { seed } : {}) } as Record<
    string,
    unknown
  >;
  const bad = (key: string, what: string) =>
    new RecflowError(ErrorType.InvalidInput, `config.${key} = ${JSON.stringify(c[key])}: ${what}`);
  const int = (key: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw bad(key, `expected an integer in [${min}, ${max}]`);
  };
  int('epochs', 0, 1000);
  int('trainableLayers', 1, 64);
  int('batchSize', 2, 4096);
  int('hardNegatives', 0, 16);
  int('minGrade', 1, 3);
  int('maxPairs', 0);
  int('queryMaxLength', 4, 512);
  int('itemMaxLength', 4, 512);
  int('studentLayers', 0, 64);
  int('studentEpochs', 1, 100);
  int('seed', 0);
  if (c.learningRate !== undefined && !(typeof c.learningRate === 'number' && c.learningRate > 0 && c.learningRate < 1))
    throw bad('learningRate', 'expected a number in (0, 1)');
  if (!['auto', 'tfjs', 'onnxruntime'].includes(c.engine as string))
    throw bad('engine', 'expected auto, tfjs or onnxruntime');
  if (typeof c.student !== 'boolean') throw bad('student', 'expected true or false');
  for (const key of ['precisions', 'studentPrecisions'] as const) {
    const v = c[key];
    if (!Array.isArray(v) || !v.length || v.some((p) => !(ENCODER_PRECISIONS as readonly unknown[]).includes(p)))
      throw bad(key, `expected a list of ${ENCODER_PRECISIONS.join(', ')}`);
    if (new Set(v).size !== v.length) throw bad(key, 'lists a precision twice');
    // fp32 first: the index is built with it, and it is the reference every compressed variant is measured against.
    c[key] = ['fp32', ...(v as EncoderPrecision[]).filter((p) => p !== 'fp32')];
  }
  if (c.baseModel !== undefined) {
    if (typeof c.baseModel !== 'string' || !c.baseModel.trim()) throw bad('baseModel', 'expected a folder path');
    if (!c.baseModel.startsWith('/'))
      throw bad('baseModel', 'is relative; workers resolve paths on their own machine: give an absolute path');
    c.baseModel = resolve(c.baseModel);
  }
  const dir = resolveBaseModelDir(c.baseModel as string | undefined);
  const sha = baseModelWeightsSha256(dir);
  if (partial.baseModelSha256 !== undefined && partial.baseModelSha256 !== sha)
    throw bad('baseModelSha256', `the base model in ${dir} has weights ${sha}: a checkpoint of other weights`);
  c.baseModelSha256 = sha;
  return c as unknown as SearchKindConfig;
}

/** `checkpoint.json` of a search checkpoint. */
export interface SearchCheckpointMeta {
  kind: 'search';
  format: 'recflow-search-checkpoint/1';
  config: SearchKindConfig;
  datasetId: string;
  backend: string;
  gpu: boolean;
  /** The best epoch (0-based), or, in an epoch checkpoint, the epoch it was written after; 0 for zero-shot. */
  epoch: number;
  /** Every finished epoch (a zero-shot run: one record, the pretrained model's validation, 0 samples). */
  history: EpochRecord[];
  /** Validation of the pretrained encoder before any training. */
  zeroShot?: ValidationMetrics;
  /** The pretrained encoder (lineage). */
  base: BaseModelSource;
  /** Training data used: pairs, hard negatives, validation queries. */
  data: { pairs: number; negatives: number; validationQueries: number; catalogue: number };
  /** The distilled student, when trained: teacher layers it started from, and its loss per epoch. */
  student?: { layers: number[]; history: Array<{ epoch: number; loss: number; seconds: number }> };
  /** Seconds of the frozen-layer cache, and the training throughput. */
  cacheSeconds?: number;
  samplesPerSec?: number;
  /** What the folder holds: the final model (and student), or the fine-tune's resume files. */
  contents: 'final' | 'epoch';
}

/** File of the metadata inside a checkpoint folder. */
export const SEARCH_CHECKPOINT_FILE = 'checkpoint.json';

/** Write a checkpoint's metadata (the model folders are written beside it by the caller). */
export async function writeSearchCheckpointMeta(dir: string, meta: SearchCheckpointMeta): Promise<void> {
  await writeJsonAtomic(join(dir, SEARCH_CHECKPOINT_FILE), meta);
}

/**
 * Read a search checkpoint's metadata.
 * @throws {RecflowError} `ArtifactMissing` when the folder is not a search checkpoint.
 */
export async function readSearchCheckpointMeta(dir: string): Promise<SearchCheckpointMeta> {
  let meta: SearchCheckpointMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, SEARCH_CHECKPOINT_FILE), 'utf8')) as SearchCheckpointMeta;
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `search checkpoint ${dir}: ${(err as Error).message}`);
  }
  if (meta.format !== 'recflow-search-checkpoint/1' || meta.kind !== 'search')
    throw new RecflowError(ErrorType.ArtifactMissing, `${join(dir, SEARCH_CHECKPOINT_FILE)}: not a search checkpoint`);
  return meta;
}
