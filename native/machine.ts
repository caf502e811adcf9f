// The shape of a machine (what readTopology returns and virtual-nodes.ts reshapes), apart from
// reading it, so that topology.ts and virtual-nodes.ts need not import each other.
import type { HugePageCount } from './addon.js';

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
