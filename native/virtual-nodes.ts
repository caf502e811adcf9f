// Virtual NUMA nodes: split a machine's cpus into N groups presented as nodes, so that one real
// node can stand in for a multi-socket box in tests and benchmarks. Pure.
import type { MachineTopology, TopologyNode } from './machine.js';

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

/**
 * The machine seen through `cpus` alone: nodes, packages and cores keep only those cpus (nodes
 * left without any are dropped). Lets a benchmark give each executor exactly one core on a big
 * machine. Throws, naming the cpus that exist, when one is not there.
 */
export function restrictToCpus(real: MachineTopology, cpus: number[]): MachineTopology {
  const all = real.nodes.flatMap((n) => n.cpus);
  const missing = cpus.filter((c) => !all.includes(c));
  if (cpus.length === 0) throw new RangeError('no cpus given');
  if (missing.length > 0) {
    throw new RangeError(
      `cpu ${missing.join(', ')} does not exist: this machine has cpus ${[...all].sort((a, b) => a - b).join(',')}`,
    );
  }
  const keep = new Set(cpus);
  // Indices (into real.nodes) of the nodes that keep at least one cpu, for the distance matrix.
  const kept = real.nodes.flatMap((n, i) => (n.cpus.some((c) => keep.has(c)) ? [i] : []));
  return {
    ...real,
    nodes: kept.map((i) => ({ ...real.nodes[i]!, cpus: real.nodes[i]!.cpus.filter((c) => keep.has(c)) })),
    distances: kept.map((a) => kept.map((b) => real.distances[a]![b]!)),
    packages: real.packages
      .map((p) => ({ ...p, cpus: p.cpus.filter((c) => keep.has(c)) }))
      .filter((p) => p.cpus.length > 0),
    cores: real.cores
      .map((c) => ({ ...c, cpus: c.cpus.filter((x) => keep.has(x)) }))
      .filter((c) => c.cpus.length > 0),
    hardwareThreads: cpus.length,
  };
}

/**
 * `count` cpus on distinct physical cores of the first node that has enough of them (one
 * hardware thread per core, so executors don't share a core's caches and load ports). Where
 * there are cores to spare, cpu 0 is left out: it takes most interrupts and housekeeping, and on
 * a 16-core Xeon an executor there ran 10-15% slower than on the other cores (bench run).
 */
export function oneCpuPerCore(real: MachineTopology, count: number): number[] {
  const firsts = (cpus: number[]) =>
    real.cores
      .map((c) => c.cpus.filter((x) => cpus.includes(x))[0])
      .filter((x): x is number => x !== undefined);
  const cpu0Core = real.cores.find((c) => c.cpus.includes(0))?.cpus ?? [];
  const pick = (cands: number[]) =>
    (cands.length > count ? cands.filter((c) => !cpu0Core.includes(c)) : cands).slice(0, count);
  for (const node of real.nodes) {
    const cands = firsts(node.cpus);
    if (cands.length >= count) return pick(cands);
  }
  const all = firsts(real.nodes.flatMap((n) => n.cpus));
  if (all.length >= count) return pick(all);
  return real.nodes.flatMap((n) => n.cpus).slice(0, count);
}
