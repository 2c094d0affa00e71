/**
 * Dense linear algebra in float64 for the linear recommenders (ALS solves, EASE^R's inverse), row-major, with the
 * inner loops over contiguous memory. Plain TypeScript: no native dependency on the product's path.
 */
import { ErrorType, RecflowError } from '../errors';

/**
 * In-place Cholesky factorization of a symmetric positive definite `n x n` matrix: on return the lower triangle
 * of `a` holds L with `A = L Lᵀ` (the strict upper triangle is zeroed).
 * @throws {RecflowError} `TrainingDiverged` when the matrix is not positive definite (a non-positive pivot).
 */
export function choleskyInPlace(a: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = a[rj + j]!;
    for (let k = 0; k < j; k++) d -= a[rj + k]! * a[rj + k]!;
    if (!(d > 0)) {
      throw new RecflowError(
        ErrorType.TrainingDiverged,
        `matrix not positive definite at pivot ${j} (${d}): raise the regularization`,
      );
    }
    const ljj = Math.sqrt(d);
    a[rj + j] = ljj;
    const inv = 1 / ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = a[ri + j]!;
      for (let k = 0; k < j; k++) s -= a[ri + k]! * a[rj + k]!;
      a[ri + j] = s * inv;
    }
    for (let k = j + 1; k < n; k++) a[rj + k] = 0;
  }
}

/** Solve `L Lᵀ x = b` with the factor of {@link choleskyInPlace}; `b` is overwritten with x. */
export function choleskySolveInPlace(l: Float64Array, n: number, b: Float64Array): void {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[ri + k]! * b[k]!;
    b[i] = s / l[ri + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * b[k]!;
    b[i] = s / l[i * n + i]!;
  }
}

/**
 * Solve the symmetric positive definite system `A x = b` (A is copied, not changed). For the small `d x d`
 * systems of ALS.
 */
export function solveSpd(a: Float64Array, n: number, b: ArrayLike<number>): Float64Array {
  const l = Float64Array.from(a);
  choleskyInPlace(l, n);
  const x = Float64Array.from(b);
  choleskySolveInPlace(l, n, x);
  return x;
}

/**
 * Inverse of a symmetric positive definite matrix, in place (`a` becomes A⁻¹, full and symmetric): Cholesky
 * `A = L Lᵀ`, then `L⁻¹` row by row, then `A⁻¹ = L⁻ᵀ L⁻¹` as rank-one row updates. About n³/2 multiply-adds, all
 * inner loops contiguous. `onRow` is called every few hundred rows with a fraction done (progress, heartbeats).
 * @throws {RecflowError} `TrainingDiverged` when the matrix is not positive definite.
 */
export function spdInverseInPlace(a: Float64Array, n: number, onProgress?: (fraction: number) => void): void {
  choleskyInPlace(a, n);
  onProgress?.(1 / 3);
  // L⁻¹ (lower) into `inv`, row by row: row_i = (e_i - sum_{k<i} L[i][k] row_k) / L[i][i].
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = 0; k < i; k++) {
      const c = a[ri + k]!;
      if (c === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) inv[ri + j]! -= c * inv[rk + j]!;
    }
    inv[ri + i] = 1;
    const s = 1 / a[ri + i]!;
    for (let j = 0; j <= i; j++) inv[ri + j]! *= s;
  }
  onProgress?.(2 / 3);
  // A⁻¹ = (L⁻¹)ᵀ L⁻¹: sum over rows k of L⁻¹ of the outer product of row k with itself (upper triangle).
  a.fill(0);
  for (let k = 0; k < n; k++) {
    const rk = k * n;
    for (let i = 0; i <= k; i++) {
      const c = inv[rk + i]!;
      if (c === 0) continue;
      const ri = i * n;
      for (let j = i; j <= k; j++) a[ri + j]! += c * inv[rk + j]!;
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[j * n + i] = a[i * n + j]!;
  onProgress?.(1);
}
