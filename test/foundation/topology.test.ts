// The topology the addon reports must match what the kernel says in /sys.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readTopology } from '../../native/topology.js';
import { oneCpuPerCore, restrictToCpus, virtualize } from '../../native/virtual-nodes.js';
import type { MachineTopology } from '../../native/topology.js';

function parseCpuList(s: string): number[] {
  const out: number[] = [];
  for (const part of s.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}

const sysNodes = readdirSync('/sys/devices/system/node')
  .filter((d) => /^node\d+$/.test(d))
  .map((d) => Number(d.slice(4)))
  .sort((a, b) => a - b);

describe('machine topology', () => {
  const topo = readTopology();

  it('lists the same NUMA nodes as /sys/devices/system/node', () => {
    expect(topo.nodes.map((n) => n.id)).toEqual(sysNodes);
  });

  it('gives each node the cpus and memory the kernel reports', () => {
    for (const node of topo.nodes) {
      const base = `/sys/devices/system/node/node${node.id}`;
      expect(node.cpus).toEqual(parseCpuList(readFileSync(`${base}/cpulist`, 'utf8')));
      const memKb = Number(/MemTotal:\s+(\d+) kB/.exec(readFileSync(`${base}/meminfo`, 'utf8'))![1]);
      expect(node.memoryBytes).toBe(memKb * 1024);
    }
  });

  it('reports the kernel distance matrix', () => {
    topo.nodes.forEach((node, i) => {
      const row = readFileSync(`/sys/devices/system/node/node${node.id}/distance`, 'utf8')
        .trim()
        .split(/\s+/)
        .map(Number);
      expect(topo.distances[i]).toEqual(row);
    });
  });

  it('counts cores and hardware threads like the kernel', () => {
    const online = parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
    expect(topo.hardwareThreads).toBe(online.length);
    expect(topo.cores.flatMap((c) => c.cpus).sort((a, b) => a - b)).toEqual(online);
    expect(topo.packages.length).toBeGreaterThanOrEqual(1);
  });

  it('reports 2 MiB huge pages per node as /sys counts them', () => {
    for (const node of topo.nodes) {
      const dir = `/sys/devices/system/node/node${node.id}/hugepages/hugepages-2048kB`;
      const hp = node.hugePages.find((h) => h.pageBytes === 2 << 20);
      expect(hp).toBeDefined();
      expect(hp!.total).toBe(Number(readFileSync(`${dir}/nr_hugepages`, 'utf8')));
    }
  });
});

describe('virtual nodes', () => {
  const real = readTopology();
  const allCpus = real.nodes.flatMap((n) => n.cpus);

  it('splits the cpus into contiguous groups that cover every cpu once', () => {
    for (let n = 1; n <= allCpus.length; n++) {
      const v = virtualize(real, n);
      expect(v.nodes).toHaveLength(n);
      expect(v.nodes.flatMap((x) => x.cpus)).toEqual(allCpus);
      const sizes = v.nodes.map((x) => x.cpus.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect(v.nodes.map((x) => x.id)).toEqual([...Array(n).keys()]);
    }
  });

  it('shares cpus round-robin when there are more nodes than cpus', () => {
    const n = allCpus.length * 2 + 1;
    const v = virtualize(real, n);
    expect(v.nodes).toHaveLength(n);
    v.nodes.forEach((node, i) => expect(node.cpus).toEqual([allCpus[i % allCpus.length]]));
  });

  it('takes memory from the real node and divides it among the nodes that share it', () => {
    const v = virtualize(real, 2);
    for (const node of v.nodes) {
      const phys = real.nodes.find((r) => r.id === node.physicalNode)!;
      expect(node.memoryBytes).toBeLessThanOrEqual(phys.memoryBytes);
      expect(node.virtual).toBe(true);
    }
    expect(v.distances).toEqual([
      [10, 20],
      [20, 10],
    ]);
  });

  it('rejects zero, negative and fractional counts with a clear error', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => virtualize(real, bad)).toThrow(/--virtual-nodes must be a whole number of at least 1/);
    }
  });
});

describe('executors of one core on a bigger machine', () => {
  // Two sockets of two cores with two hardware threads each (cpus n and n+8 are siblings), as
  // Linux numbers them on many servers.
  const big: MachineTopology = {
    hostname: 'big',
    packages: [
      { id: 0, cpus: [0, 1, 8, 9], nodes: [0] },
      { id: 1, cpus: [2, 3, 10, 11], nodes: [1] },
    ],
    nodes: [
      {
        id: 0,
        physicalNode: 0,
        package: 0,
        cpus: [0, 1, 8, 9],
        memoryBytes: 8 << 30,
        hugePages: [],
        virtual: false,
      },
      {
        id: 1,
        physicalNode: 1,
        package: 1,
        cpus: [2, 3, 10, 11],
        memoryBytes: 8 << 30,
        hugePages: [],
        virtual: false,
      },
    ],
    cores: [
      { id: 0, package: 0, cpus: [0, 8] },
      { id: 1, package: 0, cpus: [1, 9] },
      { id: 2, package: 1, cpus: [2, 10] },
      { id: 3, package: 1, cpus: [3, 11] },
    ],
    distances: [
      [10, 21],
      [21, 10],
    ],
    hardwareThreads: 8,
  };

  it('picks one hardware thread on each of two cores of one node, never two siblings', () => {
    // node 0 has just the two cores, so cpu 0 stays in; node 1 is not needed
    expect(oneCpuPerCore(big, 2)).toEqual([0, 1]);
    // no node has three cores: across nodes, leaving the core of cpu 0 out
    expect(oneCpuPerCore(big, 3)).toEqual([1, 2, 3]);
    expect(oneCpuPerCore(big, 4)).toEqual([0, 1, 2, 3]);
    expect(oneCpuPerCore(big, 1)).toEqual([1]);
  });

  it('keeps only the chosen cpus, then splits them into virtual nodes of one core each', () => {
    const r = restrictToCpus(big, [0, 1]);
    expect(r.nodes.map((n) => n.cpus)).toEqual([[0, 1]]);
    expect(r.distances).toEqual([[10]]);
    expect(r.cores.map((c) => c.cpus)).toEqual([[0], [1]]);
    expect(r.hardwareThreads).toBe(2);
    expect(virtualize(r, 2).nodes.map((n) => n.cpus)).toEqual([[0], [1]]);
    const across = restrictToCpus(big, [1, 3]);
    expect(across.nodes.map((n) => n.id)).toEqual([0, 1]);
    expect(across.distances).toEqual([
      [10, 21],
      [21, 10],
    ]);
  });

  it('names the cpus that exist when asked for one that does not', () => {
    expect(() => restrictToCpus(big, [0, 42])).toThrow(
      'cpu 42 does not exist: this machine has cpus 0,1,2,3,8,9,10,11',
    );
    expect(() => restrictToCpus(big, [])).toThrow(/no cpus/);
  });
});
