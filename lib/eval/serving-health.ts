/**
 * The infra blessing: the bundle loads in a FRESH onnxruntime session, answers smoke requests correctly (shapes,
 * finite probabilities in [0, 1], sorted, never index 0 nor an excluded item, score graph agreeing with the
 * recommend graph), and its single-request p99 latency is within budget. On a busy host an absolute budget says more
 * about the host than the model: with the champion given, both are timed in the same activity, interleaved
 * request by request, and the latency gate also passes when the candidate is within `championRatio` of the
 * champion's p99 (plus `championSlackMs`).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Precision } from '../bundle';
import { loadBundle } from '../onnx/bundle-io';
import type { Blessing, GateResult } from './gates';

export interface ServingHealthOptions {
  /** @default 'int8' */
  precision?: Precision;
  /** Timed single-user recommend requests. @default 200 */
  smokeRequests?: number;
  /** p99 budget of one recommend request, milliseconds. @default 50 */
  p99BudgetMs?: number;
  /** @default 10 */
  k?: number;
  /** The champion's bundle folder, timed beside the candidate. */
  championDir?: string;
  /** Candidate p99 may be this multiple of the champion's p99 measured beside it. @default 1.5 */
  championRatio?: number;
  /** ... plus this many ms. @default 2 */
  championSlackMs?: number;
}

/** Latency percentile (nearest rank). */
export function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
}

/** What the infra gates' reasons call the timed calls. */
export interface InfraGateLabels {
  /** One timed call, in "no timed ..." (e.g. `request`). */
  one: string;
  /** The timed calls, in "p99 ... over N ..." (e.g. `requests`). */
  many: string;
  /** The calls, in "N ... answered correctly" (e.g. `requests`). */
  answered: string;
}

/**
 * The `infra:smoke` gate (no `problems`; the first five named) and the `infra:p99` gate: the candidate's p99 of
 * `times` (ms) within `budget` ms, or, with the champion timed beside it (`champTimes`), within `championRatio` x its
 * p99 (at least `championSlackMs` more).
 */
export function infraGates(
  problems: string[],
  times: number[],
  champTimes: number[],
  budget: number,
  options: Pick<ServingHealthOptions, 'championRatio' | 'championSlackMs'>,
  labels: InfraGateLabels,
): { gates: GateResult[]; p99: number | null } {
  const smoke: GateResult = {
    name: 'infra:smoke',
    passed: problems.length === 0,
    observed: problems.length,
    threshold: 0,
    reason: problems.length ? problems.slice(0, 5).join('; ') : `${times.length} ${labels.answered} answered correctly`,
  };
  const p99 = times.length ? percentile(times, 0.99) : null;
  const champP99 = champTimes.length ? percentile(champTimes, 0.99) : null;
  const relLimit =
    champP99 !== null
      ? Math.max(champP99 * (options.championRatio ?? 1.5), champP99 + (options.championSlackMs ?? 2))
      : null;
  const withinBudget = p99 !== null && p99 <= budget;
  const withinChampion = p99 !== null && relLimit !== null && p99 <= relLimit;
  const beside =
    champP99 !== null ? `; champion beside it ${champP99.toFixed(3)} ms (limit ${relLimit!.toFixed(3)} ms)` : '';
  const gate: GateResult = {
    name: 'infra:p99',
    passed: withinBudget || withinChampion,
    observed: p99,
    threshold: relLimit !== null ? Math.max(budget, relLimit) : budget,
    reason:
      p99 === null
        ? `no timed ${labels.one}`
        : `p99 ${p99.toFixed(3)} ms over ${times.length} ${labels.many}, budget ${budget} ms${beside}${
            !withinBudget && withinChampion ? ': over the budget, but so is the host (champion as slow)' : ''
          }`,
  };
  return { gates: [smoke, gate], p99 };
}

/** The `infra:loads` gate: whether the graphs loaded, and what loaded or why not. */
export function loadsGate(passed: boolean, reason: string): GateResult {
  return { name: 'infra:loads', passed, observed: null, threshold: null, reason };
}

/** The infra blessing of `gates` decided at `now` (blessed when there are gates and all passed), with the p99. */
export function infraBlessing(gates: GateResult[], now: Date, p99: number | null): Blessing & { p99Ms: number | null } {
  return {
    kind: 'infra' as const,
    blessed: gates.length > 0 && gates.every((g) => g.passed),
    gates,
    decidedAt: now.toISOString(),
    p99Ms: p99,
  };
}

const i64 = (xs: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), dims);

