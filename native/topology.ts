// The machine as the executors see it: real NUMA nodes from hwloc, or virtual ones.
import { hostname } from 'node:os';
import { loadAddon } from './addon.js';
import type { MachineTopology } from './machine.js';
import { virtualize } from './virtual-nodes.js';

export type { MachineTopology, TopologyNode } from './machine.js';

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
