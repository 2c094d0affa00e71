/**
 * Negative sampling for implicit feedback: the dataset stores positives only; training draws, per positive
 * (user, item), `perPositive` items the user has no interaction with in the split (label 0). Seeded, so a resumed
 * epoch draws the same negatives. Uniform over items by default, or by popularity^alpha (word2vec-style).
 */
import type { Interactions } from './dataset';
import { AliasTable, mulberry32 } from '../rng';

/** Options of {@link sampleNegatives}. */
export interface NegativeOptions {
  /** @default 4 */
  perPositive?: number;
  /** @default 1 */
  seed?: number;
  /** Draw by `popularity[i]^alpha` instead of uniformly (index 0 is never drawn). */
  popularity?: ArrayLike<number>;
  /** @default 0.75 */
  alpha?: number;
}

/** Labelled examples: positives with their labels, then sampled negatives with label 0, interleaved per positive. */
export interface Examples {
  user: Int32Array;
  item: Int32Array;
  label: Float32Array;
}

/**
 * Each positive followed by `perPositive` negatives for its user. Items the user interacted with in `split` are
 * never drawn as negatives (after 20 rejected draws the last draw is kept, for users who saw almost everything).
 */
export function sampleNegatives(split: Interactions, numItems: number, opts: NegativeOptions = {}): Examples {
  const per = opts.perPositive ?? 4;
  const r = mulberry32(opts.seed ?? 1);
  const seen = new Set<number>();
  for (let k = 0; k < split.user.length; k++) seen.add((split.user[k] ?? 0) * numItems + (split.item[k] ?? 0));
  let draw: () => number;
  if (opts.popularity) {
    const alpha = opts.alpha ?? 0.75;
    const w = Array.from({ length: numItems }, (_, i) =>
      i === 0 ? 0 : Math.pow(Math.max(0, opts.popularity?.[i] ?? 0) + 1, alpha),
    );
    const table = new AliasTable(w);
    draw = () => table.draw(r);
  } else draw = () => 1 + Math.floor(r() * (numItems - 1));
  const n = split.user.length * (1 + per);
  const out: Examples = { user: new Int32Array(n), item: new Int32Array(n), label: new Float32Array(n) };
  let o = 0;
  for (let k = 0; k < split.user.length; k++) {
    const u = split.user[k] ?? 0;
    out.user[o] = u;
    out.item[o] = split.item[k] ?? 0;
    out.label[o++] = split.label[k] ?? 1;
    for (let j = 0; j < per; j++) {
      let item = draw();
      for (let tries = 0; tries < 20 && seen.has(u * numItems + item); tries++) item = draw();
      out.user[o] = u;
      out.item[o] = item;
      out.label[o++] = 0;
    }
  }
  return out;
}
