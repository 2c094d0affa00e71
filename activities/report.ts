/**
 * The run report: one self-contained HTML page per lifecycle run, written into the artifact store at the end of the
 * run. It reads the run's status and the artifacts it names (dataset, shop, checkpoint, evaluation, bundles), and
 * says, in the order a reviewer decides: how the run ended (the root cause when it failed; "unchanged" when the
 * candidate is the champion again), the candidate against the champion and every baseline (overall, returning and
 * new users), the int8 effect, the gates, the review, the canary windows with their sample sizes, sample
 * recommendations of champion and candidate side by side, the data, training, and every step. A missing artifact
 * leaves its section out (or says why), never the report.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '@temporalio/activity';
import { hashInputs, type ArtifactRef } from '../lib/artifacts';
import type { CanaryAnalysis, CheckResult, WindowSample } from '../lib/canary/analysis';
import type { DatasetManifest } from '../lib/data/dataset';
import type { DriftResult } from '../lib/data/drift';
import type { ModelEvaluation, SearchEvaluation } from '../lib/eval/evaluate';
import { LOWER_IS_BETTER, pairedBootstrap, type GateResult } from '../lib/eval/gates';
import { KIND_INFO } from '../lib/kinds';
import { describeStep } from '../lib/lifecycle/steps';
import type { LifecycleOutcome, LifecycleStatus, RolloutStepState, StepError } from '../lib/lifecycle/types';
import {
  BASELINE_COLORS,
  NA,
  PALETTE,
  badge,
  barChart,
  decimalsFor,
  escapeHtml,
  formatBytes,
  formatCount,
  formatDelta,
  formatDuration,
  formatFixed,
  formatPercent,
  formatRelative,
  formatTime,
  formatValue,
  html,
  lineChart,
  page,
  table,
  type Bar,
  type BarGroup,
  type Cell,
  type Section,
  type Tone,
} from '../lib/report/html';
import {
  loadSampleDataset,
  sampleRecommendations,
  type SampleDataset,
  type SampleItem,
} from '../lib/report/recommendations';
import type { ActivityDeps } from './deps';
import type { EvaluationArtifact } from './evaluate';

export interface WriteRunReportInput {
  status: LifecycleStatus;
}

export interface WriteRunReportResult {
  report: ArtifactRef;
  /** Absolute path of the HTML page. */
  html: string;
}

/** Metrics charted one per chart (each on its own axis), in this order. */
const METRICS = ['auc', 'ndcg@10', 'hitRate@10', 'recall@10', 'mrr', 'coverage@10'] as const;
const METRIC_LABEL: Record<string, string> = {
  auc: 'AUC',
  'ndcg@10': 'NDCG@10',
  'hitRate@10': 'HR@10',
  'recall@10': 'Recall@10',
  mrr: 'MRR',
  'coverage@10': 'Coverage@10',
  logLoss: 'log loss',
};
const metricLabel = (m: string) => METRIC_LABEL[m] ?? m;
/** Names of the training record's fields (kinds/types.ts EpochRecord). */
const TRAINING_METRIC: Record<string, string> = { ndcg10: 'NDCG@10', hr10: 'HR@10', loss: 'loss' };
const SEGMENTS: Array<[string | null, string]> = [
  [null, 'all users'],
  ['users:returning', 'returning users'],
  ['users:new', 'new users'],
];
/** Display names of known baselines; any other is shown by its key, camelCase split. */
const BASELINE_NAMES: Record<string, string> = {
  popularity: 'popularity',
  recentPopularity: 'recent popularity',
  als: 'ALS',
  ease: 'EASE^R',
  bm25: 'BM25',
};
const baselineName = (k: string) => BASELINE_NAMES[k] ?? k.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();