/** Run the infra gates against a bundle folder. Never throws for a bad model: failures are gates. */
export async function checkBundleHealth(
  bundleDir: string,
  options: ServingHealthOptions = {},
  now = new Date(),
): Promise<Blessing & { p99Ms: number | null }> {
  const precision = options.precision ?? 'int8';
  const n = options.smokeRequests ?? 200;
  const budget = options.p99BudgetMs ?? 50;
  const k = options.k ?? 10;
  const gates: GateResult[] = [];
  // int8: the score graph dequantizes item rows, the recommend graph multiplies quantized user vectors.
  const agreeTol = precision === 'int8' ? 0.02 : 1e-4;
  const done = (p99: number | null) => infraBlessing(gates, now, p99);
  let rec: ort.InferenceSession;
  let score: ort.InferenceSession;
  let users: number;
  let items: number;
  try {
    const b = await loadBundle(bundleDir);
    const fc = JSON.parse(await readFile(join(bundleDir, 'vocab.json'), 'utf8')) as {
      users: string[];
      items: string[];
    };
    users = fc.users.length;
    items = fc.items.length;
    rec = await ort.InferenceSession.create(b.paths[precision].recommend, { intraOpNumThreads: 1 });
    score = await ort.InferenceSession.create(b.paths[precision].score, { intraOpNumThreads: 1 });
    gates.push(loadsGate(true, `${precision} graphs load in a fresh onnxruntime session`));
  } catch (err) {
    gates.push(loadsGate(false, `does not load: ${(err as Error).message}`));
    return done(null);
  }
  // Graphs with a `history` input (the history-based kinds) get an empty one: the stored history or the prior.
  const noHistory = (sess: ort.InferenceSession): Record<string, ort.Tensor> =>
    sess.inputNames.includes('history') ? { history: i64([], [1, 0]) } : {};
  const problems: string[] = [];
  const times: number[] = [];
  const champTimes: number[] = [];
  let champ: { rec: ort.InferenceSession; users: number; items: number } | undefined;
  if (options.championDir) {
    try {
      const cb = await loadBundle(options.championDir);
      const cv = JSON.parse(await readFile(join(options.championDir, 'vocab.json'), 'utf8')) as {
        users: string[];
        items: string[];
      };
      champ = {
        rec: await ort.InferenceSession.create(cb.paths[precision].recommend, { intraOpNumThreads: 1 }),
        users: cv.users.length,
        items: cv.items.length,
      };
    } catch {
      champ = undefined; // the champion's timing is a help, not a gate: without it the absolute budget decides
    }
  }
  try {
    for (let r = 0; r < n; r++) {
      if (champ) {
        const t0 = process.hrtime.bigint();
        await champ.rec.run({
          user: i64([r % champ.users], [1]),
          k: i64([k], [1]),
          exclude: i64([1 + (r % (champ.items - 1)), 0], [1, 2]),
          ...noHistory(champ.rec),
        });
        champTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const user = r % users;
      const excluded = [1 + (r % (items - 1)), 0];
      const t0 = process.hrtime.bigint();
      const out = await rec.run({
        user: i64([user], [1]),
        k: i64([k], [1]),
        exclude: i64(excluded, [1, 2]),
        ...noHistory(rec),
      });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      const top = Array.from(out.items!.data as BigInt64Array, Number);
      const s = Array.from(out.scores!.data as Float32Array);
      const want = Math.min(k, items - 1);
      if (top.length !== want) problems.push(`user ${user}: ${top.length} items, expected ${want}`);
      if (top.includes(0)) problems.push(`user ${user}: returned index 0`);
      if (top.includes(excluded[0]!) && items - 1 > k)
        problems.push(`user ${user}: returned excluded item ${excluded[0]}`);
      if (s.some((x, i) => !(x >= 0 && x <= 1) || (i > 0 && x > s[i - 1]!)))
        problems.push(`user ${user}: scores not sorted probabilities`);
      if (r < 5) {
        const sc = await score.run({ user: i64([user], [1]), items: i64(top, [1, top.length]), ...noHistory(score) });
        const d = Array.from(sc.scores!.data as Float32Array).reduce((m, x, i) => Math.max(m, Math.abs(x - s[i]!)), 0);
        if (d > agreeTol) problems.push(`user ${user}: score graph disagrees with recommend by ${d}`);
      }
      if (problems.length > 5) break;
    }
  } catch (err) {
    problems.push(`request failed: ${(err as Error).message}`);
  } finally {
    await rec.release();
    await score.release();
    await champ?.rec.release();
  }
  const { gates: timed, p99 } = infraGates(problems, times, champTimes, budget, options, {
    one: 'request',
    many: 'requests',
    answered: 'requests',
  });
  gates.push(...timed);
  return done(p99);
}
