// plan(problem, cluster, options): the communication-optimal decomposition of C = A·B, pure and
// deterministic. How the search works:
//  1. Candidates (candidates.ts): the best few dm×dn×dk grids over P' ≤ P ranks that keep compute
//     within (1 + ε)·mnk/P (grid-search.ts, uneven splits allowed), recursive proportional halving
//     (any P, unequal rates), and COSMA's own grid (so we never lose to it where it is balanced).
//  2. Each candidate gets its native data layout (ownership.ts), sequential chunks if memory is
//     short (sequential.ts) and an exact evaluation (evaluate.ts): volumes per rank and link class,
//     peak memory, alpha-beta time. select.ts keeps those that fit memory and balance, best objective.
//  3. With several hosts of several nodes, hierarchy.ts plans hosts first (network), then nodes in
//     each host (inter-socket); it replaces the flat plan when less data crosses the network.
//  4. Baselines (baselines/) and lower bounds (bounds.ts) are computed under the same model.
//  5. After a lost executor, reassign.ts deals the chunks it left undone to the executors left.
// Limits (cluster.ts): up to MAX_LISTED_RANKS ranks every rank is planned and listed. A larger
// cluster (up to 2^31 − 1 ranks) is planned on its first min(P, bricks) ranks when that is few
// enough, bricks being the m·n·⌈k/block⌉ unit bricks: no other rank can get work, so the rest are
// reported idle, not listed. Otherwise it is refused before anything per rank is built.
import { cosmaCandidate, runBaselines } from './baselines/index.js';
import { candidatesFor } from './candidates.js';
import { firstRanks, hostAt, MAX_LISTED_RANKS, rankCount, totalFlops, validateCluster } from './cluster.js';
import { contextFor } from './context.js';
import { PlanInputError } from './errors.js';
import type { GridScoreInput } from './grid-search.js';
import { lowerBounds } from './bounds.js';
import { maxBrick, planHierarchical } from './hierarchy.js';
import { placeStationary, shardBytes } from './placement.js';
import { buildTransfers } from './schedule.js';
import { evaluateCandidate, select, type Chosen } from './select.js';
import { chooseChunking } from './sequential.js';
import { dtypeInfo, isDType } from './dtype.js';
import { formatBytes } from '../common/format.js';
import {
  PLAN_SCHEMA_VERSION,
  type Brick,
  type Cluster,
  type Level,
  type Plan,
  type PlannerOptions,
  type Problem,
  type RankPlan,
} from './types.js';

export * from './types.js';
export { buildTransfers } from './schedule.js';
export { PlanInputError } from './errors.js';

// Grids evaluated exactly: fewer at large P, where near-optimal grids abound and evaluation costs more.
const keepFor = (P: number) => (P > 4096 ? 2 : 4);

export const DEFAULT_OPTIONS: PlannerOptions = {
  objective: 'time',
  maxImbalance: 0.03,
  hierarchical: true,
  maxScheduleTransfers: 200_000,
  baselines: true,
};

export function validateProblem(p: Problem): void {
  for (const d of ['m', 'n', 'k'] as const) {
    const v = p[d];
    // Above 2^53 − 1 neighbouring indices are the same double: ranges could not be exact.
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      throw new PlanInputError(
        `--${d} must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER} (2^53 − 1), got ${JSON.stringify(v)}`,
      );
  }
  if (!isDType(p.dtype))
    throw new PlanInputError(`unknown dtype '${p.dtype}' (use f32, bf16, f16, q8_0 or q4_0)`);
}

function resolveOptions(
  o: Partial<PlannerOptions>,
  cluster: Cluster,
): PlannerOptions & { memoryBytes: number } {
  const opts = { ...DEFAULT_OPTIONS, ...o };
  if (opts.objective !== 'volume' && opts.objective !== 'time')
    throw new PlanInputError(`objective must be volume or time, got '${String(opts.objective)}'`);
  if (!(opts.maxImbalance >= 0) || !Number.isFinite(opts.maxImbalance))
    throw new PlanInputError(`max imbalance must be a number ≥ 0 (e.g. 0.03), got ${opts.maxImbalance}`);
  if (opts.stationary !== undefined && opts.stationary !== 'A' && opts.stationary !== 'B')
    throw new PlanInputError(`stationary must be A or B, got '${String(opts.stationary)}'`);
  // Unlisted hosts copy the last listed one: the listed nodes hold the minimum.
  const memoryBytes =
    opts.memoryBytes ??
    cluster.hosts.reduce((m, h) => h.nodes.reduce((mm, n) => Math.min(mm, n.memoryBytes), m), Infinity);
  if (!(memoryBytes > 0)) throw new PlanInputError(`memory limit must be positive, got ${memoryBytes}`);
  return { ...opts, memoryBytes };
}