const OUTCOME: Record<LifecycleOutcome, { tone: Tone; label: string }> = {
  promoted: { tone: 'good', label: 'Promoted' },
  approved: { tone: 'good', label: 'Approved (no rollout)' },
  unchanged: { tone: 'info', label: 'Unchanged: nothing new to ship' },
  rolled_back: { tone: 'bad', label: 'Rolled back' },
  gate_failed: { tone: 'bad', label: 'Not blessed: the gates refused the candidate' },
  failed: { tone: 'bad', label: 'Failed' },
  aborted: { tone: 'warn', label: 'Aborted' },
  rejected: { tone: 'warn', label: 'Rejected by the reviewer' },
  expired: { tone: 'warn', label: 'Expired: no decision in time' },
  cancelled: { tone: 'muted', label: 'Cancelled' },
};
const STATE_TONE: Record<string, Tone> = {
  done: 'good',
  trained: 'good',
  skipped: 'muted',
  passed: 'good',
  pass: 'good',
  promoted_by_human: 'good',
  approved: 'good',
  failed: 'bad',
  fail: 'bad',
  rejected: 'bad',
  inconclusive: 'warn',
  running: 'info',
  paused: 'warn',
  waiting: 'info',
  expired: 'warn',
};
const stateBadge = (s: string) => html(badge(s, STATE_TONE[s] ?? 'muted'));
/** Green and red of better and worse (not the palette's fp32 green: the screenshot test counts that one). */
const BETTER = '#3b8f3b';
const WORSE = '#c0392b';

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const seconds = (a?: string, b?: string) => (a && b ? (Date.parse(b) - Date.parse(a)) / 1000 : NaN);
const facts = (rows: Array<[string, string | undefined]>) =>
  `<dl class="facts">${rows
    .filter((r): r is [string, string] => r[1] !== undefined && r[1] !== '')
    .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`)
    .join('')}</dl>`;
const charts = (items: string[]) => `<div class="charts">${items.join('')}</div>`;

/** Everything the report reads besides the status, loaded once; each part undefined when its artifact is missing. */
interface Context {
  evaluation?: EvaluationArtifact;
  /** The columns the samples and the data section read (not the whole dataset). */
  dataset?: SampleDataset;
  datasetManifest?: DatasetManifest;
  shop?: { params?: Record<string, unknown>; counts?: { events?: number; cleanEvents?: number } };
  checkpoint?: { history?: Array<Record<string, number>>; backend?: string };
  /** Why the dataset could not be read (the data section says so). */
  datasetError?: string;
  candidateDir?: string;
  championDir?: string;
}

async function loadContext(deps: ActivityDeps, s: LifecycleStatus): Promise<Context> {
  const c: Context = {};
  const find = async (kind: Parameters<ActivityDeps['store']['find']>[0], id: string | null | undefined) =>
    id ? deps.store.find(kind, id).catch(() => undefined) : undefined;
  const ev = await find('evaluation', s.evaluation?.id);
  if (ev) c.evaluation = await readJson<EvaluationArtifact>(join(ev.path, 'evaluation.json'));
  const ds = await find('dataset', s.data?.datasetId);
  if (ds) {
    c.datasetManifest = await readJson<DatasetManifest>(join(ds.path, 'manifest.json'));
    c.dataset = await loadSampleDataset(ds.path).catch((err: unknown) => {
      c.datasetError = (err as Error).message;
      return undefined;
    });
  }
  const shop = await find('shop', s.data?.shopId);
  if (shop) c.shop = await readJson(join(shop.path, 'shop.json'));
  const ck = await find('checkpoint', s.training?.checkpointId);
  if (ck) c.checkpoint = await readJson(join(ck.path, 'checkpoint.json'));
  const cand = s.bundle?.path && existsSync(join(s.bundle.path, 'bundle.json')) ? s.bundle.path : undefined;
  c.candidateDir = cand ?? (await find('bundle', s.bundle?.id))?.path;
  c.championDir = (await find('bundle', s.champion?.bundleId))?.path;
  return c;
}

/** The failed step's root cause: the status's, else the last failed step's. */
function rootCause(s: LifecycleStatus): (StepError & { step?: string }) | undefined {
  if (s.error) return s.error;
  const st = [...s.steps].reverse().find((x) => x.state === 'failed' && x.error);
  return st?.error ? { ...st.error, step: st.name } : undefined;
}

function banner(s: LifecycleStatus, c: Context): string {
  const o = s.outcome ? OUTCOME[s.outcome] : { tone: 'muted' as Tone, label: `In progress: ${s.stage}` };
  const champion = s.champion?.version != null ? `${s.modelName}@v${s.champion.version}` : undefined;
  let line = '';
  if (s.outcome === 'unchanged')
    line = `The candidate's bundle is identical to the champion${champion ? ` ${champion}` : ''}'s: nothing was registered, evaluated or deployed.`;
  else if (s.outcome === 'promoted') line = `${s.registered?.ref ?? 'The candidate'} now serves all users.`;
  else if (s.outcome === 'rolled_back')
    line = `${s.registered?.ref ?? 'The candidate'} was taken off the fleet; ${s.rollout?.previousStable ?? champion ?? 'the previous model'} serves again.`;
  else if (s.outcome === 'failed') {
    const e = rootCause(s);
    line = e ? `${e.step ? `Step ${e.step} failed` : 'The run failed'}: ${e.type}.` : 'The run failed.';
  }
  const warnings = (c.datasetManifest?.preprocessing.validation as { soft?: number } | undefined)?.soft ?? 0;
  const extra = warnings
    ? `<div class="small">Data: ${formatCount(warnings)} validation warning${warnings === 1 ? '' : 's'} (see Data).</div>`
    : '';
  return `<div class="banner ${o.tone}"><b class="big">${escapeHtml(o.label)}</b>${line ? ` &middot; ${escapeHtml(line)}` : ''}${
    s.reason ? `<div class="note">${escapeHtml(s.reason)}</div>` : ''
  }${extra}</div>`;
}

function outcomeSection(s: LifecycleStatus): Section {
  const e = rootCause(s);
  const started = s.steps[0]?.startedAt;
  const ended = s.steps.reduce<string | undefined>(
    (m, st) => (st.endedAt && (!m || st.endedAt > m) ? st.endedAt : m),
    undefined,
  );
  const kind = (s.kind as string | undefined) ?? 'two-tower';
  const cause = e
    ? `<h3>Root cause</h3><div class="cause">${escapeHtml(`${e.type}${e.step ? ` in ${e.step}` : ''}${e.nonRetryable ? ' (not retried: retrying cannot help)' : ''}\n${e.message}`)}</div>`
    : '';
  return {
    title: 'Outcome',
    body: `${cause}${facts([
      ['outcome', escapeHtml(s.outcome ?? `(running: ${s.stage})`)],
      [
        'model',
        escapeHtml(`${s.modelName}${s.registered ? ` · registered as ${s.registered.ref}` : ' · nothing registered'}`),
      ],
      [
        'kind',
        escapeHtml(
          `${kind}${KIND_INFO[kind as keyof typeof KIND_INFO] ? `: ${KIND_INFO[kind as keyof typeof KIND_INFO].description}` : ''}`,
        ),
      ],
      [
        'champion',
        escapeHtml(s.champion?.version != null ? `${s.modelName}@v${s.champion.version}` : 'none (first model)'),
      ],
      ['requested by', escapeHtml(s.requestedBy)],
      ['run', `<code>${escapeHtml(s.workflowId)}</code>`],
      ['started', escapeHtml(formatTime(started))],
      ['ended', escapeHtml(formatTime(ended))],
      ['took', started && ended ? escapeHtml(formatDuration(seconds(started, ended))) : undefined],
    ])}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

interface Contender {
  name: string;
  color: string;
  ev: ModelEvaluation;
  role: 'candidate' | 'champion' | 'baseline';
}

function contenders(s: LifecycleStatus, art: EvaluationArtifact): { list: Contender[]; precision: string } {
  const models = art.candidate.models;
  const precision = models.int8 ? 'int8' : models.fp32 ? 'fp32' : (Object.keys(models)[0] ?? 'int8');
  const list: Contender[] = [];
  const cand = models[precision as keyof typeof models];
  if (cand) list.push({ name: `candidate ${precision}`, color: PALETTE.candidate, ev: cand, role: 'candidate' });
  const champ = art.champion?.models[precision as keyof typeof models];
  if (champ)
    list.push({
      name: `champion${s.champion?.version != null ? ` v${s.champion.version}` : ''} ${precision}`,
      color: PALETTE.champion,
      ev: champ,
      role: 'champion',
    });
  // Every baseline the report holds, by name: `popularity`, then those under `baselines` (recent popularity, ALS,
  // EASE^R...), whatever their number, so new ones appear without a change here.
  const baselines: Array<[string, unknown]> = [
    ['popularity', art.candidate.popularity],
    ...Object.entries((art.candidate as { baselines?: Record<string, unknown> }).baselines ?? {}),
  ];
  let k = 0;
  for (const [key, ev] of baselines) {
    if (!ev || typeof ev !== 'object' || !('overall' in ev)) continue;
    list.push({
      name: baselineName(key),
      color: key === 'popularity' ? PALETTE.popularity : (BASELINE_COLORS[k++ % BASELINE_COLORS.length] ?? '#555'),
      ev: ev as ModelEvaluation,
      role: 'baseline',
    });
  }
  return { list, precision };
}

