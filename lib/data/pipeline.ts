/**
 * The data stage end to end, shared by the activities (activities/data.ts) and the CLI (clients/commands/data.ts):
 * resolve a source, generate a shop, validate, prepare a dataset artifact, compare two datasets. Artifacts are
 * written through `ArtifactStore.put` (temp folder, then rename), so a killed worker leaves nothing half-written
 * and its retry starts clean.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { hashInputs, type ArtifactRef, type ArtifactStore } from '../artifacts';
import type { DatasetManifest, Vocabularies } from './dataset';
import { ErrorType, RecflowError } from '../errors';
import { writeJsonAtomic } from '../fs-atomic';
import { compareDatasetDirs, type DriftResult } from './drift';
import { DEFAULT_SHOP, GENERATOR_VERSION, generateShop, type ShopCounts, type ShopOptions } from './generator';
import { PREPROCESS_VERSION, preprocess, type SplitOptions } from './preprocess';
import { SEARCH_PREPROCESS_VERSION, preprocessSearch } from './preprocess-search';
import {
  assertNoHardAnomalies,
  detectFormat,
  validateSource,
  type SourceFormat,
  type ValidationPolicy,
  type ValidationReport,
} from './validate';
import { mergeSearchReport, validateSearch } from './validate-search';

/** Bump when validation results for the same input change. */
export const VALIDATOR_VERSION = 2;

/** Where data comes from: a generated shop in the artifact store, or a folder of CSV exports. */
export type DataSource = { kind: 'shop'; id: string } | { kind: 'dir'; path: string; format?: SourceFormat };

/** Progress callback: heartbeats in activities, nothing or a line on stderr in the CLI. */
export type Progress = (details: Record<string, unknown>) => void | Promise<void>;

export interface ResolvedSource {
  dir: string;
  format: SourceFormat;
  kind: DatasetManifest['source']['kind'];
  /** sha256 of the input files (or the shop artifact's content hash). */
  inputsHash: string;
}

const DATA_FILES = [
  'users.csv',
  'items.csv',
  'events.csv',
  'ratings.csv',
  'movies.csv',
  'queries.csv',
  'search_events.csv',
];

/** sha256 over the data files present in `dir` (names and bytes). */
export async function hashSourceFiles(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const name of DATA_FILES) {
    const p = join(dir, name);
    if (!existsSync(p)) continue;
    hash.update(`${name}\0`);
    await new Promise<void>((res, rej) => {
      createReadStream(p)
        .on('data', (c) => hash.update(c))
        .on('end', res)
        .on('error', rej);
    });
  }
  return hash.digest('hex');
}

/**
 * Resolve a {@link DataSource} to a folder, its format and the hash of its content.
 * @throws {RecflowError} `ArtifactMissing` for an unknown shop, `InvalidInput` for a missing folder.
 */
export async function resolveSource(store: ArtifactStore, source: DataSource): Promise<ResolvedSource> {
  if (source.kind === 'shop') {
    const ref = await store.get('shop', source.id);
    return { dir: ref.path, format: 'recflow', kind: 'synthetic', inputsHash: ref.contentHash };
  }
  if (source.kind !== 'dir' || typeof source.path !== 'string') {
    throw new RecflowError(ErrorType.InvalidInput, `data source must be {kind:'shop',id} or {kind:'dir',path}`);
  }
  const dir = resolve(source.path);
  if (!existsSync(dir)) throw new RecflowError(ErrorType.InvalidInput, `data folder ${dir} does not exist`);
  const format = source.format ?? detectFormat(dir);
  return { dir, format, kind: format === 'movielens' ? 'movielens' : 'csv', inputsHash: await hashSourceFiles(dir) };
}

/** Shop options with the defaults filled in: what the shop's id hashes. */
export function shopParams(input: ShopOptions): Required<ShopOptions> {
  return { ...DEFAULT_SHOP, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) };
}

/** Content-derived id of a shop. */
export function shopId(input: ShopOptions): string {
  return `shop-${hashInputs({ generator: GENERATOR_VERSION, ...shopParams(input) }).slice(0, 24)}`;
}

/** Generate (or reuse) a shop artifact. */
export async function makeShop(
  store: ArtifactStore,
  input: ShopOptions,
  progress?: Progress,
): Promise<{ shop: ArtifactRef; reused: boolean; counts: ShopCounts }> {
  const params = shopParams(input);
  const id = shopId(input);
  const { reused, ...shop } = await store.put('shop', id, async (dir) => {
    const counts = await generateShop(dir, params, (p) => progress?.({ step: 'generate', ...p }));
    await writeJsonAtomic(join(dir, 'shop.json'), { generator: GENERATOR_VERSION, params, counts });
  });
  const { counts } = JSON.parse(await readFile(join(shop.path, 'shop.json'), 'utf8')) as { counts: ShopCounts };
  return { shop, reused, counts };
}

/** Event count of a previous dataset (volume check), or undefined. */
async function previousEvents(store: ArtifactStore, previousDatasetId?: string): Promise<number | undefined> {
  if (!previousDatasetId) return undefined;
  const ref = await store.get('dataset', previousDatasetId);
  const m = JSON.parse(await readFile(join(ref.path, 'manifest.json'), 'utf8')) as DatasetManifest;
  const input = (m.preprocessing.validation as { rows?: Record<string, number> } | undefined)?.rows?.events;
  return input ?? m.counts.events;
}

