// Mirror or shard counts the whole layer stack, on one host (`placementFor`, `redblue run layer`)
// and across hosts (`stackPlacement`, which `layerPlacement` calls for `redblue launch layer`).
import { describe, expect, it } from 'vitest';
import { readTopology } from '../../native/topology.js';
import { placementFor, stackPlacement } from '../../executor/coordinator/local-plan.js';
import { machineCluster } from '../../planner/machine-cluster.js';
import { plan } from '../../planner/index.js';
import { placeStack } from '../../planner/placement.js';

const MiB = 2 ** 20;
// Q4_0 11008×4096: 25.4 MB a layer, so one fits a 100 MiB node whole and 6 (152 MB) do not, but
// their halves do; 32 (811 MB) do not fit even split over 4.
const layer = { placement: 'auto', dtype: 'q4_0' as const, n: 11008, k: 4096, m: 1 };

describe('stack placement', () => {
  const base = readTopology({ virtualNodes: 2 });
  const topo = { ...base, nodes: base.nodes.map((n) => ({ ...n, memoryBytes: 100 * MiB })) };

  it('mirrors one layer on 100 MiB nodes but shards a stack of 6', () => {
    expect(placementFor(topo, { ...layer, layers: 1 })).toEqual(['mirror', 'mirror']);
    expect(placementFor(topo, { ...layer, layers: 6 })).toEqual(['shard', 'shard']);
  });

  it('refuses a stack that does not fit as asked, naming the rank and the fix', () => {
    expect(() => placementFor(topo, { ...layer, layers: 32 })).toThrow(
      /^the stack does not fit: rank 0 would hold [\d.]+ MiB of B \(32 layers, its shard\) beside its working set of [\d.]+ KiB, over its 100 MiB: ask for fewer --layers or a smaller --n or --k, or run on more nodes or hosts$/,
    );
    // Whole layers where halves would fit: the fix names sharding.
    expect(() => placementFor(topo, { ...layer, placement: 'mirror', layers: 6 })).toThrow(
      /rank 0 would hold [\d.]+ MiB of B \(6 layers, whole\) .*: ask for fewer --layers or a smaller --n or --k, --placement shard, or run on more nodes or hosts$/,
    );
  });

  it('counts the stack the same way across hosts', () => {
    const hosts = [0, 1].map((h) => ({
      name: `h${h}`,
      nodes: topo.nodes.map((n) => ({ cpus: n.cpus, memoryBytes: 100 * MiB })),
    }));
    const cluster = machineCluster(hosts, 'hosts');
    expect(stackPlacement(cluster, 4, { ...layer, layers: 1 })).toEqual(Array(4).fill('mirror'));
    expect(stackPlacement(cluster, 4, { ...layer, layers: 6 })).toEqual(Array(4).fill('shard'));
    expect(stackPlacement(cluster, 4, { ...layer, placement: 'mirror', layers: 3 })).toEqual(
      Array(4).fill('mirror'),
    );
    expect(() => stackPlacement(cluster, 4, { ...layer, layers: 32 })).toThrow(
      /the stack does not fit: rank 0 /,
    );
  });

  it('gives every layer its bytes and says why', () => {
    const p = plan(
      { m: 1, n: 11008, k: 4096, dtype: 'q4_0' },
      machineCluster([{ name: 'x', nodes: topo.nodes }], 'local'),
      {
        stationary: 'B',
        baselines: false,
      },
    );
    const one = placeStack(p, 1);
    expect(one.map((x) => x.mode)).toEqual(p.placement.map((x) => x.mode)); // one layer: as planned
    const many = placeStack(p, 32);
    for (const x of many) {
      expect(x.mode).toBe('shard');
      expect(x.bytes).toBe(
        32 *
          (x.block!.rows[1] - x.block!.rows[0]) *
          (x.block!.cols[1] - x.block!.cols[0]) *
          p.dtype.bytesPerElement,
      );
      expect(x.reason).toMatch(/32 mirrors of B .* exceed/);
    }
  });
});
