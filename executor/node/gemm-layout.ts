// The staging area of one gemm step, computed here only (coordinator, supervisor and executor all
// lay it out through this module): A (m×k), B (k×n) and C (m×n) as f32, each 64-byte aligned, then
// one partial-C slot per C chunk that splits k, rank by rank, chunk by chunk, in the plan's order.
// A C chunk is a run of a rank's consecutive bricks with the same m and n ranges and contiguous k
// (the planner's sequential steps, k innermost): the executor accumulates it over its k chunks
// and it is reduced once, as the planner counts it.
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
  /** The done array: one uint32 per C chunk, every rank's in plan order (see GemmStepArgs). */
  doneOffset: number;
  chunks: number;
  /** Bytes of the whole area (at least 4, so an area is never empty). */
  bytes: number;
}

/**
 * One rank's bricks as C chunks: each run of consecutive bricks with equal m and n ranges whose k
 * ranges follow each other becomes one brick spanning their k (`first`/`count`: which bricks).
 */
export function cChunks(bricks: readonly Brick[]): { chunk: Brick; first: number; count: number }[] {
  const out: { chunk: Brick; first: number; count: number }[] = [];
  bricks.forEach((b, i) => {
    const last = out[out.length - 1];
    const c = last?.chunk;
    if (
      c &&
      c.m[0] === b.m[0] &&
      c.m[1] === b.m[1] &&
      c.n[0] === b.n[0] &&
      c.n[1] === b.n[1] &&
      c.k[1] === b.k[0]
    ) {
      last.chunk = { ...c, k: [c.k[0], b.k[1]] };
      last.count++;
    } else out.push({ chunk: b, first: i, count: 1 });
  });
  return out;
}

/**
 * Bytes of a C chunk's partial slot. A chunk spanning all of k writes its cells of C directly (no
 * other brick covers them), so it needs none.
 */
export function partialSlotBytes(b: Brick, k: number): number {
  return b.k[0] === 0 && b.k[1] === k ? 0 : (b.m[1] - b.m[0]) * (b.n[1] - b.n[0]) * 4;
}

/** Bytes of the partial slots of these ranks' bricks (each list one rank's, in plan order). */
export function partialBytesOf(ranks: readonly (readonly Brick[])[], k: number): number {
  let bytes = 0;
  for (const bricks of ranks) for (const c of cChunks(bricks)) bytes += partialSlotBytes(c.chunk, k);
  return bytes;
}

/** The layout for these ranks' bricks (each list one rank's, in plan order). */
export function gemmLayout(
  m: number,
  n: number,
  k: number,
  ranks: readonly (readonly Brick[])[],
): GemmLayout {
  const aOffset = 0;
  const bOffset = align(aOffset + m * k * 4);
  const cOffset = align(bOffset + k * n * 4);
  const partialOffset = align(cOffset + m * n * 4);
  const partialBytes = partialBytesOf(ranks, k);
  const doneOffset = align(partialOffset + partialBytes);
  const chunks = ranks.reduce((s, bricks) => s + cChunks(bricks).length, 0);
  return {
    aOffset,
    bOffset,
    cOffset,
    partialOffset,
    partialBytes,
    doneOffset,
    chunks,
    bytes: doneOffset + Math.max(4, chunks * 4),
  };
}

/** Rows of C that executor `rank` of `ranks` reduces (idle in the plan or not). */
export function cRowsOf(rank: number, ranks: number, m: number): Range {
  return [Math.floor((rank * m) / ranks), Math.floor(((rank + 1) * m) / ranks)];
}

const toStep = (b: Brick, partialOffset: number): StepBrick => ({
  m0: b.m[0],
  m1: b.m[1],
  n0: b.n[0],
  n1: b.n[1],
  k0: b.k[0],
  k1: b.k[1],
  partialOffset,
});

/** Every rank's C chunks in plan order (their index is their flag in the done array), with their bricks and partial slots. */
export function planChunks(
  all: readonly { rank: number; bricks: readonly Brick[] }[],
  partialOffset: number,
  k: number,
): { rank: number; chunk: Brick; bricks: Brick[]; partialOffset: number }[] {
  let off = partialOffset;
  const out: { rank: number; chunk: Brick; bricks: Brick[]; partialOffset: number }[] = [];
  for (const rb of all) {
    for (const c of cChunks(rb.bricks)) {
      out.push({
        rank: rb.rank,
        chunk: c.chunk,
        bricks: rb.bricks.slice(c.first, c.first + c.count),
        partialOffset: off,
      });
      off += partialSlotBytes(c.chunk, k);
    }
  }
  return out;
}

/**
 * The native step's bricks: every rank's C chunks (with their partial slots from `partialOffset`
 * on, in order; what the reduction sums) and the bricks this rank computes, one per sequential
 * step, each with its C chunk's slot and index in the done array: its own (`rank`'s), or, after a
 * lost executor, the chunks listed in `redo` whoever they were planned for.
 */
export function stepBricks(
  all: readonly { rank: number; bricks: readonly Brick[] }[],
  partialOffset: number,
  k: number,
  rank: number,
  redo?: readonly number[],
): { all: StepBrick[]; mine: StepBrick[] } {
  const chunks = planChunks(all, partialOffset, k);
  const mineOf = (i: number) =>
    chunks[i]!.bricks.map((b) => ({ ...toStep(b, chunks[i]!.partialOffset), doneIndex: i }));
  const mine = redo
    ? redo.flatMap((i) => {
        if (!Number.isInteger(i) || i < 0 || i >= chunks.length)
          throw new Error(`redo chunk ${i} is not one of the plan's ${chunks.length} C chunks`);
        return mineOf(i);
      })
    : chunks.flatMap((c, i) => (c.rank === rank ? mineOf(i) : []));
  return { all: chunks.map((c) => toStep(c.chunk, c.partialOffset)), mine };
}
