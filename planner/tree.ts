// A decomposition is a tree of guillotine cuts of the m×n×k iteration space: each inner node cuts
// its box along one dimension into parts, each leaf is one rank's brick. A regular dm×dn×dk grid is
// three levels of even cuts; recursive proportional splits serve any number of ranks; a hierarchical
// plan cuts across hosts first and then, inside each host's box, across its nodes. Ranks that get
// no leaf are idle.
import { splitEven, splitRange, len } from './split.js';
import type { Brick, Dim, Range } from './types.js';

export interface TreeNode {
  box: Brick;
  /** Inner node: the dimension it cuts and its parts, in rank order. */
  dim?: Dim;
  children?: TreeNode[];
  /** Leaf: the rank computing this brick. */
  rank?: number;
}

export const DIMS: readonly Dim[] = ['m', 'n', 'k'];

export function withRange(box: Brick, dim: Dim, r: Range): Brick {
  return { ...box, [dim]: r };
}

export function brickVolume(b: Brick): number {
  return len(b.m) * len(b.n) * len(b.k);
}

/** A regular grid: cut m into dm, each part n into dn, each part k into dk; leaves take `ranks` in
 * order (k fastest, so the ranks reducing one C block are neighbours). */
export function gridTree(
  box: Brick,
  grid: [number, number, number],
  ranks: readonly number[],
  gran: number,
): TreeNode {
  let next = 0;
  const build = (b: Brick, level: number): TreeNode => {
    if (level === 3) return { box: b, rank: ranks[next++]! };
    const dim = DIMS[level]!;
    const parts = grid[level]!;
    if (parts === 1) return build(b, level + 1);
    const children = splitEven(b[dim], parts, dim === 'k' ? gran : 1).map((r) =>
      build(withRange(b, dim, r), level + 1),
    );
    return { box: b, dim, children };
  };
  return build(box, 0);
}

/** Recursive proportional halving (CARMA generalised to any count and to unequal rates): cut the
 * longest dimension in two, giving each half ⌊p/2⌋ and ⌈p/2⌉ ranks and a share of the extent
 * proportional to their summed weights. Ranks left over when the box cannot be cut further are idle. */
export function recursiveTree(
  box: Brick,
  ranks: readonly number[],
  weights: readonly number[],
  gran: number,
): TreeNode {
  const build = (b: Brick, lo: number, hi: number): TreeNode => {
    if (hi - lo === 1) return { box: b, rank: ranks[lo]! };
    let dim: Dim = 'm';
    let best = -1;
    for (const d of DIMS) {
      const units = Math.ceil(len(b[d]) / (d === 'k' ? gran : 1));
      if (units >= 2 && len(b[d]) > best) {
        best = len(b[d]);
        dim = d;
      }
    }
    if (best < 0) return { box: b, rank: ranks[lo]! };
    const mid = lo + Math.floor((hi - lo) / 2);
    let w1 = 0;
    let w2 = 0;
    for (let i = lo; i < mid; i++) w1 += weights[i]!;
    for (let i = mid; i < hi; i++) w2 += weights[i]!;
    const g = dim === 'k' ? gran : 1;
    let [r1, r2] = splitRange(b[dim], [w1, w2], g) as [Range, Range];
    // Never leave a half empty: both halves have ranks to feed.
    if (len(r1) === 0 || len(r2) === 0) {
      const [lo0, hi0] = b[dim];
      const units = Math.ceil((hi0 - lo0) / g);
      const cut = lo0 + (len(r1) === 0 ? 1 : units - 1) * g;
      r1 = [lo0, cut];
      r2 = [cut, hi0];
    }
    return {
      box: b,
      dim,
      children: [build(withRange(b, dim, r1), lo, mid), build(withRange(b, dim, r2), mid, hi)],
    };
  };
  return build(box, 0, ranks.length);
}

export function leaves(t: TreeNode, out: TreeNode[] = []): TreeNode[] {
  if (t.children) for (const c of t.children) leaves(c, out);
  else out.push(t);
  return out;
}

/** The brick of each rank (undefined for idle ranks). */
export function bricksByRank(t: TreeNode, P: number): (Brick | undefined)[] {
  const out: (Brick | undefined)[] = new Array(P).fill(undefined);
  for (const l of leaves(t)) out[l.rank!] = l.box;
  return out;
}
