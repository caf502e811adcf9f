// Plans for this box: the local (or virtual) NUMA nodes as one host of the planner's cluster.
import type { MachineTopology } from '../../native/topology.js';
import { plan } from '../../planner/index.js';
import { machineCluster } from '../../planner/machine-cluster.js';
import type { Cluster, Objective, Plan } from '../../planner/types.js';
import type { LayerDType, PlacementMode } from './layer-run.js';

/** This box (its real or virtual nodes) as one host of the planner's cluster. */
export function localCluster(topo: MachineTopology): Cluster {
  return machineCluster([{ name: topo.hostname, nodes: topo.nodes }], 'local');
}

/** `memoryBytes`: the per-rank limit (default: each node's memory); below the working set the plan
 * cuts every brick into sequential steps, which the executors then run one after another. */
export function planLocalGemm(
  topo: MachineTopology,
  shape: { m: number; n: number; k: number },
  objective: Objective = 'time',
  memoryBytes?: number,
): Plan {
  return plan({ ...shape, dtype: 'f32' }, localCluster(topo), {
    objective,
    baselines: false,
    ...(memoryBytes !== undefined ? { memoryBytes } : {}),
  });
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
