import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rankingMetrics } from '../../../lib/eval/metrics';
import { analyze, Bm25Index, topK } from '../../../kinds/search/bm25';
import { hybridRank, hybridScores, tuneHybridWeight } from '../../../kinds/search/hybrid';
import { searchMetrics } from '../../../kinds/search/metrics';
import { mulberry32 } from '../../../lib/rng';

const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

describe('BM25', () => {
  it('splits words like Lucene StandardAnalyzer: lower case, inner punctuation kept, ideographs one by one', () => {
    assert.deepEqual(analyze("Men's 3.5mm Jack, USB-C!"), ["men's", '3.5mm', 'jack', 'usb', 'c']);
    assert.deepEqual(analyze('抹茶 matcha粉'), ['抹', '茶', 'matcha', '粉']);
    assert.deepEqual(analyze('ÉCOLE Ｆｕｌｌｗｉｄｔｈ 🔥'), ['école', 'fullwidth']);
    assert.deepEqual(analyze(''), []);
  });

  it('scores by Okapi BM25 with Lucene idf (values worked by hand)', () => {
    // docs: d0 "red shoes" (2 terms), d1 "red red dress" (3), d2 "blue shoes men" (3); avgdl 8/3.
    const ix = new Bm25Index(['red shoes', 'red red dress', 'blue shoes men'], { k1: 1.2, b: 0.75 });
    const idf = Math.log(1 + (3 - 2 + 0.5) / (2 + 0.5)); // 'red' and 'shoes' are in 2 of 3 docs
    const part = (tf: number, dl: number) => (idf * tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * dl) / (8 / 3)));
    const s = ix.scores('red shoes');
    close(s[0]!, part(1, 2) + part(1, 2));
    close(s[1]!, part(2, 3));
    close(s[2]!, part(1, 3));
    assert.deepEqual(
      ix.search('red shoes', 2).map((h) => h.doc),
      [0, 1],
    );
    assert.deepEqual(ix.search('purple', 5), []);
    assert.throws(() => new Bm25Index([], { b: 2 }), /b 2 within \[0, 1\]/);
  });

  it('topK equals a full sort (ties by lower index)', () => {
    const r = mulberry32(5);
    const scores = Float32Array.from({ length: 500 }, () => Math.round(r() * 50));
    const want = [...scores.keys()].sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, 37);
    assert.deepEqual(
      topK(scores, 37).map((h) => h.doc),
      want,
    );
    assert.equal(topK(scores, 1000).length, 500);
  });
});

describe('graded search metrics', () => {
  it('NDCG@10 (linear gains), MRR@10 and Recall@100 by hand', () => {
    // Ranking 5, 3, 9, 1: grades 5 -> 0, 3 -> 2, 9 -> 0, 1 -> 1; judged also 7 -> 3 (not retrieved).
    const grades = new Map([
      [3, 2],
      [1, 1],
      [7, 3],
      [5, 0],
    ]);
    const m = searchMetrics([{ ranking: [5, 3, 9, 1], grades }]);
    const dcg = 2 / Math.log2(3) + 1 / Math.log2(5);
    const idcg = 3 / Math.log2(2) + 2 / Math.log2(3) + 1 / Math.log2(4);
    close(m.ndcg, dcg / idcg);
    close(m.mrr, 1 / 2);
    close(m.recall, 2 / 3);
    assert.equal(m.queries, 1);
    assert.equal(searchMetrics([{ ranking: [1], grades: new Map([[1, 0]]) }]).queries, 0);
  });

  it('with 0/1 grades NDCG@K and Recall@K equal lib/eval rankingMetrics', () => {
    const r = mulberry32(11);
    const cases = Array.from({ length: 50 }, () => {
      const ranking = Array.from({ length: 30 }, () => Math.floor(r() * 60));
      const relevant = new Set(Array.from({ length: 1 + Math.floor(r() * 5) }, () => Math.floor(r() * 60)));
      return { ranking: [...new Set(ranking)], relevant };
    });
    const lib = rankingMetrics(cases, 10);
    const ours = searchMetrics(
      cases.map((c) => ({ ranking: c.ranking, grades: new Map([...c.relevant].map((i) => [i, 1])) })),
      { ndcg: 10, recall: 10, mrr: 1000 },
    );
    close(ours.ndcg, lib.ndcg);
    close(ours.recall, lib.recall);
    close(ours.mrr, lib.mrr);
  });
});

describe('hybrid BM25 + dense', () => {
  it('normalises both scores and mixes them by weight', () => {
    const bm25 = [0, 4, 2];
    const dense = [0.9, 0.1, 0.5];
    const h = hybridScores(bm25, dense, 0.5);
    close(h[0]!, 0.5 * 1 + 0);
    close(h[1]!, 0 + 0.5 * 1);
    close(h[2]!, 0.5 * 0.5 + 0.5 * 0.5);
    assert.deepEqual(hybridRank(bm25, dense, 1, 3), [0, 2, 1]);
    assert.deepEqual(hybridRank(bm25, dense, 0, 3), [1, 2, 0]);
    assert.throws(() => hybridScores([1], [1, 2], 0.5), /1 BM25 scores but 2 dense/);
    assert.throws(() => hybridScores([1], [1], 1.5), /weight 1.5/);
  });

  it('tunes the weight on validation: each signal alone finds half the answers, the mix finds all', () => {
    // 20 docs; for query i the relevant doc is 2i; BM25 favours it for even i, dense for odd i, and each puts a
    // decoy first otherwise. A mix of both ranks the relevant doc first everywhere.
    const cases = Array.from({ length: 10 }, (_, i) => {
      const bm25 = new Float32Array(20);
      const dense = new Float32Array(20).fill(0.1);
      bm25[2 * i] = i % 2 ? 0.6 : 1;
      dense[2 * i] = i % 2 ? 1 : 0.6;
      const decoy = (2 * i + 1) % 20;
      if (i % 2) bm25[decoy] = 1;
      else dense[decoy] = 1;
      return { bm25, dense, grades: new Map([[2 * i, 1]]) };
    });
    const t = tuneHybridWeight(cases);
    assert.ok(t.weight > 0 && t.weight < 1, `weight ${t.weight}`);
    close(t.metrics.mrr, 1);
    const ends = t.grid.filter((g) => g.weight === 0 || g.weight === 1);
    assert.ok(ends.every((g) => g.ndcg < 0.9));
  });
});
