// The staging layout of a gemm step (executor/node/gemm-layout.ts), which the coordinator, the
// supervisor and the executors all use, and the one brick conversion to and from the wire.
import { describe, expect, it } from 'vitest';
import {
  cChunks,
  cRowsOf,
  gemmLayout,
  partialSlotBytes,
  stepBricks,
} from '../../executor/node/gemm-layout.js';
import { brickFromWire, brickToWire } from '../../transport/bricks.js';
import { assignLeftovers } from '../../planner/reassign.js';
import type { Brick } from '../../planner/types.js';

const whole: Brick = { m: [0, 3], n: [0, 5], k: [0, 7] };
const halfK: Brick = { m: [3, 6], n: [0, 5], k: [0, 4] };
const otherHalf: Brick = { m: [3, 6], n: [0, 5], k: [4, 7] };

describe('gemm staging layout', () => {
  it('places A, B and C 64-byte aligned, then one slot per brick that splits k', () => {
    const l = gemmLayout(6, 5, 7, [[whole, halfK], [otherHalf]]);
    expect(l.aOffset).toBe(0);
    expect(l.bOffset).toBe(192); // 6·7·4 = 168 → 192
    expect(l.cOffset).toBe(192 + 192); // 7·5·4 = 140 → 192
    expect(l.partialOffset).toBe(384 + 128); // 6·5·4 = 120 → 128
    expect(partialSlotBytes(whole, 7)).toBe(0);
    expect(l.partialBytes).toBe(2 * 3 * 5 * 4);
    // Then the done array: one uint32 per C chunk (3 here), 64-byte aligned.
    expect(l.doneOffset).toBe(512 + 128);
    expect(l.chunks).toBe(3);
    expect(l.bytes).toBe(l.doneOffset + 3 * 4);
    expect(gemmLayout(1, 1, 1, [[{ m: [0, 1], n: [0, 1], k: [0, 1] }]]).bytes).toBe(192 + 4); // an area is never empty
  });

  it('gives each brick its slot rank by rank, brick by brick, and each rank its rows of C', () => {
    const all = [
      { rank: 0, bricks: [whole, halfK] },
      { rank: 1, bricks: [otherHalf] },
    ];
    const s = stepBricks(all, 1000, 7, 1);
    expect(s.all.map((b) => b.partialOffset)).toEqual([1000, 1000, 1060]);
    expect(s.mine).toEqual([{ m0: 3, m1: 6, n0: 0, n1: 5, k0: 4, k1: 7, partialOffset: 1060, doneIndex: 2 }]);
    // After a lost executor: the chunks listed, whoever they were planned for, with their own
    // slots and done flags; the reduction still sums every chunk.
    const redo = stepBricks(all, 1000, 7, 5, [1, 2]);
    expect(redo.mine.map((b) => [b.m0, b.k0, b.k1, b.partialOffset, b.doneIndex])).toEqual([
      [3, 0, 4, 1000, 1],
      [3, 4, 7, 1060, 2],
    ]);
    expect(redo.all).toEqual(s.all);
    expect(stepBricks(all, 1000, 7, 0, []).mine).toEqual([]);
    expect(() => stepBricks(all, 1000, 7, 0, [3])).toThrow(
      /redo chunk 3 is not one of the plan's 3 C chunks/,
    );
    expect([0, 1, 2].map((r) => cRowsOf(r, 3, 10))).toEqual([
      [0, 3],
      [3, 6],
      [6, 10],
    ]);
  });

  it("takes a rank's sequential steps along k as one C chunk: one slot, or none when it spans k", () => {
    // rank 0 covers rows 3-6 over all of k in two steps (writes C), rank 1 rows 0-3 over half of k
    const steps0 = [halfK, otherHalf];
    const steps1: Brick[] = [
      { m: [0, 3], n: [0, 5], k: [0, 2] },
      { m: [0, 3], n: [0, 5], k: [2, 4] },
    ];
    expect(cChunks(steps0)).toEqual([{ chunk: { m: [3, 6], n: [0, 5], k: [0, 7] }, first: 0, count: 2 }]);
    const l = gemmLayout(6, 5, 7, [steps0, steps1]);
    expect(l.partialBytes).toBe(3 * 5 * 4); // rank 1's chunk only
    const s = stepBricks(
      [
        { rank: 0, bricks: steps0 },
        { rank: 1, bricks: steps1 },
      ],
      1000,
      7,
      1,
    );
    expect(s.all.map((b) => [b.k0, b.k1, b.partialOffset])).toEqual([
      [0, 7, 1000],
      [0, 4, 1000],
    ]);
    expect(s.mine.map((b) => [b.k0, b.k1, b.partialOffset])).toEqual([
      [0, 2, 1000],
      [2, 4, 1000],
    ]);
    // the same m×n in two ranks' lists are two chunks, even when their k ranges follow
    expect(gemmLayout(6, 5, 7, [[halfK], [otherHalf]]).partialBytes).toBe(2 * 3 * 5 * 4);
  });

  it('deals the chunks a lost executor left to the executors left, longest first, to the least loaded', () => {
    // 5 → 0, 4 → 1, 3 → 1 (7), 2 → 0 (7), 1 → 0 (a tie: the lower index).
    expect(assignLeftovers([5, 1, 4, 2, 3], 2)).toEqual([
      [0, 1, 3],
      [2, 4],
    ]);
    const dealt = assignLeftovers([5, 1, 4, 2, 3], 2);
    const load = dealt.map((idx) => idx.reduce((s, i) => s + [5, 1, 4, 2, 3][i]!, 0));
    expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(1);
    expect(dealt.flat().sort()).toEqual([0, 1, 2, 3, 4]);
    expect(assignLeftovers([], 3)).toEqual([[], [], []]);
    expect(() => assignLeftovers([1], 0)).toThrow(/at least one executor/);
  });

  it('converts bricks to the wire and back unchanged', () => {
    expect(brickToWire(halfK)).toEqual({ m: { lo: 3, hi: 6 }, n: { lo: 0, hi: 5 }, k: { lo: 0, hi: 4 } });
    expect(brickFromWire(brickToWire(otherHalf))).toEqual(otherHalf);
  });
});
