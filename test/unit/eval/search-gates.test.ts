/**
 * The default gates of search models (lib/eval/gates.ts `SEARCH_GATES`) over search-shaped reports: beat BM25 (the
 * zero-shot encoder reported, not gated), not worse than the champion at 95 % by a paired bootstrap over queries,
 * and the compressed variant's relative drop with the tolerance of its kind (int8 teacher 1 %, student 3 %).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EvaluationReport, Metrics } from '../../../lib/eval/evaluate';
import { DEFAULT_GATES, SEARCH_GATES, blessModel, defaultGatesFor } from '../../../lib/eval/gates';
import { mulberry32 } from '../../../lib/rng';

/** Per-query NDCG@10 values around `mean` (seeded), and their report. */
function perQuery(mean: number, n: number, seed: number): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Math.min(1, Math.max(0, mean + (r() - 0.5) * 0.6)));
}

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function searchReport(opts: {
  fp32: number[];
  int8: number[];
  variant: string;
  bm25: number;
  zeroShot?: number;
  key?: string;
}): EvaluationReport {
  const m = (
    xs: number[],
  ): { overall: Metrics; segments: Record<string, never>; perUser: { users: number; 'ndcg@10': number[] } } => ({
    overall: { 'ndcg@10': avg(xs), 'mrr@10': avg(xs), 'recall@100': 0.9, queries: xs.length },
    segments: {},
    perUser: { users: xs.length, 'ndcg@10': xs },
  });
  return {
    datasetId: 'ds',
    testSplitKey: opts.key ?? 'split-1',
    options: {} as EvaluationReport['options'],
    bundle: { dir: '/x', modelName: 'shop-search', checkpointId: 'c', datasetId: 'ds' },
    models: { fp32: { ...m(opts.fp32), variant: 'fp32' }, int8: { ...m(opts.int8), variant: opts.variant } },
    popularity: { overall: { 'ndcg@10': 0.01 }, segments: {} },
    baselines: {
      bm25: { overall: { 'ndcg@10': opts.bm25 }, segments: {}, config: {}, fitSeconds: 0 },
      ...(opts.zeroShot !== undefined
        ? { zeroShot: { overall: { 'ndcg@10': opts.zeroShot }, segments: {}, config: {}, fitSeconds: 0 } }
        : {}),
    },
    seconds: 0,
  };
}

const byName = (gates: Array<{ name: string; passed: boolean; reason: string }>) =>
  Object.fromEntries(gates.map((g) => [g.name, g]));

void describe('search gates', () => {
  const fp32 = perQuery(0.6, 400, 1);
  const int8Close = fp32.map((v) => v * 0.997);

  void it('the default gates follow the bundle task', () => {
    assert.equal(defaultGatesFor('search'), SEARCH_GATES);
    assert.equal(defaultGatesFor('recommend'), DEFAULT_GATES);
    assert.equal(defaultGatesFor(undefined), DEFAULT_GATES);
  });

  void it('a fine-tuned model above BM25 with a close int8 is blessed; the zero-shot encoder is reported, not gated', () => {
    // The zero-shot encoder beats the candidate here: it must not block it (a zero-shot champion is a legitimate model).
    const cand = searchReport({ fp32, int8: int8Close, variant: 'int8-dynamic', bm25: 0.45, zeroShot: 0.7 });
    const b = blessModel(cand, undefined, SEARCH_GATES);
    assert.equal(b.blessed, true, JSON.stringify(b.gates));
    const g = byName(b.gates);
    assert.ok(g['int8-drop:ndcg@10:int8-dynamic']?.passed);
    const beat = b.gates.find((x) => x.name.includes('ndcg@10') && /baseline|bm25/i.test(x.name + x.reason));
    assert.ok(beat, 'a beat-BM25 gate');
    assert.match(beat.reason, /zeroShot/, 'the zero-shot encoder is named as reported, not gated');
  });

  void it('below BM25 fails the baseline gate', () => {
    const cand = searchReport({ fp32, int8: int8Close, variant: 'int8-dynamic', bm25: 0.7 });
    const b = blessModel(cand, undefined, SEARCH_GATES);
    assert.equal(b.blessed, false);
    const failed = b.gates.filter((x) => !x.passed);
    assert.ok(
      failed.some((x) => /bm25/.test(x.reason)),
      JSON.stringify(failed),
    );
  });

  void it('a report without BM25 cannot pass the baseline gate', () => {
    const cand = searchReport({ fp32, int8: int8Close, variant: 'int8-dynamic', bm25: 0.1 });
    delete cand.baselines!.bm25;
    cand.skippedBaselines = { bm25: 'switched off' };
    const b = blessModel(cand, undefined, SEARCH_GATES);
    assert.equal(b.blessed, false);
    assert.ok(b.gates.some((x) => !x.passed && /bm25 not in the report.*switched off/.test(x.reason)));
  });

  void it('the int8 tolerance depends on the variant: 2 % drop fails an int8 teacher, passes a student', () => {
    const dropped = fp32.map((v) => v * 0.98);
    const teacher = blessModel(
      searchReport({ fp32, int8: dropped, variant: 'int8-dynamic', bm25: 0.3 }),
      undefined,
      SEARCH_GATES,
    );
    const tg = byName(teacher.gates);
    // A failed int8 drop makes fp32 serve (the blessing's precision), the run goes on.
    assert.match(tg['int8-drop:ndcg@10:int8-dynamic']?.reason ?? '', /> .*\(1% of fp32\): fp32 serves instead/);
    assert.equal(teacher.precision, 'fp32');
    assert.equal(tg['int8-drop:ndcg@10:student'], undefined, 'the student entry does not apply to an int8 teacher');
    const student = blessModel(
      searchReport({ fp32, int8: dropped, variant: 'student', bm25: 0.3 }),
      undefined,
      SEARCH_GATES,
    );
    const sg = byName(student.gates);
    assert.equal(sg['int8-drop:ndcg@10:student']?.passed, true);
    assert.equal(student.precision, 'int8');
    assert.equal(sg['int8-drop:ndcg@10:int8-dynamic'], undefined);
  });

  void it('champion: a clearly worse candidate fails, an equal one passes (paired bootstrap over queries)', () => {
    const champ = searchReport({ fp32, int8: fp32, variant: 'int8-dynamic', bm25: 0.3 });
    const worse = fp32.map((v) => v * 0.9);
    const bad = blessModel(
      searchReport({ fp32: worse, int8: worse, variant: 'int8-dynamic', bm25: 0.3 }),
      champ,
      SEARCH_GATES,
    );
    const badChampion = bad.gates.find((g) => g.name.startsWith('champion:'));
    assert.equal(badChampion?.passed, false, JSON.stringify(badChampion));
    const same = blessModel(
      searchReport({ fp32, int8: fp32, variant: 'int8-dynamic', bm25: 0.3 }),
      champ,
      SEARCH_GATES,
    );
    assert.equal(same.gates.find((g) => g.name.startsWith('champion:'))?.passed, true);
  });
});
