// The initial data layout ("native layout", cosma.md): which rank holds which rectangle of A and B
// before the product, and which rectangle of C after it. Built down the decomposition tree: the
// root holds each whole matrix; a cut along one of the matrix's own dimensions hands each part the
// matching slice; a cut along the matrix's foreign dimension (n for A, m for B, k for C: the parts
// share the same block) divides the held region among the parts in proportion to their extents.
// So every rank holds a rectangle inside its own footprint, and a rank with brick x×y×z holds about
// xz·y/n of A, zy·x/m of B and xy·z/k of C: exactly its balanced share (mk + kn + mn)/P when compute
// is balanced. That makes "footprint minus share" (the volume) the exact traffic.
import { splitRange, len } from './split.js';
import type { TreeNode } from './tree.js';
import type { Dim, Operand, Range, Rect } from './types.js';

/** rows, cols and the foreign dimension of each operand. */
export const OPERAND_DIMS: Record<Operand, [Dim, Dim, Dim]> = {
  A: ['m', 'k', 'n'],
  B: ['k', 'n', 'm'],
  C: ['m', 'n', 'k'],
};
export const OPERANDS: readonly Operand[] = ['A', 'B', 'C'];

/** Per operand, per rank: the rectangles it holds (one for a grid; a few for irregular splits). */
export type Owns = Record<Operand, Rect[][]>;

export function rectArea(r: Rect | null): number {
  return r ? len(r.rows) * len(r.cols) : 0;
}

export function rectsArea(rs: readonly Rect[] | undefined): number {
  let a = 0;
  if (rs)
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i]!;
      a += (r.rows[1] - r.rows[0]) * (r.cols[1] - r.cols[0]);
    }
  return a;
}

function intersectRange(a: Range, b: Range): Range | null {
  const lo = Math.max(a[0], b[0]);
  const hi = Math.min(a[1], b[1]);
  return lo < hi ? [lo, hi] : null;
}

export function intersectRect(a: Rect | null, b: Rect | null): Rect | null {
  if (!a || !b) return null;
  const rows = intersectRange(a.rows, b.rows);
  const cols = rows && intersectRange(a.cols, b.cols);
  return rows && cols ? { rows, cols } : null;
}

export function sameRect(a: Rect | null, b: Rect | null): boolean {
  if (!a || !b) return a === b;
  return (
    a.rows[0] === b.rows[0] && a.rows[1] === b.rows[1] && a.cols[0] === b.cols[0] && a.cols[1] === b.cols[1]
  );
}

/** The block of `op` a brick touches. */
export function footprint(op: Operand, box: { m: Range; n: Range; k: Range }): Rect {
  const [r, c] = OPERAND_DIMS[op];
  return { rows: box[r], cols: box[c] };
}

/** Sorted positions where the subtree below `node` cuts along `dim` (inner cut points only). */
function cutsBelow(node: TreeNode, dim: Dim): number[] {
  const out = new Set<number>();
  const walk = (t: TreeNode) => {
    if (!t.children) return;
    if (t.dim === dim) for (let i = 1; i < t.children.length; i++) out.add(t.children[i]!.box[dim][0]);
    for (const c of t.children) walk(c);
  };
  walk(node);
  return [...out].sort((a, b) => a - b);
}

/**
 * Who holds what. Think of it as a decision for every element x of the operand: at a cut along one
 * of the operand's own dimensions, x belongs to the part containing it; at a cut along the foreign
 * dimension (all parts need x), x goes to the part whose share of [0, 1) contains x's relative
 * position inside its "cell" (the stretch between the cuts made further down, along the axis with
 * fewer of them). Every element thus has exactly one owner, and each rank holds the same fraction
 * of every cell of its footprint as its share of the foreign extent: xz·y/n of A and so on.
 */
