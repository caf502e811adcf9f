// Virtual NUMA nodes: split a machine's cpus into N groups presented as nodes, so that one real
// node can stand in for a multi-socket box in tests and benchmarks. Pure.
import type { MachineTopology, TopologyNode } from './topology.js';

export function virtualize(real: MachineTopology, count: number): MachineTopology {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`--virtual-nodes must be a whole number of at least 1, got ${String(count)}`);
  }
  const cpus: { cpu: number; node: TopologyNode }[] = [];
  for (const node of real.nodes) for (const cpu of node.cpus) cpus.push({ cpu, node });
  if (cpus.length === 0) throw new Error('this machine reports no cpus: cannot make virtual nodes');
  const nodes: TopologyNode[] = [];
  for (let i = 0; i < count; i++) {
    // Contiguous groups when there are enough cpus (sizes differ by at most one); round-robin
    // sharing of single cpus when there are more virtual nodes than cpus.
    let group: typeof cpus;
    if (count <= cpus.length) {
      const lo = Math.floor((i * cpus.length) / count);
      const hi = Math.floor(((i + 1) * cpus.length) / count);
      group = cpus.slice(lo, hi);
    } else {
      group = [cpus[i % cpus.length]!];
    }
    const physical = group[0]!.node;
    const sharers = countSharers(cpus, count, physical.id);
    nodes.push({
      id: i,
      physicalNode: physical.physicalNode,
      package: physical.package,
      cpus: group.map((g) => g.cpu),
      memoryBytes: Math.floor(physical.memoryBytes / sharers),
      hugePages: physical.hugePages,
      virtual: true,
    });
  }
  const distances = nodes.map((a) => nodes.map((b) => (a.id === b.id ? 10 : 20)));
  return { ...real, nodes, distances, virtualNodes: count };
}

// How many virtual nodes draw their memory from real node `id`.
function countSharers(cpus: { node: TopologyNode }[], count: number, id: number): number {
  let n = 0;
  for (let i = 0; i < count; i++) {
    const first =
      count <= cpus.length ? cpus[Math.floor((i * cpus.length) / count)]! : cpus[i % cpus.length]!;
    if (first.node.id === id) n++;
  }
  return Math.max(1, n);
}
