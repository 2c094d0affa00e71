import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context, log } from '@temporalio/activity';
import { hashInputs, type ArtifactRef } from '../lib/artifacts';
import type { Precision } from '../lib/bundle';
import { loadDataset } from '../lib/data/dataset';
import { ErrorType, RecflowError } from '../lib/errors';
import { kindOf } from '../kinds';
import type { KindName } from '../lib/kinds';
import type { EvaluateOptions, EvaluationReport } from '../lib/eval/evaluate';
import { loadBundle } from '../lib/onnx/bundle-io';
import { blessModel, defaultGatesFor, type Blessing, type GateConfig, type GateResult } from '../lib/eval/gates';
import { checkBundleHealth, type ServingHealthOptions } from '../lib/eval/serving-health';
import type { BaselineFitStore } from '../lib/eval/baselines';
import type { ActivityDeps } from './deps';
import { trainingRunKey } from './training';

/** Bumped when evaluation changes: part of the evaluation artifact's key. */
export const EVALUATOR_VERSION = 'recflow-eval-1';

export interface EvaluateModelInput {
  bundleId: string;
  datasetId: string;
  /** The production model's bundle: evaluated on the SAME test split for the relative gates. */
  championBundleId?: string;
  /** @default the bundle's task's gates (lib/eval/gates.ts `DEFAULT_GATES`, `SEARCH_GATES`); `{}`: no gate at all. */
  gates?: GateConfig;
  /** The precision that will serve (the export's choice): what the gates read unless `gates.precision` says. */
  precision?: Precision;
  /** The precision was named by the run: int8 that fails its quality gates fails the run instead of serving fp32. */
  precisionFixed?: boolean;
  options?: EvaluateOptions;
}

export interface EvaluateModelResult {
  /** `evaluation` artifact: evaluation.json holds the candidate, champion and popularity reports and the blessing. */
  evaluation: ArtifactRef;
  reused: boolean;
  blessed: boolean;
  gates: GateResult[];
  /** A few headline numbers of the gated precision (the full report is in the artifact). */
  headline: Record<string, number>;
  /** The precision that serves: the export's choice, or fp32 when int8 failed its quality gates. */
  precision: Precision;
}

export interface CheckServingHealthInput extends Omit<ServingHealthOptions, 'championDir'> {
  bundleId: string;
  /** The champion's bundle, timed beside the candidate (a relative latency gate on a busy host). */
  championBundleId?: string;
}

export type CheckServingHealthResult = Blessing & { p99Ms: number | null };

/** What evaluation.json holds. */
export interface EvaluationArtifact {
  bundleId: string;
  datasetId: string;
  championBundleId?: string;
  candidate: EvaluationReport;
  champion?: EvaluationReport;
  blessing: Blessing;
}

const HEADLINE = [
  'auc',
  'logLoss',
  'ndcg@10',
  'hitRate@10',
  'recall@10',
  'mrr',
  'coverage@10',
  'mrr@10',
  'recall@100',
  'queries',
];