export function assignOwnership(tree: TreeNode, P: number): Owns {
  const empty = () => Array.from({ length: P }, () => [] as Rect[]);
  const owns: Owns = { A: empty(), B: empty(), C: empty() };
  for (const op of OPERANDS) {
    const [rd, cd, fd] = OPERAND_DIMS[op];
    const walk = (node: TreeNode, regions: Rect[]): void => {
      if (regions.length === 0) return;
      if (!node.children) {
        owns[op][node.rank!] = regions;
        return;
      }
      if (node.dim === fd) {
        const weights = node.children.map((c) => len(c.box[fd]));
        const rowCuts = cutsBelow(node, rd);
        const colCuts = cutsBelow(node, cd);
        const byRows =
          rowCuts.length !== colCuts.length
            ? rowCuts.length < colCuts.length
            : len(regions[0]!.rows) >= len(regions[0]!.cols);
        const cuts = byRows ? rowCuts : colCuts;
        const parts: Rect[][] = node.children.map(() => []);
        for (const r of regions) {
          const axis = byRows ? r.rows : r.cols;
          // Elementary stretches of this region between the cuts below.
          let lo = axis[0];
          const stops = cuts.filter((c) => c > axis[0] && c < axis[1]).concat([axis[1]]);
          for (const hi of stops) {
            splitRange([lo, hi], weights).forEach((p, i) => {
              if (len(p) > 0) parts[i]!.push(byRows ? { rows: p, cols: r.cols } : { rows: r.rows, cols: p });
            });
            lo = hi;
          }
        }
        node.children.forEach((c, i) => walk(c, parts[i]!));
      } else {
        // Parts differ only along the cut dimension: clip each region to the parts it reaches,
        // found by binary search (parts are in increasing order).
        const d = node.dim!;
        const isRows = d === rd;
        const ch = node.children;
        const subs: Rect[][] = ch.map(() => []);
        for (const r of regions) {
          const [a, b] = isRows ? r.rows : r.cols;
          let lo = 0;
          let hi = ch.length;
          while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (ch[mid]!.box[d][1] <= a) lo = mid + 1;
            else hi = mid;
          }
          for (let i = lo; i < ch.length && ch[i]!.box[d][0] < b; i++) {
            const cr = ch[i]!.box[d];
            const clip: Range = [Math.max(a, cr[0]), Math.min(b, cr[1])];
            if (clip[0] < clip[1])
              subs[i]!.push(isRows ? { rows: clip, cols: r.cols } : { rows: r.rows, cols: clip });
          }
        }
        ch.forEach((c, i) => walk(c, subs[i]!));
      }
    };
    walk(tree, [{ rows: tree.box[rd], cols: tree.box[cd] }]);
  }
  return owns;
}

/** Calls fn(rank, area) for every owned piece of `op` meeting [r0, r1) × [c0, c1), without
 * allocating (the evaluator only needs areas). */
export function forEachOwnerArea(
  tree: TreeNode,
  owns: Owns,
  op: Operand,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  fn: (rank: number, area: number) => void,
): void {
  const [rd, cd] = OPERAND_DIMS[op];
  const list = owns[op];
  const walk = (node: TreeNode): void => {
    const ch = node.children;
    if (!ch) {
      const mine = list[node.rank!]!;
      for (let i = 0; i < mine.length; i++) {
        const o = mine[i]!;
        const h = Math.min(r1, o.rows[1]) - Math.max(r0, o.rows[0]);
        if (h <= 0) continue;
        const w = Math.min(c1, o.cols[1]) - Math.max(c0, o.cols[0]);
        if (w > 0) fn(node.rank!, h * w);
      }
      return;
    }
    const d = node.dim!;
    let a: number;
    let b: number;
    if (d === rd) {
      a = r0;
      b = r1;
    } else if (d === cd) {
      a = c0;
      b = c1;
    } else {
      for (let i = 0; i < ch.length; i++) walk(ch[i]!);
      return;
    }
    let lo = 0;
    let hi = ch.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ch[mid]!.box[d][1] <= a) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < ch.length && ch[i]!.box[d][0] < b; i++) walk(ch[i]!);
  };
  walk(tree);
}
