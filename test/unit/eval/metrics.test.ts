import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { auc, catalogCoverage, logLoss, rankingMetrics, thresholdMetrics } from '../../../lib/eval/metrics';

// Reference values computed independently by scikit-learn / numpy: test/fixtures/eval/make_reference.py.
const dir = join(__dirname, '..', '..', 'fixtures', 'eval');
const fixture = JSON.parse(readFileSync(join(dir, 'fixture.json'), 'utf8')) as {
  labels: number[];
  scores: number[];
  catalog: number;
  users: Array<{ ranking: number[]; relevant: number[] }>;
};
const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as {
  auc: number;
  logLoss: number;
  threshold: Array<Record<'threshold' | 'accuracy' | 'precision' | 'recall' | 'f1', number>>;
  ranking: Array<Record<'k' | 'users' | 'hitRate' | 'ndcg' | 'mrr' | 'recall' | 'coverage', number>>;
};
const close = (got: number, want: number, what: string) =>
  assert.ok(Math.abs(got - want) <= 1e-9, `${what}: ${got} vs scikit-learn ${want}`);

void describe('metrics against scikit-learn reference values', () => {
  void it('AUC (with tied scores) and log loss', () => {
    close(auc(fixture.labels, fixture.scores), ref.auc, 'auc');
    close(logLoss(fixture.labels, fixture.scores), ref.logLoss, 'logLoss');
  });

  void it('accuracy, precision, recall, F1 at several thresholds (zero division included)', () => {
    for (const r of ref.threshold) {
      const m = thresholdMetrics(fixture.labels, fixture.scores, r.threshold);
      for (const key of ['accuracy', 'precision', 'recall', 'f1'] as const)
        close(m[key], r[key], `${key}@${r.threshold}`);
    }
  });

  void it('HR@K, NDCG@K, MRR, Recall@K and coverage@K for K = 1, 5, 10, 20', () => {
    const cases = fixture.users.map((u) => ({ ranking: u.ranking, relevant: new Set(u.relevant) }));
    for (const r of ref.ranking) {
      const m = rankingMetrics(cases, r.k);
      assert.equal(m.users, r.users);
      for (const key of ['hitRate', 'ndcg', 'mrr', 'recall'] as const) close(m[key], r[key], `${key}@${r.k}`);
      close(
        catalogCoverage(
          cases.map((c) => c.ranking),
          r.k,
          fixture.catalog,
        ),
        r.coverage,
        `coverage@${r.k}`,
      );
    }
  });

  void it('edge cases: one class gives NaN AUC, perfect ranking gives 1, mismatched lengths throw', () => {
    assert.ok(Number.isNaN(auc([1, 1], [0.2, 0.3])));
    close(auc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]), 1, 'perfect auc');
    const m = rankingMetrics([{ ranking: [3, 4, 5], relevant: new Set([3, 4]) }], 2);
    close(m.ndcg, 1, 'perfect ndcg');
    close(m.mrr, 1, 'perfect mrr');
    assert.throws(() => auc([1], [0.1, 0.2]), /1 labels but 2 scores/);
  });
});