/** Evaluation activities: the model blessing (on the exported bundle) and the infra blessing. */
export function createEvaluateActivities(deps: ActivityDeps) {
  return {
    /**
     * Evaluate a bundle (fp32 and int8) and the champion on the dataset's test split, apply the gates, write an
     * `evaluation` artifact. Idempotent: the same bundle, dataset, champion, gates and options reuse the artifact.
     */
    async evaluateModel(raw: EvaluateModelInput): Promise<EvaluateModelResult> {
      const { precision: serving, precisionFixed, ...rest } = raw;
      const bundleRef = await deps.store.get('bundle', raw.bundleId);
      const manifest = (await loadBundle(bundleRef.path)).manifest;
      const task = manifest.task;
      const chosen = raw.gates ?? defaultGatesFor(task);
      // A candidate of a baseline's kind (als, ease) is not compared with itself refit on the same data.
      const gates =
        chosen.beatBaselines?.length && manifest.kind && !chosen.notAgainst
          ? { ...chosen, notAgainst: [manifest.kind] }
          : chosen;
      // The gates read the serving precision unless they name one.
      const input = {
        ...rest,
        gates: {
          ...(serving && (!raw.gates || raw.gates.precision === undefined) ? { ...gates, precision: serving } : gates),
          ...(precisionFixed ? { fp32Fallback: false } : {}),
        },
      };
      const id = hashInputs({ ...input, evaluatorVersion: EVALUATOR_VERSION });
      const datasetRef = await deps.store.get('dataset', input.datasetId);
      const championRef = input.championBundleId ? await deps.store.get('bundle', input.championBundleId) : undefined;
      if (championRef) {
        const championTask = (await loadBundle(championRef.path)).manifest.task ?? 'recommend';
        if (championTask !== (task ?? 'recommend'))
          throw new RecflowError(
            ErrorType.InvalidInput,
            `bundle ${raw.bundleId} is a ${task ?? 'recommend'} model, the champion's bundle ${raw.championBundleId} a ${championTask} model: a model name holds one task (search models go under their own name, e.g. shop-search)`,
          );
      }
      const ref = await deps.store.put('evaluation', id, async (dir) => {
        const ds = await loadDataset(datasetRef.path);
        const beat = (what: string) => Context.current().heartbeat({ bundleId: input.bundleId, step: what });
        const evaluateWithKind = async (dir: string, what: string) =>
          kindOf((await loadBundle(dir)).manifest.kind ?? 'two-tower').evaluate(
            dir,
            ds,
            input.options ?? {},
            (w) => beat(`${what} ${w}`),
            baselineFits(deps, input.datasetId),
          );
        const candidate = await evaluateWithKind(bundleRef.path, 'candidate');
        const champion = championRef ? await evaluateWithKind(championRef.path, 'champion') : undefined;
        const blessing = blessModel(candidate, champion, input.gates);
        const artifact: EvaluationArtifact = {
          bundleId: input.bundleId,
          datasetId: input.datasetId,
          ...(input.championBundleId ? { championBundleId: input.championBundleId } : {}),
          candidate,
          ...(champion ? { champion } : {}),
          blessing,
        };
        await writeFile(join(dir, 'evaluation.json'), `${JSON.stringify(artifact, null, 2)}\n`);
        log.info('evaluated model', {
          bundleId: input.bundleId,
          datasetId: input.datasetId,
          blessed: blessing.blessed,
          failed: blessing.gates.filter((g) => !g.passed).map((g) => g.name),
        });
      });
      const artifact = JSON.parse(await readFile(join(ref.path, 'evaluation.json'), 'utf8')) as EvaluationArtifact;
      const precision: Precision = artifact.blessing.precision ?? input.gates.precision ?? 'int8';
      const overall = artifact.candidate.models[precision]?.overall ?? {};
      const headline: Record<string, number> = {};
      for (const k of HEADLINE) if (typeof overall[k] === 'number') headline[k] = overall[k];
      const { reused, ...evaluation } = ref;
      return {
        evaluation,
        reused,
        blessed: artifact.blessing.blessed,
        gates: artifact.blessing.gates,
        headline,
        precision,
      };
    },

    /** The infra blessing of a bundle: loads fresh, answers smoke requests, p99 within budget (or the champion's). */
    async checkServingHealth(input: CheckServingHealthInput): Promise<CheckServingHealthResult> {
      const ref = await deps.store.get('bundle', input.bundleId);
      const champion = input.championBundleId ? await deps.store.find('bundle', input.championBundleId) : undefined;
      const { bundleId: _id, championBundleId: _c, ...opts } = input;
      // The manifest's kind only (a bundle with a broken file must reach the health check, which reports it).
      const kindName = await readFile(join(ref.path, 'bundle.json'), 'utf8')
        .then((text) => (JSON.parse(text) as { kind?: KindName }).kind)
        .catch(() => undefined);
      const kind = kindOf(kindName ?? 'two-tower');
      const options = { ...opts, championDir: champion?.path };
      const result = kind.checkHealth
        ? await kind.checkHealth(ref.path, options)
        : await checkBundleHealth(ref.path, options);
      log.info('checked serving health', { bundleId: input.bundleId, blessed: result.blessed, p99Ms: result.p99Ms });
      return result;
    },
  };
}

/**
 * The baselines' fits kept in the artifact store as the `als` / `ease` kinds' checkpoints with the same settings:
 * an `auto` run that trained those kinds as candidates, and the evaluations of later runs on the same dataset,
 * reuse the fit instead of refitting.
 */
function baselineFits(deps: ActivityDeps, datasetId: string): BaselineFitStore {
  const keyOf = (kind: 'als' | 'ease', config: object) =>
    trainingRunKey(
      kind,
      datasetId,
      kindOf(kind).resolveConfig(config as Record<string, unknown>),
      kindOf(kind).trainerVersion,
    );
  return {
    async load(kind, config, read) {
      const ref = await deps.store.find('checkpoint', keyOf(kind, config));
      return ref ? read(ref.path) : undefined;
    },
    async save(kind, config, model, write) {
      await deps.store.put('checkpoint', keyOf(kind, config), (dir) => write(dir, model));
    },
  };
}
