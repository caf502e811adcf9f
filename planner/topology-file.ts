// Topology files (JSON or YAML):
//   links:                       # optional; defaults from cluster.ts
//     interSocket: { bandwidth: 20e9, latency: 1e-6 }
//     network: { bandwidth: 12.5e9, latency: 5e-6 }
//   defaults: { cores: 32, memoryBytes: 64GiB, flops: 1e12 }   # optional node defaults
//   hosts:
//     - name: a
//       nodes: [{ cores: 32, memoryBytes: 68719476736, flops: 1.2e12 }, { cores: 32 }]
//     - name: b
//       nodes: 2                 # two nodes with the defaults
// This module parses text (the caller reads the file); errors name the offending entry.
import { parse as parseYaml } from 'yaml';
import { shown } from '../common/format.js';
import { DEFAULT_LINKS, DEFAULT_NODE, MAX_LISTED_RANKS, validateCluster } from './cluster.js';
import { PlanInputError } from './errors.js';
import { LINK_CLASSES, type Cluster, type ClusterNode, type Links } from './types.js';
import { parseBytes } from './units.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Nodes of one host given as a count: far above any machine, far below an allocation that hangs. */
const MAX_NODES_PER_HOST = 1024;

/** A value from the file for an error message; JSON when it can be (not for cycles from aliases). */
function show(v: unknown): string {
  try {
    return shown(JSON.stringify(v) ?? typeof v, 60);
  } catch {
    return typeof v;
  }
}

function num(v: unknown, what: string): number {
  const x = typeof v === 'string' && /^[0-9.eE+-]+$/.test(v.trim()) ? Number(v) : v;
  if (typeof x !== 'number' || !Number.isFinite(x))
    throw new PlanInputError(`${what} must be a number, got ${show(v)}`);
  return x;
}

function node(v: unknown, defaults: ClusterNode, where: string): ClusterNode {
  if (!isObj(v)) throw new PlanInputError(`${where} must be an object with cores, memoryBytes and flops`);
  for (const key of Object.keys(v))
    if (!['cores', 'memoryBytes', 'flops'].includes(key))
      throw new PlanInputError(`${where}: unknown field '${key}'`);
  return {
    cores: v.cores === undefined ? defaults.cores : num(v.cores, `${where}.cores`),
    memoryBytes:
      v.memoryBytes === undefined
        ? defaults.memoryBytes
        : parseBytes(v.memoryBytes as string | number, `${where}.memoryBytes`),
    flops: v.flops === undefined ? defaults.flops : num(v.flops, `${where}.flops`),
  };
}

export function parseTopology(text: string, name = 'topology file'): Cluster {
  let doc: unknown;
  try {
    doc = parseYaml(text); // YAML is a superset of JSON
  } catch (e) {
    throw new PlanInputError(`${name}: not valid JSON or YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isObj(doc)) throw new PlanInputError(`${name}: expected an object with a 'hosts' list`);
  for (const key of Object.keys(doc))
    if (!['hosts', 'links', 'defaults'].includes(key))
      throw new PlanInputError(`${name}: unknown field '${key}'`);
  const defaults =
    doc.defaults === undefined ? DEFAULT_NODE : node(doc.defaults, DEFAULT_NODE, `${name}: defaults`);
  const links: Links = structuredClone(DEFAULT_LINKS);
  if (doc.links !== undefined) {
    if (!isObj(doc.links)) throw new PlanInputError(`${name}: links must be an object`);
    for (const [cl, spec] of Object.entries(doc.links)) {
      if (!(LINK_CLASSES as readonly string[]).includes(cl))
        throw new PlanInputError(`${name}: unknown link class '${cl}' (use ${LINK_CLASSES.join(', ')})`);
      if (!isObj(spec)) throw new PlanInputError(`${name}: links.${cl} must be { bandwidth, latency }`);
      const l = links[cl as keyof Links];
      if (spec.bandwidth !== undefined) l.bandwidth = num(spec.bandwidth, `${name}: links.${cl}.bandwidth`);
      if (spec.latency !== undefined) l.latency = num(spec.latency, `${name}: links.${cl}.latency`);
    }
  }
  if (!Array.isArray(doc.hosts) || doc.hosts.length === 0)
    throw new PlanInputError(`${name}: 'hosts' must be a non-empty list`);
  // A file lists every node, so it may hold no more ranks than one plan lists (checked before a
  // count such as `nodes: 2000000000` is built); larger uniform clusters: --hosts/--nodes-per-host.
  let ranks = 0;
  const hosts = doc.hosts.map((h: unknown, i: number) => {
    const where = `${name}: hosts[${i}]`;
    if (!isObj(h)) throw new PlanInputError(`${where} must be an object with name and nodes`);
    // String() of an object may throw ({ toString: 1 }) or say '[object Object]': names are scalars.
    if (h.name !== undefined && typeof h.name !== 'string' && typeof h.name !== 'number')
      throw new PlanInputError(`${where}.name must be a string, got ${show(h.name)}`);
    const hostName = h.name === undefined ? `host${i}` : String(h.name);
    let nodes: ClusterNode[];
    if (
      typeof h.nodes === 'number' &&
      (!Number.isSafeInteger(h.nodes) || h.nodes < 1 || h.nodes > MAX_NODES_PER_HOST)
    )
      throw new PlanInputError(
        `${where}.nodes must be a list or a whole number from 1 to ${MAX_NODES_PER_HOST}, got ${h.nodes}`,
      );
    const count = typeof h.nodes === 'number' ? h.nodes : Array.isArray(h.nodes) ? h.nodes.length : 0;
    ranks += count;
    if (ranks > MAX_LISTED_RANKS)
      throw new PlanInputError(
        `${where}: the file describes more than ${MAX_LISTED_RANKS} nodes; describe larger uniform clusters with --hosts and --nodes-per-host`,
      );
    if (typeof h.nodes === 'number') {
      if (!Number.isSafeInteger(h.nodes) || h.nodes < 1 || h.nodes > MAX_NODES_PER_HOST)
        throw new PlanInputError(
          `${where}.nodes must be a list or a whole number from 1 to ${MAX_NODES_PER_HOST}, got ${h.nodes}`,
        );
      nodes = Array.from({ length: h.nodes }, () => ({ ...defaults }));
    } else if (Array.isArray(h.nodes)) {
      nodes = h.nodes.map((nd: unknown, j: number) => node(nd, defaults, `${where}.nodes[${j}]`));
    } else {
      throw new PlanInputError(`${where}.nodes must be a list of nodes or a count`);
    }
    return { name: hostName, nodes };
  });
  const cluster: Cluster = { hosts, links, source: 'file' };
  try {
    validateCluster(cluster);
  } catch (e) {
    throw new PlanInputError(`${name}: ${(e as Error).message}`);
  }
  return cluster;
}
