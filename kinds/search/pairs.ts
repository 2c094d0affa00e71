/**
 * Training data of the search fine-tune: (query, relevant item text, optional hard negatives) pairs, validated.
 */
import { ErrorType, RecflowError } from '../../lib/errors';

/** One training example: a query, a text relevant to it, and optionally texts that are not. */
export interface TrainingPair {
  query: string;
  positive: string;
  negatives?: string[];
}

/**
 * Check pairs before training: non-empty strings everywhere.
 * @param where names the source in errors (a file, `validation`)
 * @throws {RecflowError} `InvalidData` naming the pair's row and field.
 */
export function validatePairs(pairs: readonly TrainingPair[], where = 'pairs'): void {
  if (!Array.isArray(pairs)) throw new RecflowError(ErrorType.InvalidData, `${where}: expected an array of pairs`);
  pairs.forEach((p, i) => {
    const bad = (field: string, what: string) =>
      new RecflowError(ErrorType.InvalidData, `${where}: row ${i}, field '${field}': ${what}`);
    if (!p || typeof p !== 'object') throw bad('(row)', 'not an object');
    for (const f of ['query', 'positive'] as const) {
      if (typeof p[f] !== 'string') throw bad(f, `expected a string, got ${typeof p[f]}`);
      if (!p[f].trim()) throw bad(f, 'empty');
    }
    if (p.negatives !== undefined) {
      if (!Array.isArray(p.negatives)) throw bad('negatives', 'expected an array of strings');
      (p.negatives as unknown[]).forEach((n, j) => {
        if (typeof n !== 'string' || !n.trim()) throw bad(`negatives[${j}]`, 'expected a non-empty string');
      });
    }
  });
}
