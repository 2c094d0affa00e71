/**
 * The run report built from fixture statuses around small real artifacts (test/unit/report/fixture.ts): what a
 * reviewer must be able to read from it, and its screenshot in headless Chromium (skipped without Chromium outside
 * CI, as the integration test's). `RECFLOW_REPORT_OUT=<dir>` keeps the pages and the screenshot there.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import type { EvaluationArtifact } from '../../../activities/evaluate';
import {
  buildRunReport,
  createReportActivities,
  pairedInterval,
  type WriteRunReportInput,
  type WriteRunReportResult,
} from '../../../activities/report';
import { loadConfig } from '../../../lib/config';
import type { ModelEvaluation } from '../../../lib/eval/evaluate';
import { PALETTE } from '../../../lib/report/html';
import { mulberry32 } from '../../../lib/rng';
import { mockActivityEnv } from '../../helpers/activity-env';
import { countColor, readPng } from '../../helpers/png';
import { tempHome } from '../../helpers/temporal';
import { buildReportWorld, legacyStatus, type ReportWorld } from './fixture';

const exec = promisify(execFile);
const OUT = process.env.RECFLOW_REPORT_OUT;

/** The page's text without tags (what a reader sees), whitespace collapsed. */
const visible = (page: string) =>
  page
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<title>[\s\S]*?<\/title>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&middot;/g, '·')
    .replace(/&ldquo;|&rdquo;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/\s+/g, ' ');

/** The text of the section whose heading starts with `title`. */
function section(page: string, title: string): string {
  const start = page.indexOf(`<h2>${title}`);
  assert.ok(start >= 0, `no section '${title}'`);
  const end = page.indexOf('<section>', start);
  return visible(page.slice(start, end < 0 ? undefined : end));
}

function keep(name: string, page: string): void {
  if (!OUT) return;
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, name), page);
}

describe('paired interval of the candidate against the champion', () => {
  const ev = (values: number[]) =>
    ({ overall: {}, segments: {}, perUser: { users: values.length, 'ndcg@10': values } }) as unknown as ModelEvaluation;
  it('brackets the mean difference, is seeded, and needs per-user values of the same users', () => {
    const r = mulberry32(3);
    const b = Array.from({ length: 400 }, () => r());
    const a = b.map((x) => x + 0.02 + (r() - 0.5) * 0.2);
    const ci = pairedInterval(ev(a), ev(b), 'ndcg@10')!;
    const mean = a.reduce((s, x, i) => s + x - b[i]!, 0) / a.length;
    assert.ok(ci.lower < mean && mean < ci.upper, JSON.stringify({ ci, mean }));
    // Standard error of the mean difference is 0.2/sqrt(12)/sqrt(400) ~ 0.0029: a 90% interval ~ ±0.0047.
    assert.ok(Math.abs(ci.upper - ci.lower - 2 * 1.645 * 0.0029) < 0.002, JSON.stringify(ci));
    assert.deepEqual(pairedInterval(ev(a), ev(b), 'ndcg@10'), ci);
    assert.deepEqual(pairedInterval(ev(b), ev(b), 'ndcg@10'), { lower: 0, upper: 0, n: 400 });
    assert.equal(pairedInterval(ev(a), ev(b.slice(1)), 'ndcg@10'), undefined, 'different users');
    assert.equal(pairedInterval(ev(a), ev(b), 'auc'), undefined, 'no per-user AUC');
  });
});

