/**
 * A tiny, self-contained search pair set for tests (until the shop's search log exists): queries that name a
 * product by a synonym of its colour ("crimson" for "red"), positives that use the catalogue's word, and the same
 * product in the next colour as a hard negative. Lexical matching on the colour fails; the pretrained model knows
 * the synonyms only loosely, so fine-tuning has something to learn.
 */
import type { TrainingPair } from '../../kinds/search/pairs';

export const COLOURS = ['red', 'blue', 'green', 'black', 'white', 'yellow', 'pink', 'grey'];
const SYNONYM: Record<string, string> = {
  red: 'crimson',
  blue: 'navy',
  green: 'olive',
  black: 'jet',
  white: 'ivory',
  yellow: 'mustard',
  pink: 'rose',
  grey: 'charcoal',
};
export const THINGS = [
  'running shoes',
  'rain jacket',
  'wool sweater',
  'backpack',
  'yoga mat',
  'water bottle',
  'desk lamp',
  'coffee mug',
];

/** 64 pairs: every colour x product. */
export function colourPairs(): TrainingPair[] {
  const out: TrainingPair[] = [];
  COLOURS.forEach((c, i) => {
    for (const t of THINGS) {
      const next = COLOURS[(i + 1) % COLOURS.length]!;
      out.push({ query: `${SYNONYM[c]!} ${t}`, positive: `${c} ${t} by Acme`, negatives: [`${next} ${t} by Acme`] });
    }
  });
  return out;
}

/** Training and validation halves: every fourth pair validates. */
export function colourSplit(): { train: TrainingPair[]; validation: TrainingPair[] } {
  const all = colourPairs();
  return { train: all.filter((_, i) => i % 4 !== 0), validation: all.filter((_, i) => i % 4 === 0) };
}
