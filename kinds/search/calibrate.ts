/**
 * Static activation scales for the `int8-static` encoder: the fp32 graph is run with every dense layer's input
 * exposed, over sample text (training queries and item titles), and each input gets `scale = q / 127` where `q` is
 * the `percentile` of |x| over the real (unpadded) tokens; values beyond it saturate.
 */
import * as ort from 'onnxruntime-node';
import { ErrorType, RecflowError } from '../../lib/errors';
import type { BertConfig, BertWeights } from './base-model';
import { buildEncoderGraph } from './onnx-encoder';
import { SearchSession, ortOptions } from './session';
import type { SearchTokenizer } from './tokenizer';

/** Options of {@link calibrateStaticScales}. */
export interface CalibrationOptions {
  /** Fraction of |x| values kept below the scale's range (1 = the maximum). @default 0.9999 */
  percentile?: number;
  /** Texts per onnxruntime batch. @default 32 */
  batchSize?: number;
  /** Tokens per text. @default the tokenizer's maxLength */
  maxLength?: number;
  /** Values sampled per dense input for the percentile. @default 200000 */
  sampleLimit?: number;
}

/**
 * Calibrate one scale per dense input (`l{i}_{qkv|out|ffn_in|ffn_out}_in`).
 * @throws {RecflowError} `InvalidInput` without texts.
 */
export async function calibrateStaticScales(
  weights: BertWeights,
  config: BertConfig,
  tok: SearchTokenizer,
  texts: readonly string[],
  opts: CalibrationOptions = {},
): Promise<Record<string, number>> {
  if (!texts.length) throw new RecflowError(ErrorType.InvalidInput, 'calibration needs at least one text');
  const pct = opts.percentile ?? 0.9999;
  const limit = opts.sampleLimit ?? 200_000;
  const graph = buildEncoderGraph(weights, config, { precision: 'fp32', exposeDenseInputs: true });
  const session = await ort.InferenceSession.create(graph, ortOptions());
  const samples = new Map<string, number[]>();
  const seen = new Map<string, number>();
  let rng = 12345;
  try {
    const bs = opts.batchSize ?? 32;
    for (let s = 0; s < texts.length; s += bs) {
      const b = tok.encodeBatch(texts.slice(s, s + bs), { maxLength: opts.maxLength });
      const out = await session.run(SearchSession.feeds(b));
      for (const name of session.outputNames) {
        if (name === 'embedding') continue;
        const t = out[name] as ort.Tensor;
        const d = t.data as Float32Array;
        const width = t.dims[2] as number;
        const list = samples.get(name) ?? [];
        samples.set(name, list);
        let n = seen.get(name) ?? 0;
        for (let r = 0; r < b.batch * b.seqLen; r++) {
          if (!b.attentionMask[r]) continue;
          for (let j = 0; j < width; j++) {
            const v = Math.abs(d[r * width + j] ?? 0);
            n++;
            // Reservoir sample of |x|, and the exact maximum kept in slot 0.
            if (list.length === 0) list.push(v);
            else if (v > (list[0] ?? 0)) {
              list.push(list[0] ?? 0);
              list[0] = v;
            } else if (list.length < limit) list.push(v);
            else {
              rng = (rng * 1103515245 + 12345) % 2147483648;
              const at = 1 + (rng % (limit - 1));
              if (at < list.length && (rng / 2147483648) * n < limit) list[at] = v;
            }
          }
        }
        seen.set(name, n);
      }
    }
  } finally {
    await session.release();
  }
  const scales: Record<string, number> = {};
  for (const [name, list] of samples) {
    const sorted = Float64Array.from(list).sort();
    const q =
      pct >= 1
        ? (sorted[sorted.length - 1] ?? 1)
        : (sorted[Math.min(sorted.length - 1, Math.floor(pct * sorted.length))] ?? 1);
    scales[name] = Math.max(q, 1e-8) / 127;
  }
  return scales;
}
