/**
 * Save an encoder (fine-tuned or distilled) as a model folder in the Hugging Face / sentence-transformers layout:
 * `config.json`, `model.safetensors`, the tokenizer files, `1_Pooling/config.json` (mean pooling), `modules.json`
 * (Transformer, Pooling, Normalize) and `recflow-source.json` (lineage). {@link loadBaseModel} reads it back, so a
 * fine-tuned model can be the base of the next fine-tune, and sentence-transformers can load it too.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BertConfig, BertWeights } from './base-model';
import { writeSafetensors } from './safetensors';

/** Lineage stored in `recflow-source.json`. */
export interface ModelFolderLineage {
  /** The base model's upstream name and checksum, the training run, the data set... */
  [key: string]: unknown;
}

/** The `config.json` of a BERT of `c`'s sizes. */
export function hfConfig(c: BertConfig): Record<string, unknown> {
  return {
    architectures: ['BertModel'],
    model_type: 'bert',
    hidden_act: 'gelu',
    position_embedding_type: 'absolute',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    max_position_embeddings: c.maxPositions,
    type_vocab_size: c.typeVocabSize,
    layer_norm_eps: c.layerNormEps,
    pad_token_id: 0,
  };
}

/**
 * Write the folder (created if needed). `tokenizerDir` holds `tokenizer.json` (and `tokenizer_config.json`).
 * @param maxSeqLength written to `sentence_bert_config.json`; @default 128
 */
export async function saveModelFolder(
  dir: string,
  weights: BertWeights,
  config: BertConfig,
  tokenizerDir: string,
  lineage: ModelFolderLineage = {},
  maxSeqLength = 128,
): Promise<void> {
  await mkdir(join(dir, '1_Pooling'), { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(hfConfig(config), null, 2)}\n`);
  await writeSafetensors(join(dir, 'model.safetensors'), weights, { format: 'pt' });
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt']) {
    if (existsSync(join(tokenizerDir, f))) await copyFile(join(tokenizerDir, f), join(dir, f));
  }
  await writeFile(
    join(dir, '1_Pooling', 'config.json'),
    `${JSON.stringify({ word_embedding_dimension: config.hiddenSize, pooling_mode_cls_token: false, pooling_mode_mean_tokens: true, pooling_mode_max_tokens: false, pooling_mode_mean_sqrt_len_tokens: false }, null, 2)}\n`,
  );
  await writeFile(
    join(dir, 'modules.json'),
    `${JSON.stringify(
      [
        { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
        { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
        { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
      ],
      null,
      2,
    )}\n`,
  );
  await writeFile(
    join(dir, 'sentence_bert_config.json'),
    `${JSON.stringify({ max_seq_length: maxSeqLength, do_lower_case: false })}\n`,
  );
  await writeFile(join(dir, 'recflow-source.json'), `${JSON.stringify(lineage, null, 2)}\n`);
}