const metricOf = (ev: ModelEvaluation, seg: string | null, m: string): number | undefined => {
  const v = seg ? ev.segments?.[seg]?.[m] : ev.overall?.[m];
  return finite(v) ? v : undefined;
};
/** The 90 % interval of mean(a - b) over the test users (the gates' paired bootstrap), where both keep them. */
export function pairedInterval(
  a: ModelEvaluation,
  b: ModelEvaluation,
  metric: string,
): { lower: number; upper: number; n: number } | undefined {
  const per = (ev: ModelEvaluation) => (ev as { perUser?: Record<string, unknown> }).perUser?.[metric];
  const x = per(a);
  const y = per(b);
  if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length || x.length < 2) return undefined;
  const bs = pairedBootstrap(x as number[], y as number[], 0.95);
  return Number.isFinite(bs.lower) ? { lower: bs.lower, upper: bs.upper, n: bs.n } : undefined;
}

/** Positive when `a` is better than `b` (lower-is-better metrics flipped). */
const gain = (m: string, a: number, b: number) => (LOWER_IS_BETTER.has(m) ? b - a : a - b);

function evaluationSection(s: LifecycleStatus, art: EvaluationArtifact): Section {
  const { list, precision } = contenders(s, art);
  const cand = list.find((x) => x.role === 'candidate');
  const champ = list.find((x) => x.role === 'champion');
  const baselines = list.filter((x) => x.role === 'baseline');
  const parts: string[] = [];
  const n = cand?.ev.overall.users;
  parts.push(
    `<p class="note">Test split of dataset <code>${escapeHtml(art.datasetId)}</code>${finite(n) ? `: ${formatCount(n)} ranked users` : ''}${
      finite(cand?.ev.overall.pairs) ? `, ${formatCount(cand.ev.overall.pairs)} scored pairs` : ''
    }. Ranking metrics rank the whole catalog with each user's training items excluded; AUC scores each test item against ${
      art.candidate.options?.negativesPerPositive ?? 4
    } sampled negatives. Every model on the same split; ${escapeHtml(precision)} graphs (what serves).</p>`,
  );

  // At a glance: the candidate's relative change against the champion and against the best baseline, per metric.
  if (cand) {
    const against = (
      label: string,
      pick: (m: string) => { v?: number; who?: string },
      interval?: (m: string) => { lower: number; upper: number; n: number } | undefined,
    ) => {
      const bars: Bar[] = [];
      let users: number | undefined;
      // Quality metrics only: coverage describes diversity, more of it is not better as such.
      for (const m of METRICS.filter((x) => x !== 'coverage@10')) {
        const c = metricOf(cand.ev, null, m);
        const { v, who } = pick(m);
        if (c === undefined || v === undefined) continue;
        const g = gain(m, c, v);
        const d = decimalsFor([c, v]);
        const ci = v !== 0 ? interval?.(m) : undefined;
        const rel = (x: number) => x / Math.abs(v);
        bars.push({
          name: metricLabel(m),
          value: v !== 0 ? g / Math.abs(v) : null,
          color: g >= 0 ? BETTER : WORSE,
          note: `${formatFixed(c, d)} vs ${formatFixed(v, d)}${who ? ` (${who})` : ''}${
            ci ? ` · 90% CI [${formatRelative(ci.lower, v)}, ${formatRelative(ci.upper, v)}]` : ''
          }`,
          ...(ci ? { lo: rel(ci.lower), hi: rel(ci.upper) } : {}),
        });
        if (ci) users = ci.n;
      }
      if (!bars.length) return '';
      // At most ±100 %: a larger change runs to the edge, its label still exact.
      const span = Math.min(
        1,
        Math.max(0.01, ...bars.flatMap((b) => [b.value ?? 0, b.lo ?? 0, b.hi ?? 0]).map(Math.abs)),
      );
      return barChart(label, [{ label: '', bars }], {
        width: 0,
        minPlotWidth: 200,
        min: -span,
        max: span,
        format: (v) => formatRelative(v, 1),
        caption: `relative change of the candidate; right = better${
          users !== undefined ? `; whisker: 90% interval, paired bootstrap over ${formatCount(users)} users` : ''
        }`,
      });
    };
    const glance = [
      champ
        ? against(
            `Candidate vs ${champ.name}`,
            (m) => ({ v: metricOf(champ.ev, null, m) }),
            (m) => {
              const ci = pairedInterval(cand.ev, champ.ev, m);
              // Lower-is-better metrics: the gain is champion minus candidate.
              return ci && LOWER_IS_BETTER.has(m) ? { lower: -ci.upper, upper: -ci.lower, n: ci.n } : ci;
            },
          )
        : '',
      baselines.length
        ? against('Candidate vs the best baseline per metric', (m) => {
            let best: { v?: number; who?: string } = {};
            for (const b of baselines) {
              const v = metricOf(b.ev, null, m);
              if (v !== undefined && (best.v === undefined || gain(m, v, best.v) > 0)) best = { v, who: b.name };
            }
            return best;
          })
        : '',
    ].filter(Boolean);
    if (!champ) glance.unshift('<p class="note">No champion yet: the candidate stands against the baselines only.</p>');
    parts.push(charts(glance));
  }

  // One chart per metric, its own axis: every model, for all, returning and new users.
  const segs = SEGMENTS.filter(([seg]) => seg === null || list.some((x) => x.ev.segments?.[seg]));
  // Metrics no model has (a search kind reports no AUC) are left out.
  const shown = METRICS.filter((m) => list.some((x) => metricOf(x.ev, null, m) !== undefined));
  const perMetric = shown.map((m) => {
    const groups: BarGroup[] = segs.map(([seg, label]) => {
      const users = cand ? metricOf(cand.ev, seg, 'users') : undefined;
      return {
        label: `${label}${users !== undefined ? ` (${formatCount(users)})` : ''}`,
        bars: list.map((x) => {
          const v = metricOf(x.ev, seg, m);
          const ref = champ ? metricOf(champ.ev, seg, m) : undefined;
          const showDelta = x.role === 'candidate' && v !== undefined && ref !== undefined && ref !== 0;
          return {
            name: x.name,
            value: v ?? null,
            color: x.color,
            ...(showDelta
              ? {
                  note: formatRelative(v - ref, ref),
                  noteColor: gain(m, v, ref) >= 0 ? BETTER : WORSE,
                }
              : {}),
          };
        }),
      };
    });
    return barChart(metricLabel(m), groups, {
      width: 360,
      ...(m === 'auc'
        ? { min: 0.5, max: 1, caption: 'axis from 0.5 (chance) to 1' }
        : m.startsWith('coverage')
          ? { caption: 'share of the catalog recommended (diversity)' }
          : { caption: 'higher is better' }),
    });
  });
  parts.push(`<h3>Every model on each metric</h3>${charts(perMetric)}`);

  const skipped = (art.candidate as { skippedBaselines?: Record<string, string> }).skippedBaselines;
  if (skipped && Object.keys(skipped).length)
    parts.push(
      `<p class="note">Baselines left out: ${Object.entries(skipped)
        .map(([k, why]) => `${escapeHtml(baselineName(k))} (${escapeHtml(why)})`)
        .join('; ')}.</p>`,
    );

  // Every number, every segment (categories included), folded away.
  const allSegments = [
    null,
    ...new Set(
      list
        .flatMap((x) => Object.keys(x.ev.segments ?? {}))
        .sort((a, b) => (a.startsWith('users:') ? -1 : 0) - (b.startsWith('users:') ? -1 : 0) || a.localeCompare(b)),
    ),
  ];
  const cols = ['auc', 'logLoss', 'ndcg@10', 'hitRate@10', 'recall@10', 'mrr', 'coverage@10', 'ndcg@50', 'users'];
  const dec = Object.fromEntries(
    cols.map((m) => [m, decimalsFor(list.flatMap((x) => allSegments.map((g) => metricOf(x.ev, g, m))))]),
  );
  const rows: Cell[][] = allSegments.flatMap((g) =>
    list.map((x) => [
      g ?? 'all users',
      x.name,
      ...cols.map((m) => {
        const v = metricOf(x.ev, g, m);
        return m === 'users' ? formatCount(v) : formatFixed(v, dec[m] ?? 3);
      }),
    ]),
  );
  parts.push(
    `<details><summary>All numbers (every segment, every model)</summary>${table(
      ['segment', 'model', ...cols.map(metricLabel)],
      rows,
      {
        numeric: cols.map((_, i) => i + 2),
      },
    )}</details>`,
  );
  return { title: 'Evaluation against the champion and the baselines', body: parts.join('') };
}

