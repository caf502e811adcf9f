// Hierarchical planning: first decompose the iteration space across hosts as if each host were one
// rank (rate = its nodes' summed rate, links = the network), so the network carries the least data;
// then decompose each host's box across its NUMA nodes under the inter-socket cost. Each level gets
// a share of the imbalance budget: (1 + ε_level)² = 1 + ε. Hosts with the same box shape and node
// list reuse one node-level decision.
import { candidatesFor, gridCandidate, type Candidate } from './candidates.js';
import type { EvalContext } from './context.js';
import type { Grid, GridScoreInput } from './grid-search.js';
import { select } from './select.js';
import { len } from './split.js';
import { leaves, recursiveTree, type TreeNode } from './tree.js';
import type { Brick, Cluster, Level, Objective } from './types.js';

export interface HierarchicalResult {
  cand: Candidate;
  levels: Level[];
}

const KEEP = 4;

function subContext(
  ctx: EvalContext,
  ranks: number[],
  flops: number[],
  link: 'network' | 'interSocket',
): EvalContext {
  const P = ranks.length;
  return {
    ...ctx,
    P,
    // Host level: every part is its own "host" (all traffic crosses the network). Node level: one host.
    hostOf: link === 'network' ? Int32Array.from(ranks, (_, i) => i) : new Int32Array(P),
    nodeOf: Int32Array.from(ranks, (_, i) => i),
    flops: Float64Array.from(flops),
    flopsTotal: flops.reduce((a, b) => a + b, 0),
    hosts: link === 'network' ? P : 1,
    memo: new Map(),
  };
}

function maxBrick(t: TreeNode): { m: number; n: number; k: number } {
  let best = { m: 0, n: 0, k: 0 };
  let vol = -1;
  for (const l of leaves(t)) {
    const v = len(l.box.m) * len(l.box.n) * len(l.box.k);
    if (v > vol) {
      vol = v;
      best = { m: len(l.box.m), n: len(l.box.n), k: len(l.box.k) };
    }
  }
  return best;
}

export function planHierarchical(
  ctx: EvalContext,
  cluster: Cluster,
  box: Brick,
  s: GridScoreInput,
  eps: number,
  objective: Objective,
): HierarchicalResult | null {
  const levelEps = Math.sqrt(1 + eps) - 1;
  const H = cluster.hosts.length;
  const hostFlops = cluster.hosts.map((h) => h.nodes.reduce((a, n) => a + n.flops, 0));
  const hostIds = Array.from({ length: H }, (_, i) => i);
  const hostCtx = { ...subContext(ctx, hostIds, hostFlops, 'network'), limitBytes: Infinity };
  const sHost: GridScoreInput = { ...s, flops: Math.min(...hostFlops), link: ctx.links.network };
  const hostSel = select(
    hostCtx,
    candidatesFor(box, hostIds, hostFlops, sHost, levelEps, KEEP),
    levelEps,
    objective,
  );
  if (!hostSel.ok) return null;
  const hostTree = hostSel.best.cand.tree;

  // Node level, per host box.
  const firstRank: number[] = [];
  let r0 = 0;
  for (const h of cluster.hosts) {
    firstRank.push(r0);
    r0 += h.nodes.length;
  }
  const recipes = new Map<
    string,
    { family: 'grid' | 'recursive'; grid: Grid | null; description: string } | null
  >();
  const subtrees = new Map<number, TreeNode>();
  let nodeLevel: { grid: Grid | null; description: string; used: number; parts: number } | null = null;
  for (const leaf of leaves(hostTree)) {
    const h = leaf.rank!;
    const nodes = cluster.hosts[h]!.nodes;
    const flops = nodes.map((n) => n.flops);
    const global = nodes.map((_, i) => firstRank[h]! + i);
    const b = leaf.box;
    const key = `${len(b.m)},${len(b.n)},${len(b.k)}|${flops.join(',')}|${nodes.map((n) => n.memoryBytes).join(',')}`;
    let recipe = recipes.get(key);
    if (recipe === undefined) {
      const local = nodes.map((_, i) => i);
      const sNode: GridScoreInput = {
        ...s,
        m: len(b.m),
        n: len(b.n),
        k: len(b.k),
        flops: Math.min(...flops),
        link: ctx.links.interSocket,
      };
      const sub = subContext(ctx, local, flops, 'interSocket');
      const sel = select(sub, candidatesFor(b, local, flops, sNode, levelEps, KEEP), levelEps, objective);
      recipe = sel.ok
        ? { family: sel.best.cand.family, grid: sel.best.cand.grid, description: sel.best.cand.description }
        : null;
      recipes.set(key, recipe);
    }
    if (!recipe) return null;
    const tree =
      recipe.family === 'grid'
        ? gridCandidate(b, recipe.grid!, global, s.gran).tree
        : recursiveTree(b, global, flops, s.gran);
    subtrees.set(h, tree);
    if (!nodeLevel) {
      const used = recipe.grid ? recipe.grid[0] * recipe.grid[1] * recipe.grid[2] : nodes.length;
      nodeLevel = { grid: recipe.grid, description: recipe.description, used, parts: nodes.length };
    }
  }
  const compose = (t: TreeNode): TreeNode =>
    t.children ? { ...t, children: t.children.map(compose) } : subtrees.get(t.rank!)!;
  const full = compose(hostTree);
  const hc = hostSel.best.cand;
  const levels: Level[] = [
    {
      name: 'hosts',
      parts: H,
      usedParts: leaves(hostTree).length,
      grid: hc.grid,
      description: hc.description,
      brick: maxBrick(hostTree),
    },
    {
      name: 'nodes',
      parts: nodeLevel!.parts,
      usedParts: nodeLevel!.used,
      grid: nodeLevel!.grid,
      description: `${nodeLevel!.description} inside each host`,
      brick: maxBrick(full),
    },
  ];
  return {
    cand: {
      tree: full,
      family: hc.family,
      grid: null,
      used: leaves(full).length,
      description: 'hierarchical',
    },
    levels,
  };
}

export { maxBrick };
