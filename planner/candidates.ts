// The decompositions worth evaluating exactly for one set of parts (ranks, hosts, or the nodes of one
// host): the best few grids from the grid search, and recursive proportional halving (which serves
// any count, e.g. a prime, and unequal rates). The caller evaluates them exactly and picks one.
import { bestBalancedGrid, scoreGrid, searchGrids, type Grid, type GridScoreInput } from './grid-search.js';
import { gridTree, recursiveTree, type TreeNode } from './tree.js';
import { len } from './split.js';
import type { Brick } from './types.js';

export interface Candidate {
  tree: TreeNode;
  family: 'grid' | 'recursive';
  grid: Grid | null;
  used: number;
  description: string;
}

/** `parts`: the ranks to count idle ones against, when `ranks` lists only those that can get work. */
export function gridCandidate(
  box: Brick,
  grid: Grid,
  ranks: readonly number[],
  gran: number,
  parts = ranks.length,
): Candidate {
  const used = grid[0] * grid[1] * grid[2];
  const idle = parts - used;
  return {
    tree: gridTree(box, grid, ranks.slice(0, used), gran),
    family: 'grid',
    grid,
    used,
    description: `grid ${grid.join('×')}` + (idle > 0 ? ` (${used} of ${parts} used, ${idle} idle)` : ''),
  };
}

export function candidatesFor(
  box: Brick,
  ranks: readonly number[],
  weights: readonly number[],
  s: GridScoreInput,
  eps: number,
  keep: number,
  extraGrids: Grid[] = [],
  /** Per-part volume no decomposition can beat: skip the recursive split when a grid is within 1%. */
  volumeFloor = 0,
  parts = ranks.length,
): Candidate[] {
  const P = ranks.length;
  const out: Candidate[] = [];
  const volume = len(box.m) * len(box.n) * len(box.k);
  const equal = weights.every((w) => w === weights[0]);
  if (equal) {
    const bound = ((1 + eps) * volume) / P;
    let grids = searchGrids(P, s, bound, keep).map((c) => c.grid);
    if (grids.length === 0) grids = [bestBalancedGrid(P, s).grid];
    for (const g of extraGrids) {
      const used = g[0] * g[1] * g[2];
      if (
        used <= P &&
        scoreGrid(g, s).maxMA <= bound * (1 + 1e-12) &&
        !grids.some((h) => h.join() === g.join())
      )
        grids.push(g);
    }
    for (const g of grids) out.push(gridCandidate(box, g, ranks, s.gran, parts));
  }
  const nearFloor =
    volumeFloor > 0 &&
    out.length > 0 &&
    scoreGrid(out[0]!.grid!, { ...s, objective: 'volume' }).score <= 1.01 * volumeFloor;
  if (P > 1 && !nearFloor) {
    out.push({
      tree: recursiveTree(box, ranks, weights, s.gran),
      family: 'recursive',
      grid: null,
      used: P,
      description: `recursive proportional halving over ${P} parts`,
    });
  } else if (!equal || out.length === 0) {
    out.push(gridCandidate(box, [1, 1, 1], ranks, s.gran, parts));
  }
  return out;
}
