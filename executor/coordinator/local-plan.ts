// Plans for this box: the local (or virtual) NUMA nodes as one host of the planner's cluster.
import type { MachineTopology } from '../../native/topology.js';
import { plan } from '../../planner/index.js';
import { DEFAULT_LINKS } from '../../planner/cluster.js';
import type { Cluster, Objective, Plan } from '../../planner/types.js';
import type { LayerDType, PlacementMode } from './layer-run.js';

/** f32 multiply-add rate of one core with AVX-512 FMA through OpenBLAS, as measured on the
 * reference machine (machine.md: ≈172 GFLOP/s for sgemm on one thread). */
const FLOPS_PER_CORE = 170e9;

export function localCluster(topo: MachineTopology): Cluster {
  return {
    hosts: [
      {
        name: topo.hostname,
        nodes: topo.nodes.map((n) => ({
          cores: n.cpus.length,
          memoryBytes: n.memoryBytes,
          flops: n.cpus.length * FLOPS_PER_CORE,
        })),
      },
    ],
    links: DEFAULT_LINKS,
    source: 'local',
  };
}

export function planLocalGemm(
  topo: MachineTopology,
  shape: { m: number; n: number; k: number },
  objective: Objective = 'time',
): Plan {
  return plan({ ...shape, dtype: 'f32' }, localCluster(topo), { objective, baselines: false });
}

/**
 * Mirror or shard per node for a layer stack. An explicit choice applies to every node; `auto`
 * asks the planner, with the weights (B = Wᵀ, k×n) stationary, and falls back to shard.
 */
export function placementFor(
  topo: MachineTopology,
  o: { placement: string; dtype: LayerDType; n: number; k: number; m: number; layers: number },
): PlacementMode[] {
  if (o.placement === 'mirror' || o.placement === 'shard')
    return topo.nodes.map(() => o.placement as PlacementMode);
  const p = plan({ m: o.m, n: o.n, k: o.k, dtype: o.dtype }, localCluster(topo), {
    stationary: 'B',
    baselines: false,
    objective: 'time',
  });
  return topo.nodes.map((_, rank) => p.placement.find((x) => x.rank === rank)?.mode ?? 'shard');
}
