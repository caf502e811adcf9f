// The machine as the executors see it: real NUMA nodes from hwloc, or virtual ones.
import { hostname } from 'node:os';
import { loadAddon, type HugePageCount } from './addon.js';
import { virtualize } from './virtual-nodes.js';

export interface TopologyNode {
  /** Node id as the rest of redblue uses it (virtual ids are 0..N-1). */
  id: number;
  /** The real NUMA node its memory comes from. */
  physicalNode: number;
  package: number;
  cpus: number[];
  memoryBytes: number;
  hugePages: HugePageCount[];
  virtual: boolean;
}

export interface MachineTopology {
  hostname: string;
  packages: { id: number; cpus: number[]; nodes: number[] }[];
  nodes: TopologyNode[];
  cores: { id: number; package: number; cpus: number[] }[];
  /** Relative distances between nodes (10 = local), as the firmware reports them. */
  distances: number[][];
  hardwareThreads: number;
  /** Set when the nodes are virtual (--virtual-nodes N). */
  virtualNodes?: number;
}

export function readTopology(options: { virtualNodes?: number } = {}): MachineTopology {
  const raw = loadAddon().topology();
  const real: MachineTopology = {
    hostname: hostname(),
    packages: raw.packages,
    nodes: raw.nodes.map((n) => ({
      id: n.id,
      physicalNode: n.id,
      package: n.package,
      cpus: n.cpus,
      memoryBytes: n.memoryBytes,
      hugePages: n.hugePages,
      virtual: false,
    })),
    cores: raw.cores,
    distances: raw.distances,
    hardwareThreads: raw.hardwareThreads,
  };
  return options.virtualNodes === undefined ? real : virtualize(real, options.virtualNodes);
}
