// A memory-limited gemm runs the plan's sequential steps: each executor computes its bricks one
// after another, fetching only each step's blocks of A and B into node-local buffers, and the
// node-local memory it maps (as the native step reports it) stays within the plan's peak.
import { describe, expect, it } from 'vitest';
import { readTopology } from '../../native/topology.js';
import { sharedCluster } from '../helpers/cluster.js';
import { runGemm } from '../../executor/coordinator/gemm-run.js';
import { planLocalGemm } from '../../executor/coordinator/local-plan.js';
import { verifyGemm } from '../../executor/coordinator/verify.js';
import { cChunks } from '../../executor/node/gemm-layout.js';
import { maxAbsDiff } from '../helpers/reference.js';

describe('gemm under a memory limit (sequential steps)', () => {
  const topo = readTopology({ virtualNodes: 2 });
  const clusterOf = sharedCluster(topo);
  const [m, n, k] = [300, 260, 500];

  it('runs every step of the plan, within its peak memory, and C matches OpenBLAS', async () => {
    const whole = planLocalGemm(topo, { m, n, k });
    const limited = planLocalGemm(topo, { m, n, k }, 'time', 1_000_000);
    const s = limited.strategy.sequential;
    expect(s.m * s.n * s.k).toBeGreaterThan(1); // the limit forces several steps
    const one = await runGemm(clusterOf(), whole, { m, n, k, seed: 9 });
    const r = await runGemm(clusterOf(), limited, { m, n, k, seed: 9 });
    expect(verifyGemm(r).ok).toBe(true);
    expect(maxAbsDiff(r.c, one.c)).toBeLessThan(verifyGemm(r).tolerance);
    for (const p of limited.ranks) {
      const got = r.perRank[p.rank]!;
      expect(got.steps).toBe(p.bricks.length);
      expect(got.steps).toBeGreaterThan(1);
      expect(got.cChunks).toBe(cChunks(p.bricks).length);
      expect(got.blocksFetched).toBe(2 * p.bricks.length);
      const fetched = p.bricks.reduce(
        (t, b) => t + 4 * (b.k[1] - b.k[0]) * (b.m[1] - b.m[0] + b.n[1] - b.n[0]),
        0,
      );
      expect(got.bytesFetched).toBe(fetched);
      expect(got.localPeakBytes).toBeGreaterThan(0);
      expect(got.localPeakBytes).toBeLessThanOrEqual(p.peakMemoryBytes);
      expect(got.localPeakBytes).toBeLessThanOrEqual(limited.memory.limitBytes);
      // one step per rank maps the whole brick's blocks: more than any sequential step does
      expect(got.localPeakBytes).toBeLessThan(one.perRank[p.rank]!.localPeakBytes!);
    }
  });

  it("reads its inputs from buffers on its own node: the kernel's page report for each executor", async () => {
    const p = planLocalGemm(topo, { m: 64, n: 48, k: 40 });
    const r = await runGemm(clusterOf(), p, { m: 64, n: 48, k: 40, seed: 3 });
    expect(verifyGemm(r).ok).toBe(true);
    for (const rank of p.ranks) {
      if (rank.bricks.length === 0) continue;
      // the staging area's A and B may sit anywhere (the coordinator wrote them); what the
      // kernel multiplies is copied into these buffers, bound to the executor's memory node
      expect(r.perRank[rank.rank]!.localNode).toBe(topo.nodes[rank.rank]!.physicalNode);
    }
  });
});
