// COSMA-like grid search, widened: every dm×dn×dk grid with P' = dm·dn·dk ≤ P ranks (the rest idle)
// whose largest brick keeps compute within (1 + ε)·mnk/P, with uneven (floor/ceil) splits when a
// dimension does not divide. Only P' ≥ P/(1 + ε) can meet the bound, so the search enumerates divisor
// triples of a few hundred numbers near P rather than brick assignments: fast at 16,384 ranks.
// Grids are ranked by a closed-form estimate (largest brick's footprint minus its share); the best
// few are then evaluated exactly by the caller.
import { C_BYTES } from './dtype.js';
import { divisors } from './factor.js';
import { maxPart } from './split.js';
import type { LinkSpec, Objective } from './types.js';

export type Grid = [number, number, number];

export interface GridScoreInput {
  m: number;
  n: number;
  k: number;
  gran: number;
  bytesIn: number;
  stationary?: 'A' | 'B';
  objective: Objective;
  /** rate of one part, flop/s, and the link its traffic crosses (for the time objective). */
  flops: number;
  link: LinkSpec;
}

export interface GridCandidate {
  grid: Grid;
  used: number;
  maxMultiplyAdds: number;
  score: number;
}

/** Estimated figure of a grid: largest per-part volume (elements), or predicted time (s). */
export function scoreGrid(g: Grid, s: GridScoreInput): { score: number; maxMA: number } {
  const [dm, dn, dk] = g;
  const x = maxPart(s.m, dm);
  const y = maxPart(s.n, dn);
  const z = maxPart(s.k, dk, s.gran);
  const maxMA = x * y * z;
  const vA = s.stationary === 'A' ? 0 : x * z * (1 - y / s.n);
  const vB = s.stationary === 'B' ? 0 : z * y * (1 - x / s.m);
  const vC = x * y * (1 - z / s.k);
  if (s.objective === 'volume') return { score: vA + vB + vC, maxMA };
  const bytes = s.bytesIn * (vA + vB) + C_BYTES * vC;
  const messages = (s.stationary === 'A' ? 0 : dn - 1) + (s.stationary === 'B' ? 0 : dm - 1) + dk - 1;
  return { score: (2 * maxMA) / s.flops + bytes / s.link.bandwidth + messages * s.link.latency, maxMA };
}

/** Best `keep` grids for `parts` parts. `maxMA`: the compute bound per part (multiply-adds). */
export function searchGrids(
  parts: number,
  s: GridScoreInput,
  maxMA: number,
  keep: number,
  minUsed = 1,
): GridCandidate[] {
  const kUnits = Math.ceil(s.k / s.gran);
  const lowest = Math.max(minUsed, 1);
  const best: GridCandidate[] = [];
  const consider = (c: GridCandidate) => {
    if (best.length < keep) best.push(c);
    else if (c.score < best[best.length - 1]!.score) best[best.length - 1] = c;
    else return;
    best.sort((a, b) => a.score - b.score || b.used - a.used);
  };
  for (let used = parts; used >= lowest; used--) {
    // A grid of `used` parts has a brick of at least mnk/used: stop once that exceeds the bound.
    if ((s.m * s.n * s.k) / used > maxMA * (1 + 1e-12)) break;
    for (const dm of divisors(used)) {
      if (dm > s.m) break;
      const rest = used / dm;
      for (const dn of divisors(rest)) {
        if (dn > s.n) break;
        const dk = rest / dn;
        if (dk > kUnits) continue;
        const g: Grid = [dm, dn, dk];
        const { score, maxMA: ma } = scoreGrid(g, s);
        if (ma > maxMA * (1 + 1e-12)) continue;
        consider({ grid: g, used, maxMultiplyAdds: ma, score });
      }
    }
  }
  return best;
}

/** The grid with the smallest largest brick (for problems too small to balance within ε). */
export function bestBalancedGrid(parts: number, s: GridScoreInput): GridCandidate {
  const kUnits = Math.ceil(s.k / s.gran);
  let best: GridCandidate | null = null;
  // Fewer parts than the smallest dimension product never help balance; scan down to parts/8.
  for (let used = parts; used >= Math.max(1, Math.floor(parts / 8)); used--) {
    for (const dm of divisors(used)) {
      if (dm > s.m) break;
      for (const dn of divisors(used / dm)) {
        if (dn > s.n) break;
        const dk = used / dm / dn;
        if (dk > kUnits) continue;
        const g: Grid = [dm, dn, dk];
        const { score, maxMA } = scoreGrid(g, s);
        if (!best || maxMA < best.maxMultiplyAdds || (maxMA === best.maxMultiplyAdds && score < best.score))
          best = { grid: g, used, maxMultiplyAdds: maxMA, score };
      }
    }
  }
  return best ?? { grid: [1, 1, 1], used: 1, maxMultiplyAdds: s.m * s.n * s.k, score: Infinity };
}
