// Which boxes the cube draws, in which order. Each active rank is one box (the bounding box of its
// bricks). Boxes are painted back to front by following the guillotine cuts of the partition: across
// a plane that separates the boxes, the far side (lower coordinates; the viewer is at +m, +n, +k) is
// drawn first. The same cut tree merges neighbouring ranks into one box when there are too many to draw.
import type { Brick, Dim, Plan, RankPlan } from '../types.js';

export interface DrawBox {
  /** The ranks computing inside this box: one, or several when boxes were merged. */
  ranks: RankPlan[];
  box: Brick;
}

interface Node {
  items: DrawBox[];
  box: Brick;
  /** Back to front; empty for a single box. */
  children: Node[];
}

const extent = (b: Brick, d: Dim) => b[d][1] - b[d][0];
export const brickVolume = (b: Brick) => extent(b, 'm') * extent(b, 'n') * extent(b, 'k');

export function boundingBox(bricks: Brick[]): Brick {
  const lo = (d: Dim) => bricks.reduce((v, b) => Math.min(v, b[d][0]), Infinity);
  const hi = (d: Dim) => bricks.reduce((v, b) => Math.max(v, b[d][1]), -Infinity);
  return { m: [lo('m'), hi('m')], n: [lo('n'), hi('n')], k: [lo('k'), hi('k')] };
}

function leaf(item: DrawBox): Node {
  return { items: [item], box: item.box, children: [] };
}

function build(items: DrawBox[]): Node {
  if (items.length === 1) return leaf(items[0]!);
  const box = boundingBox(items.map((i) => i.box));
  // The cut closest to the middle keeps the tree shallow (grids and halvings give log depth).
  let best: { sorted: DrawBox[]; cut: number; balance: number } | null = null;
  for (const d of ['k', 'm', 'n'] as Dim[]) {
    const sorted = [...items].sort((a, b) => a.box[d][0] - b.box[d][0]);
    let maxHi = -Infinity;
    for (let i = 0; i < sorted.length - 1; i++) {
      maxHi = Math.max(maxHi, sorted[i]!.box[d][1]);
      if (maxHi <= sorted[i + 1]!.box[d][0]) {
        const balance = Math.abs(sorted.length / 2 - (i + 1));
        if (!best || balance < best.balance) best = { sorted, cut: i + 1, balance };
      }
    }
  }
  if (!best) {
    // Not a guillotine partition: the sum of the centres orders most such layouts correctly.
    const key = (it: DrawBox) =>
      it.box.m[0] + it.box.m[1] + it.box.n[0] + it.box.n[1] + it.box.k[0] + it.box.k[1];
    return { items, box, children: [...items].sort((a, b) => key(a) - key(b)).map(leaf) };
  }
  return {
    items,
    box,
    children: [build(best.sorted.slice(0, best.cut)), build(best.sorted.slice(best.cut))],
  };
}

/** One box per rank (or per brick when a rank's bricks do not form a box), back to front; at most
 * `maxBoxes`, merging the smallest subtrees of the cut tree when there are more. */
export function drawBoxes(plan: Plan, maxBoxes: number): { boxes: DrawBox[]; notes: string[] } {
  const notes: string[] = [];
  const items: DrawBox[] = [];
  let merged = 0;
  const active = plan.ranks.filter((r) => r.bricks.some((b) => brickVolume(b) > 0));
  const many = active.reduce((s, r) => s + r.bricks.length, 0) > maxBoxes;
  for (const rank of active) {
    const bricks = rank.bricks.filter((b) => brickVolume(b) > 0);
    const box = boundingBox(bricks);
    const tiles = bricks.reduce((s, b) => s + brickVolume(b), 0) === brickVolume(box);
    if (tiles || many) {
      if (!tiles) merged++;
      items.push({ ranks: [rank], box });
    } else {
      for (const b of bricks) items.push({ ranks: [rank], box: b });
    }
  }
  if (merged > 0)
    notes.push(`${merged} rank(s) whose bricks do not form one box are drawn as their bounding box.`);
  if (items.length === 0) return { boxes: [], notes };
  const root = build(items);

  // Open the largest subtrees first while the number of boxes stays within the budget.
  const open = new Set<Node>([root]);
  if (items.length <= maxBoxes) open.clear(); // nothing to merge: every single box is drawn
  for (; open.size > 0;) {
    let pick: Node | null = null;
    for (const n of open)
      if (
        n.children.length > 0 &&
        open.size - 1 + n.children.length <= maxBoxes &&
        (!pick || n.items.length > pick.items.length)
      )
        pick = n;
    if (!pick) break;
    open.delete(pick);
    for (const c of pick.children) open.add(c);
  }
  const boxes: DrawBox[] = [];
  const walk = (n: Node): void => {
    if (!open.has(n) && n.children.length > 0) return n.children.forEach(walk);
    const ranks = [...new Set(n.items.flatMap((i) => i.ranks))];
    boxes.push({ ranks, box: n.box });
  };
  walk(root);
  if (boxes.length < items.length)
    notes.push(
      `${active.length} ranks drawn as ${boxes.length} boxes: neighbouring ranks are merged (point at one for its ranks).`,
    );
  return { boxes, notes };
}