/** Unit bricks (1×1×one k block) of the product: no more ranks than this can get work. A double:
 * only ever compared with rank counts. */
function unitBricks(p: Problem): number {
  return p.m * p.n * Math.ceil(p.k / dtypeInfo(p.dtype).blockK);
}

/** How many ranks the plan lists (see the top of this file); refuses a cluster whose working ranks
 * would be too many to list. */
function listedRankCount(problem: Problem, P: number): number {
  if (P <= MAX_LISTED_RANKS) return P;
  const bricks = unitBricks(problem);
  const canWork = Math.min(P, bricks);
  if (canWork > MAX_LISTED_RANKS)
    throw new PlanInputError(
      `cannot plan ${P} ranks: ${canWork === P ? 'every one of them' : `up to ${canWork} of them (one per unit brick)`} ` +
        `could get work, and a plan lists at most ${MAX_LISTED_RANKS} working ranks, each with its bricks, data and traffic; ` +
        `plan for at most ${MAX_LISTED_RANKS} ranks`,
    );
  return canWork;
}

export function plan(problem: Problem, cluster: Cluster, options: Partial<PlannerOptions> = {}): Plan {
  validateProblem(problem);
  validateCluster(cluster);
  const opts = resolveOptions(options, cluster);
  const P = rankCount(cluster);
  const listed = listedRankCount(problem, P);
  // Only the listed ranks are planned; shares (and so imbalance) still count every rank.
  const work = listed < P ? firstRanks(cluster, listed) : cluster;
  const ctx = contextFor(problem, work, opts.memoryBytes, opts.stationary, totalFlops(cluster));
  const eps = opts.maxImbalance;
  const box: Brick = { m: [0, problem.m], n: [0, problem.n], k: [0, problem.k] };
  const ranks = Array.from({ length: listed }, (_, i) => i);
  const multiHost = work.hosts.length > 1;
  const s: GridScoreInput = {
    m: problem.m,
    n: problem.n,
    k: problem.k,
    gran: ctx.dtype.blockK,
    bytesIn: ctx.dtype.bytesPerElement,
    stationary: opts.stationary,
    objective: opts.objective,
    flops: ctx.flops.reduce((a, b) => Math.min(a, b), Infinity),
    link: multiHost ? cluster.links.network : cluster.links.interSocket,
  };
  const cosma = cosmaCandidate(box, ranks, s, P);
  const floor = opts.stationary ? 0 : lowerBounds(problem, listed, Infinity).memoryIndependent;
  const cands = candidatesFor(
    box,
    ranks,
    Array.from(ctx.flops),
    s,
    eps,
    keepFor(listed),
    [cosma.grid!],
    floor,
    P,
  );
  const flat = select(ctx, cands, eps, opts.objective);
  if (!flat.ok) {
    throw new PlanInputError(
      `memory limit ${opts.memoryBytes} B (${formatBytes(opts.memoryBytes)}) per rank is below the minimum this product needs on ${P} rank(s): ` +
        `${Math.ceil(flat.minBytes)} B (${formatBytes(flat.minBytes)}); give more memory (--memory) or more ranks`,
    );
  }
  let chosen: Chosen = flat.best;
  let family: Plan['strategy']['family'] = flat.best.cand.family;
  let levels: Level[] = [
    {
      name: 'ranks',
      parts: P,
      usedParts: chosen.ev.usedRanks,
      grid: chosen.cand.grid,
      description: chosen.cand.description,
      brick: maxBrick(chosen.cand.tree),
    },
  ];
  const nested = multiHost && work.hosts.some((h) => h.nodes.length > 1);
  if (opts.hierarchical && nested) {
    const h = planHierarchical(ctx, work, box, s, eps, opts.objective);
    if (h) {
      const r = evaluateCandidate(ctx, h.cand);
      const net = (c: Chosen['ev']) => c.perLinkClass.network;
      const balanced = r.ev.imbalance <= Math.max(eps, chosen.ev.imbalance) + 1e-9;
      if (r.fits && balanced && net(r.ev) <= net(chosen.ev)) {
        if (net(r.ev) < net(chosen.ev) || r.ev.time.total <= chosen.ev.time.total) {
          chosen = { cand: h.cand, ev: r.ev };
          family = 'hierarchical';
          levels = h.levels;
        }
      }
    }
  }
  if (listed < P && levels[0]!.name === 'hosts')
    levels[0]!.parts = cluster.hosts.length + (cluster.unlistedHosts ?? 0);
  return assemble(problem, cluster, opts, ctx, chosen, family, levels, s);
}

