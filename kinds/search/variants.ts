/**
 * The compression choice of a search bundle: which variant `int8` serves (lib/bundle.ts `SearchBundleInfo`).
 *
 * Every exported variant (the fine-tuned teacher in fp32 and int8, the distilled student in fp32 and int8) is
 * measured at export on the same host, interleaved, one intra-op thread: search-graph latency at batch 1 (a short
 * query) and at a micro-batch, its size, and its retrieval quality on the dataset's VALIDATION queries (the test
 * split stays for the report and the gates). The rule ({@link chooseVariant}):
 *
 *   a variant qualifies when its validation NDCG@10 is within its tolerance of fp32's (int8 encoders of the
 *   teacher: 1 %; the student, in any precision: 3 %) and it is faster than fp32 at batch 1;
 *   `int8` serves the fastest qualifying variant, and is preferred over fp32;
 *   without one, fp32 is preferred, and `int8` names the compressed variant closest to fp32 in quality (so a run
 *   that insists on int8 still gets the best of them).
 *
 * The evaluation then measures the chosen variant on the test split, and the gates' `int8Drop` backstops the choice
 * there with the same tolerances (lib/eval/gates.ts `SEARCH_GATES`): int8 that loses too much serves as fp32.
 */
import type { Precision, SearchVariantInfo } from '../../lib/bundle';

/** Largest relative validation NDCG@10 drop from fp32, by kind of variant. */
export interface CompressionTolerances {
  /** int8 encoders of the fine-tuned teacher. @default 0.01 */
  int8: number;
  /** The distilled student (any precision). @default 0.03 */
  student: number;
}

export const DEFAULT_TOLERANCES: CompressionTolerances = { int8: 0.01, student: 0.03 };

/** A variant's name: the teacher's precision (`fp32`, `int8-dynamic`), `student`, or `student-<precision>`. */
export function variantName(model: 'teacher' | 'student', encoder: string): string {
  if (model === 'teacher') return encoder;
  return encoder === 'fp32' ? 'student' : `student-${encoder}`;
}

/** The tolerance a variant is held to. */
export function toleranceOf(
  v: Pick<SearchVariantInfo, 'model'>,
  t: CompressionTolerances = DEFAULT_TOLERANCES,
): number {
  return v.model === 'student' ? t.student : t.int8;
}

const ms = (x: number | undefined) => (x === undefined ? '?' : `${x.toFixed(2)} ms`);

/**
 * Pick what `int8` serves and which precision is preferred (see the module comment). `variants` must include
 * `fp32`; the `qualifies` and `tolerance` fields of the result's variants are filled in.
 */
export function chooseVariant(
  variants: Record<string, SearchVariantInfo>,
  t: CompressionTolerances = DEFAULT_TOLERANCES,
): {
  variants: Record<string, SearchVariantInfo>;
  serves: Record<Precision, string>;
  preferred: Precision;
  reason: string;
} {
  const fp32 = variants.fp32;
  if (!fp32) throw new Error('chooseVariant: no fp32 variant');
  const ref = fp32.validation['ndcg@10'];
  const base = fp32.latencyMs['1'];
  const out: Record<string, SearchVariantInfo> = {};
  const compressed: Array<[string, SearchVariantInfo, number]> = [];
  for (const [name, v] of Object.entries(variants)) {
    const tolerance = toleranceOf(v, t);
    const drop = ref > 0 ? (ref - v.validation['ndcg@10']) / ref : 0;
    const faster = base !== undefined && (v.latencyMs['1'] ?? Infinity) < base;
    const qualifies = name !== 'fp32' && drop <= tolerance && faster;
    out[name] = { ...v, tolerance, qualifies };
    if (name !== 'fp32') compressed.push([name, out[name], drop]);
  }
  const describe = ([name, v, drop]: [string, SearchVariantInfo, number]) =>
    `${name}: ${ms(v.latencyMs['1'])} vs fp32 ${ms(base)} at batch 1, validation NDCG@10 ${v.validation['ndcg@10'].toFixed(4)} vs ${ref.toFixed(4)} (${drop >= 0 ? '-' : '+'}${Math.abs(100 * drop).toFixed(2)}%, allowed -${(100 * v.tolerance).toFixed(0)}%)`;
  const qualifying = compressed
    .filter(([, v]) => v.qualifies)
    .sort((a, b) => (a[1].latencyMs['1'] ?? Infinity) - (b[1].latencyMs['1'] ?? Infinity) || a[0].localeCompare(b[0]));
  const best = qualifying[0];
  if (best)
    return {
      variants: out,
      serves: { fp32: 'fp32', int8: best[0] },
      preferred: 'int8',
      reason: `int8 serves ${best[0]}, the fastest variant within its quality tolerance (${describe(best)})`,
    };
  const closest = [...compressed].sort((a, b) => a[2] - b[2] || a[0].localeCompare(b[0]))[0];
  return {
    variants: out,
    serves: { fp32: 'fp32', int8: closest?.[0] ?? 'fp32' },
    preferred: 'fp32',
    reason: closest
      ? `fp32 serves: no compressed variant is both within its tolerance and faster (${compressed.map(describe).join('; ')}); int8 names ${closest[0]}, the closest in quality`
      : 'fp32 serves: no compressed variant was exported',
  };
}
