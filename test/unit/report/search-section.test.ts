/**
 * The run report's search section (activities/report.ts `searchSection`): every ranker's NDCG@10 / MRR@10 /
 * Recall@100, the variants' latency and bytes, which variant serves and the export's reason; absent for
 * recommenders.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EvaluationArtifact } from '../../../activities/evaluate';
import { searchSection } from '../../../activities/report';
import type { EvaluationReport, SearchEvaluation } from '../../../lib/eval/evaluate';

const text = (h: string) => h.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

function artifact(search?: SearchEvaluation): EvaluationArtifact {
  const candidate = { models: {}, popularity: { overall: {}, segments: {} }, ...(search ? { search } : {}) };
  return {
    bundleId: 'b',
    datasetId: 'd',
    candidate: candidate as unknown as EvaluationReport,
    blessing: { blessed: true, gates: [] } as unknown as EvaluationArtifact['blessing'],
  };
}

const search: SearchEvaluation = {
  queries: 126,
  hybridWeight: 0.8,
  choice: {
    variant: 'int8-weight-only',
    preferred: 'int8',
    reason: 'the fastest variant within its quality tolerance',
  },
  rankers: [
    {
      name: 'fp32',
      role: 'variant',
      description: 'fine-tuned teacher, fp32',
      overall: { 'ndcg@10': 0.6281, 'mrr@10': 0.5915, 'recall@100': 0.953, queries: 126 },
      bytes: 90_660_679,
      latencyMs: { '1': 7.652, '16': 72.81 },
      serves: ['fp32'],
    },
    {
      name: 'int8-weight-only',
      role: 'variant',
      description: 'fine-tuned teacher, int8 weights',
      overall: { 'ndcg@10': 0.6285, 'mrr@10': 0.5922, 'recall@100': 0.953, queries: 126 },
      bytes: 23_879_391,
      latencyMs: { '1': 4.67, '16': 60.96 },
      serves: ['int8'],
    },
    {
      name: 'hybrid',
      role: 'hybrid',
      description: 'BM25 + dense',
      overall: { 'ndcg@10': 0.6343, 'mrr@10': 0.6011, 'recall@100': 0.953 },
    },
    { name: 'bm25', role: 'baseline', description: 'BM25 (k1 1.2, b 0.75)', overall: { 'ndcg@10': 0.5575 } },
  ],
};

void describe('report: search section', () => {
  void it('tables every ranker with its metrics, latency and bytes, and says what serves and why', () => {
    const s = searchSection(artifact(search));
    assert.ok(s);
    const t = text(s.body);
    for (const h of ['NDCG@10', 'MRR@10', 'Recall@100', 'ms / search (batch 1)', 'ms / search (batch 16)', 'bytes'])
      assert.ok(t.includes(h), h);
    assert.match(t, /126 held-out test queries/);
    assert.match(t, /fp32 serves fp32 variant 0\.6281 0\.5915 0\.9530 7\.65 72\.81 90\.7 MB fine-tuned teacher, fp32/);
    assert.match(t, /int8-weight-only serves int8 variant 0\.6285 0\.5922 0\.9530 4\.67 60\.96 23\.9 MB/);
    assert.match(t, /bm25 baseline 0\.5575 n\/a n\/a n\/a n\/a n\/a BM25/);
    assert.match(
      t,
      /int8 serves int8-weight-only \(preferred precision int8\): the fastest variant within its quality tolerance/,
    );
    assert.match(t, /Hybrid dense weight 0\.80/);
    assert.doesNotMatch(t, /What \/v1\/search serves/, 'a report from before `served` says nothing about it');
    // Exactly one row per ranker.
    assert.equal((s.body.match(/<tr>/g) ?? []).length, 1 + search.rankers.length);
  });

  void it('says which ranker each precision serves: the hybrid at its weight, or dense', () => {
    const served: SearchEvaluation = {
      ...search,
      served: {
        int8: { ranker: 'hybrid-int8-weight-only', variant: 'int8-weight-only', weight: 0.6 },
        fp32: { ranker: 'fp32', variant: 'fp32', weight: 1 },
      },
    };
    const t = text(searchSection(artifact(served))!.body);
    assert.match(
      t,
      /What \/v1\/search serves \(what the gates judged\): int8 serves hybrid, int8-weight-only encoder, dense weight 0\.60 ?; fp32 serves dense, fp32 encoder ?\./,
    );
  });

  void it('is left out for recommenders', () => {
    assert.equal(searchSection(artifact()), undefined);
  });
});
