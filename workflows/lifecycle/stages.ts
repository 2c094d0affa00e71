/**
 * The lifecycle's stages before the review, each a short function over the run: which activities it calls (by
 * their wire names, the step names in the status and the report) and what it records in the status.
 *
 * | stage    | activities                                         |
 * | -------- | -------------------------------------------------- |
 * | data     | generateShop, sweepAbandonedVersions, getAlias, prepareDataset, compareDatasets |
 * | train    | hyperparameterSearchWorkflow (child), trainModel per candidate kind |
 * | export   | exportModel, compareBundles                        |
 * | evaluate | evaluateModel, checkServingHealth                  |
 * | register | registerModel                                      |
 */
import { ApplicationFailure, executeChild, isCancellation, log } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { ExportModelResult } from '../../activities/export';
import type { TrainModelResult } from '../../activities/training';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { AUTO_CANDIDATES, AUTO_CONFIG_KIND, KIND_INFO, type KindName } from '../../lib/kinds';
import type { Precision } from '../../lib/bundle';
import type { CandidateRecord, Placement } from '../../lib/lifecycle/types';
import { onGpuOrCpu } from '../gpu-fallback';
import type { hyperparameterSearchWorkflow } from '../hyperparameter-search';
import { dataActs, heavy, quick, trainingActs } from './activities';
import { rootCause, type LifecycleRun } from './run';

export interface PreparedData {
  datasetId: string;
  shopId?: string;
}

/** data: the source (a synthetic shop is generated first), the champion, the dataset, drift against the champion's. */
export async function prepareData(run: LifecycleRun): Promise<PreparedData> {
  run.setStage('data');
  const source = run.input.data ?? { kind: 'synthetic' as const };
  let shopId: string | undefined;
  let dataSource: { kind: 'shop'; id: string } | { kind: 'dir'; path: string; format?: 'recflow' | 'movielens' };
  if (source.kind === 'synthetic') {
    const { kind: _kind, ...params } = source;
    const shop = await run.step(
      'generateShop',
      () => dataActs.generateShop(params),
      (r) => `shop ${r.shop.id}`,
    );
    shopId = shop.shop.id;
    dataSource = { kind: 'shop', id: shopId };
  } else {
    if (source.kind === 'shop') shopId = source.id;
    dataSource = source;
  }
  await run.step(
    'sweepAbandonedVersions',
    () => quick.sweepAbandonedVersions({ model: run.modelName }),
    (r) =>
      r.swept.length
        ? r.swept.map((x) => `v${x.version} ${x.from} -> ${x.to} (run ${x.runStatus})`).join(', ')
        : 'none',
  );
  const champion = await quick.getAlias({ model: run.modelName, alias: 'champion' });
  run.champion = { version: champion.version, bundleId: champion.bundleId, datasetId: champion.datasetId };
  run.status.champion = { version: champion.version, bundleId: champion.bundleId };
  const prepared = await run.step(
    'prepareDataset',
    () => dataActs.prepareDataset({ source: dataSource }),
    (r) => `dataset ${r.dataset.id}: ${r.rows.train}/${r.rows.validation}/${r.rows.test} rows`,
  );
  const datasetId = prepared.dataset.id;
  run.status.data = { shopId, datasetId, rows: prepared.rows };
  if (champion.datasetId && champion.datasetId !== datasetId) {
    const drift = await run.step('compareDatasets', () =>
      quick.compareDatasets({ baseId: champion.datasetId!, candidateId: datasetId }),
    );
    run.status.data.drift = { ...drift };
  }
  return { datasetId, shopId };
}

export interface Trained {
  result: TrainModelResult;
  placement: Placement;
}

const BUDGET_DEFAULT = '2 hours';

/**
 * train: an optional hyperparameter search (child workflow, two-tower), then the final training of the run's kind,
 * or for `auto` of every candidate within the budget, the best by validation NDCG@10 kept (the others recorded).
 */
