// The planner's inputs (problem, cluster, options) and its output, the versioned Plan JSON schema.
// Everything here is plain JSON-compatible data: `redblue plan --json` prints a Plan as is, and the
// visualisation (issue 8) and the executors read exactly these shapes. Bump PLAN_SCHEMA_VERSION on
// any incompatible change.

export const PLAN_SCHEMA_VERSION = 1 as const;

/** The three dimensions of the m×n×k iteration space of C (m×n) = A (m×k) · B (k×n). */
export type Dim = 'm' | 'n' | 'k';
/** A is m×k, B is k×n, C is m×n (partial sums while a k range is split over ranks). */
export type Operand = 'A' | 'B' | 'C';
/** Slowest last. `memory`: between ranks of one NUMA node; `interSocket`: between NUMA nodes of one
 * host; `network`: between hosts. */
export type LinkClass = 'memory' | 'interSocket' | 'network';
export const LINK_CLASSES: readonly LinkClass[] = ['memory', 'interSocket', 'network'];
export type DType = 'f32' | 'bf16' | 'f16' | 'q8_0' | 'q4_0';
export type Objective = 'volume' | 'time';

/** Half-open index range [lo, hi). Empty when lo === hi. */
export type Range = [number, number];

/** A block of the iteration space: the rank computes C[m, n] += A[m, k] · B[k, n] over these ranges. */
export interface Brick {
  m: Range;
  n: Range;
  k: Range;
}

/** A block of one operand matrix. Rows/cols are: A → (m, k), B → (k, n), C → (m, n). */
export interface Rect {
  rows: Range;
  cols: Range;
}

// ---------------------------------------------------------------------------------------------
// Inputs

export interface Problem {
  m: number;
  n: number;
  k: number;
  /** Element type of A and B. C is always accumulated, reduced and stored in f32. */
  dtype: DType;
}

export interface DTypeInfo {
  /** Bytes per element, averaged over a quantisation block (q8_0: 34 bytes per 32 elements). */
  bytesPerElement: number;
  /** Elements per quantisation block along k (1 for float types); k splits are multiples of it. */
  blockK: number;
}

export interface LinkSpec {
  /** Bytes per second one rank (memory, interSocket) or one host (network) can receive. */
  bandwidth: number;
  /** Seconds per message. */
  latency: number;
}
export type Links = Record<LinkClass, LinkSpec>;

/** One NUMA node: redblue runs one executor (= one rank) per node. */
export interface ClusterNode {
  cores: number;
  /** Memory the node's executor may use, bytes (the per-rank memory limit unless overridden). */
  memoryBytes: number;
  /** Sustained compute rate of the whole node, floating-point operations per second (2 per multiply-add). */
  flops: number;
}

export interface ClusterHost {
  name: string;
  nodes: ClusterNode[];
}

/** Where the product runs. Ranks are numbered host by host, node by node: rank r is the r-th node of
 * the flattened list. */
export interface Cluster {
  hosts: ClusterHost[];
  links: Links;
  /** How the cluster was described: `--ranks`, `--hosts/--nodes-per-host`, `--topology FILE`, or the local machine. */
  source: 'ranks' | 'hosts' | 'file' | 'local';
  /** More hosts after `hosts`, each a copy of the last one (host<i>), left unbuilt: `--ranks
   * 1000000000` describes a billion identical hosts of which only the few that can get work are
   * ever planned. Absent: none. */
  unlistedHosts?: number;
}

export interface PlannerOptions {
  /** `time` (default): predicted time, alpha-beta per link class plus compute; `volume`: largest per-rank volume. */
  objective: Objective;
  /** No rank does more than (1 + maxImbalance)·mnk·(its rate / total rate) multiply-adds. Default 0.03. */
  maxImbalance: number;
  /** Per-rank memory limit in bytes; default: each node's memoryBytes. */
  memoryBytes?: number;
  /** Operand that stays resident across calls (weights): it is placed once and not counted as moved. */
  stationary?: 'A' | 'B';
  /** Decompose across hosts first, then across nodes inside each host. Default true. */
  hierarchical: boolean;
  /** Plans with more transfers than this leave `schedule.transfers` empty (`schedule.omitted`);
   * planner/schedule.ts `buildTransfers(plan)` regenerates them. Default 200,000. */
  maxScheduleTransfers: number;
  /** Compute the baselines (1D, 2D, 2.5D, CARMA, COSMA). Default true. */
  baselines: boolean;
}

// ---------------------------------------------------------------------------------------------
// Output: the Plan

/** Communication volume in elements (of A, B or C, whatever their byte size). */
export interface VolumeFigures {
  /** max over ranks of perRank. */
  maxPerRank: number;
  /** Sum over ranks (every element moved counted once, at its receiver; partial C at its sender). */
  total: number;
  /** Total split by the link class each element crosses. */
  perLinkClass: Record<LinkClass, number>;
  /** Per rank: elements of A and B received plus elements of partial C sent. */
  perRank: number[];
  /** Same as total/maxPerRank but in bytes (A, B in the dtype's size, C in f32). */
  totalBytes: number;
  maxPerRankBytes: number;
}

/** Seconds. */
export interface TimeFigures {
  compute: number;
  communication: number;
  /** compute + communication (no overlap is assumed). */
  total: number;
}

/** Elements per rank that any plan must move (cosma.md). */
export interface LowerBounds {
  /** 3·(mnk/P)^(2/3) − (mk + kn + mn)/P, floored at 0 (plus the skinny-shape refinement). */
  memoryIndependent: number;
  /** min{2mnk/(P·√S) + S, 3·(mnk/P)^(2/3)} − share, S = memory limit in elements. */
  memoryDependent: number;
  /** max of the two: what `volume.maxPerRank` is compared against. */
  perRank: number;
}

