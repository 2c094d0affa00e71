import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ErrorType, RecflowError } from '../../../../lib/errors';
import { historyMatrix, trainingWindows, userSequences } from '../../../../kinds/sequential/sequences';
import {
  DEFAULT_SEQUENTIAL_CONFIG,
  itemTable,
  readSequentialCheckpoint,
  resolveSequentialConfig,
  weightShapes,
  writeSequentialCheckpoint,
  type SequentialCheckpointMeta,
  type SequentialWeights,
} from '../../../../kinds/sequential/spec';
import { mulberry32 } from '../../../../lib/rng';
import { tempHome } from '../../../helpers/temporal';
import { patternDataset } from './pattern-dataset';

function invalid(field: string): (err: unknown) => boolean {
  return (err) =>
    err instanceof RecflowError &&
    err.type === ErrorType.InvalidInput &&
    err.message.includes(field) &&
    (err.details as { field?: string } | undefined)?.field === field;
}

describe('resolveSequentialConfig', () => {
  it('fills the defaults and applies the seed', () => {
    assert.deepEqual(resolveSequentialConfig(), DEFAULT_SEQUENTIAL_CONFIG);
    assert.equal(DEFAULT_SEQUENTIAL_CONFIG.maxLength, 50);
    const c = resolveSequentialConfig({ maxLength: 20, heads: 4 }, 7);
    assert.equal(c.maxLength, 20);
    assert.equal(c.heads, 4);
    assert.equal(c.seed, 7);
  });

  it('refuses bad fields with InvalidInput naming the field', () => {
    assert.throws(() => resolveSequentialConfig({ maxLenght: 20 }), invalid('maxLenght'));
    assert.throws(() => resolveSequentialConfig({ maxLength: 0 }), invalid('maxLength'));
    assert.throws(() => resolveSequentialConfig({ maxLength: 2.5 }), invalid('maxLength'));
    assert.throws(() => resolveSequentialConfig({ heads: 3 }), invalid('heads'));
    assert.throws(() => resolveSequentialConfig({ dropout: -0.1 }), invalid('dropout'));
    assert.throws(() => resolveSequentialConfig({ learningRate: Number.NaN }), invalid('learningRate'));
    assert.throws(() => resolveSequentialConfig({ learningRateDecay: 0 }), invalid('learningRateDecay'));
    assert.throws(() => resolveSequentialConfig({ weightByLabel: 'yes' }), invalid('weightByLabel'));
    assert.throws(() => resolveSequentialConfig({ negatives: '256' }), invalid('negatives'));
    assert.throws(() => resolveSequentialConfig({ negativeSampling: 'zipf' }), invalid('negativeSampling'));
    assert.throws(() => resolveSequentialConfig({ targetsAhead: 0 }), invalid('targetsAhead'));
    assert.throws(
      () => resolveSequentialConfig([1, 2]),
      (e: unknown) => e instanceof RecflowError,
    );
  });
});

describe('sequences', () => {
  const ds = patternDataset({ users: 30, items: 40 });

  it('keeps each user time order and concatenates splits in the given order', () => {
    const train = userSequences(ds, ['train']);
    const both = userSequences(ds, ['train', 'validation']);
    for (let u = 1; u <= 30; u++) {
      const a = train.items.subarray(train.offsets[u], train.offsets[u + 1]);
      const b = both.items.subarray(both.offsets[u], both.offsets[u + 1]);
      assert.equal(b.length, a.length + 1);
      assert.deepEqual(Array.from(b.subarray(0, a.length)), Array.from(a));
      for (let t = 1; t < a.length; t++) assert.equal(a[t], ((a[t - 1]! - 1 + 7) % 39) + 1, 'time order kept');
    }
  });

  it('pads histories on the left, most recent last, and cuts them to the last items', () => {
    const seqs = userSequences(ds);
    const seq = Array.from(seqs.items.subarray(seqs.offsets[1], seqs.offsets[2]));
    const wide = historyMatrix(seqs, [1, 0], seq.length + 3);
    assert.deepEqual(Array.from(wide.subarray(0, seq.length + 3)), [0, 0, 0, ...seq]);
    assert.ok(
      wide.subarray(seq.length + 3).every((x) => x === 0),
      'user 0 has no history',
    );
    assert.deepEqual(Array.from(historyMatrix(seqs, [1], 2)), seq.slice(-2));
  });

  it('makes every training interaction but the first of each user a target exactly once', () => {
    const seqs = userSequences(ds);
    for (const L of [3, 5, 50]) {
      const w = trainingWindows(seqs, L);
      let expected = 0;
      for (let u = 0; u < seqs.offsets.length - 1; u++)
        expected += Math.max(0, seqs.offsets[u + 1]! - seqs.offsets[u]! - 1);
      assert.equal(w.positions, expected);
      assert.equal(w.targets.filter((x) => x !== 0).length, expected);
      // Each target is the successor of its input (the dataset's rule), so inputs and targets are aligned.
      for (let k = 0; k < w.targets.length; k++)
        if (w.targets[k]) assert.equal(w.targets[k], ((w.inputs[k]! - 1 + 7) % 39) + 1);
    }
  });
});

