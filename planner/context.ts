// What the evaluator needs to know about the machine, flattened per rank (ranks are numbered host by
// host, node by node), plus the limits of the problem.
import { dtypeInfo } from './dtype.js';
import type { Cluster, DTypeInfo, Links, Problem } from './types.js';

export interface EvalContext {
  problem: Problem;
  dtype: DTypeInfo;
  P: number;
  hostOf: Int32Array;
  nodeOf: Int32Array;
  flops: Float64Array;
  hosts: number;
  links: Links;
  /** Per-rank memory limit in bytes. */
  limitBytes: number;
  stationary?: 'A' | 'B';
  /** Evaluations of grids already done in this planning run (baselines repeat the search's grids). */
  memo: Map<string, unknown>;
}

export function contextFor(
  problem: Problem,
  cluster: Cluster,
  limitBytes: number,
  stationary?: 'A' | 'B',
): EvalContext {
  const P = cluster.hosts.reduce((s, h) => s + h.nodes.length, 0);
  const hostOf = new Int32Array(P);
  const nodeOf = new Int32Array(P);
  const flops = new Float64Array(P);
  let r = 0;
  cluster.hosts.forEach((h, hi) =>
    h.nodes.forEach((n, ni) => {
      hostOf[r] = hi;
      nodeOf[r] = ni;
      flops[r] = n.flops;
      r++;
    }),
  );
  return {
    problem,
    dtype: dtypeInfo(problem.dtype),
    P,
    hostOf,
    nodeOf,
    flops,
    hosts: cluster.hosts.length,
    links: cluster.links,
    limitBytes,
    stationary,
    memo: new Map(),
  };
}
