// Distributed gemm end to end: real executor processes, real shared memory, real OpenBLAS,
// results checked against a double-precision reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTopology } from '../../native/topology.js';
import { LocalCluster } from '../../executor/local-cluster.js';
import { runGemm } from '../../executor/gemm-run.js';
import { planLocalGemm } from '../../executor/local-plan.js';
import { verifyGemm } from '../../executor/verify.js';
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
