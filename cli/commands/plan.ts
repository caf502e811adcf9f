// `redblue plan`: the planner's dry run. Describes the cluster (--ranks, --hosts/--nodes-per-host,
// --topology FILE, or this machine), plans C = A·B and prints the plan as text or JSON.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  hostsCluster,
  ranksCluster,
  DEFAULT_LINKS,
  DEFAULT_NODE,
  MAX_LISTED_RANKS,
  MAX_RANKS,
  type ClusterOverrides,
} from '../../planner/cluster.js';
import { machineCluster } from '../../planner/machine-cluster.js';
import type { MachineTopology } from '../../native/machine.js';
import { isDType } from '../../planner/dtype.js';
import { plan, PlanInputError, type Cluster, type PlannerOptions } from '../../planner/index.js';
import { renderPlan } from '../../planner/render.js';
import { writePlanHtml } from '../../planner/html/index.js';
import { parseTopology } from '../../planner/topology-file.js';
import { parseBytes } from '../../planner/units.js';
import { UsageError, parsePositiveInt } from '../../common/errors.js';

interface PlanFlags {
  m: string;
  n: string;
  k: string;
  ranks?: number;
  hosts?: number;
  nodesPerHost?: number;
  virtualNodes?: number;
  topology?: string;
  hostfile?: string;
  memory?: string;
  dtype: string;
  stationary?: string;
  objective: string;
  maxImbalance: string;
  interSocketBandwidth?: string;
  networkBandwidth?: string;
  interSocketLatency?: string;
  networkLatency?: string;
  flops?: string;
  hierarchy: boolean;
  baselines: boolean;
  json?: boolean;
  html?: string;
}

function positiveNumber(v: string, flag: string, allowZero = false): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x < 0 || (!allowZero && x === 0))
    throw new UsageError(`${flag} must be a ${allowZero ? 'non-negative' : 'positive'} number, got '${v}'`);
  return x;
}

async function localCluster(o: ClusterOverrides, virtualNodes?: number): Promise<Cluster> {
  let t: MachineTopology;
  try {
    const { readTopology } = await import('../../native/topology.js');
    t = readTopology({ virtualNodes });
  } catch (e) {
    throw new UsageError(
      `cannot read this machine's topology (${(e as Error).message.split('\n')[0]}); give --ranks, --hosts/--nodes-per-host or --topology`,
    );
  }
  // The same conversion and rates as `redblue run` uses, so both plan this box alike.
  return machineCluster([{ name: t.hostname, nodes: t.nodes }], 'local', o);
}

