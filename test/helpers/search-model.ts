/**
 * Search-model test helpers: the installed base model (`npm run setup`), and a tiny random BERT folder (2 layers,
 * hidden 32) with the base model's real tokenizer, for fast tests of the training and export machinery.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectedBertTensors, resolveBaseModelDir, type BertConfig } from '../../kinds/search/base-model';
import { encodeSafetensors } from '../../kinds/search/safetensors';
import { mulberry32, gauss } from '../../lib/rng';

/** The installed base model folder; throws a clear error when `npm run setup` has not installed it. */
export function baseModelDir(): string {
  const dir = resolveBaseModelDir();
  if (!existsSync(join(dir, 'model.safetensors'))) {
    throw new Error(`${dir} has no model.safetensors: run \`npm run setup\` (or set RECFLOW_BASE_MODEL)`);
  }
  return dir;
}

/** The sizes of {@link writeTinyBert}'s model. */
export const TINY_CONFIG = {
  vocab_size: 30522,
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 64,
  max_position_embeddings: 64,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  model_type: 'bert',
  hidden_act: 'gelu',
};

/** The same sizes as a {@link BertConfig}. */
export const TINY_BERT: BertConfig = {
  vocabSize: 30522,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  intermediateSize: 64,
  maxPositions: 64,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
};

/**
 * Write a tiny random BERT into `dir` (config, weights, the real tokenizer): LayerNorm gains 1, biases and weights
 * small Gaussian draws from `seed`. `overrides` patch config.json (for error tests).
 */
export function writeTinyBert(dir: string, seed = 1, overrides: Record<string, unknown> = {}, layers = 2): string {
  mkdirSync(dir, { recursive: true });
  const cfg = { ...TINY_CONFIG, num_hidden_layers: layers, ...overrides };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  const src = baseModelDir();
  copyFileSync(join(src, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  copyFileSync(join(src, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  const r = mulberry32(seed);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expectedBertTensors({ ...TINY_BERT, numLayers: layers })) {
    const n = shape.reduce((a, b) => a * b, 1);
    const gain = name.endsWith('LayerNorm.weight');
    const scale = name.includes('embeddings') ? 0.5 : 0.15;
    tensors.set(name, { shape, data: Float32Array.from({ length: n }, () => (gain ? 1 : gauss(r) * scale)) });
  }
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
  return dir;
}
