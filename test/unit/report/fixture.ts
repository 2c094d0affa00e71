/**
 * A small real world for the run report's tests: two synthetic shops prepared by the real data pipeline (the
 * candidate's data and the champion's, with dirt, so validation warns and drift is measured), two two-tower bundles
 * of random models written by the real exporter on them, both evaluated by the real evaluator, a checkpoint record,
 * and run statuses of the new shape (rolled back after a canary, unchanged, failed) built around those artifacts.
 * The strong baselines (recent popularity, ALS, EASE^R) are added to the evaluation artifact the way the evaluator
 * is to write them (`baselines` by name), with numbers derived from the popularity baseline's: the report must show
 * every baseline present by name, whatever it holds.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeBundle } from '../../../kinds/two-tower/bundle';
import { sizesOf, towerFeatures } from '../../../kinds/two-tower/spec';
import type { EvaluationArtifact } from '../../../activities/evaluate';
import { ArtifactStore } from '../../../lib/artifacts';
import { analyzeWindow, type VariantWindowStats, type WindowCoverage } from '../../../lib/canary/analysis';
import { loadDataset, type LoadedDataset } from '../../../lib/data/dataset';
import { compareDatasets, makeShop, prepareDataset } from '../../../lib/data/pipeline';
import { evaluateBundle, type ModelEvaluation } from '../../../lib/eval/evaluate';
import { blessModel, DEFAULT_GATES } from '../../../lib/eval/gates';
import type { LifecycleStatus, StepRecord } from '../../../lib/lifecycle/types';
import { mulberry32 } from '../../../lib/rng';
import { randomModel, SMALL_CONFIG } from '../../helpers/random-model';

export interface ReportWorld {
  store: ArtifactStore;
  dataset: LoadedDataset;
  candidateBundle: { id: string; path: string };
  championBundle: { id: string; path: string };
  /** Folder of the evaluation artifact (evaluation.json). */
  evaluationDir: string;
  /** Rolled back at the 50 % step; a refused approval; the first window without canary traffic. */
  rolledBack: LifecycleStatus;
  /** The candidate's bundle equals the champion's. */
  unchanged: LifecycleStatus;
  /** Data preparation failed on bad data. */
  failed: LifecycleStatus;
}

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

/** A step record that started at `start` s and took `took` s. */
function step(name: string, stage: StepRecord['stage'], start: number, took: number, detail?: string): StepRecord {
  return { name, stage, state: 'done', startedAt: at(start), endedAt: at(start + took), ...(detail ? { detail } : {}) };
}

async function preparedShop(store: ArtifactStore, seed: number, users: number) {
  const { shop } = await makeShop(store, { seed, users, items: 150, events: 6000, dirt: 0.03 });
  const res = await prepareDataset(store, { source: { kind: 'shop', id: shop.id } });
  return { shopId: shop.id, dataset: res.dataset, rows: res.rows, loaded: await loadDataset(res.dataset.path) };
}

async function putBundle(store: ArtifactStore, ds: LoadedDataset, id: string, seed: number) {
  const sizes = sizesOf(ds);
  const model = randomModel({ sizes, config: SMALL_CONFIG, seed });
  return store.put('bundle', id, async (dir) => {
    await writeBundle(dir, {
      modelName: 'shop-recs',
      datasetId: ds.manifest.id,
      checkpointId: `ck-${id}`,
      weights: model.weights,
      features: towerFeatures(ds),
      meta: { config: model.config, sizes },
      vocab: { users: ds.vocab.users, items: ds.vocab.items },
      popularity: ds.items.popularity,
    });
  });
}

/** Scale every metric of an evaluation (a derived baseline for the fixture). */
function scaled(
  ev: ModelEvaluation,
  f: number,
): ModelEvaluation & { config: Record<string, unknown>; fitSeconds: number } {
  const s = (m: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(m).map(([k, v]) => [
        k,
        k === 'users' || k === 'pairs' ? v : k === 'auc' ? Math.min(1, v + (f - 1) / 10) : Math.min(1, v * f),
      ]),
    );
  return {
    overall: s(ev.overall),
    segments: Object.fromEntries(Object.entries(ev.segments).map(([k, v]) => [k, s(v)])),
    config: { factor: f },
    fitSeconds: 0.1,
  };
}

