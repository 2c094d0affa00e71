/**
 * Operating characteristics of the canary analysis on simulated rollouts (lib/canary/simulate.ts): for each traffic
 * setting, N A/A rollouts (identical models) and N A/B rollouts (canary CTR 10 % lower), with and without the
 * pre-rollout window, and the per-window analysis it replaces. Prints a Markdown table (docs/canary-statistics.md).
 *
 *   node --import tsx scripts/canary-simulate.ts [rollouts=200] ['[{"users":400}, ...]']
 */
import {
  DEMO_TRAFFIC,
  LEGACY_PLAN,
  legacyAnalyst,
  SEQUENTIAL_PLAN,
  sequentialAnalyst,
  simulateRollouts,
  type SimulatedTraffic,
} from '../lib/canary/simulate';

const n = Number(process.argv[2] ?? 200);
const settings = JSON.parse(
  process.argv[3] ??
    JSON.stringify([
      {},
      { bakeSeconds: 20, rps: 80 },
      { users: 200 },
      { users: 1000 },
      { users: 400, rps: 50 },
      { users: 400, ctrMean: 0.05, ctrConcentration: 50 },
      { users: 3000, ctrMean: 0.05, ctrConcentration: 50 },
    ]),
) as Array<Partial<SimulatedTraffic>>;

const row = (cells: Array<string | number>) => console.log(`| ${cells.join(' | ')} |`);
row([
  'traffic (changes from DEMO_TRAFFIC)',
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
  for (const [name, analyst, plan] of [
    ['sequential + pre', sequentialAnalyst(), SEQUENTIAL_PLAN],
    ['sequential', sequentialAnalyst(), { ...SEQUENTIAL_PLAN, preBakes: 0 }],
    ['per-window z (old)', legacyAnalyst(), LEGACY_PLAN],
  ] as const) {
    const aa = simulateRollouts(n, 1, analyst, s, {}, plan);
    const ab = simulateRollouts(n, 100_001, analyst, s, { canaryCtrFactor: 0.9 }, plan);
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
console.log(`\n${n} rollouts each; DEMO_TRAFFIC = ${JSON.stringify(DEMO_TRAFFIC)}`);
