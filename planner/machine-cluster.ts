// Machines as the planner's cluster: the one conversion from what hosts report (NUMA nodes with
// their cpus and memory) to planner nodes, with one measured compute rate. `redblue plan` (this
// machine), `redblue run` and `redblue launch` all plan through it, so the dry run and the run
// plan the same box the same way (test/executor/plan-agrees.test.ts).
import { LINK_CLASSES, type Cluster } from './types.js';
import { DEFAULT_LINKS, type ClusterOverrides } from './cluster.js';

/**
 * f32 multiply-add rate of one core through OpenBLAS, as measured on the reference machine
 * (docs: machine.md, ≈172 GFLOP/s for sgemm on one AVX-512 thread).
 */
export const MEASURED_FLOPS_PER_CORE = 170e9;

/** A host as it reports itself: its name and NUMA nodes (cpus, memory). */
export interface ReportedHost {
  name: string;
  nodes: readonly { cpus: readonly number[]; memoryBytes: number }[];
}

/**
 * One planner node per NUMA node (one executor each), rated by its cpus; `o.node.flops` sets every
 * node's rate instead, and `o.links` overrides link classes.
 */
export function machineCluster(
  hosts: readonly ReportedHost[],
  source: Cluster['source'],
  o: ClusterOverrides = {},
): Cluster {
  const links = structuredClone(DEFAULT_LINKS);
  for (const c of LINK_CLASSES) Object.assign(links[c], o.links?.[c] ?? {});
  return {
    hosts: hosts.map((h) => ({
      name: h.name,
      nodes: h.nodes.map((n) => ({
        cores: n.cpus.length,
        memoryBytes: n.memoryBytes,
        flops: o.node?.flops ?? n.cpus.length * MEASURED_FLOPS_PER_CORE,
      })),
    })),
    links,
    source,
  };
}
