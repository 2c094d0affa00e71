import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../lib/train/backend';
import { loadBaseModel, type BaseModel } from '../../../kinds/search/base-model';
import { BertEncoder } from '../../../kinds/search/encoder';
import { gelu, layerNorm, mm } from '../../../kinds/search/layers';
import { SearchTokenizer } from '../../../kinds/search/tokenizer';
import { baseModelDir } from '../../helpers/search-model';

// Sentence embeddings from a float64 numpy forward of the same weights (bench/search_reference.py), itself within
// `sentenceTransformersMaxAbsDelta` of sentence-transformers when that was installed.
interface Fixture {
  modelSha256: string;
  maxLength: number;
  cases: Array<{ text: string; ids: number[]; embedding: number[] }>;
}
const fixture = JSON.parse(
  readFileSync(join(__dirname, '..', '..', 'fixtures', 'search', 'embeddings.json'), 'utf8'),
) as Fixture;

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

describe('tfjs BERT encoder (wasm)', () => {
  let base: BaseModel;
  let enc: BertEncoder;
  let tok: SearchTokenizer;
  before(async () => {
    await selectBackend('wasm');
    base = await loadBaseModel(baseModelDir());
    enc = BertEncoder.fromWeights(base.weights, base.config);
    tok = SearchTokenizer.load(base.dir, fixture.maxLength);
  });
  after(() => enc?.dispose());

  it('matches the float64 reference within 1e-4 on every embedding, in one padded batch', async () => {
    assert.equal(base.source.weightsSha256, fixture.modelSha256, 'fixture made from other weights');
    for (const c of fixture.cases) assert.deepEqual(tok.encode(c.text), c.ids, c.text);
    const got = await enc.encode(
      tok,
      fixture.cases.map((c) => c.text),
      { batchSize: 64 },
    );
    const want = fixture.cases.flatMap((c) => c.embedding);
    const d = maxAbs(got, want);
    assert.ok(d <= 1e-4, `max |delta| ${d}`);
  });

  it('a text embeds the same alone and padded inside a batch (within 1e-6)', async () => {
    const texts = fixture.cases.map((c) => c.text);
    const alone = await enc.encode(tok, [texts[0]!]);
    const batched = await enc.encode(tok, texts);
    assert.ok(maxAbs(alone, batched.subarray(0, 384)) < 1e-6);
  });

  it('round-trips its weights in the Hugging Face layout, and keeps chosen layers for a student', async () => {
    const w = enc.toWeights();
    for (const [name, t] of base.weights) assert.equal(maxAbs(w.get(name)!.data, t.data), 0, name);
    const student = BertEncoder.fromWeights(base.weights, base.config, { layers: [0, 2, 4], trainableLayers: 1 });
    try {
      assert.equal(student.numLayers, 3);
      const sw = student.toWeights();
      assert.equal(
        maxAbs(
          sw.get('encoder.layer.1.output.dense.weight')!.data,
          base.weights.get('encoder.layer.2.output.dense.weight')!.data,
        ),
        0,
      );
      assert.ok(!sw.has('encoder.layer.3.output.dense.weight'));
      const names = new Set([...student.toWeights(true).keys()]);
      assert.ok(names.has('encoder.layer.2.attention.self.query.weight'));
      assert.ok(!names.has('encoder.layer.1.attention.self.query.weight'));
      assert.ok(!names.has('embeddings.word_embeddings.weight'));
      assert.equal(student.trainableVariables().length, 16);
    } finally {
      student.dispose();
    }
  });
});

describe('layers with hand-written gradients', () => {
  before(async () => {
    await selectBackend('wasm');
  });
  const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

  it('mm, layerNorm and gelu: values and gradients equal the stock ops (within 1e-4)', () => {
    tf.tidy(() => {
      const a = rand([4, 5], 1);
      const b = rand([5, 6], 2);
      const w = rand([4, 6], 3);
      const f1 = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(mm(x as tf.Tensor2D, y as tf.Tensor2D), w));
      const f0 = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D), w));
      const [g1a, g1b] = tf.grads(f1)([a, b]);
      const [g0a, g0b] = tf.grads(f0)([a, b]);
      assert.ok(maxAbs(g1a!.dataSync(), g0a!.dataSync()) < 1e-4);
      assert.ok(maxAbs(g1b!.dataSync(), g0b!.dataSync()) < 1e-4);

      const x = tf.add(tf.mul(rand([6, 8], 4), 3), 1);
      const gamma = rand([8], 5);
      const beta = rand([8], 6);
      const wx = rand([6, 8], 7);
      const stockLn = (v: tf.Tensor, g: tf.Tensor, bb: tf.Tensor) => {
        const { mean, variance } = tf.moments(v, -1, true);
        return tf.add(tf.mul(tf.div(tf.sub(v, mean), tf.sqrt(tf.add(variance, 1e-12))), g), bb);
      };
      const l1 = (v: tf.Tensor, g: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(layerNorm(v, g, bb, 1e-12), wx));
      const l0 = (v: tf.Tensor, g: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(stockLn(v, g, bb), wx));
      assert.ok(maxAbs(layerNorm(x, gamma, beta, 1e-12).dataSync(), stockLn(x, gamma, beta).dataSync()) < 1e-5);
      const gl1 = tf.grads(l1)([x, gamma, beta]);
      const gl0 = tf.grads(l0)([x, gamma, beta]);
      gl1.forEach((g, i) => assert.ok(maxAbs(g.dataSync(), gl0[i]!.dataSync()) < 1e-4, `layerNorm grad ${i}`));

      const z = tf.mul(rand([50], 8), 3);
      const stockGelu = (v: tf.Tensor) => tf.mul(tf.mul(v, 0.5), tf.add(1, tf.erf(tf.div(v, Math.SQRT2))));
      assert.ok(maxAbs(gelu(z).dataSync(), stockGelu(z).dataSync()) < 1e-6);
      const gg1 = tf.grad((v: tf.Tensor) => tf.sum(tf.square(gelu(v))))(z);
      const gg0 = tf.grad((v: tf.Tensor) => tf.sum(tf.square(stockGelu(v))))(z);
      assert.ok(maxAbs(gg1.dataSync(), gg0.dataSync()) < 1e-4);
    });
  });
});
