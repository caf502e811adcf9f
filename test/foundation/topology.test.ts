// The topology the addon reports must match what the kernel says in /sys.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readTopology } from '../../native/topology.js';
import { virtualize } from '../../native/virtual-nodes.js';

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
