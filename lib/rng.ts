/**
 * The one seeded PRNG of recflow (mulberry32) and the draws built on it (normal, alias table): the synthetic shop, negative sampling, evaluation sampling, the traffic
 * simulator and the hyperparameter search draw from it, so a seed fixes the result. No imports: workflows use it too.
 */

/** Deterministic PRNG (mulberry32): uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draw (Box-Muller). */
export function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

/**
 * Walker's alias table: O(1) draws from a fixed discrete distribution (user activity, item popularity), so the
 * generator's cost per event does not grow with the catalog.
 */
export class AliasTable {
  private readonly prob: Float64Array;
  private readonly alias: Int32Array;
  readonly size: number;

  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    this.size = n;
    this.prob = new Float64Array(n);
    this.alias = new Int32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i] ?? 0;
    const scaled = new Float64Array(n);
    for (let i = 0; i < n; i++) scaled[i] = ((weights[i] ?? 0) * n) / total;
    const small: number[] = [];
    const large: number[] = [];
    for (let i = 0; i < n; i++) ((scaled[i] ?? 0) < 1 ? small : large).push(i);
    while (small.length && large.length) {
      const s = small.pop() as number;
      const l = large.pop() as number;
      this.prob[s] = scaled[s] ?? 0;
      this.alias[s] = l;
      scaled[l] = (scaled[l] ?? 0) + (scaled[s] ?? 0) - 1;
      ((scaled[l] ?? 0) < 1 ? small : large).push(l);
    }
    for (const i of [...small, ...large]) this.prob[i] = 1;
  }

  /** One draw, an index in [0, size). */
  draw(r: () => number): number {
    const i = Math.floor(r() * this.size);
    return r() < (this.prob[i] ?? 1) ? i : (this.alias[i] ?? i);
  }
}

/**
 * Indices of `n` distinct items drawn with probability proportional to `weights` without replacement (Efraimidis and
 * Spirakis keys u^(1/w)), in draw order, seeded; items of weight 0 come last. All indices when `n` covers them.
 */
export function weightedSampleIndices(weights: ArrayLike<number>, n: number, seed: number): number[] {
  const all = Array.from({ length: weights.length }, (_, i) => i);
  if (n >= weights.length) return all;
  const r = mulberry32(seed);
  const key = all.map((i) => {
    const w = weights[i] ?? 0;
    return w > 0 ? Math.log(r()) / w : -Infinity;
  });
  return all.sort((a, b) => (key[a] === key[b] ? 0 : (key[b] ?? 0) - (key[a] ?? 0))).slice(0, n);
}
