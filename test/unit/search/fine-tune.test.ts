import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selectBackend } from '../../../lib/train/backend';
import { RecflowError } from '../../../lib/errors';
import { loadBaseModel, type BaseModel } from '../../../kinds/search/base-model';
import { epochBatches, evaluateRetrieval, fineTune, type FineTuneOptions } from '../../../kinds/search/fine-tune';
import { SearchTokenizer } from '../../../kinds/search/tokenizer';
import { bm25Ranker, mineHardNegatives } from '../../../kinds/search/hard-negatives';
import { validatePairs } from '../../../kinds/search/pairs';
import { baseModelDir, writeTinyBert } from '../../helpers/search-model';
import { colourPairs, colourSplit } from '../../helpers/search-pairs';

const tmp = mkdtempSync(join(tmpdir(), 'fine-tune-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function maxDiff(a: Map<string, { data: Float32Array }>, b: Map<string, { data: Float32Array }>): number {
  let m = 0;
  for (const [k, t] of a) {
    const u = b.get(k)!.data;
    for (let i = 0; i < t.data.length; i++) m = Math.max(m, Math.abs((t.data[i] ?? 0) - (u[i] ?? 0)));
  }
  return m;
}

describe('search fine-tuning', () => {
  let tiny: BaseModel;
  before(async () => {
    await selectBackend('wasm');
    tiny = await loadBaseModel(writeTinyBert(join(tmp, 'tiny'), 3, {}, 3));
  });
  const tinyOpts = (extra: Partial<FineTuneOptions> = {}): FineTuneOptions => ({
    base: tiny,
    trainableLayers: 2,
    epochs: 2,
    batchSize: 8,
    learningRate: 1e-3,
    seed: 7,
    ...extra,
  });

  it('batches are seeded, cover the pairs once, and never repeat a query or positive', () => {
    const pairs = [
      ...colourPairs(),
      { query: 'navy rain jacket', positive: 'navy raincoat', negatives: ['navy umbrella'] },
    ];
    const a = epochBatches(pairs, 16, 1, 3, 1);
    assert.deepEqual(epochBatches(pairs, 16, 1, 3, 1), a);
    assert.notDeepEqual(epochBatches(pairs, 16, 1, 3, 2), a);
    let n = 0;
    for (const b of a) {
      assert.equal(new Set(b.queries).size, b.queries.length);
      const positives = b.docs.slice(0, b.queries.length);
      assert.equal(new Set(positives).size, positives.length);
      assert.equal(b.docs.length, 2 * b.queries.length);
      n += b.queries.length;
    }
    assert.ok(n >= pairs.length - 1, `${n} of ${pairs.length} pairs (a last batch of one pair is skipped)`);
  });

  it('the frozen-layer cache (onnxruntime) trains the same weights as the full tfjs forward', async () => {
    const { train } = colourSplit();
    const cached = await fineTune(train, tinyOpts({ cacheFrozen: true, engine: 'tfjs' }));
    const full = await fineTune(train, tinyOpts({ cacheFrozen: false }));
    assert.ok(cached.cacheSeconds > 0);
    const d = maxDiff(cached.weights, full.weights);
    assert.ok(d < 1e-4, `max |delta| ${d}`);
    // Only the top two layers moved.
    assert.equal(
      maxDiff(
        new Map([['x', cached.weights.get('encoder.layer.0.output.dense.weight')!]]),
        new Map([['x', tiny.weights.get('encoder.layer.0.output.dense.weight')!]]),
      ),
      0,
    );
    assert.ok(
      maxDiff(
        new Map([['x', cached.weights.get('encoder.layer.2.output.dense.weight')!]]),
        new Map([['x', tiny.weights.get('encoder.layer.2.output.dense.weight')!]]),
      ) > 1e-4,
    );
    assert.ok(cached.history[1]!.loss < cached.history[0]!.loss, 'loss falls');
  });

  it('resumes exactly from an epoch checkpoint and from a mid-epoch one', async () => {
    const { train } = colourSplit();
    const whole = await fineTune(train, tinyOpts({ checkpointDir: join(tmp, 'whole') }));
    assert.ok(readdirSync(join(tmp, 'whole')).includes('epoch-2.safetensors'));
    // Crash after epoch 1, resume.
    const dir = join(tmp, 'crash-epoch');
    await assert.rejects(
      fineTune(
        train,
        tinyOpts({
          checkpointDir: dir,
          onEpoch: (e) => {
            if (e.epoch === 1) throw new Error('worker lost');
          },
        }),
      ),
      /worker lost/,
    );
    const resumed = await fineTune(train, tinyOpts({ checkpointDir: dir, resume: true }));
    assert.equal(resumed.epochsRun, 1);
    assert.equal(resumed.history.length, 2);
    assert.equal(maxDiff(resumed.weights, whole.weights), 0);
    // Crash in the middle of epoch 2 (checkpoint every 2 steps), resume.
    const dir2 = join(tmp, 'crash-step');
    const progress: number[] = [];
    await assert.rejects(
      fineTune(
        train,
        tinyOpts({
          checkpointDir: dir2,
          checkpointEverySteps: 2,
          progressEverySteps: 1,
          onProgress: (p) => {
            if (p.phase === 'train') progress.push(p.step);
            if (p.phase === 'train' && p.epoch === 2 && p.step === 3) throw new Error('heartbeat timeout');
          },
        }),
      ),
      /heartbeat timeout/,
    );
    assert.ok(readdirSync(dir2).includes('epoch-2-step-2.safetensors'));
    const resumed2 = await fineTune(train, tinyOpts({ checkpointDir: dir2, resume: true }));
    assert.equal(maxDiff(resumed2.weights, whole.weights), 0);
    // A checkpoint of another configuration is refused.
    await assert.rejects(
      fineTune(train, tinyOpts({ checkpointDir: dir2, resume: true, trainableLayers: 1 })),
      (e: unknown) => e instanceof RecflowError && /checkpoint of another configuration/.test(e.message),
    );
  });

  it('the onnxruntime engine trains what the tfjs one does, and resumes exactly', async () => {
    const { train } = colourSplit();
    const viaTf = await fineTune(train, tinyOpts({ engine: 'tfjs' }));
    const viaOrt = await fineTune(train, tinyOpts({ engine: 'onnxruntime' }));
    // The key bias gets no true gradient (softmax ignores a constant per row): Adam turns rounding noise into steps
    // there, differently in each engine, without changing any output. Every other tensor agrees.
    const without = (w: typeof viaTf.weights) => new Map([...w].filter(([k]) => !k.endsWith('key.bias')));
    const d = maxDiff(without(viaOrt.weights), without(viaTf.weights));
    assert.ok(d < 2e-3, `max |delta| ${d}`);
    viaOrt.history.forEach((e, i) => assert.ok(Math.abs(e.loss - viaTf.history[i]!.loss) < 1e-3));
    const dir = join(tmp, 'ort-crash');
    await assert.rejects(
      fineTune(
        train,
        tinyOpts({
          engine: 'onnxruntime',
          checkpointDir: dir,
          onEpoch: (e) => {
            if (e.epoch === 1) throw new Error('lost');
          },
        }),
      ),
      /lost/,
    );
    const resumed = await fineTune(train, tinyOpts({ engine: 'onnxruntime', checkpointDir: dir, resume: true }));
    assert.equal(maxDiff(resumed.weights, viaOrt.weights), 0);
    await assert.rejects(
      fineTune(train, tinyOpts({ engine: 'onnxruntime', trainableLayers: 3, trainEmbeddings: true })),
      /engine 'onnxruntime' trains layers over the cached output/,
    );
    // Every layer trains, the embeddings frozen: the cache holds the embedding layer's output.
    const allTf = await fineTune(train, tinyOpts({ engine: 'tfjs', trainableLayers: 3, cacheFrozen: false }));
    const allOrt = await fineTune(train, tinyOpts({ engine: 'onnxruntime', trainableLayers: 3 }));
    const dAll = maxDiff(without(allOrt.weights), without(allTf.weights));
    assert.ok(dAll < 2e-3, `all layers: max |delta| ${dAll}`);
    assert.ok(allOrt.cacheSeconds > 0);
  });

  it('fine-tuning the real MiniLM on synonym pairs beats its zero-shot validation MRR@10', async () => {
    const base = await loadBaseModel(baseModelDir());
    const { train, validation } = colourSplit();
    const epochs: number[] = [];
    const r = await fineTune(train, {
      base,
      validation: { pairs: validation },
      trainableLayers: 1,
      epochs: 2,
      batchSize: 16,
      learningRate: 1e-4,
      onEpoch: (e) => void epochs.push(e.epoch),
    });
    assert.deepEqual(epochs, [1, 2]);
    assert.ok(r.zeroShot && r.bestEpoch > 0);
    const best = r.history[r.bestEpoch - 1]!.validation!;
    assert.ok(best.mrr10 > r.zeroShot.mrr10 + 0.1, `zero-shot ${r.zeroShot.mrr10}, fine-tuned ${best.mrr10}`);
  });

  it('validation uses graded judgements when given (every text relevant: MRR 1, Recall@10 10/n)', async () => {
    const { validation } = colourSplit();
    const corpus = colourPairs().map((p) => p.positive);
    const tok = SearchTokenizer.load(tiny.dir, 32);
    const all = new Map(validation.map((p) => [p.query, new Map(corpus.map((t) => [t, 1]))]));
    const graded = await evaluateRetrieval(tiny.weights, tiny.config, tok, { pairs: validation, corpus, grades: all });
    assert.equal(graded.queries, validation.length);
    assert.equal(graded.mrr10, 1);
    assert.ok(Math.abs(graded.recall10 - 10 / corpus.length) < 1e-9);
    const plain = await evaluateRetrieval(tiny.weights, tiny.config, tok, { pairs: validation, corpus });
    assert.ok(plain.mrr10 < 1);
    // Progress after every batch of texts encoded (the activity heartbeats from it), up to corpus + queries.
    const seen: Array<[number, number]> = [];
    const again = await evaluateRetrieval(tiny.weights, tiny.config, tok, { pairs: validation, corpus }, {}, (d, t) =>
      seen.push([d, t]),
    );
    assert.deepEqual(again, plain);
    const queries = new Set(validation.map((p) => p.query)).size;
    const texts = new Set([...corpus, ...validation.map((p) => p.positive)]).size + queries;
    assert.ok(seen.length >= 2, `progress ${JSON.stringify(seen)}`);
    assert.ok(
      seen.every(([d, t], i) => t === texts && d > (seen[i - 1]?.[0] ?? 0)),
      JSON.stringify(seen),
    );
    assert.equal(seen.at(-1)?.[0], texts);
  });

  it('mines hard negatives that are neither the positive nor relevant', () => {
    const corpus = [
      'red running shoes by Acme',
      'blue running shoes by Acme',
      'red rain jacket by Acme',
      'green running shoes',
    ];
    const pairs = [{ query: 'red running shoes', positive: corpus[0]! }];
    const mined = mineHardNegatives(pairs, corpus, bm25Ranker(corpus), {
      perPair: 2,
      isRelevant: (_q, t) => t === 'green running shoes',
    });
    assert.equal(mined[0]!.negatives!.length, 2);
    assert.ok(!mined[0]!.negatives!.includes(corpus[0]!));
    assert.ok(!mined[0]!.negatives!.includes('green running shoes'));
  });

  it('refuses malformed pairs naming the row and field', () => {
    assert.throws(
      () =>
        validatePairs(
          [
            { query: 'a', positive: 'b' },
            { query: ' ', positive: 'c' },
          ],
          'pairs.json',
        ),
      /pairs\.json: row 1, field 'query': empty/,
    );
    assert.throws(
      () => validatePairs([{ query: 'a', positive: 3 as unknown as string }]),
      /row 0, field 'positive': expected a string, got number/,
    );
    assert.throws(() => validatePairs([{ query: 'a', positive: 'b', negatives: [''] }]), /field 'negatives\[0\]'/);
  });
});
