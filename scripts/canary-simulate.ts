/**
 * Operating characteristics of the canary analysis on simulated rollouts (lib/canary/simulate.ts): for each traffic
 * setting, N A/A rollouts (identical models) and N A/B rollouts (canary CTR 10 % lower), with and without the
 * pre-rollout window, and the per-window analysis it replaces. Prints a Markdown table (docs/canary-statistics.md).
 *
 *   node --import tsx scripts/canary-simulate.ts [rollouts=200] ['[{"users":400}, ...]'] [--population FILE]
 *     [--plan '{"steps":[10,50,95],"maxExtensions":1,"preBakes":1}']
 *
 * `--population FILE`: a measured population instead of the lognormal and Beta draws (bench/canary.ts
 * `--dump-population`: a shop's users with their activity and ground-truth CTR under both models). The A/B canary
 * then has each user's own CTR under the worse model (a per-user effect, as the fleet's A/B canary), and
 * `users` in a setting is the panel drawn from it per rollout (more than the population: all of them).
 * `--plan`: the rollout plan of the sequential rows (default: SEQUENTIAL_PLAN).
 */
import { readFileSync } from 'node:fs';
import {
  DEMO_TRAFFIC,
  LEGACY_PLAN,
  legacyAnalyst,
  SEQUENTIAL_PLAN,
  sequentialAnalyst,
  simulateRollouts,
  type SimulatedEffect,
  type SimulatedPlan,
  type SimulatedPopulation,
  type SimulatedTraffic,
} from '../lib/canary/simulate';

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const n = Number(positional[0] ?? 200);
const popFile = flag('population');
const population = popFile
  ? (JSON.parse(readFileSync(popFile, 'utf8')) as SimulatedPopulation & { users: string[]; trueRatio?: number })
  : undefined;
const plan: SimulatedPlan = flag('plan') ? (JSON.parse(flag('plan') ?? '{}') as SimulatedPlan) : SEQUENTIAL_PLAN;
const settings = JSON.parse(
  positional[1] ??
    JSON.stringify(
      population
        ? [{ users: population.users.length }, { users: 400 }]
        : [
            {},
            { bakeSeconds: 20, rps: 80 },
            { users: 200 },
            { users: 1000 },
            { users: 400, rps: 50 },
            { users: 400, ctrMean: 0.05, ctrConcentration: 50 },
            { users: 3000, ctrMean: 0.05, ctrConcentration: 50 },
          ],
    ),
) as Array<Partial<SimulatedTraffic>>;

const row = (cells: Array<string | number>) => console.log(`| ${cells.join(' | ')} |`);
row([
  `traffic (changes from ${population ? `DEMO_TRAFFIC, population ${popFile}` : 'DEMO_TRAFFIC'})`,
  'analysis',
  'A/A rolled back',
  'A/A inconclusive',
  'A/B rolled back',
  'A/B promoted',
  'looks A/A',
]);
row(['---', '---', '---', '---', '---', '---', '---']);
const pc = (k: number) => `${((100 * k) / n).toFixed(1)}%`;
for (const s of settings) {
  const label = Object.keys(s).length ? JSON.stringify(s) : 'demo (defaults)';
  const pop = population && {
    weights: population.weights,
    ctr: population.ctr,
    freshCtr: population.freshCtr,
  };
  const aaTraffic = pop ? { ...s, population: pop } : s;
  const abTraffic = pop ? { ...s, population: { ...pop, canaryCtr: population.canaryCtr } } : s;
  const abEffect: SimulatedEffect = pop ? {} : { canaryCtrFactor: 0.9 };
  for (const [name, analyst, p] of [
    ['sequential + pre', sequentialAnalyst(), plan],
    ['sequential', sequentialAnalyst(), { ...plan, preBakes: 0 }],
    ['per-window z (old)', legacyAnalyst(), LEGACY_PLAN],
  ] as const) {
    const aa = simulateRollouts(n, 1, analyst, aaTraffic, {}, p);
    const ab = simulateRollouts(n, 100_001, analyst, abTraffic, abEffect, p);
    row([
      label,
      name,
      pc(aa.rolledBack),
      pc(aa.inconclusive),
      pc(ab.rolledBack),
      pc(ab.promoted),
      aa.meanLooks.toFixed(1),
    ]);
  }
}
console.log(
  `\n${n} rollouts each; plan ${JSON.stringify(plan)}; DEMO_TRAFFIC = ${JSON.stringify(DEMO_TRAFFIC)}` +
    (population ? `; population: ${population.users.length} users, true CTR ratio ${population.trueRatio}` : ''),
);
