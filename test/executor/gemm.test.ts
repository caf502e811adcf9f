// Distributed gemm end to end: real executor processes, real shared memory, real OpenBLAS,
// results checked against a double-precision reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTopology } from '../../native/topology.js';
import { LocalCluster } from '../../executor/host/local-cluster.js';
import { runGemm } from '../../executor/coordinator/gemm-run.js';
import { planLocalGemm } from '../../executor/coordinator/local-plan.js';
import { verifyGemm } from '../../executor/coordinator/verify.js';
import { matmulRef, maxAbsDiff } from '../helpers/reference.js';

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [31, 17, 97],
  [101, 3, 67],
  [2, 211, 3],
  [64, 64, 64],
];

for (const nodes of [1, 2, 3]) {
  describe(`gemm on ${nodes} virtual node(s)`, () => {
    let cluster: LocalCluster;
    const topo = readTopology({ virtualNodes: nodes });
    beforeAll(async () => {
      cluster = await LocalCluster.start({ topology: topo });
    });
    afterAll(async () => {
      await cluster.stop();
    });

    it.each(SHAPES)('m=%i n=%i k=%i matches a double-precision reference', async (m, n, k) => {
      const plan = planLocalGemm(topo, { m, n, k });
      const r = await runGemm(cluster, plan, { m, n, k, seed: m * 1000 + n * 10 + k });
      const ref = matmulRef(r.a, r.b, m, n, k);
      expect(maxAbsDiff(r.c, ref)).toBeLessThan(1e-4 * Math.sqrt(k));
      expect(verifyGemm(r).ok).toBe(true);
      // every rank that has bricks reports work; bricks cover the whole iteration space
      const volume = plan.ranks
        .flatMap((p) => p.bricks)
        .reduce((s, b) => s + (b.m[1] - b.m[0]) * (b.n[1] - b.n[0]) * (b.k[1] - b.k[0]), 0);
      expect(volume).toBe(m * n * k);
      expect(r.perRank).toHaveLength(nodes);
    });
  });
}

describe('gemm step with bricks that split k (reduction of partial C)', () => {
  it('sums partials from several ranks, next to bricks that write C directly', async () => {
    const topo = readTopology({ virtualNodes: 3 });
    const cluster = await LocalCluster.start({ topology: topo });
    try {
      const [m, n, k] = [37, 29, 41];
      const brick = (m0: number, m1: number, n0: number, n1: number, k0: number, k1: number) => ({
        m: [m0, m1] as [number, number],
        n: [n0, n1] as [number, number],
        k: [k0, k1] as [number, number],
      });
      // rows 0-20: k split three ways over all ranks; rows 20-37: two sole bricks
      const ranks = [
        { rank: 0, bricks: [brick(0, 20, 0, 29, 0, 10), brick(20, 37, 0, 15, 0, 41)] },
        { rank: 1, bricks: [brick(0, 20, 0, 29, 10, 30)] },
        { rank: 2, bricks: [brick(0, 20, 0, 29, 30, 41), brick(20, 37, 15, 29, 0, 41)] },
      ];
      const r = await runGemm(cluster, { ranks } as never, { m, n, k, seed: 4 });
      expect(maxAbsDiff(r.c, matmulRef(r.a, r.b, m, n, k))).toBeLessThan(1e-4);
      expect(r.perRank.map((p) => p.bricks)).toEqual([2, 1, 2]);
    } finally {
      await cluster.stop();
    }
  });
});