describe('run report', () => {
  let world: ReportWorld;
  let deps: { config: ReturnType<typeof loadConfig>; store: ReportWorld['store'] };
  let page: string;
  const home = tempHome('recflow-report-');

  before(async () => {
    world = await buildReportWorld(home);
    deps = { config: loadConfig({ RECFLOW_HOME: home }), store: world.store };
    page = await buildRunReport(deps, world.rolledBack);
    keep('rolled-back.html', page);
  });

  it('is self-contained: no script, no external resource, nothing undefined or NaN, no negative zero', () => {
    assert.doesNotMatch(page, /<script|<link |src="http|href="http/);
    const text = visible(page);
    assert.doesNotMatch(text, /-0\.0+(?![0-9])/, 'negative zero');
    for (const bad of ['undefined', 'NaN', 'null', '[object Object]'])
      assert.ok(
        !text.includes(bad),
        `'${bad}' on the page: ...${text.slice(Math.max(0, text.indexOf(bad) - 80), text.indexOf(bad) + 40)}`,
      );
  });

  it('says how the run ended at the top, with the reason', () => {
    const top = visible(page.slice(0, page.indexOf('<section>')));
    assert.match(top, /Rolled back/);
    assert.match(top, /shop-recs@v2 serves again/);
    assert.match(top, /canary analysis failed at 50%/);
    assert.match(top, /validation warning/);
  });

  it('shows the candidate beside the champion and every baseline by name, overall and for returning and new users', () => {
    const ev = section(page, 'Evaluation against the champion');
    const art = JSON.parse(readFileSync(join(world.evaluationDir, 'evaluation.json'), 'utf8')) as EvaluationArtifact;
    for (const name of ['candidate int8', 'champion v2 int8', 'popularity', 'recent popularity', 'ALS', 'EASE^R'])
      assert.ok(ev.includes(name), `model ${name}`);
    for (const seg of ['all users', 'returning users', 'new users']) assert.ok(ev.includes(seg), `segment ${seg}`);
    assert.match(ev, /item knn \(not configured\)/);
    // One chart per metric: six metric charts, each its own SVG; AUC's axis starts at chance.
    const evHtml = page.slice(page.indexOf('<h2>Evaluation'), page.indexOf('<h2>Quantization'));
    for (const m of ['AUC', 'NDCG@10', 'HR@10', 'Recall@10', 'MRR', 'Coverage@10'])
      assert.ok(evHtml.includes(`aria-label="${m}"`), `chart ${m}`);
    assert.match(ev, /axis from 0.5 \(chance\)/);
    // The change against the champion with its interval where the evaluation kept per-user values (NDCG@10).
    assert.match(ev, /NDCG@10 [-+][\d.]+% 0\.\d+ vs 0\.\d+ · 90% CI \[[-+][\d.]+%, [-+][\d.]+%\]/);
    const ranked = art.candidate.models.int8!.overall.users!;
    assert.ok(ev.includes(`whisker: 90% interval, paired bootstrap over ${ranked} users`), `${ranked} users`);
    const glance = evHtml.slice(evHtml.indexOf('aria-label="Candidate vs champion v2 int8"'));
    assert.equal([...glance.slice(0, glance.indexOf('</svg>')).matchAll(/<path d="M/g)].length, 1, 'one whisker');
    // The candidate's numbers are the evaluation's, printed with 3 significant digits (AUC near 0.5: 3 decimals).
    const auc = art.candidate.models.int8!.overall.auc!;
    const aucChart = evHtml.slice(evHtml.indexOf('aria-label="AUC"'));
    assert.ok(aucChart.slice(0, aucChart.indexOf('</svg>')).includes(`>${auc.toFixed(3)}<`), `AUC ${auc}`);
  });

  it('formats numbers for people: step times in s and min, shares in percent, deltas never -0.0000', () => {
    const steps = section(page, 'Steps');
    assert.match(steps, /trainModel train done 2 min 3 s/);
    assert.match(steps, /exportModel export done 0\.9 s/);
    assert.match(steps, /generateShop data done 31 ms/);
    const data = section(page, 'Data');
    assert.match(data, /train [\d,]+ \d+(\.\d)?%/);
    const quant = section(page, 'Quantization effect');
    assert.match(quant, /int8 \/ fp32/);
    assert.match(quant, /vs fp32/);
  });

  it('has a data section: source, rows per split, users and items, validation warnings, drift against the champion', () => {
    const data = section(page, 'Data');
    assert.match(data, /synthetic shop shop-\w+ \(seed 21, 300 users, 150 items, 6,000 events, dirt 3%\)/);
    assert.match(data, /users \/ items \d+ \/ \d+/);
    assert.match(data, /validation [\d,]+ /);
    assert.match(data, /out of order|duplicate|unknown/i, 'the shop dirt shows up as warnings');
    assert.match(data, /Drift against the champion's data/);
    assert.match(data, /new users \d+(\.\d+)?%/);
    assert.match(data, /users in test, \d+ of them new/);
  });

  it('shows five sample users, returning and new, with titles and categories from champion and candidate', () => {
    const recs = section(page, 'Sample recommendations');
    const cards = recs.split(/ u\d+ · (?=returning|new)/).length - 1;
    assert.equal(cards, 5, recs.slice(0, 400));
    assert.match(recs, /returning/);
    assert.match(recs, / new /);
    assert.match(recs, /champion v2/);
    assert.match(recs, /candidate/);
    // Titles come from the dataset's titles.json (the shop's items.csv), categories from its vocabulary.
    const titled = world.dataset.vocab.items.slice(1, 200);
    const titles = JSON.parse(readFileSync(join(world.dataset.dir, 'titles.json'), 'utf8')) as string[];
    const shown = titles.filter((t, i) => t && i > 0 && recs.includes(t));
    assert.ok(shown.length >= 5, `titles shown: ${shown.length} (of ${titled.length})`);
    assert.ok(
      world.dataset.vocab.categories.slice(1).some((c) => recs.includes(`${c} · i`)),
      'category beside the id',
    );
  });

  it('lists the canary windows with verdicts, sample sizes and reasons; an unknown p99 is n/a, not 0', () => {
    const canary = section(page, 'Canary on fleet default');
    assert.match(canary, /10% inconclusive/);
    assert.match(canary, /10% ext 1 pass/);
    assert.match(canary, /50% fail/);
    assert.match(canary, /640 \/ 0/, 'requests of the first window');
    assert.match(canary, /14,000 \/ 13,800/, 'impressions of the failed window');
    assert.match(canary, /too little traffic/);
    assert.match(canary, /significantly below stable/);
    // The first window measured no canary request: its p99s are unknown.
    const firstRow = canary.slice(canary.indexOf('10% inconclusive'), canary.indexOf('10% ext 1 pass'));
    assert.match(firstRow, /n\/a \/ n\/a/);
    assert.doesNotMatch(firstRow, /\b0 ms/);
    const p99Chart = page.slice(page.indexOf('aria-label="p99 latency per analysis window"'));
    assert.match(p99Chart.slice(0, p99Chart.indexOf('</svg>')), />n\/a</);
  });

  it('lists the candidate kinds of an auto run, the chosen one marked, best first', () => {
    const training = section(page, 'Training');
    assert.match(training, /Candidates \(3\): two-tower chosen by validation NDCG@10/);
    assert.match(training, /two-tower chosen trained 0\.0266 0\.126 wasm 2 min 3 s .*als trained 0\.0241 0\.113/);
    assert.match(training, /ease skipped n\/a n\/a +catalogue of 20,000 items above the EASE\^R cap/);
  });

  it('has the gates as a table with pass / FAIL and reasons, and the review with refused attempts', () => {
    const gates = section(page, 'Gates');
    assert.match(gates, /model champion:int8:ndcg@10 (pass|FAIL) -?[\d.]+ -?[\d.]+ ndcg@10/);
    assert.match(gates, /infra infra:p99 pass 0\.292\d? 50 p99/);
    const review = section(page, 'Review');
    assert.match(review, /bob \(via update\)/);
    assert.match(review, /NDCG up on returning users/);
    assert.match(review, /Refused attempts \(2\)/);
    assert.match(review, /mallory signal mallory is not an allowed reviewer/);
  });

  it('says so at the top when the candidate equals the champion', async () => {
    const p = await buildRunReport(deps, world.unchanged);
    keep('unchanged.html', p);
    const top = visible(p.slice(0, p.indexOf('<section>')));
    assert.match(top, /Unchanged: nothing new to ship/);
    assert.match(top, /identical to the champion shop-recs@v2's: nothing was registered, evaluated or deployed/);
    assert.ok(!p.includes('<h2>Evaluation'), 'no evaluation ran');
  });

  it('puts the failed step’s root cause (type and message) in the outcome', async () => {
    const p = await buildRunReport(deps, world.failed);
    keep('failed.html', p);
    const top = visible(p.slice(0, p.indexOf('<section>')));
    assert.match(top, /Failed · Step prepareDataset failed: InvalidData/);
    const outcome = section(p, 'Outcome');
    assert.match(outcome, /Root cause InvalidData in prepareDataset \(not retried: retrying cannot help\)/);
    assert.match(outcome, /events\.csv row 2, column item_id, value 'SKU-000378': unknown item id/);
    assert.match(section(p, 'Steps'), /prepareDataset data failed 2\.5 s InvalidData ?: events\.csv row 2/);
  });

  it('still reads the first version’s statuses ({weight, bake} steps, step names of v1), artifacts gone', async () => {
    const p = await buildRunReport(deps, legacyStatus());
    keep('legacy.html', p);
    const canary = section(p, 'Canary on fleet default');
    assert.match(canary, /50% fail/);
    assert.match(canary, /256 \/ 223/);
    assert.match(canary, /50% for 6s failed/);
    assert.match(canary, /100% for 4s pending/);
    assert.match(section(p, 'Gates'), /infra:p99 pass/);
    assert.match(section(p, 'Evaluation against the champion'), /not in the artifact store.*NDCG@10 0\.0297/);
    assert.match(section(p, 'Steps'), /canary-50% done 0\.3 s/);
  });

  it('the activity writes the page into the artifact store (the same status gives the same artifact)', async () => {
    const acts = createReportActivities(deps);
    const env = mockActivityEnv();
    const write = (input: WriteRunReportInput) => acts.writeRunReport(input);
    type Run = [[WriteRunReportInput], WriteRunReportResult, typeof write];
    const a = await env.run<Run[0], Run[1], Run[2]>(write, { status: world.unchanged });
    const b = await env.run<Run[0], Run[1], Run[2]>(write, { status: world.unchanged });
    assert.equal(a.report.id, b.report.id);
    assert.ok(existsSync(a.html));
  });

  it('renders in headless Chromium with its charts on screen', async (t) => {
    const chromium = findChromium();
    if (!chromium) {
      if (process.env.CI) assert.fail('no chromium: install Debian chromium or set RECFLOW_CHROMIUM');
      t.skip('no chromium on this machine');
      return;
    }
    const dir = tempHome('recflow-report-shot-');
    const file = join(dir, 'index.html');
    writeFileSync(file, page);
    const png = join(dir, 'report.png');
    await exec(
      chromium,
      [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--hide-scrollbars',
        '--window-size=1200,3200',
        `--screenshot=${png}`,
        `file://${file}`,
      ],
      { timeout: 120_000 },
    );
    if (OUT) copyFileSync(png, join(OUT, 'rolled-back.png'));
    const img = readPng(png);
    assert.equal(img.width, 1200);
    assert.ok(countColor(img, PALETTE.candidate) > 2000, `candidate/canary blue ${countColor(img, PALETTE.candidate)}`);
    assert.ok(countColor(img, PALETTE.champion) > 2000, `champion/stable orange ${countColor(img, PALETTE.champion)}`);
    assert.ok(countColor(img, PALETTE.popularity, 8) > 300, 'popularity bars');
    assert.ok(countColor(img, PALETTE.fp32) > 300, 'fp32 bars of the quantization plot');
  });
});

function findChromium(): string | undefined {
  if (process.env.RECFLOW_CHROMIUM) return process.env.RECFLOW_CHROMIUM;
  for (const dir of (process.env.PATH ?? '').split(':'))
    for (const name of ['chromium', 'chromium-browser', 'google-chrome'])
      if (dir && existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}
