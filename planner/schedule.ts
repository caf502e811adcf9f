// The communication schedule as point-to-point transfers, rebuilt from a Plan's own data (each rank's
// bricks and owned rectangles), so anything holding a Plan can expand it. At each sequential step a
// rank fetches the parts of its A and B chunks it does not hold from their owners (again only when
// the chunk changed since its previous step), and after the last k chunk of an m×n chunk it sends
// each part of its partial C to that part's owner, which reduces it.
import { footprint, intersectRect, rectArea, sameRect } from './ownership.js';
import type { LinkClass, Operand, Plan, Rect, Transfer } from './types.js';

interface Piece {
  rank: number;
  rect: Rect;
}

/** Owner pieces of one operand, sorted by first row, with a look-up of those meeting a rectangle. */
class OwnerIndex {
  private readonly pieces: Piece[];
  private readonly maxRows: number;
  private readonly cache = new Map<string, Piece[]>();
  constructor(plan: Plan, op: Operand) {
    this.pieces = [];
    for (const r of plan.ranks) for (const rect of r.owns[op]) this.pieces.push({ rank: r.rank, rect });
    this.pieces.sort(
      (a, b) => a.rect.rows[0] - b.rect.rows[0] || a.rect.cols[0] - b.rect.cols[0] || a.rank - b.rank,
    );
    this.maxRows = Math.max(0, ...this.pieces.map((p) => p.rect.rows[1] - p.rect.rows[0]));
  }
  query(q: Rect): Piece[] {
    const key = `${q.rows[0]},${q.rows[1]},${q.cols[0]},${q.cols[1]}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    // Pieces starting before q.rows[0] - maxRows cannot reach q.
    let lo = 0;
    let hi = this.pieces.length;
    const from = q.rows[0] - this.maxRows;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.pieces[mid]!.rect.rows[0] < from) lo = mid + 1;
      else hi = mid;
    }
    const out: Piece[] = [];
    for (let i = lo; i < this.pieces.length && this.pieces[i]!.rect.rows[0] < q.rows[1]; i++) {
      const p = this.pieces[i]!;
      const x = intersectRect(p.rect, q);
      if (x) out.push({ rank: p.rank, rect: x });
    }
    this.cache.set(key, out);
    return out;
  }
}

export function linkBetween(plan: Plan, a: number, b: number): LinkClass {
  const ra = plan.ranks[a]!;
  const rb = plan.ranks[b]!;
  if (ra.host !== rb.host) return 'network';
  return ra.node === rb.node ? 'memory' : 'interSocket';
}

export function buildTransfers(plan: Plan): Transfer[] {
  const index = { A: new OwnerIndex(plan, 'A'), B: new OwnerIndex(plan, 'B'), C: new OwnerIndex(plan, 'C') };
  const stationary = plan.options.stationary;
  const out: Transfer[] = [];
  for (const r of plan.ranks) {
    let prev: Record<'A' | 'B', Rect | null> = { A: null, B: null };
    r.bricks.forEach((c, step) => {
      for (const op of ['A', 'B'] as const) {
        if (stationary === op) continue;
        const q = footprint(op, c);
        if (!sameRect(q, prev[op])) {
          for (const p of index[op].query(q)) {
            if (p.rank === r.rank) continue;
            out.push(transfer(plan, step, 'fetch', p.rank, r.rank, op, p.rect));
          }
        }
      }
      prev = { A: footprint('A', c), B: footprint('B', c) };
      const next = r.bricks[step + 1];
      if (!next || next.m[0] !== c.m[0] || next.n[0] !== c.n[0]) {
        for (const p of index.C.query(footprint('C', c))) {
          if (p.rank === r.rank) continue;
          out.push(transfer(plan, step, 'reduce', r.rank, p.rank, 'C', p.rect));
        }
      }
    });
  }
  return out;
}

function transfer(
  plan: Plan,
  step: number,
  phase: Transfer['phase'],
  from: number,
  to: number,
  op: Operand,
  rect: Rect,
): Transfer {
  return {
    step,
    phase,
    from,
    to,
    operand: op,
    rows: rect.rows,
    cols: rect.cols,
    elements: rectArea(rect),
    link: linkBetween(plan, from, to),
  };
}