export async function train(run: LifecycleRun, data: PreparedData): Promise<Trained> {
  run.setStage('train');
  const t = run.input.train ?? {};
  const kinds: KindName[] = run.kind === 'auto' ? [...(t.candidates ?? AUTO_CANDIDATES)] : [run.kind];
  const budgetMs = msToNumber(t.budget ?? BUDGET_DEFAULT);
  const started = Date.now();
  const records: CandidateRecord[] = kinds.map((kind) => ({ kind, state: 'skipped' }));
  run.status.candidates = records;
  let best: Trained | undefined;
  for (const rec of records) {
    if (best && Date.now() - started > budgetMs) {
      rec.reason = `the training budget of ${String(t.budget ?? BUDGET_DEFAULT)} was spent`;
      continue;
    }
    const t0 = Date.now();
    try {
      const trained = await trainKind(run, data, rec.kind);
      Object.assign(rec, {
        state: 'trained',
        checkpointId: trained.result.checkpoint.id,
        metrics: { ...trained.result.metrics },
        backend: trained.result.backend,
        seconds: (Date.now() - t0) / 1000,
      });
      if (!best || trained.result.metrics.ndcg10 > best.result.metrics.ndcg10) best = trained;
    } catch (err) {
      if (kinds.length === 1 || isCancellation(err)) throw err;
      // A candidate that cannot train here (EASE^R above its catalogue limit, a kind this worker lacks) is skipped.
      const cause = rootCause(err);
      Object.assign(rec, {
        state: 'failed',
        reason: `${cause.type}: ${cause.message}`,
        seconds: (Date.now() - t0) / 1000,
      });
      log.warn('candidate kind failed', { kind: rec.kind, error: cause.message });
    }
  }
  if (!best)
    throw ApplicationFailure.nonRetryable(
      `no candidate kind trained: ${records.map((r) => `${r.kind}: ${r.reason ?? r.state}`).join('; ')}`,
      'TrainingFailed',
    );
  for (const rec of records) rec.chosen = rec.kind === best.result.kind;
  run.kind = best.result.kind;
  run.status.kind = best.result.kind;
  run.status.training = {
    checkpointId: best.result.checkpoint.id,
    backend: best.result.backend,
    placement: best.placement,
    metrics: { ...best.result.metrics },
    epochsRun: best.result.epochsRun,
    resumedFromEpoch: best.result.resumedFromEpoch,
  };
  return best;
}

/** Train one kind (its hyperparameter search first, when asked and the kind has a search space). */
async function trainKind(run: LifecycleRun, data: PreparedData, kind: KindName): Promise<Trained> {
  const t = run.input.train ?? {};
  let config =
    kind === AUTO_CONFIG_KIND || run.kind !== 'auto' ? { ...t.config, ...t.configs?.[kind] } : { ...t.configs?.[kind] };
  let seed = t.seed;
  if (t.search && t.search.trials > 0 && kind === 'two-tower') {
    const search = t.search;
    const searchId = `${run.workflowId}-search`;
    const searchSeed = search.seed ?? t.seed ?? 0;
    run.status.search = { workflowId: searchId, trials: search.trials };
    const found = await run.step(
      'hyperparameterSearchWorkflow',
      () =>
        executeChild<typeof hyperparameterSearchWorkflow>('hyperparameterSearchWorkflow', {
          workflowId: searchId,
          taskQueue: CPU_TASK_QUEUE,
          args: [
            {
              kind,
              datasetId: data.datasetId,
              trials: search.trials,
              maxParallel: search.maxParallel,
              seed: searchSeed,
              baseConfig: config,
              gpuScheduleToStartTimeout: t.gpuScheduleToStartTimeout,
            },
          ],
        }),
      (r) => `best trial ${r.best.trial}: ndcg@10 ${r.best.metrics?.ndcg10.toFixed(4) ?? '-'}`,
    );
    // The final training repeats the best trial's inputs, so it reuses that trial's checkpoint (idempotent).
    config = { ...config, ...found.best.config };
    seed = searchSeed + found.best.trial;
  }
  const heartbeatTimeout = t.heartbeatTimeout ?? '1 minute';
  const input = { kind, datasetId: data.datasetId, config, seed, label: run.workflowId };
  return run.step(
    'trainModel',
    () =>
      KIND_INFO[kind].trainsOnGpu
        ? onGpuOrCpu('trainModel', (queue) =>
            trainingActs(queue, t.gpuScheduleToStartTimeout ?? '2 minutes', heartbeatTimeout).trainModel(input),
          )
        : trainingActs(CPU_TASK_QUEUE, '1 hour', heartbeatTimeout)
            .trainModel(input)
            .then((result) => ({ result, placement: { taskQueue: CPU_TASK_QUEUE, fellBackToCpu: false } })),
    (r) =>
      `${r.result.kind} on ${r.result.backend}, ${r.placement.taskQueue}${r.placement.fellBackToCpu ? ' (GPU fallback)' : ''}: validation ndcg@10 ${r.result.metrics.ndcg10.toFixed(4)}`,
  );
}