const variant = (v: Partial<VariantWindowStats>): VariantWindowStats => ({
  version: 'shop-recs@v2',
  requests: 0,
  errors: 0,
  p50Ms: 0,
  p99Ms: 0,
  impressions: 0,
  clicks: 0,
  ...v,
});

/** Build the world under `root` (about 5 s on a 2-core machine). */
export async function buildReportWorld(root: string): Promise<ReportWorld> {
  const store = new ArtifactStore(join(root, 'artifacts'));
  const cand = await preparedShop(store, 21, 300);
  const champ = await preparedShop(store, 22, 260);
  const candidateBundle = await putBundle(store, cand.loaded, 'bundle-candidate', 3);
  const championBundle = await putBundle(store, champ.loaded, 'bundle-champion', 4);
  const options = { maxUsers: 250 };
  const candidate = await evaluateBundle(candidateBundle.path, cand.loaded, options);
  const champion = await evaluateBundle(championBundle.path, cand.loaded, options);
  // Per-user NDCG@10, as main's evaluator keeps it for the champion gate's paired bootstrap (same user order in
  // every model of a split): values around each model's overall NDCG@10, seeded.
  const perUser = (ev: ModelEvaluation, seed: number) => {
    const r = mulberry32(seed);
    const n = ev.overall.users ?? 0;
    const mean = ev.overall['ndcg@10'] ?? 0;
    const raw = Array.from({ length: n }, () => (r() < 0.3 ? r() * mean * 6 : 0));
    const m = raw.reduce((a, b) => a + b, 0) / Math.max(1, n);
    return { users: n, 'ndcg@10': raw.map((x) => (m ? (x * mean) / m : 0)) };
  };
  Object.assign(candidate.models.int8!, { perUser: perUser(candidate.models.int8!, 1) });
  Object.assign(champion.models.int8!, { perUser: perUser(champion.models.int8!, 2) });
  const withBaselines = {
    ...candidate,
    baselines: {
      recentPopularity: scaled(candidate.popularity, 1.1),
      als: scaled(candidate.popularity, 1.25),
      ease: scaled(candidate.popularity, 1.3),
    },
    skippedBaselines: { itemKnn: 'not configured' },
  };
  const blessing = blessModel(candidate, champion, DEFAULT_GATES);
  const artifact: EvaluationArtifact = {
    bundleId: candidateBundle.id,
    datasetId: cand.dataset.id,
    championBundleId: championBundle.id,
    candidate: withBaselines,
    champion,
    blessing,
  };
  const evaluation = await store.put('evaluation', 'eval-fixture', (dir) =>
    writeFile(join(dir, 'evaluation.json'), JSON.stringify(artifact)),
  );
  const history = [0, 1, 2, 3].map((e) => ({
    epoch: e,
    loss: 0.69 - 0.05 * e,
    ndcg10: 0.02 + 0.004 * e - 0.0008 * e * e,
    hr10: 0.09 + 0.012 * e,
    seconds: 0.919 + e * 0.05,
    samples: 40_000,
    samplesPerSec: 43_500,
  }));
  const checkpoint = await store.put('checkpoint', 'ck-fixture', async (dir) => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'checkpoint.json'), JSON.stringify({ backend: 'wasm', history }));
  });
  const drift = await compareDatasets(store, { baseId: champ.dataset.id, candidateId: cand.dataset.id });

  // Canary windows analysed by the real analysis: at 10 % the first window saw no canary request (replicas still
  // loading: inconclusive, p99 unknown), its extension passed; at 50 % the canary's CTR fell: fail.
  const coverage: WindowCoverage = { expected: 2, covered: 2, missing: [] };
  const first = analyzeWindow(
    variant({ requests: 640, p50Ms: 2.1, p99Ms: 9.4, impressions: 6400, clicks: 1050 }),
    variant({ version: 'shop-recs@v3' }),
    {},
    { coverage },
  );
  const second = analyzeWindow(
    variant({ requests: 2300, errors: 1, p50Ms: 2.3, p99Ms: 10.7, impressions: 23_000, clicks: 3860 }),
    variant({ version: 'shop-recs@v3', requests: 260, p50Ms: 2.6, p99Ms: 12.2, impressions: 2600, clicks: 433 }),
    {},
    { coverage },
  );
  const third = analyzeWindow(
    variant({ requests: 1400, errors: 2, p50Ms: 2.2, p99Ms: 11.1, impressions: 14_000, clicks: 2380 }),
    variant({ version: 'shop-recs@v3', requests: 1380, p50Ms: 2.5, p99Ms: 13.9, impressions: 13_800, clicks: 1420 }),
    {},
    { coverage },
  );
  const steps: StepRecord[] = [
    step('generateShop', 'data', 0, 0.031, `shop ${cand.shopId}`),
    step('getAlias', 'data', 0.04, 0.012, 'champion shop-recs@v2'),
    step('prepareDataset', 'data', 0.06, 1.42, `dataset ${cand.dataset.id}`),
    step('compareDatasets', 'data', 1.5, 0.08, `max PSI ${drift.maxPsi.toFixed(3)}`),
    step('trainModel', 'train', 1.6, 123.4, 'wasm on recflow-gpu: ndcg@10 0.0266'),
    step('exportModel', 'export', 125, 0.919, `bundle ${candidateBundle.id}`),
    step('compareBundles', 'export', 126, 0.02, 'differs from the champion'),
    step('evaluateModel', 'evaluate', 126.1, 3.7, blessing.blessed ? 'blessed' : 'not blessed'),
    step('checkServingHealth', 'evaluate', 130, 0.42, 'p99 0.29 ms'),
    step('registerModel', 'register', 130.5, 0.05, 'shop-recs@v3'),
  ];
  const rolledBack: LifecycleStatus = {
    workflowId: 'lifecycle-shop-recs-fixture',
    modelName: 'shop-recs',
    kind: 'two-tower',
    requestedBy: 'alice',
    stage: 'done',
    steps: [...steps, step('applyFleetState', 'canary', 3700, 0.3), step('applyFleetState', 'rolling_back', 4030, 0.4)],
    data: { shopId: cand.shopId, datasetId: cand.dataset.id, rows: cand.rows, drift: { ...drift } },
    training: {
      checkpointId: checkpoint.id,
      backend: 'wasm',
      placement: { taskQueue: 'recflow-gpu', fellBackToCpu: false },
      metrics: { ndcg10: 0.0266, hr10: 0.126, loss: 0.54 },
      epochsRun: 4,
      resumedFromEpoch: null,
    },
    bundle: {
      id: candidateBundle.id,
      path: candidateBundle.path,
      sizes: JSON.parse(readFileSync(join(candidateBundle.path, 'bundle.json'), 'utf8')).sizes,
    },
    evaluation: { id: evaluation.id, blessed: blessing.blessed, gates: blessing.gates, headline: {} },
    infra: {
      blessed: true,
      p99Ms: 0.29,
      gates: [
        {
          name: 'infra:loads',
          passed: true,
          observed: null,
          threshold: null,
          reason: 'int8 graphs load in a fresh session',
        },
        { name: 'infra:p99', passed: true, observed: 0.292127, threshold: 50, reason: 'p99 0.292 ms, budget 50 ms' },
      ],
    },
    champion: { version: 2, bundleId: championBundle.id },
    registered: { model: 'shop-recs', version: 3, ref: 'shop-recs@v3' },
    approval: {
      state: 'approved',
      reviewer: 'bob',
      comment: 'NDCG up on returning users; watch new users',
      via: 'update',
      decidedAt: at(3600),
      deadline: at(3600 + 72 * 3600),
      refused: [
        {
          reviewer: 'alice',
          reason: 'the requester cannot approve their own run (four-eyes rule)',
          at: at(200),
          via: 'update',
        },
        {
          reviewer: 'mallory',
          reason: 'mallory is not an allowed reviewer (reviewers: bob, carol)',
          at: at(300),
          via: 'signal',
        },
      ],
    },
    rollout: {
      fleet: 'default',
      lock: 'released',
      currentStepIndex: 3,
      weight: 0,
      previousStable: 'shop-recs@v2',
      steps: [
        { setWeight: 10, state: 'passed', startedAt: at(3700), endedAt: at(3701) },
        {
          analysis: { duration: '5 minutes' },
          state: 'passed',
          extensions: 1,
          analyses: [first, second],
          startedAt: at(3701),
          endedAt: at(4301),
        },
        { setWeight: 50, state: 'passed', startedAt: at(4301), endedAt: at(4302) },
        {
          analysis: { duration: '5 minutes' },
          state: 'failed',
          extensions: 0,
          analyses: [third],
          startedAt: at(4302),
          endedAt: at(4602),
        },
        { setWeight: 100, state: 'pending' },
        { analysis: { duration: '5 minutes' }, state: 'pending' },
      ],
    },
    outcome: 'rolled_back',
    reason: `canary analysis failed at 50%: ${third.summary}`,
  };
  // A `kind: auto` run lists every candidate kind it trained (the status field of main's auto selection).
  Object.assign(rolledBack, {
    candidates: [
      { kind: 'als', state: 'trained', metrics: { ndcg10: 0.0241, hr10: 0.113 }, backend: 'typescript', seconds: 2.1 },
      {
        kind: 'two-tower',
        state: 'trained',
        metrics: { ndcg10: 0.0266, hr10: 0.126, loss: 0.54 },
        backend: 'wasm',
        seconds: 123.4,
        chosen: true,
      },
      { kind: 'ease', state: 'skipped', reason: 'catalogue of 20,000 items above the EASE^R cap of 15,000' },
    ],
  });
  const unchanged: LifecycleStatus = {
    ...rolledBack,
    workflowId: 'lifecycle-shop-recs-unchanged',
    steps: steps
      .slice(0, 7)
      .map((s) => (s.name === 'compareBundles' ? { ...s, detail: 'identical to the champion' } : s)),
    evaluation: undefined,
    infra: undefined,
    registered: undefined,
    approval: { state: 'not_requested', refused: [] },
    rollout: undefined,
    outcome: 'unchanged',
    reason: "nothing new: the candidate's bundle equals shop-recs@v2's (same graphs and vocabularies)",
  };
  const cause = {
    type: 'InvalidData',
    message: "events.csv row 2, column item_id, value 'SKU-000378': unknown item id (not in items.csv); 12% of rows",
    nonRetryable: true,
  };
  const failed: LifecycleStatus = {
    workflowId: 'lifecycle-shop-recs-failed',
    modelName: 'shop-recs',
    kind: 'two-tower',
    requestedBy: 'alice',
    stage: 'done',
    steps: [
      step('getAlias', 'data', 0, 0.01),
      { ...step('prepareDataset', 'data', 0.02, 2.5), state: 'failed', error: cause, detail: cause.message },
    ],
    approval: { state: 'not_requested', refused: [] },
    outcome: 'failed',
    reason: `prepareDataset failed: ${cause.message}`,
    error: { ...cause, step: 'prepareDataset' },
  };
  return {
    store,
    dataset: cand.loaded,
    candidateBundle,
    championBundle,
    evaluationDir: evaluation.path,
    rolledBack,
    unchanged,
    failed,
  };
}

/** The status the first version of the workflow passed to writeRunReport, from a recorded history. */
export function legacyStatus(): LifecycleStatus {
  const file = resolve(__dirname, '..', '..', 'fixtures', 'histories', 'modelLifecycleWorkflow-v1-rolled-back.json');
  const h = JSON.parse(readFileSync(file, 'utf8')) as {
    events: Array<{
      activityTaskScheduledEventAttributes?: {
        activityType: { name: string };
        input: { payloads: Array<{ data: string }> };
      };
    }>;
  };
  for (const e of h.events) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType.name === 'writeRunReport')
      return (
        JSON.parse(Buffer.from(a.input.payloads[0]!.data, 'base64').toString('utf8')) as { status: LifecycleStatus }
      ).status;
  }
  throw new Error(`${file}: no writeRunReport input`);
}