/** One level of the decomposition (hosts, then nodes inside a host; or one flat level). */
export interface Level {
  name: 'hosts' | 'nodes' | 'ranks';
  /** Number of parts at this level (hosts, nodes per host, or ranks) and how many received work. */
  parts: number;
  usedParts: number;
  /** dm×dn×dk when this level is a regular grid, null for recursive proportional splits. */
  grid: [number, number, number] | null;
  /** How the level was split, e.g. "grid 4×4×4 (1 of 65 idle)" or "recursive halving, 67 parts". */
  description: string;
  /** Brick extents at this level (largest), e.g. the part of the iteration space one host computes. */
  brick: { m: number; n: number; k: number };
}

/** Sequential steps: each rank's brick is cut into sm×sn×sk chunks computed one after another when
 * its working set does not fit its memory. [1,1,1] when it fits in one go. */
export interface SequentialSteps {
  m: number;
  n: number;
  k: number;
  reason: string;
}

export interface RankPlan {
  rank: number;
  /** Index of the host in cluster.hosts, and of the node inside that host. */
  host: number;
  node: number;
  /** Bricks in execution order (one per sequential step; none for an idle rank). */
  bricks: Brick[];
  /** The rank's initial share ("native layout"): rectangles of A and B it holds before the call, and
   * the rectangle of C it holds after the reduction. Each lies inside the rank's own footprint. */
  owns: Record<Operand, Rect[]>;
  multiplyAdds: number;
  /** Elements moved: A, B received, partial C sent; total = A + B + C. */
  volume: { A: number; B: number; C: number; total: number; perLinkClass: Record<LinkClass, number> };
  peakMemoryBytes: number;
  time: TimeFigures;
}

/** One point-to-point message of the schedule. */
export interface Transfer {
  /** Sequential step (0-based). A and B arrive before the step's bricks are computed; partial C is
   * sent after the rank's last k chunk for that m×n chunk. */
  step: number;
  phase: 'fetch' | 'reduce';
  from: number;
  to: number;
  operand: Operand;
  rows: Range;
  cols: Range;
  elements: number;
  link: LinkClass;
}

export interface Schedule {
  /** Number of sequential steps (max over ranks of bricks.length). */
  steps: number;
  transferCount: number;
  /** Empty when omitted is true (too many transfers to print; regenerate with buildTransfers). */
  transfers: Transfer[];
  omitted: boolean;
}

/** Where a stationary operand lives, per node. */
export interface Placement {
  host: number;
  node: number;
  rank: number;
  operand: 'A' | 'B';
  /** mirror: the whole operand in the node's memory; shard: only the block its bricks need. */
  mode: 'mirror' | 'shard';
  /** The block held (the whole matrix for a mirror; null for an idle rank's empty shard). */
  block: Rect | null;
  bytes: number;
  reason: string;
}

/** The same figures for a baseline planned under the same cost model. */
export interface BaselinePlan {
  name: string;
  /** false when the method does not apply (e.g. CARMA needs P a power of two); see reason. */
  applicable: boolean;
  reason?: string;
  /** e.g. "1×5×13 grid, steps pn5,pk13" */
  description: string;
  usedRanks: number;
  volume: Omit<VolumeFigures, 'perRank'>;
  /** max per-rank volume / plan's max per-rank volume (> 1: the baseline moves more); null when the
   * plan moves nothing and the baseline does. */
  ratioToPlan: number | null;
  peakMemoryBytes: number;
  /** max multiply-adds of a rank over mnk/P − 1. */
  imbalance: number;
  time: TimeFigures;
  /** Whether the baseline fits the memory limit. */
  fitsMemory: boolean;
}

export interface Plan {
  schemaVersion: typeof PLAN_SCHEMA_VERSION;
  problem: Problem;
  dtype: DTypeInfo;
  cluster: {
    hosts: number;
    /** Per host; only the hosts holding listed ranks when listedRanks < ranks. */
    nodesPerHost: number[];
    ranks: number;
    /** Ranks 0 … listedRanks − 1 are the ones in the per-rank lists (ranks, strategy.idleRanks,
     * volume.perRank, memory.perRank, placement). Equal to `ranks` unless the cluster has more ranks
     * than the planner lists (MAX_LISTED_RANKS) and only these few can get work: the ranks from
     * listedRanks on are all idle. */
    listedRanks: number;
    links: Links;
    source: Cluster['source'];
  };
  options: PlannerOptions & { memoryBytes: number };
  strategy: {
    /** grid: one dm×dn×dk grid; recursive: proportional splits; hierarchical: hosts then nodes. */
    family: 'grid' | 'recursive' | 'hierarchical';
    levels: Level[];
    sequential: SequentialSteps;
    usedRanks: number;
    /** Idle ranks among the listed ones (cluster.listedRanks); all later ranks are idle too. */
    idleRanks: number[];
    description: string;
  };
  ranks: RankPlan[];
  schedule: Schedule;
  placement: Placement[];
  volume: VolumeFigures;
  memory: { limitBytes: number; peakBytes: number; perRank: number[] };
  compute: {
    totalMultiplyAdds: number;
    maxPerRank: number;
    /** max over ranks of multiplyAdds / (mnk · rate share) − 1; ≤ options.maxImbalance. */
    imbalance: number;
  };
  time: TimeFigures;
  lowerBound: LowerBounds;
  /** maxPerRank / lowerBound.perRank (≥ 1 up to rounding); null when the bound is 0 but the plan moves
   * data, or with a stationary operand (the bounds assume all three operands move). */
  ratioToLowerBound: number | null;
  baselines: Record<string, BaselinePlan>;
}
