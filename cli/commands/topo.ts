// `redblue topo`: what the engine sees of this machine.
import type { Command } from 'commander';
import { readTopology, type MachineTopology } from '../../native/topology.js';
import { parsePositiveInt } from '../../common/errors.js';
import { formatBytes, table } from '../format.js';
import { rdmaDevices, type RdmaDevice } from '../../native/rdma.js';

export function registerTopo(program: Command): void {
  program
    .command('topo')
    .description('show packages, NUMA nodes, cpus, memory and huge pages of this machine')
    .option('--json', 'print the topology as JSON (schema in the README)')
    .option('--virtual-nodes <N>', 'split the cpus into N pretend NUMA nodes', (v) =>
      parsePositiveInt(v, '--virtual-nodes'),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  redblue topo\n  redblue topo --json --virtual-nodes 2   # two nodes of one cpu each on a 2-cpu box',
    )
    .action((opts: { json?: boolean; virtualNodes?: number }) => {
      const topo = readTopology({ virtualNodes: opts.virtualNodes });
      const rdma = rdmaDevices();
      process.stdout.write(
        opts.json
          ? JSON.stringify({ ...topo, rdmaDevices: rdma }, null, 2) + '\n'
          : renderTopology(topo) + renderRdma(rdma),
      );
    });
}

export function renderTopology(t: MachineTopology): string {
  const lines: string[] = [];
  const kind = t.virtualNodes ? ` (${t.virtualNodes} virtual nodes)` : '';
  lines.push(
    `${t.hostname}: ${t.packages.length} package(s), ${t.nodes.length} NUMA node(s)${kind}, ` +
      `${t.cores.length} core(s), ${t.hardwareThreads} hardware thread(s)`,
    '',
  );
  lines.push(
    table(
      ['node', 'package', 'cpus', 'memory', 'huge pages (free/total)', 'memory from'],
      t.nodes.map((n) => [
        String(n.id),
        String(n.package),
        compactList(n.cpus),
        formatBytes(n.memoryBytes),
        n.hugePages.map((h) => `${h.free}/${h.total} × ${formatBytes(h.pageBytes)}`).join(', ') || '-',
        n.virtual ? `node ${n.physicalNode}` : 'local',
      ]),
    ),
  );
  if (t.nodes.length > 1) {
    lines.push('', 'distances:');
    lines.push(
      table(
        ['', ...t.nodes.map((n) => String(n.id))],
        t.distances.map((row, i) => [String(t.nodes[i]!.id), ...row.map(String)]),
      ),
    );
  }
  return lines.join('\n') + '\n';
}

/** The RDMA devices and their ports, and what `--transport auto` makes of them. */
export function renderRdma(devices: RdmaDevice[]): string {
  if (devices.length === 0)
    return '\nRDMA devices: none (`--transport auto` exchanges over gRPC; UCX would use TCP and shared memory)\n';
  const rows = devices.flatMap((d) =>
    d.ports.length
      ? d.ports.map((p) => [d.name, String(p.port), p.state || '-', p.linkLayer || '-'])
      : [[d.name, '-', '-', '-']],
  );
  return (
    '\nRDMA devices (`--transport auto` exchanges over UCX):\n' +
    table(['device', 'port', 'state', 'link layer'], rows) +
    '\n'
  );
}

/** [0,1,2,3,8] → "0-3,8" */
export function compactList(xs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j]! + 1) j++;
    out.push(j > i ? `${xs[i]}-${xs[j]}` : String(xs[i]));
    i = j + 1;
  }
  return out.join(',');
}
