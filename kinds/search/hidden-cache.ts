/**
 * Hidden states of texts after the first layers of an encoder (the frozen part of a fine-tune, or the embedding layer
 * of a distillation), computed once with onnxruntime (the fp32 prefix graph) and kept per text as a `[len, H]` block;
 * batches are assembled from them, padded to the longest row.
 */
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import type { BertConfig, BertWeights } from './base-model';
import { buildPrefixGraph } from './onnx-encoder';
import { SearchSession, ortOptions } from './session';
import type { SearchTokenizer } from './tokenizer';

export class HiddenCache {
  private readonly rows = new Map<string, { len: number; data: Float32Array }>();
  constructor(readonly hidden: number) {}

  static async build(
    base: { config: BertConfig; weights: BertWeights },
    tok: SearchTokenizer,
    layers: number,
    groups: Array<{ texts: Iterable<string>; maxLength: number; key: string }>,
    progress: (done: number, total: number) => Promise<void>,
  ): Promise<HiddenCache> {
    const cache = new HiddenCache(base.config.hiddenSize);
    const H = base.config.hiddenSize;
    const session = await ort.InferenceSession.create(
      buildPrefixGraph(base.weights, base.config, { layers }),
      ortOptions(),
    );
    try {
      const lists = groups.map((g) => ({ ...g, list: [...new Set(g.texts)] }));
      const total = lists.reduce((a, g) => a + g.list.length, 0);
      let done = 0;
      for (const g of lists) {
        // Similar lengths together: less padding.
        const order = g.list.map((t) => ({ t, n: tok.encode(t, g.maxLength).length })).sort((a, b) => a.n - b.n);
        for (let s = 0; s < order.length; s += 64) {
          const chunk = order.slice(s, s + 64).map((o) => o.t);
          const b = tok.encodeBatch(chunk, { maxLength: g.maxLength });
          const out = await session.run(SearchSession.feeds(b));
          const d = (out.hidden as ort.Tensor).data as Float32Array;
          chunk.forEach((t, i) => {
            const len = b.lengths[i] ?? 0;
            cache.rows.set(`${g.key}\u0000${t}`, { len, data: d.slice(i * b.seqLen * H, (i * b.seqLen + len) * H) });
          });
          done += chunk.length;
          await progress(done, total);
        }
      }
    } finally {
      await session.release();
    }
    return cache;
  }

  /** A padded batch of cached texts: hidden `[B * T, H]` and mask `[B, T]`. */
  batch(texts: readonly string[], key: string, padTo?: number): { hidden: tf.Tensor2D; mask: tf.Tensor2D } {
    const a = this.arrays(texts, key, padTo);
    return {
      hidden: tf.tensor2d(a.hidden, [a.batch * a.seq, this.hidden]),
      mask: tf.tensor2d(a.mask, [a.batch, a.seq]),
    };
  }

  /** The same batch as plain arrays: hidden `[B, T, H]`, mask `[B, T]`. */
  arrays(
    texts: readonly string[],
    key: string,
    padTo?: number,
  ): { hidden: Float32Array; mask: Float32Array; batch: number; seq: number } {
    const rows = texts.map((t) => {
      const r = this.rows.get(`${key}\u0000${t}`);
      if (!r) throw new Error(`hidden cache has no ${key} text ${JSON.stringify(t)}`);
      return r;
    });
    const T = padTo ?? rows.reduce((m, r) => Math.max(m, r.len), 0);
    const H = this.hidden;
    const hidden = new Float32Array(texts.length * T * H);
    const mask = new Float32Array(texts.length * T);
    rows.forEach((r, i) => {
      hidden.set(r.data, i * T * H);
      mask.fill(1, i * T, i * T + r.len);
    });
    return { hidden, mask, batch: texts.length, seq: T };
  }
}