export async function buildCluster(f: PlanFlags): Promise<Cluster> {
  const given = [
    f.ranks !== undefined,
    f.hosts !== undefined || f.nodesPerHost !== undefined,
    f.topology !== undefined,
  ];
  if (given.filter(Boolean).length > 1)
    throw new UsageError('give only one of --ranks, --hosts/--nodes-per-host and --topology');
  if (f.virtualNodes !== undefined && (given.some(Boolean) || f.hostfile !== undefined))
    throw new UsageError(
      '--virtual-nodes splits this machine: give it without --ranks, --hosts, --topology or --hostfile',
    );
  const o: ClusterOverrides = { links: {}, node: {} };
  if (f.interSocketBandwidth)
    o.links!.interSocket = { bandwidth: positiveNumber(f.interSocketBandwidth, '--inter-socket-bandwidth') };
  if (f.networkBandwidth)
    o.links!.network = { bandwidth: positiveNumber(f.networkBandwidth, '--network-bandwidth') };
  if (f.interSocketLatency)
    o.links!.interSocket = {
      ...o.links!.interSocket,
      latency: positiveNumber(f.interSocketLatency, '--inter-socket-latency', true),
    };
  if (f.networkLatency)
    o.links!.network = {
      ...o.links!.network,
      latency: positiveNumber(f.networkLatency, '--network-latency', true),
    };
  if (f.flops) o.node!.flops = positiveNumber(f.flops, '--flops');
  if (f.memory) o.node!.memoryBytes = parseBytes(f.memory, '--memory');
  if (f.hostfile !== undefined)
    return (await import('../../executor/coordinator/reported-cluster.js')).clusterFromHostfile(
      f.hostfile,
      o,
    );
  if (f.ranks !== undefined) return ranksCluster(f.ranks, o);
  if (f.hosts !== undefined || f.nodesPerHost !== undefined)
    return hostsCluster(f.hosts ?? 1, f.nodesPerHost ?? 1, o);
  if (f.topology !== undefined) {
    let text: string;
    try {
      text = readFileSync(f.topology, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read --topology ${f.topology}: ${(e as Error).message}`);
    }
    const c = parseTopology(text, f.topology);
    // Flags override the file's links.
    for (const [cl, l] of Object.entries(o.links ?? {}))
      Object.assign(c.links[cl as keyof typeof c.links], l);
    if (o.node?.flops) for (const h of c.hosts) for (const n of h.nodes) n.flops = o.node.flops;
    return c;
  }
  return localCluster(o, f.virtualNodes);
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('plan C (m×n) = A (m×k) · B (k×n): the decomposition, its communication, memory and time')
    .requiredOption('--m <M>', 'rows of A and C')
    .requiredOption('--n <N>', 'columns of B and C')
    .requiredOption('--k <K>', 'columns of A, rows of B')
    .option('--ranks <P>', 'P ranks, one per host (every transfer crosses the network)', (v) =>
      parsePositiveInt(v, '--ranks', MAX_RANKS),
    )
    .option('--hosts <H>', 'H hosts …', (v) => parsePositiveInt(v, '--hosts', MAX_RANKS))
    .option('--nodes-per-host <N>', '… of N NUMA nodes each (one rank per node)', (v) =>
      parsePositiveInt(v, '--nodes-per-host', MAX_LISTED_RANKS),
    )
    .option(
      '--virtual-nodes <N>',
      'this machine with its cpus split into N pretend NUMA nodes (as run does)',
      (v) => parsePositiveInt(v, '--virtual-nodes'),
    )
    .option('--topology <FILE>', 'hosts, nodes and links from a JSON or YAML file (schema in the README)')
    .option(
      '--hostfile <FILE>',
      'the hosts of a hostfile, as their executors report them (over SSH; docs/hosts.md)',
    )
    .option('--memory <BYTES>', 'memory limit per rank, e.g. 17179869184 or 16GiB (default: the node memory)')
    .option('--dtype <D>', 'element type of A and B: f32, bf16, f16, q8_0, q4_0', 'f32')
    .option('--stationary <A|B>', 'operand that stays resident across calls (weights)')
    .option('--objective <O>', 'volume (largest per-rank volume) or time (predicted time)', 'time')
    .option('--max-imbalance <E>', 'no rank computes more than (1+E)·mnk/P', '0.03')
    .option('--inter-socket-bandwidth <B/s>', `default ${DEFAULT_LINKS.interSocket.bandwidth}`)
    .option('--network-bandwidth <B/s>', `default ${DEFAULT_LINKS.network.bandwidth} per host`)
    .option('--inter-socket-latency <s>', `default ${DEFAULT_LINKS.interSocket.latency}`)
    .option('--network-latency <s>', `default ${DEFAULT_LINKS.network.latency}`)
    .option('--flops <F>', `compute rate per node, flop/s (default ${DEFAULT_NODE.flops})`)
    .option('--no-hierarchy', 'plan all ranks flat, even across hosts')
    .option('--no-baselines', 'skip the baselines')
    .option('--json', 'print the Plan as JSON (schema in the README)')
    .option('--html <FILE>', 'also write the plan as one self-contained HTML page (docs/viz.md)')
    .addHelpText(
      'after',
      '\nExamples:\n  redblue plan --m 16384 --n 16384 --k 16384 --ranks 65 --objective volume\n' +
        '  redblue plan --m 8192 --n 8192 --k 8192 --hosts 4 --nodes-per-host 2 --json\n' +
        '  redblue plan --m 4096 --n 11008 --k 4096 --topology cluster.yaml --dtype q8_0 --stationary B',
    )
    .action(async (f: PlanFlags) => {
      const problem = {
        m: parsePositiveInt(f.m, '--m'),
        n: parsePositiveInt(f.n, '--n'),
        k: parsePositiveInt(f.k, '--k'),
        dtype: f.dtype,
      };
      if (!isDType(f.dtype))
        throw new UsageError(`--dtype must be one of f32, bf16, f16, q8_0, q4_0, got '${f.dtype}'`);
      if (f.objective !== 'volume' && f.objective !== 'time')
        throw new UsageError(`--objective must be volume or time, got '${f.objective}'`);
      if (f.stationary !== undefined && f.stationary !== 'A' && f.stationary !== 'B')
        throw new UsageError(`--stationary must be A or B, got '${f.stationary}'`);
      const options: Partial<PlannerOptions> = {
        objective: f.objective,
        maxImbalance: positiveNumber(f.maxImbalance, '--max-imbalance', true),
        hierarchical: f.hierarchy,
        baselines: f.baselines,
        stationary: f.stationary as 'A' | 'B' | undefined,
      };
      if (f.memory) options.memoryBytes = parseBytes(f.memory, '--memory');
      try {
        const cluster = await buildCluster(f);
        const p = plan({ ...problem, dtype: f.dtype }, cluster, options);
        process.stdout.write(f.json ? JSON.stringify(p) + '\n' : renderPlan(p));
        if (f.html) writePlanHtml(p, f.html);
      } catch (e) {
        if (e instanceof PlanInputError) throw new UsageError(e.message);
        throw e;
      }
    });
}