/** Without the evaluation artifact (pruned, another store): the headline numbers the status kept. */
function headlineSection(s: LifecycleStatus): Section | undefined {
  const h = Object.entries(s.evaluation?.headline ?? {}).filter(([, v]) => finite(v));
  if (!h.length) return undefined;
  return {
    title: 'Evaluation against the champion and the baselines',
    body: `<p class="note">The evaluation artifact <code>${escapeHtml(s.evaluation?.id ?? '')}</code> is not in the artifact store: the candidate's headline numbers from the run's status only.</p>${table(
      ['metric', 'candidate'],
      h.map(([k, v]) => [metricLabel(k), formatValue(v)]),
      { numeric: [1] },
    )}`,
  };
}

/** What a search precision serves: `hybrid, int8-dynamic encoder, dense weight 0.6` or `dense, fp32 encoder`. */
function servedLabel(s: NonNullable<SearchEvaluation['served']>['int8'] & object): string {
  return s.weight < 1
    ? `hybrid, ${s.variant} encoder, dense weight ${formatFixed(s.weight, 2)}`
    : `dense, ${s.variant} encoder`;
}

/**
 * Search models (task `search`): every ranker on the test queries side by side (the servable variants, the hybrid,
 * BM25 and the zero-shot encoder), with each variant's size and latency, which one serves and why.
 */
export function searchSection(art: EvaluationArtifact): Section | undefined {
  const se = art.candidate.search;
  if (!se) return undefined;
  const ms = (r: { latencyMs?: Record<string, number> }, b: string) => r.latencyMs?.[b];
  // Four decimals: variants of one model differ in the third.
  const metric4 = (v: number | undefined) => (finite(v) ? formatFixed(v, 4) : NA);
  const batches = [...new Set(se.rankers.flatMap((r) => Object.keys(r.latencyMs ?? {})))].sort(
    (a, b) => Number(a) - Number(b),
  );
  const rows: Cell[][] = se.rankers.map((r) => [
    html(`<b>${escapeHtml(r.name)}</b>${r.serves?.length ? ` ${badge(`serves ${r.serves.join(', ')}`, 'good')}` : ''}`),
    r.role,
    metric4(r.overall['ndcg@10']),
    metric4(r.overall['mrr@10']),
    metric4(r.overall['recall@100']),
    ...batches.map((b) => {
      const v = ms(r, b);
      return finite(v) ? formatFixed(v, 2) : NA;
    }),
    finite(r.bytes) ? formatBytes(r.bytes) : NA,
    r.description,
  ]);
  const head = [
    'ranker',
    'role',
    'NDCG@10',
    'MRR@10',
    'Recall@100',
    ...batches.map((b) => `ms / search (batch ${b})`),
    'bytes',
    'what it is',
  ];
  const numeric = Array.from({ length: 4 + batches.length }, (_, i) => i + 2);
  return {
    title: 'Search: every ranker on the test queries',
    body: `<p class="note">${formatCount(se.queries)} held-out test queries, each ranked over the whole catalogue; graded relevance from the search log (3 purchase, 2 add to cart, 1 click); NDCG@10, MRR@10 and Recall@100 as trec_eval defines them. Latency: median of one search call (encoder and item index, tokenizer excluded), one intra-op thread, measured at export.</p>${table(
      head,
      rows,
      { numeric },
    )}<p class="note">int8 serves <b>${escapeHtml(se.choice.variant)}</b> (preferred precision ${escapeHtml(
      se.choice.preferred,
    )}): ${escapeHtml(se.choice.reason)}. Hybrid dense weight ${formatFixed(se.hybridWeight, 2)} (tuned on validation).</p>${
      se.served
        ? `<p class="note">What <code>/v1/search</code> serves (what the gates judged): ${(['int8', 'fp32'] as const)
            .flatMap((p) => {
              const v = se.served?.[p];
              return v ? [`${p} serves <b>${escapeHtml(servedLabel(v))}</b>`] : [];
            })
            .join('; ')}.</p>`
        : ''
    }`,
  };
}

