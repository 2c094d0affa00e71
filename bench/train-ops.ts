/**
 * Microbenchmarks of lib/train/ops.ts and lib/train/kernels.ts on tfjs wasm: each op's forward + backward (the
 * gradient of `sum(op(x) * R)` with respect to every input) against the same formula in stock tfjs ops with the
 * stock kernels, at shapes of the model kinds (two-tower, a SASRec-style sequential recommender, a MiniLM encoder).
 * Process CPU time per call, best of 5 rounds (the machine is shared). Used by bench/train.ts (`--sections ops`).
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../lib/train/backend';
import { useFastKernels } from '../lib/train/kernels';
import { FusedAdam } from '../lib/train/optimizer';
import { attention, dense, embeddingConcat, gelu, layerNorm, matMul, softmaxCrossEntropy } from '../lib/train/ops';

function cpuMicros(f: () => void, calls: number): number {
  for (let i = 0; i < 3; i++) f();
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) f();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / calls);
  }
  return best;
}

/** Forward + backward of `f` on `inputs`, disposed. */
function fwdBwd(f: (...x: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): () => void {
  const r = tf.tidy(() => tf.randomNormal(f(...inputs).shape));
  return () => tf.dispose(tf.grads((...x: tf.Tensor[]) => tf.sum(tf.mul(f(...x), r)))(inputs));
}

interface Case {
  name: string;
  ours: () => void;
  stock: () => void;
  calls: number;
}

const rnd = (shape: number[]): tf.Tensor => tf.randomNormal(shape, 0, 1, 'float32', 7);
const stockGelu = (x: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));

function stockAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const s = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(q.shape[q.rank - 1] ?? 1)), bias);
  return tf.matMul(tf.softmax(s), v);
}

