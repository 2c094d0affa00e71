import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportGraphs, type ExportMeta } from '../../../kinds/two-tower/export';
import { DType, decodeModel } from '../../../lib/onnx/builder';
import { dequantize, quantizePerColumn, quantizePerRow } from '../../../lib/onnx/quantize';
import { SMALL_CONFIG, randomModel, rng } from '../../helpers/random-model';

const metaOf = (m: ReturnType<typeof randomModel>): ExportMeta => ({
  modelName: 'two-tower',
  datasetId: 'ds',
  checkpointId: 'ck',
  vocabHash: 'h',
  config: m.config,
  sizes: m.sizes,
  extras: m.extras,
});
/** Histories of the requests: every third empty, the others 1 to 6 items (0-padded on the left to width 6). */
const histories = (n: number, items: number, seed: number): ort.Tensor => {
  const r = rng(seed);
  const rows = Array.from({ length: n }, (_, b) =>
    b % 3 === 0 ? [] : Array.from({ length: 1 + Math.floor(r() * 6) }, () => 1 + Math.floor(r() * (items - 1))),
  );
  return i64(
    rows.flatMap((h) => [...new Array<number>(6 - h.length).fill(0), ...h]),
    [n, 6],
  );
};
const i64 = (xs: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), dims);

/** Stated tolerance of int8 against fp32 probabilities on the test model. */
const INT8_MAX_ABS_DELTA = 0.05;
const INT8_P99_ABS_DELTA = 0.025;
const INT8_MEAN_ABS_DELTA = 0.006;

