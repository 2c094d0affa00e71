import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RecflowError } from '../../../lib/errors';
import { inspectBaseModel, loadBaseModel, resolveBaseModelDir } from '../../../kinds/search/base-model';
import { saveModelFolder } from '../../../kinds/search/model-folder';
import { encodeSafetensors } from '../../../kinds/search/safetensors';
import { baseModelDir, writeTinyBert } from '../../helpers/search-model';

const tmp = mkdtempSync(join(tmpdir(), 'base-model-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const fails = (type: string, re: RegExp) => (err: unknown) =>
  err instanceof RecflowError && err.type === type && re.test(err.message);

describe('base model', () => {
  it('loads the installed all-MiniLM-L6-v2: sizes, 6 layers of weights, lineage with checksums', async () => {
    const m = await loadBaseModel(baseModelDir());
    assert.deepEqual(
      { h: m.config.hiddenSize, l: m.config.numLayers, heads: m.config.numHeads, i: m.config.intermediateSize },
      { h: 384, l: 6, heads: 12, i: 1536 },
    );
    assert.equal(m.weights.size, 5 + 6 * 16);
    assert.deepEqual(m.weights.get('encoder.layer.5.intermediate.dense.weight')?.shape, [1536, 384]);
    assert.equal(m.maxSeqLength, 256);
    assert.equal(m.normalize, true);
    assert.equal(m.source.upstream, 'sentence-transformers/all-MiniLM-L6-v2');
    assert.equal(m.source.upstreamLicense, 'Apache-2.0');
    const recorded = JSON.parse(readFileSync(join(m.dir, 'recflow-source.json'), 'utf8')) as {
      files: Record<string, string>;
    };
    assert.equal(m.source.weightsSha256, recorded.files['model.safetensors']);
    assert.match(m.source.wheelSha256 ?? '', /^[0-9a-f]{64}$/);
  });

  it('RECFLOW_BASE_MODEL and an explicit folder choose the folder', () => {
    const saved = process.env.RECFLOW_BASE_MODEL;
    try {
      process.env.RECFLOW_BASE_MODEL = '/some/where';
      assert.equal(resolveBaseModelDir(), '/some/where');
      assert.equal(resolveBaseModelDir('/else'), '/else');
    } finally {
      if (saved === undefined) delete process.env.RECFLOW_BASE_MODEL;
      else process.env.RECFLOW_BASE_MODEL = saved;
    }
  });

  it('takes any BERT-family folder in the Hugging Face layout (a tiny random one)', async () => {
    const m = await loadBaseModel(writeTinyBert(join(tmp, 'tiny')));
    assert.equal(m.config.hiddenSize, 32);
    assert.equal(m.source.name, 'tiny');
    assert.equal(m.source.upstream, undefined);
  });

  it('says which file is missing, and what is wrong in config.json and the weights', async () => {
    await assert.rejects(
      inspectBaseModel(join(tmp, 'nowhere')),
      fails('ArtifactMissing', /does not exist: run `npm run setup`/),
    );
    const noTok = writeTinyBert(join(tmp, 'no-tokenizer'));
    unlinkSync(join(noTok, 'tokenizer.json'));
    await assert.rejects(inspectBaseModel(noTok), fails('ArtifactMissing', /no-tokenizer\/tokenizer\.json is missing/));
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ model_type: 'roberta' }, /model_type "roberta" is not supported/],
      [{ num_attention_heads: 5 }, /hidden_size 32 is not a multiple of num_attention_heads 5/],
      [{ hidden_size: 0 }, /'hidden_size' must be a positive integer, got 0/],
      [{ hidden_act: 'relu' }, /hidden_act "relu"/],
      [{ position_embedding_type: 'relative_key' }, /position_embedding_type/],
    ];
    for (const [i, [patch, re]] of cases.entries()) {
      await assert.rejects(inspectBaseModel(writeTinyBert(join(tmp, `cfg${i}`), 1, patch)), fails('InvalidData', re));
    }
    const badJson = writeTinyBert(join(tmp, 'bad-json'));
    writeFileSync(join(badJson, 'config.json'), '{"model_type": ');
    await assert.rejects(inspectBaseModel(badJson), fails('InvalidData', /config\.json: not valid JSON/));
    // Weights that do not fit config.json: a tensor missing, a shape off.
    const wrong = writeTinyBert(join(tmp, 'wrong-weights'));
    const t = new Map([
      ['embeddings.word_embeddings.weight', { shape: [30522, 32], data: new Float32Array(30522 * 32) }],
    ]);
    writeFileSync(join(wrong, 'model.safetensors'), encodeSafetensors(t));
    await assert.rejects(
      loadBaseModel(wrong),
      fails('InvalidData', /tensor 'embeddings\.position_embeddings\.weight' \[64, 32\] is missing/),
    );
    const shape = writeTinyBert(join(tmp, 'wrong-shape'), 1, { intermediate_size: 48 });
    await assert.rejects(
      loadBaseModel(shape),
      fails('InvalidData', /intermediate\.dense\.weight' has shape \[64, 32\], config\.json implies \[48, 32\]/),
    );
    const pooling = writeTinyBert(join(tmp, 'cls-pooling'));
    mkdirSync(join(pooling, '1_Pooling'));
    writeFileSync(join(pooling, '1_Pooling', 'config.json'), '{"pooling_mode_cls_token": true}');
    await assert.rejects(inspectBaseModel(pooling), fails('InvalidData', /only mean pooling is supported/));
  });
});

describe('model folder', () => {
  it('a saved encoder folder loads back as a base model with the same weights and sizes', async () => {
    const tiny = await loadBaseModel(writeTinyBert(join(tmp, 'to-save'), 9));
    const out = join(tmp, 'saved');
    await saveModelFolder(out, tiny.weights, tiny.config, tiny.dir, { upstream: 'recflow/test', trainedFrom: 'x' }, 64);
    const back = await loadBaseModel(out);
    assert.deepEqual(back.config, tiny.config);
    assert.equal(back.maxSeqLength, 64);
    assert.equal(back.normalize, true);
    assert.equal(back.source.upstream, 'recflow/test');
    for (const [k, t] of tiny.weights) assert.deepEqual(back.weights.get(k)?.data, t.data, k);
  });
});