function quantizationSection(s: LifecycleStatus, art: EvaluationArtifact | undefined): Section | undefined {
  const m = art?.candidate.models;
  const sizes = s.bundle?.sizes as Record<string, { score: number; recommend: number }> | undefined;
  if (!m?.fp32 && !sizes) return undefined;
  const figs: string[] = [];
  if (m?.fp32 && m.int8)
    for (const metric of ['auc', 'ndcg@10', 'hitRate@10'] as const) {
      const a = metricOf(m.fp32, null, metric);
      const b = metricOf(m.int8, null, metric);
      // A metric neither precision has (search models report no AUC) gets no chart.
      if (a === undefined && b === undefined) continue;
      figs.push(
        barChart(
          `${metricLabel(metric)}: fp32 vs int8`,
          [
            {
              label: '',
              bars: [
                { name: 'fp32', value: a ?? null, color: PALETTE.fp32 },
                {
                  name: 'int8',
                  value: b ?? null,
                  color: PALETTE.int8,
                  ...(a !== undefined && b !== undefined
                    ? { note: `${formatDelta(b - a, decimalsFor([a, b]) + 1)} vs fp32` }
                    : {}),
                },
              ],
            },
          ],
          { width: 330, ...(metric === 'auc' ? { min: 0.5, max: 1 } : {}) },
        ),
      );
    }
  const sizeTable = sizes
    ? table(
        ['graph', 'fp32', 'int8', 'int8 / fp32'],
        (['score', 'recommend'] as const).map((g) => {
          const a = sizes.fp32?.[g];
          const b = sizes.int8?.[g];
          return [g, formatBytes(a), formatBytes(b), finite(a) && finite(b) && a > 0 ? formatPercent(b / a, 0) : NA];
        }),
        { numeric: [1, 2, 3] },
      )
    : '';
  return { title: 'Quantization effect', body: `${charts(figs)}${sizeTable}` };
}

function gatesSection(s: LifecycleStatus): Section | undefined {
  if (!s.evaluation && !s.infra) return undefined;
  const all: Array<[string, GateResult]> = [
    ...(s.evaluation?.gates ?? []).map((g): [string, GateResult] => ['model', g]),
    ...(s.infra?.gates ?? []).map((g): [string, GateResult] => ['infra', g]),
  ];
  const blessed = (s.evaluation?.blessed ?? true) && (s.infra?.blessed ?? true);
  const failed = all.filter(([, g]) => !g.passed).length;
  return {
    title: `Gates: ${blessed ? 'blessed' : 'not blessed'}`,
    body: all.length
      ? `<p class="note">${all.length - failed} of ${all.length} passed${failed ? `; ${failed} failed` : ''}.</p>${table(
          ['blessing', 'gate', 'result', 'observed', 'threshold', 'why'],
          all.map(([k, g]) => [
            k,
            g.name,
            html(badge(g.passed ? 'pass' : 'FAIL', g.passed ? 'good' : 'bad')),
            finite(g.observed) ? formatValue(g.observed, 4) : NA,
            finite(g.threshold) ? formatValue(g.threshold, 4) : NA,
            g.reason,
          ]),
          { numeric: [3, 4] },
        )}`
      : '<p class="note">No gate configured: blessed without a check.</p>',
  };
}

function reviewSection(s: LifecycleStatus): Section {
  const a = s.approval;
  const body =
    facts([
      ['state', badge(a.state, STATE_TONE[a.state] ?? 'muted')],
      ['reviewer', a.reviewer ? escapeHtml(`${a.reviewer}${a.via ? ` (via ${a.via})` : ''}`) : undefined],
      ['decided', a.decidedAt ? escapeHtml(formatTime(a.decidedAt)) : undefined],
      ['comment', a.comment ? `&ldquo;${escapeHtml(a.comment)}&rdquo;` : undefined],
      ['deadline', a.deadline ? escapeHtml(formatTime(a.deadline)) : undefined],
    ]) +
    (a.refused.length
      ? `<h3>Refused attempts (${a.refused.length})</h3>${table(
          ['who', 'via', 'why refused', 'when'],
          a.refused.map((r) => [r.reviewer, r.via ?? '', r.reason, formatTime(r.at)]),
        )}`
      : '<p class="small">No refused attempt.</p>');
  return { title: 'Review', body };
}

// ---------------------------------------------------------------------------------------------------------------
// Canary

interface WindowRow {
  label: string;
  an: CanaryAnalysis;
}

/** Tagged steps (setWeight, analysis, pause), or the first version's `{weight, bake}` for older runs. */
function labelSteps(steps: RolloutStepState[]) {
  let weight = 0;
  return steps.map((st) => {
    const legacy = st as unknown as { weight?: number; bake?: string };
    if ('setWeight' in st) weight = st.setWeight;
    if (legacy.weight !== undefined) weight = legacy.weight;
    const label = legacy.weight !== undefined ? `${legacy.weight}% for ${legacy.bake}` : describeStep(st);
    return { st, label, weight };
  });
}

const checkOf = (an: CanaryAnalysis, name: CheckResult['name']) => an.checks.find((c) => c.name === name);

/** A variant's figures of one window; null where the analysis does not know them. */
function variantFigures(an: CanaryAnalysis, side: 'stable' | 'canary') {
  const sample: WindowSample | undefined = an.samples?.[side];
  const requests = sample?.requests ?? checkOf(an, 'traffic')?.[side] ?? null;
  const ctrCheck = checkOf(an, 'ctr')?.[side];
  const ctr =
    sample && sample.impressions > 0 ? sample.clicks / sample.impressions : sample ? null : (ctrCheck ?? null);
  const lat = checkOf(an, 'latency-p99')?.[side];
  // A p99 over no request is unknown, not 0 ms (the first window's stable side, a variant that got no traffic).
  const p99 = lat === undefined || lat === null || requests === 0 || (lat === 0 && requests === null) ? null : lat;
  return {
    requests,
    impressions: sample?.impressions ?? null,
    clicks: sample?.clicks ?? null,
    users: sample?.users ?? null,
    ctr,
    p99,
  };
}

