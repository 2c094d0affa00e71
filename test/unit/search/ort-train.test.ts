import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../lib/train/backend';
import { loadBaseModel, type BaseModel } from '../../../kinds/search/base-model';
import { BertEncoder, maskBias } from '../../../kinds/search/encoder';
import { mm } from '../../../kinds/search/layers';
import { OrtStepRunner } from '../../../kinds/search/ort-train';
import { mulberry32, gauss } from '../../../lib/rng';
import { writeTinyBert } from '../../helpers/search-model';

const tmp = mkdtempSync(join(tmpdir(), 'ort-train-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('onnxruntime training step', () => {
  let tiny: BaseModel;
  before(async () => {
    await selectBackend('wasm');
    tiny = await loadBaseModel(writeTinyBert(join(tmp, 'tiny'), 11, {}, 3));
  });

  it('loss and every gradient equal tfjs autodiff of the same step (top 2 of 3 layers, padded batches)', async () => {
    const H = tiny.config.hiddenSize;
    const r = mulberry32(3);
    const side = (batch: number, seq: number, lengths: number[]) => {
      const hidden = Float32Array.from({ length: batch * seq * H }, () => gauss(r));
      const mask = new Float32Array(batch * seq);
      lengths.forEach((n, b) => mask.fill(1, b * seq, b * seq + n));
      return { hidden, mask, batch, seq };
    };
    const q = side(3, 5, [5, 2, 4]);
    const d = side(6, 7, [7, 3, 1, 6, 7, 2]);
    const enc = BertEncoder.fromWeights(tiny.weights, tiny.config, { trainableLayers: 2 });
    const named = new Map([...enc.variablesByName()].filter(([, v]) => v.trainable));
    const scale = 20;
    tf.engine().startScope();
    const want = (() => {
      const emb = (s: typeof q) => {
        const m = tf.tensor2d(s.mask, [s.batch, s.seq]);
        return enc.pool(enc.layersRange(tf.tensor2d(s.hidden, [s.batch * s.seq, H]), maskBias(m), 1), m);
      };
      const { value, grads } = tf.variableGrads(() => {
        const logits = tf.mul<tf.Tensor2D>(mm(emb(q), tf.transpose(emb(d))), scale);
        const labels = tf.oneHot(tf.range(0, 3, 1, 'int32'), 6) as tf.Tensor2D;
        return tf.losses.softmaxCrossEntropy<tf.Tensor2D, tf.Scalar>(labels, logits);
      }, [...named.values()]);
      const byName = new Map<string, Float32Array>();
      for (const [k, v] of named) byName.set(k, grads[v.name]!.dataSync() as Float32Array);
      return { loss: value.dataSync()[0]!, grads: byName };
    })();
    tf.engine().endScope();
    const params = new Map(
      [...named].map(([k, v]) => [
        k.replace(/^layer\.(\d+)\./, 'l$1.'),
        { shape: v.shape, data: v.dataSync<'float32'>().slice() },
      ]),
    );
    const runner = await OrtStepRunner.create(tiny.config, [1, 2], scale, params);
    try {
      const got = await runner.run(q, d, H);
      assert.ok(Math.abs(got.loss - want.loss) < 1e-5, `loss ${got.loss} vs ${want.loss}`);
      let worst = 0;
      let worstName = '';
      let largest = 0;
      for (const g of want.grads.values()) for (const x of g) largest = Math.max(largest, Math.abs(x));
      for (const [k, g] of want.grads) {
        if (k.endsWith('kBias')) {
          // Softmax ignores a constant added to a row's scores: the key bias's true gradient is 0; both are ~0.
          const o = got.grads.get(k.replace(/^layer\.(\d+)\./, 'l$1.'))!;
          for (let i = 0; i < g.length; i++)
            assert.ok(Math.abs(o[i]!) < 1e-5 * largest && Math.abs(g[i]!) < 1e-5 * largest, k);
          continue;
        }
        const o = got.grads.get(k.replace(/^layer\.(\d+)\./, 'l$1.'))!;
        assert.equal(o.length, g.length, k);
        let scaleG = 1e-6;
        for (let i = 0; i < g.length; i++) scaleG = Math.max(scaleG, Math.abs(g[i]!));
        for (let i = 0; i < g.length; i++) {
          const rel = Math.abs(o[i]! - g[i]!) / scaleG;
          if (rel > worst) [worst, worstName] = [rel, k];
        }
      }
      assert.equal(want.grads.size, 32);
      assert.ok(worst < 1e-3, `worst relative gradient error ${worst} in ${worstName}`);
    } finally {
      await runner.release();
      enc.dispose();
    }
  });
});