function cases(): Case[] {
  const out: Case[] = [];
  // Two-tower: item dense1, its input, Adam on the user table.
  {
    const [x, w, b] = [rnd([1024, 57]), rnd([57, 64]), rnd([64])];
    out.push({
      name: 'dense relu 1024x57 -> 64 (two-tower)',
      ours: fwdBwd((a, k, c) => dense(a, k, c, 'relu'), [x, w, b]),
      stock: fwdBwd((a, k, c) => tf.relu(tf.add(tf.matMul(a, k), c)), [x, w, b]),
      calls: 40,
    });
  }
  {
    const tables = [rnd([2001, 32]), rnd([25, 8]), rnd([6, 8]), rnd([53, 8])];
    const ids = tf.tensor1d(
      Int32Array.from({ length: 1024 }, (_, i) => (i * 37) % 2001),
      'int32',
    );
    const small = (n: number): tf.Tensor =>
      tf.tensor1d(
        Int32Array.from({ length: 1024 }, (_, i) => i % n),
        'int32',
      );
    const [cat, brand] = [small(25), small(6)];
    const tok = tf.tensor2d(
      Int32Array.from({ length: 8192 }, (_, i) => (i * 7) % 53),
      [1024, 8],
      'int32',
    );
    const tw = tf.fill([1024, 8], 0.125);
    const price = rnd([1024, 1]);
    out.push({
      name: 'embeddingConcat 4 tables + title bag + price, 1024 rows (two-tower item input)',
      ours: fwdBwd(
        (a, b, c, d) =>
          embeddingConcat(
            [
              { table: a, ids },
              { table: b, ids: cat },
              { table: c, ids: brand },
              { table: d, ids: tok, weights: tw },
            ],
            price,
          ),
        tables,
      ),
      stock: fwdBwd(
        (a, b, c, d) =>
          tf.concat(
            [
              tf.gather(a, ids),
              tf.gather(b, cat),
              tf.gather(c, brand),
              tf.sum(tf.mul(tf.gather(d, tok), tf.expandDims(tw, 2)), 1),
              price,
            ],
            1,
          ),
        tables,
      ),
      calls: 40,
    });
  }
  {
    const vars = [tf.variable(rnd([6001, 32])), tf.variable(rnd([2001, 32]))];
    const grads = vars.map((v) => rnd(v.shape));
    const gmap = (): Array<{ name: string; tensor: tf.Tensor }> =>
      vars.map((v, i) => ({ name: v.name, tensor: grads[i]! }));
    const fused = new FusedAdam(0.001);
    const stockAdam = tf.train.adam(0.001);
    out.push({
      name: 'Adam step on 6001x32 + 2001x32 tables',
      ours: () => fused.applyGradients(gmap()),
      stock: () => stockAdam.applyGradients(gmap()),
      calls: 20,
    });
  }
  // SASRec-style: batch 64, 2 heads, 50 positions, 32 per head; causal + padding mask.
  {
    const [B, H, T, D] = [64, 2, 50, 32];
    const keyMask = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([B, T], 0, 1, 'float32', 3), 0.2), 'float32'));
    const bias = tf.tidy(() =>
      tf.add(
        tf.reshape(tf.mul(tf.sub(1, keyMask), -1e9), [B, 1, 1, T]),
        tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9),
      ),
    );
    const qkv = [rnd([B, H, T, D]), rnd([B, H, T, D]), rnd([B, H, T, D])];
    out.push({
      name: `attention causal + key mask [${B},${H},${T},${D}] (SASRec)`,
      ours: fwdBwd((q, k, v) => attention(q, k, v, { keyMask, causal: true }), qkv),
      stock: fwdBwd((q, k, v) => stockAttention(q, k, v, bias), qkv),
      calls: 10,
    });
    const logits = rnd([B * 4, 2001]);
    const labels = tf.tensor1d(
      Int32Array.from({ length: B * 4 }, (_, i) => (i * 13) % 2001),
      'int32',
    );
    out.push({
      name: `softmaxCrossEntropy [${B * 4}, 2001] (full-catalog softmax)`,
      ours: fwdBwd((z) => softmaxCrossEntropy(z as tf.Tensor2D, labels), [logits]),
      stock: fwdBwd((z) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 2001), z), [logits]),
      calls: 10,
    });
  }
  // MiniLM-L6-style: batch 32, sequence 16, hidden 384, 12 heads of 32, FFN 1536.
  {
    const [B, H, T, D] = [32, 12, 16, 32];
    const keyMask = tf.ones([B, T]);
    const bias = tf.zeros([B, 1, 1, T]);
    const qkv = [rnd([B, H, T, D]), rnd([B, H, T, D]), rnd([B, H, T, D])];
    out.push({
      name: `attention key mask [${B},${H},${T},${D}] (MiniLM)`,
      ours: fwdBwd((q, k, v) => attention(q, k, v, { keyMask }), qkv),
      stock: fwdBwd((q, k, v) => stockAttention(q, k, v, bias), qkv),
      calls: 10,
    });
    const [a, b] = [rnd([B * H, T, D]), rnd([B * H, T, D])];
    out.push({
      name: `matMul q k^T [${B * H},${T},${D}] (batched, transposeB)`,
      ours: fwdBwd((x, y) => matMul(x, y, false, true), [a, b]),
      stock: fwdBwd((x, y) => tf.matMul(x, y, false, true), [a, b]),
      calls: 20,
    });
    const x = rnd([B * T, 384]);
    const [g, be] = [rnd([384]), rnd([384])];
    out.push({
      name: `layerNorm [${B * T}, 384]`,
      ours: fwdBwd((u, v, w) => layerNorm(u, v, w), [x, g, be]),
      stock: fwdBwd(
        (u, v, w) => {
          const { mean, variance } = tf.moments(u, -1, true);
          return tf.add(tf.mul(tf.div(tf.sub(u, mean), tf.sqrt(tf.add(variance, 1e-12))), v), w);
        },
        [x, g, be],
      ),
      calls: 20,
    });
    const [w1, b1] = [rnd([384, 1536]), rnd([1536])];
    out.push({
      name: `dense gelu [${B * T}, 384] -> 1536 (MiniLM FFN)`,
      ours: fwdBwd((u, k, c) => dense(u, k, c, 'gelu'), [x, w1, b1]),
      stock: fwdBwd((u, k, c) => stockGelu(tf.add(tf.matMul(u, k), c)), [x, w1, b1]),
      calls: 5,
    });
    const h = rnd([B * T, 1536]);
    out.push({
      name: `gelu [${B * T}, 1536]`,
      ours: fwdBwd((u) => gelu(u), [h]),
      stock: fwdBwd((u) => stockGelu(u), [h]),
      calls: 10,
    });
  }
  // The kernels alone.
  {
    const x = rnd([1024, 57]);
    out.push({
      name: 'Transpose 1024x57 (kernel)',
      ours: () => tf.dispose(tf.transpose(x)),
      stock: () => tf.dispose(tf.transpose(x)),
      calls: 100,
    });
    const t = rnd([6001, 32]);
    const ids = tf.tensor1d(
      Int32Array.from({ length: 1024 }, (_, i) => (i * 37) % 6001),
      'int32',
    );
    out.push({
      name: 'GatherV2 1024 rows of 6001x32 (kernel)',
      ours: () => tf.dispose(tf.gather(t, ids)),
      stock: () => tf.dispose(tf.gather(t, ids)),
      calls: 100,
    });
  }
  return out;
}

/** Every case on wasm: microseconds of CPU per forward + backward, ours and stock, and the speed-up. */
export async function runOpsBench(): Promise<Record<string, unknown>> {
  await selectBackend('wasm');
  const rows: Array<Record<string, unknown>> = [];
  const all = cases();
  for (const c of all) {
    useFastKernels('wasm', false);
    const stock = cpuMicros(c.stock, c.calls);
    useFastKernels('wasm', true);
    const ours = cpuMicros(c.ours, c.calls);
    const row = {
      op: c.name,
      oursMicros: Math.round(ours),
      stockMicros: Math.round(stock),
      speedup: Math.round((stock / ours) * 100) / 100,
    };
    console.log(JSON.stringify(row));
    rows.push(row);
  }
  return {
    backend: 'wasm (1 thread)',
    note: 'forward + backward per call (Adam: one update; kernels: one call), process CPU microseconds, best of 5 rounds; stock = the same formula in stock tfjs ops and kernels',
    rows,
  };
}