function canarySection(s: LifecycleStatus): Section | undefined {
  const r = s.rollout;
  if (!r) return undefined;
  const title = `Canary on fleet ${r.fleet}`;
  if (r.firstDeployment)
    return { title, body: '<p>First deployment of the fleet: straight to stable, nothing to compare with.</p>' };
  const labelled = labelSteps(r.steps);
  const windows: WindowRow[] = labelled.flatMap(({ st, weight }) =>
    (st.analyses ?? []).map((an, k) => ({ label: `${weight}%${k ? ` ext ${k}` : ''}`, an })),
  );
  const parts: string[] = [];
  const current = (r as { currentStepIndex?: number }).currentStepIndex;
  parts.push(
    `<p class="note">Canary at ${formatPercent((r.weight ?? 0) / 100, 0)} of users when the report was written; fleet lock ${escapeHtml(r.lock)}${
      r.previousStable ? `; stable before the rollout: ${escapeHtml(r.previousStable)}` : ''
    }${r.pause ? `; paused (${escapeHtml(r.pause.reason)}) since ${escapeHtml(formatTime(r.pause.since))}` : ''}.</p>`,
  );
  if (windows.length) {
    const fig = windows.map((w) => ({
      w,
      stable: variantFigures(w.an, 'stable'),
      canary: variantFigures(w.an, 'canary'),
    }));
    const pctFmt = (v: number) => formatPercent(v, 2, true);
    parts.push(
      charts([
        barChart(
          'CTR per analysis window',
          fig.map(({ w, stable, canary }) => ({
            label: `${w.label}: ${w.an.verdict}`,
            bars: [
              { name: 'stable', value: stable.ctr, color: PALETTE.stable },
              {
                name: 'canary',
                value: canary.ctr,
                color: PALETTE.canary,
                ...(finite(canary.ctr) && finite(stable.ctr)
                  ? { note: formatRelative(canary.ctr - stable.ctr, stable.ctr) }
                  : {}),
              },
            ],
          })),
          { width: 420, format: pctFmt, caption: 'clicks / impressions' },
        ),
        barChart(
          'p99 latency per analysis window',
          fig.map(({ w, stable, canary }) => ({
            label: w.label,
            bars: [
              { name: 'stable', value: stable.p99, color: PALETTE.stable },
              { name: 'canary', value: canary.p99, color: PALETTE.canary },
            ],
          })),
          { width: 420, format: (v) => `${formatValue(v)} ms`, caption: 'ms; n/a: no request measured' },
        ),
      ]),
    );
    const num = (v: number | null) => (v === null ? NA : formatCount(v));
    const withUsers = fig.some((f) => f.stable.users !== null || f.canary.users !== null);
    parts.push(
      table(
        [
          'window',
          'verdict',
          'requests',
          'impressions',
          'clicks',
          ...(withUsers ? ['users'] : []),
          'CTR',
          'p99',
          'why',
        ],
        fig.map(({ w, stable, canary }) => [
          w.label,
          stateBadge(w.an.verdict),
          `${num(stable.requests)} / ${num(canary.requests)}`,
          `${num(stable.impressions)} / ${num(canary.impressions)}`,
          `${num(stable.clicks)} / ${num(canary.clicks)}`,
          ...(withUsers ? [`${num(stable.users)} / ${num(canary.users)}`] : []),
          `${stable.ctr === null ? NA : pctFmt(stable.ctr)} / ${canary.ctr === null ? NA : pctFmt(canary.ctr)}`,
          `${stable.p99 === null ? NA : `${formatValue(stable.p99)} ms`} / ${canary.p99 === null ? NA : `${formatValue(canary.p99)} ms`}`,
          html(
            w.an.checks
              .filter((c) => c.verdict !== 'pass' || w.an.verdict === 'pass')
              .map((c) => `${badge(c.name, STATE_TONE[c.verdict] ?? 'muted')} ${escapeHtml(c.reason)}`)
              .join('<br>'),
          ),
        ]),
        { numeric: withUsers ? [2, 3, 4, 5, 6, 7] : [2, 3, 4, 5, 6] },
      ),
      '<p class="small">Each figure: stable / canary. At 100 % stable is the last window that had it. p99 n/a: no request measured, or no latency check in that window.</p>',
    );
  } else parts.push('<p class="note">No analysis window finished.</p>');
  parts.push(
    `<h3>Steps</h3>${table(
      ['#', 'step', 'state', 'took', 'extensions'],
      labelled.map(({ st, label }, i) => [
        `${i}${current === i ? ' ◀' : ''}`,
        label,
        stateBadge(st.state),
        st.startedAt && st.endedAt ? formatDuration(seconds(st.startedAt, st.endedAt)) : '',
        st.extensions ? String(st.extensions) : '',
      ]),
    )}`,
  );
  return { title, body: parts.join('') };
}

// ---------------------------------------------------------------------------------------------------------------
// Sample recommendations

