// Whether a model's split fits the memory of its nodes (planner/model-memory.ts): ranks of one
// memory node summed, free huge pages taken by whole buffers first, and a refusal whose fix is
// true (the context and the sequence count it names fit, one more does not).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EXECUTOR_OVERHEAD_BYTES,
  memoryNeeds,
  memoryShortfall,
  renderMemoryNeeds,
  reserveBytes,
  stagingShortfall,
  usableBytes,
  type MemoryPlace,
} from '../../planner/model-memory.js';
import { planModelSplit } from '../../planner/model-split.js';
import { tinyLlamaQ4_0 } from '../helpers/model-shapes.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const split2 = planModelSplit(tinyLlamaQ4_0(), [{ rate: 1 }, { rate: 1 }], { context: 2048 });
const node = (memoryNode: number, availableBytes: number, hugeFreeBytes = 0, host = 0): MemoryPlace => ({
  host,
  memoryNode,
  availableBytes,
  hugeFreeBytes,
  hugePageBytes: 2 * MiB,
});

describe('memoryNeeds', () => {
  it('sums the ranks that share a memory node: each alone fits, both together do not', () => {
    const one = split2.ranks[0]!.weightBytes + split2.ranks[0]!.kvCacheBytes + EXECUTOR_OVERHEAD_BYTES;
    const have = one * 1.5 + reserveBytes(one * 1.5);
    // Two nodes with that much each: fits.
    const apart = memoryNeeds(split2, [node(0, have), node(1, have)]);
    expect(apart.map((n) => [n.ranks, n.fits])).toEqual([
      [[0], true],
      [[1], true],
    ]);
    // One node (virtual nodes, cores of one socket): both ranks against it.
    const shared = memoryNeeds(split2, [node(0, have), node(0, have)]);
    expect(shared).toHaveLength(1);
    expect(shared[0]!.ranks).toEqual([0, 1]);
    expect(shared[0]!.weightBytes).toBe(split2.ranks[0]!.weightBytes + split2.ranks[1]!.weightBytes);
    expect(shared[0]!.overheadBytes).toBe(2 * EXECUTOR_OVERHEAD_BYTES);
    expect(shared[0]!.fits).toBe(false);
  });

  it('puts whole buffers in the free huge pages while they last, the rest in ordinary memory', () => {
    const w = split2.ranks[0]!.weightBytes;
    const pages = (b: number) => Math.ceil(b / (2 * MiB)) * 2 * MiB;
    // Room in huge pages for one rank's weights, not two: the second goes to ordinary memory.
    const [n] = memoryNeeds(split2, [
      node(0, 8 * GiB, pages(w) + 4 * MiB),
      node(0, 8 * GiB, pages(w) + 4 * MiB),
    ]);
    // (each KV cache, 11 MiB, is larger than the 4 MiB left)
    expect(split2.ranks[0]!.kvCacheBytes).toBeGreaterThan(4 * MiB);
    expect(n!.hugeBytes).toBe(pages(w));
    expect(n!.ordinaryBytes + n!.hugeBytes).toBe(
      pages(split2.ranks[0]!.weightBytes) +
        pages(split2.ranks[1]!.weightBytes) +
        pages(split2.ranks[0]!.kvCacheBytes) +
        pages(split2.ranks[1]!.kvCacheBytes) +
        2 * EXECUTOR_OVERHEAD_BYTES,
    );
    // KV caches scale with the sequences and the context asked for.
    const at = (slots: number, context: number) =>
      memoryNeeds(split2, [node(0, GiB), node(0, GiB)], slots, context)[0]!;
    expect(at(4, 2048).kvCacheBytes).toBe(4 * at(1, 2048).kvCacheBytes);
    expect(at(1, 1024).kvCacheBytes * 2).toBe(at(1, 2048).kvCacheBytes);
  });

  it('checks nothing where the nodes cannot tell what they have', () => {
    const unknown = [
      { host: 0, memoryNode: 0 },
      { host: 0, memoryNode: 1 },
    ];
    expect(memoryNeeds(split2, unknown)).toEqual([]);
    expect(memoryShortfall(split2, unknown, 64)).toBeUndefined();
    expect(memoryNeeds(split2, [node(0, GiB)])).toEqual([]); // places for another split
  });
});

