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
  /** Summed rate of the whole cluster, ranks left out of the plan included: each rank's fair share
   * of the work, and so the imbalance, is measured against it. */
  flopsTotal: number;
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
  /** Default: the sum over `cluster`'s ranks. */
  flopsTotal?: number,
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
    flopsTotal: flopsTotal ?? flops.reduce((a, b) => a + b, 0),
    hosts: cluster.hosts.length,
    links: cluster.links,
    limitBytes,
    stationary,
    memo: new Map(),
  };
}
