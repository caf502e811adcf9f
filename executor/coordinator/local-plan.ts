// Plans for this box: the local (or virtual) NUMA nodes as one host of the planner's cluster.
import type { MachineTopology } from '../../native/topology.js';
import { plan } from '../../planner/index.js';
import { localCluster } from './cluster.js';
import { placeStack, stackShortfall } from '../../planner/placement.js';
import { UsageError } from '../../common/errors.js';
import type { Cluster, Objective, Plan } from '../../planner/types.js';
import type { LayerDType, PlacementMode } from './layer-run.js';

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
 * The plan of a gemm across hosts. An operand made from the seed is made whole on every host (each
 * host's staging gets all of it, gemm-run.ts), so it need not cross the network: it is planned
 * stationary (`made`: the operands not read from files; B when both are). That steers the split
 * away from k, whose partial C the hosts would reduce over the network, to a split that moves
 * nothing. From files, each host is sent the rows its bricks read, and the planner weighs that.
 */
export function planHostsGemm(
  cluster: Cluster,
  shape: { m: number; n: number; k: number },
  made: { a: boolean; b: boolean },
): Plan {
  const stationary = made.b ? 'B' : made.a ? 'A' : undefined;
  return plan({ ...shape, dtype: 'f32' }, cluster, {
    objective: 'time',
    baselines: false,
    ...(stationary ? { stationary } : {}),
  });
}

/**
 * Mirror or shard per rank for a stack of `layers` layers, on one host or many (`cluster`). An
 * explicit choice applies to every rank; `auto` asks the planner, with the weights (B = Wᵀ, k×n)
 * stationary, and counts every layer of the stack (planner/placement.ts `placeStack`); idle ranks
 * shard. Either way a stack that does not fit a rank's memory is refused (UsageError) before any
 * executor makes its weights.
 */
export function stackPlacement(
  cluster: Cluster,
  ranks: number,
  o: { placement: string; dtype: LayerDType; n: number; k: number; m: number; layers: number },
): PlacementMode[] {
  const p = plan({ m: o.m, n: o.n, k: o.k, dtype: o.dtype }, cluster, {
    stationary: 'B',
    baselines: false,
    objective: 'time',
  });
  let modes: PlacementMode[];
  if (o.placement === 'mirror' || o.placement === 'shard')
    modes = Array.from({ length: ranks }, () => o.placement as PlacementMode);
  else {
    const placed = placeStack(p, o.layers);
    modes = Array.from({ length: ranks }, (_, rank) => placed.find((x) => x.rank === rank)?.mode ?? 'shard');
  }
  const short = stackShortfall(p, o.layers, modes);
  if (short) throw new UsageError(short);
  return modes;
}

/** Mirror or shard per rank of a run's machines (this box, or the hosts of a launch). */
export function layerPlacement(
  machines: { plannerCluster(): Cluster; size: number },
  o: { placement: string; dtype: LayerDType; n: number; k: number; m: number; layers: number },
): PlacementMode[] {
  return stackPlacement(machines.plannerCluster(), machines.size, o);
}

/** Mirror or shard per node of this box for a layer stack (see `stackPlacement`). */
export function placementFor(
  topo: MachineTopology,
  o: { placement: string; dtype: LayerDType; n: number; k: number; m: number; layers: number },
): PlacementMode[] {
  return stackPlacement(localCluster(topo), topo.nodes.length, o);
}
