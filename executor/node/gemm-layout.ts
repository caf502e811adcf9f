// The staging area of one gemm step, computed here only (coordinator, supervisor and executor all
// lay it out through this module): A (m×k), B (k×n) and C (m×n) as f32, each 64-byte aligned, then
// one partial-C slot per brick that splits k, rank by rank, brick by brick, in the plan's order.
// The executors reduce C by rows: rank r of P owns rows [r·m/P, (r+1)·m/P).
import type { Brick, Range } from '../../planner/types.js';
import type { StepBrick } from '../../native/steps.js';

const align = (x: number) => Math.ceil(x / 64) * 64;

export interface GemmLayout {
  aOffset: number;
  bOffset: number;
  cOffset: number;
  /** Where the partial-C slots begin, and their bytes in all. */
  partialOffset: number;
  partialBytes: number;
  /** Bytes of the whole area (at least 4, so an area is never empty). */
  bytes: number;
}

/**
 * Bytes of a brick's partial-C slot. A brick spanning all of k writes its cells of C directly (no
 * other brick covers them), so it needs none.
 */
export function partialSlotBytes(b: Brick, k: number): number {
  return b.k[0] === 0 && b.k[1] === k ? 0 : (b.m[1] - b.m[0]) * (b.n[1] - b.n[0]) * 4;
}

/** The layout for these bricks (every rank's, in slot order). */
export function gemmLayout(m: number, n: number, k: number, bricks: Iterable<Brick>): GemmLayout {
  const aOffset = 0;
  const bOffset = align(aOffset + m * k * 4);
  const cOffset = align(bOffset + k * n * 4);
  const partialOffset = align(cOffset + m * n * 4);
  let partialBytes = 0;
  for (const b of bricks) partialBytes += partialSlotBytes(b, k);
  return {
    aOffset,
    bOffset,
    cOffset,
    partialOffset,
    partialBytes,
    bytes: partialOffset + Math.max(4, partialBytes),
  };
}

/** Rows of C that executor `rank` of `ranks` reduces (idle in the plan or not). */
export function cRowsOf(rank: number, ranks: number, m: number): Range {
  return [Math.floor((rank * m) / ranks), Math.floor(((rank + 1) * m) / ranks)];
}

/**
 * The native step's bricks: every rank's (with their partial slots from `partialOffset` on, in
 * order) and those of `rank`.
 */
export function stepBricks(
  all: readonly { rank: number; bricks: readonly Brick[] }[],
  partialOffset: number,
  k: number,
  rank: number,
): { all: StepBrick[]; mine: StepBrick[] } {
  let off = partialOffset;
  const out: StepBrick[] = [];
  const mine: StepBrick[] = [];
  for (const rb of all) {
    for (const b of rb.bricks) {
      const s = {
        m0: b.m[0],
        m1: b.m[1],
        n0: b.n[0],
        n1: b.n[1],
        k0: b.k[0],
        k1: b.k[1],
        partialOffset: off,
      };
      out.push(s);
      if (rb.rank === rank) mine.push(s);
      off += partialSlotBytes(b, k);
    }
  }
  return { all: out, mine };
}
