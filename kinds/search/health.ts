/**
 * The infra blessing of a search bundle (the search twin of lib/eval/serving-health.ts): the precision's variant
 * loads in a fresh onnxruntime session (checksums verified), answers smoke queries with the ranker it serves
 * (./served.ts: the hybrid at its weight, or dense) correctly (k ids of the catalogue, no repeats, finite scores in
 * [-1, 1] (cosines, or hybrid scores in [0, 1]) sorted best first, the same answer alone as inside a batch), and its
 * single-query p99 (tokenizer and BM25 included, as serving runs it) is within budget, or within a ratio of the
 * champion's timed beside it.
 */
import type { Precision } from '../../lib/bundle';
import type { Blessing, GateResult } from '../../lib/eval/gates';
import { infraBlessing, infraGates, loadsGate, type ServingHealthOptions } from '../../lib/eval/serving-health';
import { loadServedSearch, readSearchBundle, type SearchBundle } from './bundle';
import type { LoadedSearchModel } from './export';
import { hitsOf, type ServedRanker } from './served';

/** Smoke queries: the first two or three words of catalogue texts, and a few odd inputs. */
function smokeQueries(b: SearchBundle, n: number): string[] {
  const out = ['', '   ', 'x', '🙂 émoji ß 東京', 'a'.repeat(400)];
  for (let i = 0; out.length < n; i++) {
    const t = b.items.texts[i % b.items.texts.length] ?? 'shoes';
    out.push(
      t
        .split(/[\s|]+/)
        .slice(0, 2 + (i % 2))
        .join(' '),
    );
  }
  return out;
}

/** A served ranker answering by item id (what `/v1/search` returns). */
interface Served {
  session: LoadedSearchModel['session'];
  search(q: string, k: number): Promise<Array<{ id: string; score: number }>>;
  searchBatch(qs: string[], k: number): Promise<Array<Array<{ id: string; score: number }>>>;
}

function served(v: { model: LoadedSearchModel; ranker: ServedRanker }): Served {
  const ids = v.model.manifest.itemIds;
  const searchBatch = async (qs: string[], k: number) => (await v.ranker.rank(qs, k)).map((r) => hitsOf(r, ids));
  return { session: v.model.session, searchBatch, search: async (q, k) => (await searchBatch([q], k))[0] ?? [] };
}

/** Run the infra gates of a search bundle. Never throws for a bad model: failures are gates. */
export async function checkSearchBundleHealth(
  bundleDir: string,
  options: ServingHealthOptions = {},
  now = new Date(),
): Promise<Blessing & { p99Ms: number | null }> {
  const precision: Precision = options.precision ?? 'int8';
  const n = options.smokeRequests ?? 200;
  const budget = options.p99BudgetMs ?? 50;
  const k = options.k ?? 10;
  const gates: GateResult[] = [];
  const done = (p99: number | null) => infraBlessing(gates, now, p99);
  let b: SearchBundle;
  let model: Served;
  let variant: string;
  try {
    b = await readSearchBundle(bundleDir);
    const v = await loadServedSearch(b, precision);
    model = served(v);
    variant = v.name;
    const ranks = v.ranker.hybrid ? `hybrid, dense weight ${v.ranker.weight}` : 'dense';
    gates.push(
      loadsGate(
        true,
        `${precision} (${variant}, ${ranks}) search graph loads in a fresh onnxruntime session, checksums verified`,
      ),
    );
  } catch (err) {
    gates.push(loadsGate(false, `does not load: ${(err as Error).message}`));
    return done(null);
  }
  let champ: Served | undefined;
  if (options.championDir) {
    try {
      champ = served(await loadServedSearch(await readSearchBundle(options.championDir), precision));
    } catch {
      champ = undefined; // the champion's timing helps; without it the absolute budget decides
    }
  }
  const ids = new Set(b.items.ids);
  const want = Math.min(k, b.items.ids.length);
  const problems: string[] = [];
  const times: number[] = [];
  const champTimes: number[] = [];
  const queries = smokeQueries(b, n);
  try {
    for (const [r, q] of queries.entries()) {
      if (champ) {
        const t0 = process.hrtime.bigint();
        await champ.search(q, k);
        champTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const t0 = process.hrtime.bigint();
      const hits = await model.search(q, k);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      const label = JSON.stringify(q.slice(0, 30));
      if (hits.length !== want) problems.push(`query ${label}: ${hits.length} hits, expected ${want}`);
      if (new Set(hits.map((h) => h.id)).size !== hits.length) problems.push(`query ${label}: repeated items`);
      if (hits.some((h) => !ids.has(h.id))) problems.push(`query ${label}: an id outside the catalogue`);
      if (hits.some((h, i) => !(Math.abs(h.score) <= 1.05) || (i > 0 && h.score > hits[i - 1]!.score + 1e-6)))
        problems.push(`query ${label}: scores not sorted scores in [-1, 1]`);
      if (r === 6) {
        const alone = hits.map((h) => h.id).join();
        const batch = await model.searchBatch([queries[5] ?? '', q, queries[7] ?? ''], k);
        if (batch[1]?.map((h) => h.id).join() !== alone) problems.push(`query ${label}: another answer inside a batch`);
      }
      if (problems.length > 5) break;
    }
  } catch (err) {
    problems.push(`search failed: ${(err as Error).message}`);
  } finally {
    await model.session.release();
    await champ?.session.release();
  }
  const { gates: timed, p99 } = infraGates(problems, times, champTimes, budget, options, {
    one: 'query',
    many: 'single queries (tokenizer included)',
    answered: 'queries',
  });
  gates.push(...timed);
  return done(p99);
}
