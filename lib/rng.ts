/**
 * The one seeded PRNG of recflow (mulberry32): the synthetic shop, negative sampling, evaluation sampling, the traffic
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
