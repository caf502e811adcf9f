// NaN and ±Inf in a user's matrices: where they are and how many. A product spreads one NaN or
// Inf over a whole row or column of the result, so an input that holds any is reported as such,
// before the run, instead of surfacing as "largest error Infinity exceeds NaN" after it.
import { UsageError } from '../../common/errors.js';

export interface NonFinite {
  nan: number;
  posInf: number;
  negInf: number;
  /** Row and column of the first one (row-major order), when there is any. */
  first?: { row: number; col: number; value: number };
}

/** Counts the non-finite values of a row-major matrix with `cols` columns. */
export function findNonFinite(data: Float32Array, cols: number): NonFinite {
  const r: NonFinite = { nan: 0, posInf: 0, negInf: 0 };
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v === 0) continue; // finite (NaN - NaN and Inf - Inf are NaN)
    if (Number.isNaN(v)) r.nan++;
    else if (v > 0) r.posInf++;
    else r.negInf++;
    r.first ??= { row: Math.floor(i / cols), col: i % cols, value: v };
  }
  return r;
}

export function nonFiniteCount(r: NonFinite): number {
  return r.nan + r.posInf + r.negInf;
}

/** "3 non-finite values (2 NaN, 1 +Inf), the first at row 0, column 5" */
export function describeNonFinite(r: NonFinite): string {
  const parts = [
    r.nan ? `${r.nan} NaN` : '',
    r.posInf ? `${r.posInf} +Inf` : '',
    r.negInf ? `${r.negInf} -Inf` : '',
  ].filter(Boolean);
  const n = nonFiniteCount(r);
  return (
    `${n} non-finite value${n === 1 ? '' : 's'} (${parts.join(', ')})` +
    (r.first ? `, the first at row ${r.first.row}, column ${r.first.col}` : '')
  );
}

/**
 * Refuses a matrix with NaN or Inf unless the caller allows them: such an input is almost always
 * a broken file, and a product silently spreading it is the worst way to find out.
 */
export function checkFinite(
  what: string,
  data: Float32Array,
  cols: number,
  allow: boolean | undefined,
  flag = '--allow-non-finite',
): NonFinite {
  const r = findNonFinite(data, cols);
  if (nonFiniteCount(r) > 0 && !allow) {
    throw new UsageError(
      `${what} has ${describeNonFinite(r)}: the product would carry them into C. Fix the file, or give ${flag} to run with them (--verify then compares NaN and Inf by position)`,
    );
  }
  return r;
}