function assemble(
  problem: Problem,
  cluster: Cluster,
  opts: PlannerOptions & { memoryBytes: number },
  ctx: ReturnType<typeof contextFor>,
  chosen: Chosen,
  family: Plan['strategy']['family'],
  levels: Level[],
  s: GridScoreInput,
): Plan {
  const { ev, cand } = chosen;
  const P = ctx.P; // the listed ranks
  const allRanks = rankCount(cluster);
  const chunkReason = chooseChunking(ctx, cand.tree, ev.owns);
  const figures = Array.from({ length: P }, (_, r) => ev.rank(r));
  const ranks: RankPlan[] = figures.map((f, r) => ({
    rank: r,
    host: ctx.hostOf[r]!,
    node: ctx.nodeOf[r]!,
    bricks: f.bricks,
    owns: { A: ev.owns.A[r]!, B: ev.owns.B[r]!, C: ev.owns.C[r]! },
    multiplyAdds: f.multiplyAdds,
    volume: { ...f.volume, total: f.volume.A + f.volume.B + f.volume.C, perLinkClass: { ...f.link } },
    peakMemoryBytes: f.peakBytes,
    time: f.time,
  }));
  const placement = opts.stationary
    ? placeStationary(
        problem,
        opts.stationary,
        ctx.dtype.bytesPerElement,
        opts.memoryBytes,
        ranks.map((r) => ({ rank: r.rank, host: r.host, node: r.node, figures: figures[r.rank]! })),
      )
    : [];
  for (const p of placement) {
    if (p.mode !== 'mirror') continue;
    // The mirror replaces the shard the working set counted.
    const r = ranks[p.rank]!;
    r.peakMemoryBytes += p.bytes - shardBytes(r.bricks, p.operand, ctx.dtype.bytesPerElement);
  }
  const idle = ranks.filter((r) => r.multiplyAdds === 0).map((r) => r.rank);
  const memElements = opts.memoryBytes / Math.min(ctx.dtype.bytesPerElement, 4);
  const lb = lowerBounds(problem, allRanks, memElements);
  const perRank = ranks.map((r) => r.volume.total);
  const maxOver = (f: (r: RankPlan) => number) => ranks.reduce((m, r) => Math.max(m, f(r)), 0);
  const unlisted =
    P < allRanks
      ? `; ranks ${P}–${allRanks - 1} idle, not listed (the product has only ${unitBricks(problem)} unit bricks)`
      : '';
  const plan: Plan = {
    schemaVersion: PLAN_SCHEMA_VERSION,
    problem,
    dtype: ctx.dtype,
    cluster: {
      hosts: cluster.hosts.length + (cluster.unlistedHosts ?? 0),
      // The real node counts of the hosts holding listed ranks (the last may be listed in part).
      nodesPerHost: Array.from(
        { length: ctx.P > 0 ? ctx.hostOf[ctx.P - 1]! + 1 : 0 },
        (_, h) => hostAt(cluster, h).nodes.length,
      ),
      ranks: allRanks,
      listedRanks: P,
      links: cluster.links,
      source: cluster.source,
    },
    options: opts,
    strategy: {
      family,
      levels,
      sequential: {
        ...ev.chunking,
        reason: chunkReason.ok ? chunkReason.reason : 'does not fit',
      },
      usedRanks: ev.usedRanks,
      idleRanks: idle,
      description: levels.map((l) => `${l.name}: ${l.description}`).join('; ') + unlisted,
    },
    ranks,
    schedule: {
      steps: maxOver((r) => r.bricks.length),
      transferCount: ev.transferCount,
      transfers: [],
      omitted: false,
    },
    placement,
    volume: {
      maxPerRank: ev.maxVolume,
      total: ev.totalVolume,
      perLinkClass: ev.perLinkClass,
      perRank,
      totalBytes: ev.totalVolumeBytes,
      maxPerRankBytes: ev.maxVolumeBytes,
    },
    memory: {
      limitBytes: opts.memoryBytes,
      peakBytes: maxOver((r) => r.peakMemoryBytes),
      perRank: ranks.map((r) => r.peakMemoryBytes),
    },
    compute: {
      totalMultiplyAdds: problem.m * problem.n * problem.k,
      maxPerRank: ev.maxMultiplyAdds,
      imbalance: ev.imbalance,
    },
    time: ev.time,
    lowerBound: lb,
    // The bounds assume every operand moves: with a stationary one they do not apply.
    ratioToLowerBound: opts.stationary
      ? null
      : lb.perRank > 0
        ? ev.maxVolume / lb.perRank
        : ev.maxVolume === 0
          ? 1
          : null,
    baselines: {},
  };
  if (ev.transferCount <= opts.maxScheduleTransfers) plan.schedule.transfers = buildTransfers(plan);
  else plan.schedule.omitted = true;
  if (opts.baselines)
    plan.baselines = runBaselines(
      ctx,
      { m: [0, problem.m], n: [0, problem.n], k: [0, problem.k] },
      s,
      ev.maxVolume,
      allRanks,
    );
  return plan;
}
