/**
 * The strong baselines every evaluation reports beside the candidate: recent popularity (window or half-life
 * chosen on validation), ALS and EASE^R (kinds/als, kinds/ease; hyperparameters chosen on validation), all fitted on
 * the train split of the evaluated dataset. EASE^R is skipped, with the reason, when the catalogue is above its
 * `maxItems`. Fitted baselines are cached in memory by dataset id and options, so the candidate's and the
 * champion's evaluations in one activity fit them once.
 *
 * Cold users: in an evaluation on the dataset itself, a test user without training events has no history (the
 * history is the train split), so every baseline ranks them by its recent-popularity prior.
 */
import { hashInputs } from '../artifacts';
import type { LoadedDataset } from '../data/dataset';
import { calibrate } from '../recsys/calibration';
import {
  fitRecentPopularity,
  type RecentPopularityConfig,
  type RecentPopularityFit,
} from '../recsys/recent-popularity';
import { fitAls } from '../../kinds/als/fit';
import {
  DEFAULT_ALS_CONFIG,
  alsCatalogScores,
  gramPlusReg,
  readAlsCheckpoint,
  usesPrior,
  writeAlsCheckpoint,
  type AlsConfig,
  type AlsModel,
} from '../../kinds/als/spec';
import { fitEase } from '../../kinds/ease/fit';
import {
  DEFAULT_EASE_CONFIG,
  easeCatalogScores,
  easeItemSet,
  readEaseCheckpoint,
  writeEaseCheckpoint,
  type EaseConfig,
  type EaseModel,
} from '../../kinds/ease/spec';
import { RecflowError } from '../errors';

/** Which baselines to fit, and their settings (`false` leaves one out). */
export interface BaselineOptions {
  /** Recent-popularity grid. @default RECENT_POPULARITY_GRID */
  recentPopularity?: RecentPopularityConfig[] | false;
  /** ALS settings (its validation grid included). @default DEFAULT_ALS_CONFIG */
  als?: Partial<AlsConfig> | false;
  /** EASE^R settings (its λ grid and `maxItems` included). @default DEFAULT_EASE_CONFIG */
  ease?: Partial<EaseConfig> | false;
}

/** A baseline ready to score: catalogue scores of a user and probabilities of (user, item). */
export interface Baseline {
  name: 'recentPopularity' | 'als' | 'ease';
  /** The chosen settings (what validation picked). */
  config: Record<string, unknown>;
  fitSeconds: number;
  /** Ranking scores of every item for a user of the dataset (index 0 scores anything: it is never ranked). */
  catalog(user: number): ArrayLike<number>;
  /** Probability of a (user, item) pair, for the pointwise metrics; `row` is `catalog(user)`. */
  probability(user: number, item: number, row: ArrayLike<number>): number;
  /** The fitted model (ALS, EASE^R), e.g. to export the same fit as a bundle. */
  model?: AlsModel | EaseModel;
}

/** The fitted baselines of one dataset. */
export interface FittedBaselines {
  datasetId: string;
  baselines: Baseline[];
  /** Baselines left out, with the reason (e.g. EASE^R above its catalogue cap). */
  skipped: Record<string, string>;
}

function recentBaseline(fit: RecentPopularityFit): Baseline {
  return {
    name: 'recentPopularity',
    config: { ...fit.config, validationGrid: fit.grid },
    fitSeconds: fit.seconds,
    catalog: () => fit.scores,
    probability: (_u, item) => Math.min(1, fit.scores[item] ?? 0),
  };
}

function alsBaseline(m: AlsModel): Baseline {
  const gram = gramPlusReg(m.itemFactors, m.items, m.config.factors, m.config.regularization);
  return {
    name: 'als',
    model: m,
    config: { ...m.config, grid: undefined, validationGrid: m.validation.grid, prior: m.priorConfig },
    fitSeconds: m.fitSeconds,
    catalog: (u) => alsCatalogScores(m, u, [], gram),
    probability: (u, item, row) =>
      calibrate(usesPrior(m, u, []) ? m.calibration.prior : m.calibration.model, row[item] ?? 0),
  };
}

