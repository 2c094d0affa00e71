/**
 * Option parsers for commander: a bad value is an `InvalidArgumentError` (commander prints
 * `error: option '--port <port>' argument '70000' is invalid. ...` and the CLI exits with the usage code 2).
 */
import { InvalidArgumentError } from 'commander';

/** An integer in [min, max]. */
export function intOption(min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(
        `'${v}' is not an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}].`,
      );
    return n;
  };
}

/** A finite number above 0. */
export function positiveOption(v: string): number {
  const n = Number(v);
  if (!v.trim() || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`'${v}' is not a number > 0.`);
  return n;
}

/** A number in [min, max]. */
export function rangeOption(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!v.trim() || !Number.isFinite(n) || n < min || n > max)
      throw new InvalidArgumentError(`'${v}' is not a number in [${min}, ${max}].`);
    return n;
  };
}
