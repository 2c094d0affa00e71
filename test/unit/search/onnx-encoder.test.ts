import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadBaseModel, type BaseModel } from '../../../kinds/search/base-model';
import { calibrateStaticScales } from '../../../kinds/search/calibrate';
import { buildEncoderGraph, buildSearchGraph } from '../../../kinds/search/onnx-encoder';
import { SearchSession } from '../../../kinds/search/session';
import { SearchTokenizer } from '../../../kinds/search/tokenizer';
import { decodeModel } from '../../../lib/onnx/builder';
import { RecflowError } from '../../../lib/errors';
import { baseModelDir } from '../../helpers/search-model';

// Float64 numpy reference of the same weights: bench/search_reference.py.
interface Fixture {
  cases: Array<{ text: string; embedding: number[] }>;
}
const fixture = JSON.parse(
  readFileSync(join(__dirname, '..', '..', 'fixtures', 'search', 'embeddings.json'), 'utf8'),
) as Fixture;
const texts = fixture.cases.map((c) => c.text);
const D = 384;

const row = (a: Float32Array, i: number) => a.subarray(i * D, (i + 1) * D);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] ?? 0) * (b[i] ?? 0);
  return s;
};

describe('search encoder in ONNX (onnxruntime, one thread)', () => {
  let base: BaseModel;
  let tok: SearchTokenizer;
  const sessions: SearchSession[] = [];
  before(async () => {
    base = await loadBaseModel(baseModelDir());
    tok = SearchTokenizer.load(base.dir, 128);
  });
  after(async () => {
    for (const s of sessions) await s.release();
  });
  const open = async (bytes: Uint8Array) => {
    const s = await SearchSession.create(bytes, tok);
    sessions.push(s);
    return s;
  };

  it('fp32 matches the float64 reference within 1e-4, opset 17, metadata kept', async () => {
    const bytes = buildEncoderGraph(base.weights, base.config, { metadata: { modelName: 'shop-search' } });
    const m = decodeModel(bytes);
    assert.equal(Number(m.opsetImport?.[0]?.version), 17);
    assert.ok(m.metadataProps?.some((p) => p.key === 'modelName' && p.value === 'shop-search'));
    const s = await open(bytes);
    assert.equal(s.dim, D);
    const got = await s.encode(texts);
    let max = 0;
    fixture.cases.forEach((c, i) =>
      c.embedding.forEach((v, j) => (max = Math.max(max, Math.abs(v - (got[i * D + j] ?? 0))))),
    );
    assert.ok(max <= 1e-4, `max |delta| ${max}`);
  });

  it('every int8 precision: close to fp32 (cosine), and a query alone equals the same query in a batch of 64', async () => {
    const scales = await calibrateStaticScales(base.weights, base.config, tok, texts);
    assert.equal(Object.keys(scales).length, 4 * 6);
    const fp32 = await (await open(buildEncoderGraph(base.weights, base.config))).encode(texts);
    const floor = { 'int8-weight-only': 0.995, 'int8-dynamic': 0.985, 'int8-static': 0.95 } as const;
    for (const precision of Object.keys(floor) as Array<keyof typeof floor>) {
      const s = await open(buildEncoderGraph(base.weights, base.config, { precision, staticScales: scales }));
      const got = await s.encode(texts);
      const min = Math.min(...texts.map((_, i) => dot(row(got, i), row(fp32, i))));
      // Measured: weight-only 0.9987, dynamic 0.9929, static (calibrated on these 20 texts) 0.971.
      assert.ok(min > floor[precision], `${precision}: cosine ${min}`);
      // The query at positions 0, 17 and 63 of a batch padded to the batch's longest text (the 128-token title).
      const query = 'crimson trainers for men';
      const alone = await s.encode([query]);
      const batch = Array.from({ length: 64 }, (_, i) => texts[i % texts.length]!);
      for (const at of [0, 17, 63]) {
        const b = [...batch];
        b[at] = query;
        const inBatch = await s.encode(b, { batchSize: 64 });
        assert.deepEqual(Array.from(row(inBatch, at)), Array.from(alone), `${precision}: position ${at}`);
      }
    }
  });

  it('the search graph returns the top-k of the index by dot product, k clamped to the catalogue', async () => {
    const enc = await open(buildEncoderGraph(base.weights, base.config));
    const items = await enc.encode(texts);
    const s = await open(buildSearchGraph(base.weights, base.config, items));
    const queries = ['running shoes', 'tea', 'kitchen knives'];
    const q = await enc.encode(queries);
    const hits = await s.search(queries, 5);
    queries.forEach((_, i) => {
      const brute = texts
        .map((_, j) => ({ j, s: dot(row(q, i), row(items, j)) }))
        .sort((a, b) => b.s - a.s)
        .slice(0, 5);
      assert.deepEqual(
        hits[i]!.indices,
        brute.map((b) => b.j),
      );
      hits[i]!.scores.forEach((sc, r) => assert.ok(Math.abs(sc - brute[r]!.s) < 1e-5));
    });
    const all = await s.search(['shoes'], 1000);
    assert.equal(all[0]!.indices.length, texts.length);
    await assert.rejects(
      s.search(['x'], 0),
      (e: unknown) => e instanceof RecflowError && /k must be a positive integer/.test(e.message),
    );
    await assert.rejects(
      enc.search(['x'], 3),
      (e: unknown) => e instanceof RecflowError && /no item index/.test(e.message),
    );
    assert.throws(() => buildSearchGraph(base.weights, base.config, new Float32Array(10)), /not whole rows of 384/);
  });
});
