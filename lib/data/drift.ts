/**
 * Drift between two datasets, from their manifests' statistics: the Population Stability Index per feature
 * (PSI = sum over bins of (q - p) * ln(q / p), p the base's share, q the candidate's) and the rates of new users
 * and items (candidate vocabulary entries the base never saw). Rule of thumb: PSI < 0.1 stable, 0.1 to 0.25
 * moderate, > 0.25 a shift worth retraining for.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DatasetManifest, FeatureStats, Vocabularies } from './dataset';
import { ErrorType, RecflowError } from '../errors';

/** Thresholds of {@link compareDatasetDirs}. */
export interface DriftThresholds {
  /** @default 0.25 */
  maxPsi: number;
  /** @default 0.5 */
  maxNewUserRate: number;
  /** @default 0.5 */
  maxNewItemRate: number;
}

export const DEFAULT_DRIFT: DriftThresholds = { maxPsi: 0.25, maxNewUserRate: 0.5, maxNewItemRate: 0.5 };

export interface DriftResult {
  maxPsi: number;
  psi: Record<string, number>;
  newUserRate: number;
  newItemRate: number;
  drifted: boolean;
  /** Why it drifted (empty when not). */
  reasons: string[];
}

const EPS = 1e-4;

/** PSI of two histograms of one feature (numeric: same edges; categorical: matched by label). */
export function psi(base: FeatureStats, cand: FeatureStats): number {
  const hb = base.histogram;
  const hc = cand.histogram;
  if (!hb || !hc) return 0;
  let pairs: Array<[number, number]>;
  if (hb.labels && hc.labels) {
    const b = new Map(hb.labels.map((l, k) => [l, hb.counts[k] ?? 0]));
    const c = new Map(hc.labels.map((l, k) => [l, hc.counts[k] ?? 0]));
    pairs = [...new Set([...b.keys(), ...c.keys()])].map((l) => [b.get(l) ?? 0, c.get(l) ?? 0]);
  } else {
    if (hb.counts.length !== hc.counts.length) return NaN;
    pairs = hb.counts.map((x, k) => [x, hc.counts[k] ?? 0]);
  }
  const sb = pairs.reduce((s, [x]) => s + x, 0);
  const sc = pairs.reduce((s, [, y]) => s + y, 0);
  if (!sb || !sc) return 0;
  let total = 0;
  for (const [x, y] of pairs) {
    const p = Math.max(EPS, x / sb);
    const q = Math.max(EPS, y / sc);
    total += (q - p) * Math.log(q / p);
  }
  return total;
}

/** Share of `cand` entries (index 0, `<unk>`, excluded) missing from `base`. */
export function newRate(base: string[], cand: string[]): number {
  const known = new Set(base.slice(1));
  const c = cand.slice(1);
  if (!c.length) return 0;
  return c.filter((x) => !known.has(x)).length / c.length;
}

/** Compare two manifests and vocabularies. */
export function compareStats(
  base: { manifest: DatasetManifest; vocab: Vocabularies },
  cand: { manifest: DatasetManifest; vocab: Vocabularies },
  thresholds: Partial<DriftThresholds> = {},
): DriftResult {
  const th = { ...DEFAULT_DRIFT, ...thresholds };
  const out: Record<string, number> = {};
  for (const [name, s] of Object.entries(cand.manifest.stats)) {
    const b = base.manifest.stats[name];
    if (!b) continue;
    const v = psi(b, s);
    if (Number.isFinite(v)) out[name] = Number(v.toFixed(6));
  }
  const maxPsi = Math.max(0, ...Object.values(out));
  const newUserRate = newRate(base.vocab.users, cand.vocab.users);
  const newItemRate = newRate(base.vocab.items, cand.vocab.items);
  const reasons: string[] = [];
  for (const [k, v] of Object.entries(out))
    if (v > th.maxPsi) reasons.push(`PSI of ${k} is ${v.toFixed(3)} > ${th.maxPsi}`);
  if (newUserRate > th.maxNewUserRate)
    reasons.push(`new users ${(100 * newUserRate).toFixed(1)}% > ${100 * th.maxNewUserRate}%`);
  if (newItemRate > th.maxNewItemRate)
    reasons.push(`new items ${(100 * newItemRate).toFixed(1)}% > ${100 * th.maxNewItemRate}%`);
  return { maxPsi, psi: out, newUserRate, newItemRate, drifted: reasons.length > 0, reasons };
}

async function readMeta(dir: string): Promise<{ manifest: DatasetManifest; vocab: Vocabularies }> {
  try {
    return {
      manifest: JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as DatasetManifest,
      vocab: JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as Vocabularies,
    };
  } catch (err) {
    throw new RecflowError(ErrorType.ArtifactMissing, `dataset ${dir}: ${(err as Error).message}`);
  }
}

/** {@link compareStats} of two dataset folders (reads only manifest.json and vocab.json). */
export async function compareDatasetDirs(
  baseDir: string,
  candDir: string,
  thresholds: Partial<DriftThresholds> = {},
): Promise<DriftResult> {
  return compareStats(await readMeta(baseDir), await readMeta(candDir), thresholds);
}