export interface ValidateInput {
  source: DataSource;
  previousDatasetId?: string;
  policy?: Partial<ValidationPolicy>;
}

/**
 * Validate a source and store the report (a `report` artifact, `report.json`), then fail on hard anomalies.
 * @throws {RecflowError} `InvalidData` naming file, row, column and value of the first hard anomaly.
 */
export async function validateData(
  store: ArtifactStore,
  input: ValidateInput,
  progress?: Progress,
): Promise<{
  report: ArtifactRef;
  hard: number;
  soft: number;
  rows: Record<string, number>;
  details: ValidationReport;
}> {
  const src = await resolveSource(store, input.source);
  const prev = await previousEvents(store, input.previousDatasetId);
  const { report } = await validateSource(src.dir, {
    format: src.format,
    previousEvents: prev,
    policy: input.policy,
    onProgress: (p) => progress?.({ step: 'validate', ...p }),
  });
  if (src.format === 'recflow') {
    const search = await validateSearch(src.dir, {
      policy: input.policy,
      onProgress: (p) => progress?.({ step: 'validate', ...p }),
    });
    mergeSearchReport(report, search);
  }
  const id = `validation-${hashInputs({ v: VALIDATOR_VERSION, inputs: src.inputsHash, format: src.format, prev, policy: input.policy }).slice(0, 24)}`;
  const { reused: _r, ...ref } = await store.put('report', id, (dir) =>
    writeJsonAtomic(join(dir, 'report.json'), report),
  );
  assertNoHardAnomalies(report, join(ref.path, 'report.json'));
  return { report: ref, hard: report.hard.length, soft: report.soft.length, rows: report.rows, details: report };
}

export interface PrepareInput {
  source: DataSource;
  previousDatasetId?: string;
  split?: SplitOptions;
  policy?: Partial<ValidationPolicy>;
}

export interface PrepareResult {
  dataset: ArtifactRef;
  reused: boolean;
  rows: { train: number; validation: number; test: number };
  validation: { hard: number; soft: number };
}

/** Content-derived id of a dataset. */
export function datasetId(inputsHash: string, format: SourceFormat, split?: SplitOptions, policy?: object): string {
  return `ds-${hashInputs({ inputs: inputsHash, format, preprocess: PREPROCESS_VERSION, search: SEARCH_PREPROCESS_VERSION, split, policy }).slice(0, 24)}`;
}

/**
 * Validate (the same code as {@link validateData}) and preprocess a source into a `dataset` artifact; an existing
 * dataset with the same id (same input bytes, same settings) is reused.
 * @throws {RecflowError} `InvalidData` on hard anomalies.
 */
export async function prepareDataset(
  store: ArtifactStore,
  input: PrepareInput,
  progress?: Progress,
): Promise<PrepareResult> {
  const src = await resolveSource(store, input.source);
  const id = datasetId(src.inputsHash, src.format, input.split, input.policy);
  const prev = await previousEvents(store, input.previousDatasetId);
  let validation = { hard: 0, soft: 0 };
  const { reused, ...dataset } = await store.put('dataset', id, async (dir) => {
    const { report, data } = await validateSource(src.dir, {
      format: src.format,
      previousEvents: prev,
      policy: input.policy,
      collect: true,
      onProgress: (p) => progress?.({ step: 'validate', ...p }),
    });
    const search =
      src.format === 'recflow'
        ? await validateSearch(src.dir, {
            policy: input.policy,
            collect: true,
            onProgress: (p) => progress?.({ step: 'validate', ...p }),
          })
        : undefined;
    if (search) mergeSearchReport(report, search);
    assertNoHardAnomalies(report);
    if (!data) throw new Error('validateSource returned no data');
    const manifest = await preprocess(data, dir, {
      id,
      source: { kind: src.kind, dir: src.dir, inputsHash: src.inputsHash },
      split: input.split,
      onProgress: (step) => progress?.({ step }),
    });
    if (search?.present && search.data) {
      await progress?.({ step: 'search' });
      const vocab = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as Vocabularies;
      const res = await preprocessSearch(search.data, vocab, manifest.split, dir);
      Object.assign(manifest.columns, res.columns);
      Object.assign(manifest.tables, res.tables);
      manifest.search = res.search;
    }
    manifest.preprocessing.validation = {
      hard: report.hard.length,
      soft: report.soft.length,
      rows: report.rows,
      soft_anomalies: report.soft.map((a) => a.message),
    };
    await writeJsonAtomic(join(dir, 'manifest.json'), manifest);
  });
  const manifest = JSON.parse(await readFile(join(dataset.path, 'manifest.json'), 'utf8')) as DatasetManifest;
  const v = manifest.preprocessing.validation as { hard: number; soft: number } | undefined;
  validation = { hard: v?.hard ?? 0, soft: v?.soft ?? 0 };
  return {
    dataset,
    reused,
    rows: { train: manifest.counts.train, validation: manifest.counts.validation, test: manifest.counts.test },
    validation,
  };
}

/** Drift between two stored datasets. */
export async function compareDatasets(
  store: ArtifactStore,
  input: { baseId: string; candidateId: string },
): Promise<DriftResult> {
  const base = await store.get('dataset', input.baseId);
  const cand = await store.get('dataset', input.candidateId);
  return compareDatasetDirs(base.path, cand.path);
}