void describe('int8 quantization', () => {
  void it('per-row and per-column int8 round-trip within half a step of each scale', () => {
    const r = rng(5);
    const rows = 37;
    const cols = 11;
    const data = Float32Array.from({ length: rows * cols }, (_, i) => (r() - 0.5) * (1 + (i % cols)));
    data.fill(0, 0, cols); // an all-zero row (padding) must not divide by zero
    for (const perRow of [true, false]) {
      const q = perRow ? quantizePerRow(data, rows, cols) : quantizePerColumn(data, rows, cols);
      const back = dequantize(q, perRow);
      for (let i = 0; i < data.length; i++) {
        const s = perRow ? q.scales[Math.floor(i / cols)]! : q.scales[i % cols]!;
        assert.ok(Math.abs(back[i]! - data[i]!) <= s / 2 + 1e-7, `${perRow ? 'row' : 'col'} ${i}`);
        assert.ok(Math.abs(q.q[i]!) <= 127);
      }
    }
  });

  void it(`int8 scores stay within ${INT8_MAX_ABS_DELTA} (max), ${INT8_P99_ABS_DELTA} (p99), ${INT8_MEAN_ABS_DELTA} (mean) of fp32`, async () => {
    const m = randomModel({ seed: 9 });
    const g = exportGraphs(m.weights, m.features, metaOf(m));
    const fp32 = await ort.InferenceSession.create(g.fp32.score);
    const int8 = await ort.InferenceSession.create(g.int8.score);
    const r = rng(3);
    const B = 100;
    const N = 20;
    const feeds = {
      user: i64(
        Array.from({ length: B }, () => Math.floor(r() * m.sizes.users)),
        [B],
      ),
      items: i64(
        Array.from({ length: B * N }, () => Math.floor(r() * m.sizes.items)),
        [B, N],
      ),
      history: histories(B, m.sizes.items, 4),
    };
    const a = (await fp32.run(feeds)).scores!.data as Float32Array;
    const b = (await int8.run(feeds)).scores!.data as Float32Array;
    const deltas = Array.from(a, (x, i) => Math.abs(x - b[i]!)).sort((x, y) => x - y);
    const max = deltas[deltas.length - 1]!;
    const p99 = deltas[Math.floor(deltas.length * 0.99)]!;
    const sum = deltas.reduce((x, y) => x + y, 0);
    assert.ok(p99 <= INT8_P99_ABS_DELTA, `p99 |delta| ${p99}`);
    assert.ok(max > 0, 'int8 should differ from fp32 (is it really quantized?)');
    assert.ok(max <= INT8_MAX_ABS_DELTA, `max |delta| ${max}`);
    assert.ok(sum / a.length <= INT8_MEAN_ABS_DELTA, `mean |delta| ${sum / a.length}`);
    await fp32.release();
    await int8.release();
  });

  void it('int8 recommend never returns 0 or excluded items and mostly agrees with fp32 top-10', async () => {
    const m = randomModel({ seed: 9 });
    const g = exportGraphs(m.weights, m.features, metaOf(m));
    const fp32 = await ort.InferenceSession.create(g.fp32.recommend);
    const int8 = await ort.InferenceSession.create(g.int8.recommend);
    const users = Array.from({ length: 50 }, (_, i) => i * 5 + 1);
    const feeds = {
      user: i64(users, [users.length]),
      k: i64([10], [1]),
      exclude: i64(
        users.flatMap((u) => [u % 7 === 0 ? 0 : u, 3]),
        [users.length, 2],
      ),
      history: histories(users.length, m.sizes.items, 5),
    };
    const a = Array.from((await fp32.run(feeds)).items!.data as BigInt64Array, Number);
    const b = Array.from((await int8.run(feeds)).items!.data as BigInt64Array, Number);
    let overlap = 0;
    users.forEach((u, k) => {
      const ta = new Set(a.slice(k * 10, k * 10 + 10));
      const tb = b.slice(k * 10, k * 10 + 10);
      for (const x of tb) {
        assert.ok(x !== 0 && x !== 3 && !(u % 7 !== 0 && x === u), `user ${u}: returned ${x}`);
        if (ta.has(x)) overlap++;
      }
    });
    assert.ok(overlap / (users.length * 10) >= 0.8, `top-10 overlap ${overlap / (users.length * 10)}`);
  });

  void it('int8 recommend scores agree with the int8 score graph for every user (no u8s8 int16 saturation)', async () => {
    const m = randomModel({ seed: 1 });
    const g = exportGraphs(m.weights, m.features, metaOf(m));
    const rec = await ort.InferenceSession.create(g.int8.recommend);
    const sc = await ort.InferenceSession.create(g.int8.score);
    const users = Array.from({ length: m.sizes.users }, (_, u) => u);
    const K = 20;
    const history = histories(users.length, m.sizes.items, 6);
    const out = await rec.run({
      user: i64(users, [users.length]),
      k: i64([K], [1]),
      exclude: new ort.Tensor('int64', new BigInt64Array(0), [users.length, 0]),
      history,
    });
    const top = Array.from(out.items!.data as BigInt64Array, Number);
    const a = out.scores!.data as Float32Array;
    const b = (await sc.run({ user: i64(users, [users.length]), items: i64(top, [users.length, K]), history })).scores!
      .data as Float32Array;
    let max = 0;
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
    assert.ok(max <= 0.02, `max |recommend - score| ${max}`);
    await rec.release();
    await sc.release();
  });

  void it('the int8 graphs are ~4x smaller, and a user is ranked the same alone and in a batch of 256', async () => {
    const m = randomModel({
      seed: 2,
      sizes: { users: 3000, items: 2000, segments: 5, regions: 6, categories: 8, brands: 20, tokens: 60 },
      config: { ...SMALL_CONFIG, embeddingDim: 64, outputDim: 64, hiddenUnits: 64 },
    });
    const g = exportGraphs(m.weights, m.features, metaOf(m));
    // The float weights shrink ~4x; the integer tables (stored histories, user features) stay as they are.
    const weightBytes = (bytes: Uint8Array) => {
      let float = 0;
      let integer = 0;
      for (const t of decodeModel(bytes).graph!.initializer!) {
        const n = t.rawData?.length ?? 0;
        if (t.dataType === DType.int32 || t.dataType === DType.int64) integer += n;
        else float += n;
      }
      return { float, integer };
    };
    for (const kind of ['score', 'recommend'] as const) {
      const a = weightBytes(g.fp32[kind]);
      const b = weightBytes(g.int8[kind]);
      const ratio = a.float / b.float;
      assert.ok(ratio >= 3.3 && ratio <= 4.1, `${kind}: fp32 ${a.float} B / int8 ${b.float} B of weights = ${ratio}`);
      assert.ok(Math.abs(a.integer - b.integer) < 1024, `${kind}: integer tables ${a.integer} vs ${b.integer} B`);
      assert.ok(g.fp32[kind].byteLength / g.int8[kind].byteLength > 2, `${kind}: whole graph`);
    }
    // Activations are quantized per row and the pooled history has a fixed width: what serving computes for a user
    // (micro-batches of 1..64, histories padded to the batch's widest) is what the evaluation computed (batches of
    // 256), bit for bit.
    const s = await ort.InferenceSession.create(g.int8.recommend, { intraOpNumThreads: 1 });
    try {
      const users = Array.from({ length: 256 }, (_, i) => 1 + ((i * 37) % 2999));
      const own = (u: number) => (u % 4 === 0 ? [] : [1 + (u % 1999), 1 + ((u * 7) % 1999)]);
      const run = async (us: number[], width: number) => {
        const hist = us.flatMap((u) => [...new Array<number>(width - own(u).length).fill(0), ...own(u)]);
        const out = await s.run({
          user: new ort.Tensor('int64', BigInt64Array.from(us, BigInt), [us.length]),
          k: new ort.Tensor('int64', BigInt64Array.of(10n), [1]),
          exclude: new ort.Tensor('int64', new BigInt64Array(0), [us.length, 0]),
          history: i64(hist, [us.length, width]),
        });
        return { items: out.items!.data as BigInt64Array, scores: out.scores!.data as Float32Array };
      };
      const batch = await run(users, 9);
      for (let i = 0; i < users.length; i += 17) {
        const alone = await run([users[i]!], own(users[i]!).length);
        assert.deepEqual(
          Array.from(alone.items),
          Array.from(batch.items.subarray(i * 10, i * 10 + 10)),
          `user ${users[i]}`,
        );
        assert.deepEqual(Array.from(alone.scores), Array.from(batch.scores.subarray(i * 10, i * 10 + 10)));
      }
    } finally {
      await s.release();
    }
  });
});
