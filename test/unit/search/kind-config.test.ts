/**
 * The search kind's pure parts: its hyperparameter check (kinds/search/spec.ts `resolveSearchConfig`: every bad
 * field named, the base model's checksum filled in) and the compression choice (kinds/search/variants.ts
 * `chooseVariant`: the fastest variant within its tolerance, else fp32 with the closest named).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SearchVariantInfo } from '../../../lib/bundle';
import { resolveSearchConfig } from '../../../kinds/search/spec';
import { chooseVariant } from '../../../kinds/search/variants';

function variant(model: 'teacher' | 'student', ndcg: number, ms1: number): SearchVariantInfo {
  return {
    model,
    encoder: 'fp32',
    layers: model === 'student' ? 3 : 6,
    files: { encoder: 'e.onnx', search: 's.onnx' },
    bytes: 1,
    latencyMs: { '1': ms1 },
    validation: { 'ndcg@10': ndcg, 'mrr@10': ndcg, 'recall@100': 0.9, queries: 100 },
    tolerance: 0,
    qualifies: false,
  };
}

void describe('search kind: config and compression choice', () => {
  void it('resolves the defaults, puts fp32 first, records the base weights; names each bad field', () => {
    const c = resolveSearchConfig({ precisions: ['int8-dynamic'], maxPairs: 100 }, 9);
    assert.deepEqual(c.precisions, ['fp32', 'int8-dynamic']);
    assert.equal(c.seed, 9);
    assert.equal(c.maxPairs, 100);
    assert.match(c.baseModelSha256, /^[0-9a-f]{64}$/);
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ epoch: 1 }, /config\.epoch: unknown hyperparameter of kind search/],
      [{ epochs: -1 }, /config\.epochs = -1: expected an integer in \[0, 1000\]/],
      [{ engine: 'torch' }, /config\.engine = "torch"/],
      [{ precisions: ['int4'] }, /config\.precisions = \["int4"\]: expected a list of/],
      [{ baseModel: 'models/minilm' }, /config\.baseModel = "models\/minilm": is relative/],
      [{ baseModelSha256: '0'.repeat(64) }, /config\.baseModelSha256 .*a checkpoint of other weights/],
    ];
    for (const [partial, re] of bad)
      assert.throws(
        () => resolveSearchConfig(partial),
        (err: Error & { type?: string }) => err.type === 'InvalidInput' && re.test(err.message),
        JSON.stringify(partial),
      );
  });

  void it('int8 serves the fastest variant within its tolerance; the student may lose up to 3 %', () => {
    const r = chooseVariant({
      fp32: variant('teacher', 0.6, 8),
      'int8-dynamic': variant('teacher', 0.592, 3), // -1.3 %: beyond 1 %
      'int8-weight-only': variant('teacher', 0.597, 5), // -0.5 %
      student: variant('student', 0.585, 4), // -2.5 %: within 3 %
    });
    assert.equal(r.serves.int8, 'student');
    assert.equal(r.preferred, 'int8');
    assert.equal(r.variants['int8-dynamic']?.qualifies, false);
    assert.equal(r.variants['int8-weight-only']?.qualifies, true);
    assert.equal(r.variants.student?.tolerance, 0.03);
    assert.match(r.reason, /int8 serves student, the fastest variant within its quality tolerance/);
  });

  void it('without a qualifying variant fp32 is preferred and int8 names the closest in quality', () => {
    const r = chooseVariant({
      fp32: variant('teacher', 0.6, 4),
      'int8-dynamic': variant('teacher', 0.59, 3), // too lossy
      'int8-weight-only': variant('teacher', 0.6, 5), // not faster
    });
    assert.equal(r.preferred, 'fp32');
    assert.equal(r.serves.int8, 'int8-weight-only');
    assert.match(r.reason, /^fp32 serves: no compressed variant is both within its tolerance and faster/);
    assert.throws(() => chooseVariant({ student: variant('student', 0.5, 1) }), /no fp32 variant/);
  });
});