describe('memoryShortfall', () => {
  it('names the node, the figures and a fix that fits, for a context and for sequences', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 64 }),
        fc.integer({ min: 1, max: 8 }),
        fc.boolean(),
        (slots, gib, hugePages) => {
          const places = [node(0, gib * GiB, hugePages ? GiB : 0), node(0, gib * GiB, hugePages ? GiB : 0)];
          const why = memoryShortfall(split2, places, slots);
          const fits = (s: number, c: number) => memoryNeeds(split2, places, s, c).every((n) => n.fits);
          expect(why === undefined).toBe(fits(slots, 2048));
          if (!why) return;
          expect(why).toMatch(
            new RegExp(
              `^the model does not fit in memory: memory node 0 \\(ranks 0, 1\\) needs [\\d.]+ [MG]iB \\(weights [\\d.]+ MiB, KV cache [\\d.]+ [MG]iB for ${slots} sequences of 2048 positions, executors 128 MiB\\) but has [\\d.]+ GiB available \\([\\d.]+ MiB of it left to the rest of the system\\)`,
            ),
          );
          const ctx = /at most (\d+) positions \(--ctx\)/.exec(why);
          if (ctx) {
            expect(fits(slots, Number(ctx[1]))).toBe(true);
            expect(fits(slots, Number(ctx[1]) + 1)).toBe(false);
          } else expect(fits(slots, 1)).toBe(false);
          const seqs = /at most (\d+) sequences of 2048 \(--parallel\)/.exec(why);
          if (seqs) {
            expect(fits(Number(seqs[1]), 2048)).toBe(true);
            expect(fits(Number(seqs[1]) + 1, 2048)).toBe(false);
          } else expect(fits(1, 2048)).toBe(false);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('says so when the weights alone do not fit, and names the host among several', () => {
    const tiny = [node(0, 8 * GiB, 0, 0), node(0, 300 * MiB, 0, 1)];
    expect(memoryShortfall(split2, tiny)).toMatch(
      /^the model does not fit in memory: host 1's memory node 0 \(rank 1\) needs .*: the weights alone do not fit: run on more nodes or hosts, or use a smaller quantization of the model$/,
    );
    // One sequence of a long context: no --parallel to suggest.
    const long = planModelSplit(tinyLlamaQ4_0(), [{ rate: 1 }, { rate: 1 }], { context: 65536 });
    const one = memoryShortfall(long, [node(0, 900 * MiB), node(1, 900 * MiB)]);
    expect(one).toMatch(/for 65536 positions, .*: ask for a context of at most \d+ positions \(--ctx\)$/);
  });

  it('renders one line per node for --dry-run, and the refusal a run would give', () => {
    const fits = [node(0, 8 * GiB, GiB), node(0, 8 * GiB, GiB)];
    const lines = renderMemoryNeeds(memoryNeeds(split2, fits), memoryShortfall(split2, fits));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^memory: memory node 0 \(ranks 0, 1\) needs [\d.]+ MiB \(weights [\d.]+ MiB, KV cache [\d.]+ MiB, executors 128 MiB\): [\d.]+ MiB of its 1\.0 GiB of free huge pages and 128 MiB of the 8\.0 GiB available$/,
    );
    const short = [node(0, 600 * MiB), node(1, 8 * GiB)];
    const two = renderMemoryNeeds(memoryNeeds(split2, short, 8), memoryShortfall(split2, short, 8));
    expect(two).toHaveLength(3);
    expect(two[0]).toMatch(/^memory: memory node 0 \(rank 0\) needs .*: does not fit$/);
    expect(two[1]).toMatch(/^memory: memory node 1 \(rank 1\) needs .* available$/);
    expect(two[2]).toMatch(
      /^note: a run would stop here: the model does not fit in memory: memory node 0 \(rank 0\)/,
    );
  });
});

describe('stagingShortfall (a host asked for a gemm staging area)', () => {
  it('takes what the memory and the free huge pages give less the reserve, and the area it replaces', () => {
    const have = { bytes: 20 * GiB, hugeFreeBytes: GiB };
    const room = usableBytes(have);
    expect(room).toBe(21 * GiB - reserveBytes(20 * GiB));
    expect(stagingShortfall(room, have)).toBeUndefined();
    const short = stagingShortfall(room + 1, have);
    expect(short).toMatch(
      /^a staging area of 20\.4 GiB \(.*\) does not fit in its memory: 20\.0 GiB available and 1\.0 GiB of free huge pages, 614 MiB of it left to the rest of the system; ask for a smaller --m, --n or --k, or spread the gemm over more hosts$/,
    );
    // The old area is freed before the new one is made.
    expect(stagingShortfall(room + GiB, have, GiB)).toBeUndefined();
    expect(stagingShortfall(room + GiB + 1, have, GiB)).toBeDefined();
    // No huge pages: not mentioned.
    expect(stagingShortfall(64 * GiB, { bytes: GiB, hugeFreeBytes: 0 })).toMatch(
      /1\.0 GiB available, 256 MiB of it left/,
    );
  });
});