function easeBaseline(m: EaseModel): Baseline {
  return {
    name: 'ease',
    model: m,
    config: { ...m.config, lambdaGrid: undefined, validationGrid: m.validation.grid, prior: m.priorConfig },
    fitSeconds: m.fitSeconds,
    catalog: (u) => easeCatalogScores(m, u, []),
    probability: (u, item, row) =>
      calibrate(easeItemSet(m, u, []).size ? m.calibration.model : m.calibration.prior, row[item] ?? 0),
  };
}

const cache = new Map<string, Promise<FittedBaselines>>();
/** Fitted baselines kept in memory (the most recent datasets). */
const CACHE_SIZE = 2;

/**
 * Fit (or reuse) the baselines of a dataset. `onProgress` gets a line per step.
 * The cache key is the dataset id and the options; a failed fit is not cached.
 */
/**
 * Where fitted ALS and EASE^R models are kept between processes (the artifact store, as the checkpoints of the `als`
 * and `ease` kinds with the same default settings: a run that trains those kinds as candidates and its evaluation's
 * baselines share one fit, whichever comes first).
 */
export interface BaselineFitStore {
  load<M>(kind: 'als' | 'ease', config: object, read: (dir: string) => Promise<M>): Promise<M | undefined>;
  save<M>(kind: 'als' | 'ease', config: object, model: M, write: (dir: string, m: M) => Promise<void>): Promise<void>;
}

export function fitBaselines(
  ds: LoadedDataset,
  options: BaselineOptions = {},
  onProgress: (what: string) => void = () => {},
  fits?: BaselineFitStore,
): Promise<FittedBaselines> {
  const key = `${ds.manifest.id}:${hashInputs(options)}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const p = fitAll(ds, options, onProgress, fits);
  cache.set(key, p);
  p.catch(() => cache.delete(key));
  while (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return p;
}

/** Forget every cached fit (tests). */
export function clearBaselineCache(): void {
  cache.clear();
}

async function fitAll(
  ds: LoadedDataset,
  o: BaselineOptions,
  onProgress: (what: string) => void,
  fits?: BaselineFitStore,
): Promise<FittedBaselines> {
  /** A stored fit of the same settings, else a new one (then stored). */
  const fitOrLoad = async <C extends object, M>(
    kind: 'als' | 'ease',
    config: C,
    fit: () => Promise<M>,
    read: (dir: string) => Promise<M>,
    write: (dir: string, m: M) => Promise<void>,
  ): Promise<M> => {
    const stored = await fits?.load(kind, config, read);
    if (stored) return stored;
    const m = await fit();
    await fits?.save(kind, config, m, write);
    return m;
  };
  const baselines: Baseline[] = [];
  const skipped: Record<string, string> = {};
  if (o.recentPopularity !== false) {
    onProgress('baseline recent popularity');
    baselines.push(recentBaseline(await fitRecentPopularity(ds, o.recentPopularity)));
  } else skipped.recentPopularity = 'disabled in the evaluation options';
  if (o.als !== false) {
    const config = { ...DEFAULT_ALS_CONFIG, ...o.als };
    const m = await fitOrLoad(
      'als',
      config,
      () => fitAls(ds, config, (p) => onProgress(`baseline ALS ${JSON.stringify(p)}`)),
      readAlsCheckpoint,
      writeAlsCheckpoint,
    );
    baselines.push(alsBaseline(m));
  } else skipped.als = 'disabled in the evaluation options';
  if (o.ease !== false) {
    const maxItems = o.ease?.maxItems ?? DEFAULT_EASE_CONFIG.maxItems;
    if (ds.vocab.items.length > maxItems) {
      skipped.ease = `catalogue of ${ds.vocab.items.length} items is above EASE^R's maxItems (${maxItems}): an items x items matrix would not fit`;
    } else {
      try {
        const config = { ...DEFAULT_EASE_CONFIG, ...o.ease };
        const m = await fitOrLoad(
          'ease',
          config,
          () => fitEase(ds, config, (p) => onProgress(`baseline EASE ${JSON.stringify(p)}`)),
          readEaseCheckpoint,
          writeEaseCheckpoint,
        );
        baselines.push(easeBaseline(m));
      } catch (err) {
        if (!(err instanceof RecflowError)) throw err;
        skipped.ease = err.message;
      }
    }
  } else skipped.ease = 'disabled in the evaluation options';
  return { datasetId: ds.manifest.id, baselines, skipped };
}