export interface Exported {
  bundle: ExportModelResult['bundle'];
  /** What will serve: the input's `rollout.precision`, else the export's measured choice (int8 where it pays). */
  precision: Precision;
  /** The candidate is the champion, byte for byte (same graphs, same vocabularies): nothing new to ship. */
  sameAsChampion?: string;
}

/** export: the kind's ONNX bundle, and whether it is the champion's all over again. */
export async function exportBundle(run: LifecycleRun, data: PreparedData, trained: Trained): Promise<Exported> {
  run.setStage('export');
  const exported = await run.step(
    'exportModel',
    () =>
      heavy.exportModel({
        kind: trained.result.kind,
        checkpointId: trained.result.checkpoint.id,
        datasetId: data.datasetId,
        modelName: run.modelName,
      }),
    (r) => `bundle ${r.bundle.id}${r.reused ? ' (reused)' : ''}`,
  );
  run.status.bundle = { id: exported.bundle.id, path: exported.bundle.path, sizes: exported.sizes };
  let sameAsChampion: string | undefined;
  const championBundle = run.champion.bundleId;
  if (championBundle) {
    const cmp = await run.step(
      'compareBundles',
      () => quick.compareBundles({ bundleId: exported.bundle.id, otherBundleId: championBundle }),
      (r) => (r.identical ? 'identical to the champion' : 'differs from the champion'),
    );
    if (cmp.identical)
      sameAsChampion = `the candidate's bundle equals ${run.modelName}@v${run.champion.version}'s (${cmp.reason})`;
  }
  const precision = run.input.rollout?.precision ?? exported.servingPrecision?.preferred ?? 'int8';
  return { bundle: exported.bundle, precision, sameAsChampion };
}

export interface Verdict {
  blessed: boolean;
  evaluationId: string;
  /** Why the gates refused, when they did. */
  reason: string;
}

/** evaluate: the model blessing (the candidate against the champion and the baselines) and the infra blessing. */
export async function evaluate(run: LifecycleRun, data: PreparedData, exported: Exported): Promise<Verdict> {
  run.setStage('evaluate');
  const evaluation = await run.step(
    'evaluateModel',
    () =>
      heavy.evaluateModel({
        bundleId: exported.bundle.id,
        datasetId: data.datasetId,
        championBundleId: run.champion.bundleId ?? undefined,
        gates: run.input.gates,
        precision: exported.precision,
        precisionFixed: run.input.rollout?.precision !== undefined,
      }),
    (r) =>
      r.blessed
        ? 'blessed'
        : `not blessed: ${r.gates
            .filter((g) => !g.passed)
            .map((g) => g.name)
            .join(', ')}`,
  );
  // int8 that would have lost too much quality serves as fp32 (the gates said so).
  exported.precision = evaluation.precision ?? exported.precision;
  run.status.evaluation = {
    id: evaluation.evaluation.id,
    blessed: evaluation.blessed,
    gates: evaluation.gates,
    headline: evaluation.headline,
  };
  const infra = await run.step(
    'checkServingHealth',
    () =>
      heavy.checkServingHealth({
        bundleId: exported.bundle.id,
        championBundleId: run.champion.bundleId ?? undefined,
        precision: exported.precision,
      }),
    (r) => (r.blessed ? `p99 ${r.p99Ms?.toFixed(2)} ms` : 'failed'),
  );
  run.status.infra = { blessed: infra.blessed, p99Ms: infra.p99Ms, gates: infra.gates };
  const failed = [...evaluation.gates, ...infra.gates].filter((g) => !g.passed);
  return {
    blessed: evaluation.blessed && infra.blessed,
    evaluationId: evaluation.evaluation.id,
    reason: failed.map((g) => `${g.name} (${g.reason})`).join('; '),
  };
}

/** register: a new immutable version with its lineage. */
export async function register(
  run: LifecycleRun,
  exported: Exported,
  verdict: Verdict,
  trained: Trained,
): Promise<void> {
  run.setStage('register');
  const registered = await run.step(
    'registerModel',
    () =>
      quick.registerModel({
        modelName: run.modelName,
        bundleId: exported.bundle.id,
        evaluationId: verdict.evaluationId,
        config: {
          kind: trained.result.kind,
          candidates: run.status.candidates,
          train: run.input.train ?? {},
          placement: trained.placement,
          backend: trained.result.backend,
        },
      }),
    (r) => r.ref,
  );
  run.status.registered = { model: registered.model, version: registered.version, ref: registered.ref };
  run.phase = 'review';
}
