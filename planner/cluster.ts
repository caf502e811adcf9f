// Building and checking the cluster description: flat ranks, hosts × nodes, or a parsed file.
import { PlanInputError } from './errors.js';
import { LINK_CLASSES, type Cluster, type ClusterNode, type LinkClass, type Links } from './types.js';

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
  for (const [v, what] of [
    [H, source === 'ranks' ? 'the number of ranks' : 'the number of hosts'],
    [N, 'the number of nodes per host'],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1)
      throw new PlanInputError(`${what} must be a whole number of at least 1, got ${v}`);
  }
  const node = { ...DEFAULT_NODE, ...(o.node ?? {}) };
  const hosts = Array.from({ length: H }, (_, h) => ({
    name: `host${h}`,
    nodes: Array.from({ length: N }, () => ({ ...node })),
  }));
  const c: Cluster = { hosts, links: mergeLinks(o.links), source };
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
  return c.hosts.reduce((s, h) => s + h.nodes.length, 0);
}