describe('checkpoints', () => {
  const config = resolveSequentialConfig({ maxLength: 4, hiddenDim: 8, heads: 2, innerDim: 6, blocks: 2 });
  const sizes = { items: 11, categories: 3, brands: 2 };
  const r = mulberry32(1);
  const fill = (): SequentialWeights =>
    Object.fromEntries(
      weightShapes(config, sizes).map(([name, shape]) => [
        name,
        { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() - 0.5) },
      ]),
    );
  const meta: SequentialCheckpointMeta = {
    kind: 'sequential',
    config,
    sizes,
    datasetId: 'ds-1',
    backend: 'cpu',
    gpu: false,
    epoch: 3,
    history: [{ epoch: 3, ndcg10: 0.5 }],
  };

  it('round-trips weights and the optimizer state', async () => {
    const dir = tempHome('recflow-seq-ck-');
    const weights = fill();
    const optimizer = { iterations: 42, m: fill(), v: fill() };
    await writeSequentialCheckpoint(dir, meta, weights, optimizer);
    const back = await readSequentialCheckpoint(dir);
    assert.deepEqual(back.meta, meta);
    assert.deepEqual(back.weights, weights);
    assert.deepEqual(back.optimizer, optimizer);
    const plain = tempHome('recflow-seq-ck-');
    await writeSequentialCheckpoint(plain, meta, weights);
    assert.equal((await readSequentialCheckpoint(plain)).optimizer, undefined);
  });

  it('refuses a missing weight, a truncated file and another kind', async () => {
    const weights = fill();
    const { 'block1/ffn2/bias': _gone, ...partial } = weights;
    await assert.rejects(
      writeSequentialCheckpoint(tempHome('recflow-seq-ck-'), meta, partial),
      (e: unknown) => e instanceof RecflowError && e.message.includes('block1/ffn2/bias'),
    );
    const dir = tempHome('recflow-seq-ck-');
    await writeSequentialCheckpoint(dir, meta, weights);
    await writeFile(join(dir, 'weights.bin'), new Uint8Array(40));
    await assert.rejects(
      readSequentialCheckpoint(dir),
      (e: unknown) => e instanceof RecflowError && e.type === ErrorType.ArtifactMissing,
    );
    const other = tempHome('recflow-seq-ck-');
    await writeSequentialCheckpoint(other, meta, weights);
    const text = (await import('node:fs/promises')).readFile(join(other, 'checkpoint.json'), 'utf8');
    await writeFile(
      join(other, 'checkpoint.json'),
      (await text).replace('"kind": "sequential"', '"kind": "two-tower"'),
    );
    await assert.rejects(
      readSequentialCheckpoint(other),
      (e: unknown) => e instanceof RecflowError && e.type === ErrorType.InvalidInput && e.message.includes('kind'),
    );
  });

  it('folds category and brand embeddings into the item table', () => {
    const weights = fill();
    const f = {
      category: Int32Array.from({ length: 11 }, (_, i) => i % 3),
      brand: Int32Array.from({ length: 11 }, (_, i) => i % 2),
    };
    const t = itemTable(config, sizes, weights, f);
    const at = (name: string, row: number, j: number) => weights[name]!.data[row * 8 + j]!;
    for (const [i, j] of [
      [0, 0],
      [5, 3],
      [10, 7],
    ] as const)
      assert.ok(
        Math.abs(
          t[i * 8 + j]! -
            (at('item_embedding', i, j) + at('category_embedding', i % 3, j) + at('brand_embedding', i % 2, j)),
        ) < 1e-6,
      );
    assert.throws(
      () => itemTable(config, sizes, weights, { category: new Int32Array(11).fill(3), brand: f.brand }),
      /category of item 0 is 3/,
    );
    const plain = { ...config, itemFeatures: false };
    assert.deepEqual(itemTable(plain, sizes, weights), weights.item_embedding!.data);
  });
});
