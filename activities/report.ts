import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '@temporalio/activity';
import { hashInputs, type ArtifactRef } from '../lib/artifacts';
import { barChart, escapeHtml, lineChart, page, PALETTE, table, type BarGroup } from '../lib/report/html';
import { describeStep } from '../lib/lifecycle/steps';
import type { LifecycleStatus } from '../lib/lifecycle/types';
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

const METRICS = ['auc', 'ndcg@10', 'hitRate@10', 'recall@10', 'mrr'];

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Build the report's HTML from a run's status and the artifacts it names. Missing artifacts leave a section out. */
export async function buildRunReport(deps: ActivityDeps, s: LifecycleStatus): Promise<string> {
  const sections: Array<{ title: string; body: string }> = [];
  sections.push({
    title: 'Outcome',
    body: `<p class="outcome">${escapeHtml(s.outcome ?? s.stage)}${s.registered ? ` &middot; ${escapeHtml(s.registered.ref)}` : ''}</p>
<p>${escapeHtml(s.reason ?? '')}</p><p>Run <code>${escapeHtml(s.workflowId)}</code>, requested by ${escapeHtml(s.requestedBy)}.</p>
${table(
  ['step', 'state', 'detail', 'seconds'],
  s.steps.map((st) => [
    st.name,
    st.state,
    st.detail ?? '',
    st.endedAt ? (Date.parse(st.endedAt) - Date.parse(st.startedAt)) / 1000 : '',
  ]),
)}`,
  });

  if (s.training) {
    const ck = await deps.store.find('checkpoint', s.training.checkpointId);
    const meta = ck
      ? await readJson<{ history?: Array<Record<string, number>>; backend?: string }>(join(ck.path, 'checkpoint.json'))
      : undefined;
    const h = meta?.history ?? [];
    const ep = (r: Record<string, number>) => (r.epoch ?? 0) + 1;
    sections.push({
      title: 'Training',
      body: `<p>Backend <b>${escapeHtml(s.training.backend)}</b> on <b>${escapeHtml(s.training.placement.taskQueue)}</b>${
        s.training.placement.fellBackToCpu ? ' (no GPU worker in time: CPU fallback)' : ''
      }; ${h.length} epochs${s.training.resumedFromEpoch != null ? `, resumed after epoch ${s.training.resumedFromEpoch}` : ''}.</p>
${lineChart('Validation metrics per epoch', [
  { name: 'NDCG@10', color: PALETTE.candidate, points: h.map((r) => [ep(r), r.ndcg10 ?? NaN]) },
  { name: 'HR@10', color: PALETTE.champion, points: h.map((r) => [ep(r), r.hr10 ?? NaN]) },
])}${lineChart('Training loss per epoch', [{ name: 'loss', color: PALETTE.loss, points: h.map((r) => [ep(r), r.loss ?? NaN]) }])}`,
    });
  }

  if (s.evaluation) {
    const ev = await deps.store.find('evaluation', s.evaluation.id);
    const art = ev ? await readJson<EvaluationArtifact>(join(ev.path, 'evaluation.json')) : undefined;
    if (art) {
      const cand = art.candidate.models;
      const champ = art.champion?.models;
      const groups: BarGroup[] = METRICS.map((m) => ({
        label: m,
        bars: [
          { name: 'candidate int8', value: cand.int8?.overall[m] ?? NaN, color: PALETTE.candidate },
          ...(champ ? [{ name: 'champion int8', value: champ.int8?.overall[m] ?? NaN, color: PALETTE.champion }] : []),
          { name: 'popularity', value: art.candidate.popularity.overall[m] ?? NaN, color: PALETTE.popularity },
        ],
      }));
      const quant: BarGroup[] = METRICS.map((m) => ({
        label: m,
        bars: [
          { name: 'fp32', value: cand.fp32?.overall[m] ?? NaN, color: PALETTE.fp32 },
          { name: 'int8', value: cand.int8?.overall[m] ?? NaN, color: PALETTE.int8 },
        ],
      }));
      const sizes = s.bundle?.sizes as Record<string, { score: number; recommend: number }> | undefined;
      sections.push({
        title: 'Evaluation against the champion and the baseline',
        body: barChart('Test split metrics', groups, { width: 620 }),
      });
      sections.push({
        title: 'Quantization effect',
        body: `${barChart('fp32 vs int8 (candidate)', quant, { width: 620 })}${
          sizes
            ? table(
                ['graph', 'fp32 MB', 'int8 MB'],
                (['score', 'recommend'] as const).map((g) => [
                  g,
                  (sizes.fp32?.[g] ?? 0) / 1e6,
                  (sizes.int8?.[g] ?? 0) / 1e6,
                ]),
              )
            : ''
        }`,
      });
    }
    const gates = [...s.evaluation.gates, ...(s.infra?.gates ?? [])];
    sections.push({
      title: `Gates: ${s.evaluation.blessed && (s.infra?.blessed ?? true) ? 'blessed' : 'not blessed'}`,
      body: table(
        ['gate', 'result', 'observed', 'threshold', 'why'],
        gates.map((g) => [g.name, g.passed ? 'pass' : 'FAIL', g.observed ?? '', g.threshold ?? '', g.reason]),
      ),
    });
  }

  const a = s.approval;
  sections.push({
    title: 'Review',
    body:
      table(
        ['state', 'reviewer', 'comment', 'via', 'decided at', 'deadline'],
        [[a.state, a.reviewer ?? '', a.comment ?? '', a.via ?? '', a.decidedAt ?? '', a.deadline ?? '']],
      ) +
      (a.refused.length
        ? table(
            ['refused', 'why', 'at'],
            a.refused.map((r) => [r.reviewer, r.reason, r.at]),
          )
        : ''),
  });

  if (s.rollout) {
    const r = s.rollout;
    // Steps are tagged (setWeight, analysis, pause), or the first version's {weight, bake} for older runs.
    let weight = 0;
    const labelled = r.steps.map((st) => {
      const legacy = st as unknown as { weight?: number; bake?: string };
      if ('setWeight' in st) weight = st.setWeight;
      if (legacy.weight !== undefined) weight = legacy.weight;
      const label = legacy.weight !== undefined ? `${legacy.weight}% for ${legacy.bake}` : describeStep(st);
      return { st, label, weight };
    });
    const windows = labelled.flatMap(({ st, weight: w }) =>
      (st.analyses ?? []).map((an, k) => ({ label: `${w}%${k ? ` +${k}` : ''}`, an })),
    );
    const check = (an: (typeof windows)[number]['an'], name: string) => an.checks.find((c) => c.name === name);
    const ctr: BarGroup[] = windows.map((w) => ({
      label: w.label,
      bars: [
        { name: 'stable CTR', value: check(w.an, 'ctr')?.stable ?? NaN, color: PALETTE.stable },
        { name: 'canary CTR', value: check(w.an, 'ctr')?.canary ?? NaN, color: PALETTE.canary },
      ],
    }));
    const lat: BarGroup[] = windows.map((w) => ({
      label: w.label,
      bars: [
        { name: 'stable p99 ms', value: check(w.an, 'latency-p99')?.stable ?? NaN, color: PALETTE.stable },
        { name: 'canary p99 ms', value: check(w.an, 'latency-p99')?.canary ?? NaN, color: PALETTE.canary },
      ],
    }));
    sections.push({
      title: `Canary on fleet ${r.fleet}`,
      body: r.firstDeployment
        ? '<p>First deployment of the fleet: straight to stable, nothing to compare with.</p>'
        : `${barChart('CTR per analysis window', ctr)}${barChart('p99 latency per analysis window', lat)}${table(
            ['step', 'state', 'extensions', 'verdict'],
            labelled.map(({ st, label }) => [label, st.state, st.extensions ?? '', st.analyses?.at(-1)?.summary ?? '']),
          )}`,
    });
  }
  return page(`recflow run report: ${s.modelName}${s.registered ? ` ${s.registered.ref}` : ''}`, sections);
}

/** Report activities: the HTML run report, an artifact of kind `report`. */
export function createReportActivities(deps: ActivityDeps) {
  return {
    /** Write the run report of a lifecycle run (idempotent: the same status gives the same artifact). */
    async writeRunReport(input: WriteRunReportInput): Promise<WriteRunReportResult> {
      const id = `run-${hashInputs({ status: input.status }).slice(0, 24)}`;
      const html = await buildRunReport(deps, input.status);
      const report = await deps.store.put('report', id, async (dir) => {
        await writeFile(join(dir, 'index.html'), html);
      });
      log.info('run report written', { path: join(report.path, 'index.html') });
      return { report, html: join(report.path, 'index.html') };
    },
  };
}