async function samplesSection(s: LifecycleStatus, c: Context): Promise<Section | undefined> {
  if (!c.dataset || !c.candidateDir) return undefined;
  const title = 'Sample recommendations: champion and candidate side by side';
  const bundles: Record<string, string> = {};
  if (c.championDir && c.championDir !== c.candidateDir) bundles.champion = c.championDir;
  bundles.candidate = c.candidateDir;
  let res: Awaited<ReturnType<typeof sampleRecommendations>>;
  try {
    res = await sampleRecommendations(c.dataset, bundles, { users: 5, k: 5 });
  } catch (err) {
    return { title, body: `<p class="note">Could not compute samples: ${escapeHtml((err as Error).message)}</p>` };
  }
  const names = Object.keys(bundles).filter((n) => !res.errors[n]);
  const itemCell = (it: SampleItem | undefined): Cell =>
    it
      ? html(
          `${it.next ? '<span class="hit" title="the user did interact with it in the test split">✓ </span>' : ''}${escapeHtml(it.title || it.id)}<br><span class="cat">${escapeHtml(it.category)} · ${escapeHtml(it.id)}</span>`,
        )
      : '';
  const brief = (items: SampleItem[]) =>
    items.length
      ? items
          .map((i) => `${escapeHtml(i.title || i.id)} <span class="cat">(${escapeHtml(i.category)})</span>`)
          .join(', ')
      : 'none';
  const cards = res.users.map((u) => {
    const k = Math.max(0, ...names.map((n) => u.lists[n]?.items.length ?? 0));
    const head = names.map((n) => {
      const l = u.lists[n];
      const label = n === 'champion' && s.champion?.version != null ? `champion v${s.champion.version}` : n;
      return `${label}${l?.fallback ? ' (unknown user: popularity fallback)' : ''}`;
    });
    return `<div class="rec"><b>${escapeHtml(u.id)}</b> · ${badge(u.kind, u.kind === 'new' ? 'info' : 'muted')} · ${formatCount(u.trainEvents)} training interaction${u.trainEvents === 1 ? '' : 's'}
<div class="small">before: ${brief(u.history)}</div><div class="small">next (test): ${brief(u.next)}</div>${table(
      ['#', ...head],
      Array.from({ length: k }, (_, j) => [String(j + 1), ...names.map((n) => itemCell(u.lists[n]?.items[j]))]),
    )}</div>`;
  });
  const errors = Object.entries(res.errors)
    .map(([n, e]) => `<p class="note">${escapeHtml(n)}: could not recommend (${escapeHtml(e)}).</p>`)
    .join('');
  const noNew = res.users.every((u) => u.kind !== 'new')
    ? '<p class="note">No new user in the test split: every user shown is a returning one.</p>'
    : '';
  const same =
    !bundles.champion && s.champion?.bundleId
      ? '<p class="note">The champion bundle is not in the artifact store (or is the candidate): candidate only.</p>'
      : '';
  return {
    title,
    body: `<p class="note">${res.users.length} test users picked by a fixed hash of their ids (returning and new users), top 5 of each model's recommend graph (int8, as served) with the user's training items excluded. ✓ marks an item the user interacted with in the test split.</p>${noNew}${same}${errors}<div class="recs">${cards.join('')}</div>`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Data

function dataSection(s: LifecycleStatus, c: Context): Section | undefined {
  if (!s.data) return undefined;
  const m = c.datasetManifest;
  const parts: string[] = c.datasetError
    ? [`<p class="note">Dataset unreadable: ${escapeHtml(c.datasetError)}</p>`]
    : [];
  const src = m?.source;
  const p = c.shop?.params as
    { seed?: number; users?: number; items?: number; events?: number; dirt?: number } | undefined;
  const source =
    s.data.shopId || src?.kind === 'synthetic'
      ? `synthetic shop${s.data.shopId ? ` <code>${escapeHtml(s.data.shopId)}</code>` : ''}${
          p
            ? ` (seed ${p.seed}, ${formatCount(p.users)} users, ${formatCount(p.items)} items, ${formatCount(p.events)} events, dirt ${formatPercent(p.dirt ?? 0)})`
            : ''
        }`
      : src?.kind === 'movielens'
        ? `MovieLens folder <code>${escapeHtml(src.dir)}</code>`
        : src
          ? `folder of exports <code>${escapeHtml(src.dir)}</code>`
          : NA;
  const v = m?.preprocessing.validation as
    { hard?: number; soft?: number; rows?: Record<string, number>; soft_anomalies?: string[] } | undefined;
  const dropped = m?.preprocessing.dropped as { duplicates?: number; inputEvents?: number } | undefined;
  const vocabUsers = c.dataset ? c.dataset.vocab.users.length - 1 : undefined;
  const vocabItems = c.dataset ? c.dataset.vocab.items.length - 1 : undefined;
  parts.push(
    facts([
      ['source', source],
      [
        'dataset',
        `<code>${escapeHtml(s.data.datasetId)}</code>${m?.createdAt ? ` (made ${escapeHtml(formatTime(m.createdAt))})` : ''}`,
      ],
      [
        'users / items',
        vocabUsers !== undefined ? `${formatCount(vocabUsers)} / ${formatCount(vocabItems)}` : undefined,
      ],
      [
        'events',
        m
          ? `${formatCount(m.counts.events)} clean${(v?.rows?.events ?? dropped?.inputEvents) !== undefined ? ` of ${formatCount(v?.rows?.events ?? dropped?.inputEvents)} rows read` : ''}${
              dropped?.duplicates ? `, ${formatCount(dropped.duplicates)} duplicates dropped` : ''
            }`
          : undefined,
      ],
      [
        'time split',
        m
          ? escapeHtml(
              `train < ${formatTime(new Date(m.split.trainEnd).toISOString())} <= validation < ${formatTime(new Date(m.split.validationEnd).toISOString())} <= test`,
            )
          : undefined,
      ],
    ]),
  );
  // Rows per split (one row per user and item per split), and the test split's new users.
  const rows = {
    train: m?.counts.train,
    validation: m?.counts.validation,
    test: m?.counts.test,
    ...(s.data.rows ?? {}),
  };
  const total = (rows.train ?? 0) + (rows.validation ?? 0) + (rows.test ?? 0);
  let newUsers: string | undefined;
  if (c.dataset) {
    const trained = new Set(c.dataset.splits.train.user);
    const testUsers = new Set(c.dataset.splits.test.user);
    const fresh = [...testUsers].filter((u) => !trained.has(u)).length;
    newUsers = `${formatCount(testUsers.size)} users in test, ${formatCount(fresh)} of them new (${formatPercent(testUsers.size ? fresh / testUsers.size : 0)}): no training interaction`;
  }
  parts.push(
    table(
      ['split', 'rows', 'share'],
      (['train', 'validation', 'test'] as const).map((k) => [
        k,
        formatCount(rows[k]),
        total ? formatPercent((rows[k] ?? 0) / total) : NA,
      ]),
      { numeric: [1, 2] },
    ),
    newUsers ? `<p class="small">${escapeHtml(newUsers)}.</p>` : '',
  );
  if (v) {
    const soft = v.soft_anomalies ?? [];
    parts.push(
      `<h3>Validation: ${v.hard ? badge(`${v.hard} hard`, 'bad') : badge('no hard anomaly', 'good')} ${
        soft.length
          ? badge(`${soft.length} warning${soft.length === 1 ? '' : 's'}`, 'warn')
          : badge('no warning', 'good')
      }</h3>`,
      v.rows
        ? `<p class="small">Rows read: ${Object.entries(v.rows)
            .map(([f, n]) => `${escapeHtml(f)} ${formatCount(n)}`)
            .join(', ')}.</p>`
        : '',
      soft.length ? `<ul>${soft.map((x) => `<li>${escapeHtml(x)}</li>`).join('')}</ul>` : '',
    );
  }
  const drift = s.data.drift as Partial<DriftResult> | undefined;
  if (drift && typeof drift === 'object') {
    const psi = Object.entries(drift.psi ?? {}).sort((a, b) => b[1] - a[1]);
    const level = (x: number) =>
      x > 0.25 ? badge('shift', 'bad') : x >= 0.1 ? badge('moderate', 'warn') : badge('stable', 'good');
    parts.push(
      `<h3>Drift against the champion's data: ${drift.drifted ? badge('drifted', 'bad') : badge('no drift', 'good')}</h3>`,
      `<p class="small">max PSI ${formatFixed(drift.maxPsi, 3)}; new users ${formatPercent(drift.newUserRate)}, new items ${formatPercent(drift.newItemRate)} (not in the champion's data). PSI &lt; 0.1 stable, 0.1 to 0.25 moderate, &gt; 0.25 a shift.${
        drift.reasons?.length ? ` Why: ${escapeHtml(drift.reasons.join('; '))}.` : ''
      }</p>`,
      psi.length
        ? table(
            ['feature', 'PSI', ''],
            psi.slice(0, 8).map(([f, x]) => [f, formatFixed(x, 3), html(level(x))]),
            { numeric: [1] },
          )
        : '',
    );
  } else if (s.champion?.version != null) parts.push('<p class="small">No drift comparison in this run.</p>');
  return { title: 'Data', body: parts.join('') };
}

// ---------------------------------------------------------------------------------------------------------------
// Training and steps

/** One candidate kind of a `kind: auto` run, as the status lists them (read structurally: older statuses lack it). */
interface CandidateRow {
  kind?: string;
  state?: string;
  metrics?: Record<string, number>;
  backend?: string;
  seconds?: number;
  reason?: string;
  chosen?: boolean;
}

/** The kinds an `auto` run trained and chose from, best first as validation NDCG@10 ranks them. */
function candidatesTable(s: LifecycleStatus): string {
  const rows = (s as { candidates?: CandidateRow[] }).candidates;
  if (!Array.isArray(rows) || rows.length === 0) return '';
  const ndcg = (r: CandidateRow) => (finite(r.metrics?.ndcg10) ? r.metrics.ndcg10 : -Infinity);
  const sorted = [...rows].sort((a, b) => ndcg(b) - ndcg(a));
  const d = decimalsFor(rows.map((r) => r.metrics?.ndcg10));
  const dh = decimalsFor(rows.map((r) => r.metrics?.hr10));
  return `<h3>Candidates (${rows.length}): ${escapeHtml(sorted.find((r) => r.chosen)?.kind ?? 'none')} chosen by validation NDCG@10</h3>${table(
    ['kind', 'state', 'validation NDCG@10', 'validation HR@10', 'backend', 'took', 'why'],
    sorted.map((r) => [
      html(`${escapeHtml(r.kind ?? '?')}${r.chosen ? ` ${badge('chosen', 'good')}` : ''}`),
      stateBadge(r.state ?? 'unknown'),
      formatFixed(r.metrics?.ndcg10, d),
      formatFixed(r.metrics?.hr10, dh),
      r.backend ?? '',
      finite(r.seconds) ? formatDuration(r.seconds) : '',
      r.reason ?? '',
    ]),
    { numeric: [2, 3, 5] },
  )}`;
}

function trainingSection(s: LifecycleStatus, c: Context): Section | undefined {
  const t = s.training;
  if (!t) return undefined;
  const h = c.checkpoint?.history ?? [];
  const ep = (r: Record<string, number>) => (r.epoch ?? 0) + 1;
  const secs = h.reduce((a, r) => a + (finite(r.seconds) ? r.seconds : 0), 0);
  const rate = h.at(-1)?.samplesPerSec;
  const body = `${facts([
    ['backend', escapeHtml(t.backend)],
    [
      'task queue',
      escapeHtml(
        `${t.placement.taskQueue}${t.placement.fellBackToCpu ? ' (no GPU worker in time: CPU fallback)' : ''}`,
      ),
    ],
    [
      'epochs',
      `${formatCount(h.length || t.epochsRun)}${t.resumedFromEpoch != null ? ` (resumed after epoch ${t.resumedFromEpoch + 1})` : ''}`,
    ],
    [
      'training time',
      secs
        ? `${escapeHtml(formatDuration(secs))}${finite(rate) ? ` · ${formatCount(rate)} samples/s` : ''}`
        : undefined,
    ],
    [
      'validation',
      Object.entries(t.metrics)
        .map(([k, v]) => `${escapeHtml(TRAINING_METRIC[k] ?? k)} ${escapeHtml(formatValue(v))}`)
        .join(', '),
    ],
  ])}${charts([
    lineChart(
      'Validation NDCG@10 per epoch',
      [{ name: 'NDCG@10', color: PALETTE.candidate, points: h.map((r) => [ep(r), r.ndcg10 ?? NaN]) }],
      { width: 270, xLabel: 'epoch' },
    ),
    lineChart(
      'Validation HR@10 per epoch',
      [{ name: 'HR@10', color: PALETTE.champion, points: h.map((r) => [ep(r), r.hr10 ?? NaN]) }],
      { width: 270, xLabel: 'epoch' },
    ),
    lineChart(
      'Training loss per epoch',
      [{ name: 'loss', color: PALETTE.loss, points: h.map((r) => [ep(r), r.loss ?? NaN]) }],
      { width: 270, xLabel: 'epoch' },
    ),
    lineChart(
      'Seconds per epoch',
      [{ name: 'seconds', color: '#555', points: h.map((r) => [ep(r), r.seconds ?? NaN]) }],
      {
        width: 270,
        xLabel: 'epoch',
        format: (v) => formatDuration(v),
      },
    ),
  ])}`;
  return { title: 'Training', body: `${candidatesTable(s)}${body}` };
}

function stepsSection(s: LifecycleStatus): Section {
  return {
    title: 'Steps',
    body: table(
      ['step', 'stage', 'state', 'took', 'detail'],
      s.steps.map((st) => [
        st.name,
        (st as { stage?: string }).stage ?? '',
        stateBadge(st.state),
        st.endedAt ? formatDuration(seconds(st.startedAt, st.endedAt)) : 'running',
        st.error ? html(`<b>${escapeHtml(st.error.type)}</b>: ${escapeHtml(st.error.message)}`) : (st.detail ?? ''),
      ]),
      { numeric: [3] },
    ),
  };
}

/** Build the report's HTML from a run's status and the artifacts it names. Missing artifacts leave a section out. */
export async function buildRunReport(deps: ActivityDeps, s: LifecycleStatus): Promise<string> {
  const c = await loadContext(deps, s);
  const sections: Array<Section | undefined> = [
    outcomeSection(s),
    c.evaluation ? evaluationSection(s, c.evaluation) : headlineSection(s),
    c.evaluation ? searchSection(c.evaluation) : undefined,
    quantizationSection(s, c.evaluation),
    gatesSection(s),
    s.approval.state === 'not_requested' && !s.approval.refused.length ? undefined : reviewSection(s),
    canarySection(s),
    await samplesSection(s, c),
    dataSection(s, c),
    trainingSection(s, c),
    stepsSection(s),
  ];
  return page(
    `recflow run report: ${s.modelName}${s.registered ? ` ${s.registered.ref}` : ''}`,
    sections.filter((x): x is Section => !!x),
    {
      banner: banner(s, c),
      subtitle: `run ${s.workflowId} · requested by ${s.requestedBy}`,
    },
  );
}

/** Report activities: the HTML run report, an artifact of kind `report`. */
export function createReportActivities(deps: ActivityDeps) {
  return {
    /** Write the run report of a lifecycle run (idempotent: the same status gives the same artifact). */
    async writeRunReport(input: WriteRunReportInput): Promise<WriteRunReportResult> {
      const id = `run-${hashInputs({ status: input.status }).slice(0, 24)}`;
      const page = await buildRunReport(deps, input.status);
      const report = await deps.store.put('report', id, async (dir) => {
        await writeFile(join(dir, 'index.html'), page);
      });
      log.info('run report written', { path: join(report.path, 'index.html') });
      return { report, html: join(report.path, 'index.html') };
    },
  };
}
