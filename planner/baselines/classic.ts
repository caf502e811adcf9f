// Textbook decompositions, as grids over the flat ranks: 1D (split only m, n or k), 2D SUMMA on the
// squarest dm×dn grid, 2.5D with c copies along k (1 ≤ c ≤ P^(1/3), the c with the least estimated
// volume), and CARMA (recursive halving of the largest dimension, P a power of two).
import { divisors, isPowerOfTwo } from '../factor.js';
import { scoreGrid, type Grid, type GridScoreInput } from '../grid-search.js';

/** 1D along one dimension; a dimension shorter than P leaves ranks idle. */
export function oneDGrid(dim: 0 | 1 | 2, size: number, P: number): Grid {
  const g: Grid = [1, 1, 1];
  g[dim] = Math.max(1, Math.min(P, size));
  return g;
}

/** The most square dm×dn = q with dm ≤ m and dn ≤ n (ranks idle when q cannot be placed). */
export function squarest(q: number, m: number, n: number): [number, number] {
  // No count above m·n fits: start there, not at q (up to 2^31 − 1 ranks).
  for (let used = Math.min(q, m * n); used >= 1; used--) {
    let best: [number, number] | null = null;
    for (const a of divisors(used)) {
      const b = used / a;
      if (a > m || b > n) continue;
      if (!best || Math.abs(Math.log(a / b)) < Math.abs(Math.log(best[0] / best[1]))) best = [a, b];
    }
    if (best) return best;
  }
  return [1, 1];
}

export function summaGrid(P: number, m: number, n: number): Grid {
  const [a, b] = squarest(P, m, n);
  return [a, b, 1];
}

export function twoFiveDGrid(P: number, s: GridScoreInput): Grid {
  let best: { g: Grid; score: number } | null = null;
  for (const c of divisors(P)) {
    if (c > Math.cbrt(P) + 1e-9 || c > Math.ceil(s.k / s.gran)) continue;
    const [a, b] = squarest(P / c, s.m, s.n);
    const g: Grid = [a, b, c];
    const score = scoreGrid(g, { ...s, objective: 'volume' }).score;
    if (!best || score < best.score) best = { g, score };
  }
  return best!.g;
}

export function carmaApplies(P: number): boolean {
  return isPowerOfTwo(P);
}
