// `redblue run` is the one-host case of `redblue launch`: its host is this box driven in process
// through the same step dispatch a supervisor runs, so a request is checked the same way, and the
// one gemm runner gives the same C whether it is handed the executors or their one-host cluster.
import { describe, expect, it } from 'vitest';
import { readTopology } from '../../native/topology.js';
import { sharedCluster } from '../helpers/cluster.js';
import { oneHost } from '../../executor/coordinator/cluster.js';
import { runGemm } from '../../executor/coordinator/gemm-run.js';
import { planLocalGemm } from '../../executor/coordinator/local-plan.js';
import { matmulRef, maxAbsDiff } from '../helpers/reference.js';

describe('the in-process host of redblue run', () => {
  const topo = readTopology({ virtualNodes: 2 });
  const clusterOf = sharedCluster(topo);

  it('checks requests as a supervisor does', async () => {
    const one = oneHost(clusterOf());
    expect(one.hostFirstRanks).toEqual([0, 2]);
    const host = one.host;
    await expect(host.read(0, new Uint8Array(8))).rejects.toThrow(/no staging area/);
    await host.stage(4096);
    await expect(host.write(4000, new Uint8Array(100))).rejects.toThrow(
      /write: bytes \[4000, 4100\) lie outside the 4096-byte staging area/,
    );
    const gemm = {
      m: 4,
      n: 4,
      k: 4,
      aOffset: 0,
      bOffset: 64,
      cOffset: 128,
      partialOffset: 192,
    };
    const brick = (mHi: number) => ({ m: { lo: 0, hi: mHi }, n: { lo: 0, hi: 4 }, k: { lo: 0, hi: 4 } });
    await expect(host.gemm({ ...gemm, bricks: [{ node: 0, bricks: [brick(9)] }] })).rejects.toThrow(
      /brick\.m\.hi must be a whole number in \[0, 4\], got 9/,
    );
    await expect(host.gemm({ ...gemm, bricks: [{ node: 2, bricks: [brick(4)] }] })).rejects.toThrow(
      /node must be a whole number in \[0, 1\], got 2/,
    );
    await expect(
      host.runLayers({
        m: 1,
        iters: 1,
        seed: 1,
        collect: false,
        yOffset: 0,
        xOffset: 0,
        firstRank: 0,
        world: 2,
        run: 'r',
        hostFirstRanks: [0, 1, 2],
      }),
    ).rejects.toThrow(/hostFirstRanks must be \[0, 2\] on one host/);
    // A request that is right runs.
    const r = await host.gemm({ ...gemm, bricks: [{ node: 1, bricks: [brick(4)] }] });
    expect(r.ranks).toHaveLength(2);
  });

  it('gives the same C from the executors as from their one-host cluster', async () => {
    const [m, n, k] = [61, 47, 83];
    const plan = planLocalGemm(topo, { m, n, k });
    const a = await runGemm(clusterOf(), plan, { m, n, k, seed: 3 });
    const b = await runGemm(oneHost(clusterOf()), plan, { m, n, k, seed: 3 });
    expect(a.hosts).toBe(1);
    expect(a.reduceBytes).toBe(0);
    expect(Array.from(b.c)).toEqual(Array.from(a.c));
    expect(maxAbsDiff(a.c, matmulRef(a.a, a.b, m, n, k))).toBeLessThan(1e-3);
  });
});
