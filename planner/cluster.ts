// Building and checking the cluster description: flat ranks, hosts × nodes, or a parsed file.
import { PlanInputError } from './errors.js';
import {
  LINK_CLASSES,
  type Cluster,
  type ClusterHost,
  type ClusterNode,
  type LinkClass,
  type Links,
} from './types.js';

/** Rank numbers are 32-bit signed integers (Int32Array per-rank tables). */
export const MAX_RANKS = 2 ** 31 - 1;

/** The most ranks one plan lists (each with its bricks, layout, traffic and time) and so the most
 * that can get work: planning them takes about a second (docs/planner.md), and beyond this the
 * 2 s the issue allows. A larger cluster is planned when only this many of its ranks can get work
 * (a small product); else it is refused. */
export const MAX_LISTED_RANKS = 16_384;

/** Defaults (issue 3): 20 GB/s between sockets, 12.5 GB/s (100 Gb/s) between hosts. */
export const DEFAULT_LINKS: Links = {
  memory: { bandwidth: 50e9, latency: 0.2e-6 },
  interSocket: { bandwidth: 20e9, latency: 1e-6 },
  network: { bandwidth: 12.5e9, latency: 5e-6 },
};

/** A node when nothing is known: 32 cores, 64 GiB, 1 TFLOP/s. */
export const DEFAULT_NODE: ClusterNode = { cores: 32, memoryBytes: 64 * 2 ** 30, flops: 1e12 };

export interface ClusterOverrides {
  links?: Partial<Record<LinkClass, Partial<Links[LinkClass]>>>;
  node?: Partial<ClusterNode>;
}

function mergeLinks(o?: ClusterOverrides['links']): Links {
  const out = structuredClone(DEFAULT_LINKS);
  for (const c of LINK_CLASSES) Object.assign(out[c], o?.[c] ?? {});
  return out;
}

/** P ranks, one per host (every transfer crosses the network), as COSMA sees them. */
export function ranksCluster(P: number, o: ClusterOverrides = {}): Cluster {
  return hostsCluster(P, 1, o, 'ranks');
}

export function hostsCluster(
  H: number,
  N: number,
  o: ClusterOverrides = {},
  source: Cluster['source'] = 'hosts',
): Cluster {
  for (const [v, what, max] of [
    [H, source === 'ranks' ? 'the number of ranks' : 'the number of hosts', MAX_RANKS],
    // A host's nodes are always listed.
    [N, 'the number of nodes per host', MAX_LISTED_RANKS],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1 || v > max)
      throw new PlanInputError(`${what} must be a whole number from 1 to ${max}, got ${v}`);
  }
  if (H * N > MAX_RANKS)
    throw new PlanInputError(
      `${H} hosts × ${N} nodes are ${H * N} ranks, more than ${MAX_RANKS} (2^31 − 1); give fewer hosts or nodes`,
    );
  const node = { ...DEFAULT_NODE, ...(o.node ?? {}) };
  // Beyond what one plan lists, the first host stands for all: building a billion identical hosts
  // takes minutes, for ranks of which only a few can ever get work.
  const listed = H * N <= MAX_LISTED_RANKS ? H : 1;
  const hosts = Array.from({ length: listed }, (_, h) => ({
    name: `host${h}`,
    nodes: Array.from({ length: N }, () => ({ ...node })),
  }));
  const c: Cluster = { hosts, links: mergeLinks(o.links), source };
  if (listed < H) c.unlistedHosts = H - listed;
  validateCluster(c);
  return c;
}

export function validateCluster(c: Cluster): void {
  if (!Array.isArray(c.hosts) || c.hosts.length === 0) throw new PlanInputError('the cluster has no hosts');
  const names = new Set<string>();
  c.hosts.forEach((h, hi) => {
    const where = `host ${hi} (${h.name})`;
    if (names.has(h.name)) throw new PlanInputError(`host name '${h.name}' appears twice`);
    names.add(h.name);
    if (!Array.isArray(h.nodes) || h.nodes.length === 0) throw new PlanInputError(`${where} has no nodes`);
    h.nodes.forEach((n, ni) => {
      for (const f of ['cores', 'memoryBytes', 'flops'] as const) {
        const v = n[f];
        if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
          throw new PlanInputError(
            `${where} node ${ni}: ${f} must be a positive number, got ${JSON.stringify(v)}`,
          );
      }
      if (!Number.isInteger(n.cores))
        throw new PlanInputError(`${where} node ${ni}: cores must be a whole number`);
    });
  });
  const more = c.unlistedHosts ?? 0;
  if (!Number.isSafeInteger(more) || more < 0)
    throw new PlanInputError(`unlistedHosts must be a whole number ≥ 0, got ${JSON.stringify(more)}`);
  if (rankCount(c) > MAX_RANKS)
    throw new PlanInputError(`the cluster has ${rankCount(c)} ranks, more than ${MAX_RANKS} (2^31 − 1)`);
  for (const cl of LINK_CLASSES) {
    const l = c.links?.[cl];
    if (
      !l ||
      !(l.bandwidth > 0) ||
      !Number.isFinite(l.bandwidth) ||
      !(l.latency >= 0) ||
      !Number.isFinite(l.latency)
    )
      throw new PlanInputError(
        `link class ${cl} needs a positive bandwidth (bytes/s) and a latency ≥ 0 (s), got ${JSON.stringify(l)}`,
      );
  }
}

export function rankCount(c: Cluster): number {
  const listed = c.hosts.reduce((s, h) => s + h.nodes.length, 0);
  return listed + (c.unlistedHosts ?? 0) * (c.hosts.at(-1)?.nodes.length ?? 0);
}

/** Host h, listed or not (unlisted hosts are copies of the last listed one). */
export function hostAt(c: Cluster, h: number): ClusterHost {
  return h < c.hosts.length ? c.hosts[h]! : { ...c.hosts.at(-1)!, name: `host${h}` };
}

/** Summed rate of every rank, unlisted ones included. */
export function totalFlops(c: Cluster): number {
  const rate = (h: ClusterHost) => h.nodes.reduce((s, n) => s + n.flops, 0);
  return c.hosts.reduce((s, h) => s + rate(h), 0) + (c.unlistedHosts ?? 0) * rate(c.hosts.at(-1)!);
}

/** The first `count` ranks of `c` as a cluster of their own, every host listed (the last one cut
 * short when `count` ends inside it): what the planner plans when the other ranks cannot get work.
 * Costs O(count), whatever the size of `c`. */
export function firstRanks(c: Cluster, count: number): Cluster {
  const hosts: ClusterHost[] = [];
  for (let h = 0, left = count; left > 0; h++) {
    const host = hostAt(c, h);
    const nodes = host.nodes.slice(0, left);
    hosts.push({ name: host.name, nodes });
    left -= nodes.length;
  }
  return { hosts, links: c.links, source: c.source };
}
