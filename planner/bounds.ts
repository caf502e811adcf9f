// Per-rank lower bounds on the elements any plan must move (cosma.md). The memory-independent bound
// uses the smallest footprint |A|+|B|+|C| of mnk/P multiply-adds that fits inside the matrices (a
// cube when the shape allows it, else a slab or a pencil: Al Daas, Ballard et al. 2022), minus the
// balanced share the rank already holds.
import type { LowerBounds, Problem } from './types.js';

/** Smallest |A block| + |B block| + |C block| of a box of volume V inside m×n×k. */
export function minFootprint(V: number, m: number, n: number, k: number): number {
  const [d1, d2] = [m, n, k].sort((a, b) => a - b) as [number, number, number];
  const cube = Math.cbrt(V);
  if (cube <= d1) return 3 * cube * cube;
  const s = Math.sqrt(V / d1);
  if (s <= d2) return 2 * d1 * s + s * s;
  return d1 * d2 + ((d1 + d2) * V) / (d1 * d2);
}

export function lowerBounds(problem: Problem, P: number, memoryElements: number): LowerBounds {
  const { m, n, k } = problem;
  const V = (m * n * k) / P;
  const share = (m * k + k * n + m * n) / P;
  const memoryIndependent = Math.max(0, minFootprint(V, m, n, k) - share);
  // COSMA Thm 2, piecewise: with S < V^(2/3) the best domain is √S×√S×V/S, streaming A and B.
  const S = memoryElements;
  const q = S < Math.pow(V, 2 / 3) ? (2 * V) / Math.sqrt(S) + S : 3 * Math.pow(V, 2 / 3);
  const memoryDependent = Math.max(0, q - share);
  return { memoryIndependent, memoryDependent, perRank: Math.max(memoryIndependent, memoryDependent) };
}
