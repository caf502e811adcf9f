// The sampler's native passes (native/src/kernels/select.cc) against plain JS definitions, on
// both paths (the vector one where the cpu has AVX-512): every length around a vector's 16, ties,
// -Infinity, and NaN / +Infinity anywhere reported at their first index.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { argmaxF32, topKF32 } from '../../native/kernels.js';

/** The lowest index of the largest value; -1 - i for the first NaN or +Infinity. */
function argmaxRef(x: Float32Array): number {
  let best = 0;
  for (let i = 0; i < x.length; i++) {
    if (!(x[i]! < Infinity)) return -1 - i;
    if (x[i]! > x[best]!) best = i;
  }
  return best;
}

/** The k largest (larger first, lower index among equals), ascending; or the first bad index. */
function topKRef(x: Float32Array, k: number): number[] | number {
  const bad = x.findIndex((v) => !(v < Infinity));
  if (bad >= 0) return bad;
  const order = [...x.keys()].sort((a, b) => x[b]! - x[a]! || a - b);
  return order.slice(0, k).sort((a, b) => a - b);
}

// Few distinct values, so ties are common; -Infinity among them; NaN and +Infinity rarely.
const value = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: -6, max: 6 }).map((v) => v / 2) },
  { weight: 3, arbitrary: fc.constant(-Infinity) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity) },
);
const row = fc.array(value, { minLength: 1, maxLength: 80 }).map((a) => Float32Array.from(a));

describe('the sampler’s native argmax and top-k', () => {
  for (const scalar of [false, true]) {
    const path = scalar ? 'scalar' : 'vector';
    it(`argmax: the lowest index of the largest value, or the first NaN / +Infinity (${path})`, () => {
      fc.assert(
        fc.property(row, (x) => {
          expect(argmaxF32(x, scalar)).toBe(argmaxRef(x));
        }),
        { seed: 11, numRuns: 3000 },
      );
    });

    it(`top-k: the k largest, ties to the lower index, ascending (${path})`, () => {
      fc.assert(
        fc.property(row, fc.nat(), (x, kk) => {
          const k = 1 + (kk % x.length);
          const ids = new Int32Array(k);
          const want = topKRef(x, k);
          const got = topKF32(x, k, ids, scalar);
          if (typeof want === 'number') expect(got).toBe(want);
          else {
            expect(got).toBe(-1);
            expect([...ids]).toEqual(want);
          }
        }),
        { seed: 12, numRuns: 3000 },
      );
    });
  }

  it('a vocabulary-sized row: the same on both paths, and the bad logit found wherever it is', () => {
    const n = 151936;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = Math.round(Math.sin(i * 12.9898) * 400) / 100;
    const ids = new Int32Array(40);
    const scalarIds = new Int32Array(40);
    expect(argmaxF32(x)).toBe(argmaxRef(x));
    expect(topKF32(x, 40, ids)).toBe(-1);
    expect(topKF32(x, 40, scalarIds, true)).toBe(-1);
    expect([...ids]).toEqual(topKRef(x, 40));
    expect([...ids]).toEqual([...scalarIds]);
    for (const at of [0, 15, 16, 77777, n - 1]) {
      const y = x.slice();
      y[at] = NaN;
      expect(argmaxF32(y)).toBe(-1 - at);
      expect(topKF32(y, 40, ids)).toBe(at);
    }
  });

  it('refuses a k outside 1..n and an ids array too small', () => {
    const x = new Float32Array(8);
    expect(() => topKF32(x, 0, new Int32Array(8))).toThrow(/k must be within 1\.\.8/);
    expect(() => topKF32(x, 9, new Int32Array(9))).toThrow(/k must be within 1\.\.8/);
    expect(() => topKF32(x, 4, new Int32Array(3))).toThrow(/fewer than k/);
    expect(() => argmaxF32(new Float32Array(0))).toThrow(/x is empty/);
  });
});
