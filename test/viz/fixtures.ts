// Hand-made plans on a regular grid, shaped like the planner's output, so the renderer can be
// exercised before (and independently of) planner/index.ts.
import {
  LINK_CLASSES,
  PLAN_SCHEMA_VERSION,
  type Brick,
  type LinkClass,
  type Plan,
  type RankPlan,
} from '../../planner/types.js';

const split = (len: number, parts: number, i: number): [number, number] => [
  Math.floor((len * i) / parts),
  Math.floor((len * (i + 1)) / parts),
];

export function gridPlan(opts: {
  m: number;
  n: number;
  k: number;
  grid: [number, number, number];
  hosts: number;
  nodesPerHost: number;
  steps?: number;
  stationary?: 'A' | 'B';
}): Plan {
  const { m, n, k, grid, hosts, nodesPerHost } = opts;
  const P = hosts * nodesPerHost;
  const [dm, dn, dk] = grid;
  const used = dm * dn * dk;
  const steps = opts.steps ?? 1;
  const ranks: RankPlan[] = [];
  const limit = 8 * 2 ** 30;
  for (let r = 0; r < P; r++) {
    const host = Math.floor(r / nodesPerHost);
    const node = r % nodesPerHost;
    const bricks: Brick[] = [];
    if (r < used) {
      const i = Math.floor(r / (dn * dk));
      const j = Math.floor(r / dk) % dn;
      const l = r % dk;
      const bm = split(m, dm, i);
      const bn = split(n, dn, j);
      const bk = split(k, dk, l);
      for (let s = 0; s < steps; s++) {
        const [a, b] = split(bk[1] - bk[0], steps, s);
        bricks.push({ m: bm, n: bn, k: [bk[0] + a, bk[0] + b] });
      }
    }
    const b = bricks[0];
    const am = b ? (b.m[1] - b.m[0]) * (k / dk) : 0;
    const bn = b ? (b.n[1] - b.n[0]) * (k / dk) : 0;
    const cm = b ? (b.m[1] - b.m[0]) * (b.n[1] - b.n[0]) : 0;
    const A = Math.round((am * (dn - 1)) / dn);
    const B = Math.round((bn * (dm - 1)) / dm);
    const C = Math.round((cm * (dk - 1)) / dk);
    const link: LinkClass = hosts > 1 ? 'network' : nodesPerHost > 1 ? 'interSocket' : 'memory';
    const perLinkClass = { memory: 0, interSocket: 0, network: 0 };
    perLinkClass[link] = A + B + C;
    const madds = bricks.reduce((s, x) => s + (x.m[1] - x.m[0]) * (x.n[1] - x.n[0]) * (x.k[1] - x.k[0]), 0);
    const compute = madds / 5e10;
    const communication = ((A + B + C) * 4) / 12.5e9 + 1e-5 * steps;
    ranks.push({
      rank: r,
      host,
      node,
      bricks,
      owns: { A: [], B: [], C: [] },
      multiplyAdds: madds,
      volume: { A, B, C, total: A + B + C, perLinkClass },
      peakMemoryBytes: (am + bn + cm) * 4,
      time: { compute, communication, total: compute + communication },
    });
  }
  const perRank = ranks.map((r) => r.volume.total);
  const perLinkClass = Object.fromEntries(
    LINK_CLASSES.map((c) => [c, ranks.reduce((s, r) => s + r.volume.perLinkClass[c], 0)]),
  ) as Record<LinkClass, number>;
  const total = perRank.reduce((s, v) => s + v, 0);
  const maxPerRank = Math.max(...perRank);
  const bound = Math.max(0, 3 * Math.pow((m * n * k) / P, 2 / 3) - (m * k + k * n + m * n) / P);
  const slowest = ranks.reduce((a, b) => (b.time.total > a.time.total ? b : a));
  const links = {
    memory: { bandwidth: 50e9, latency: 1e-6 },
    interSocket: { bandwidth: 20e9, latency: 2e-6 },
    network: { bandwidth: 12.5e9, latency: 2e-5 },
  };
  const baseline = (name: string, factor: number, applicable = true) => ({
    name,
    applicable,
    reason: applicable ? undefined : 'P is not a power of two',
    description: `${name} on the same ranks`,
    usedRanks: P,
    volume: {
      maxPerRank: maxPerRank * factor,
      total: total * factor,
      perLinkClass: Object.fromEntries(LINK_CLASSES.map((c) => [c, perLinkClass[c] * factor])) as Record<
        LinkClass,
        number
      >,
      totalBytes: total * factor * 4,
      maxPerRankBytes: maxPerRank * factor * 4,
    },
    ratioToPlan: factor,
    peakMemoryBytes: Math.max(...ranks.map((r) => r.peakMemoryBytes)) * factor,
    imbalance: 0,
    time: { ...slowest.time, total: slowest.time.total * factor },
    fitsMemory: factor < 8,
  });
  const stationary = opts.stationary;
  return {
    schemaVersion: PLAN_SCHEMA_VERSION,
    problem: { m, n, k, dtype: 'f32' },
    dtype: { bytesPerElement: 4, blockK: 1 },
    cluster: { hosts, nodesPerHost: Array(hosts).fill(nodesPerHost), ranks: P, links, source: 'hosts' },
    options: {
      objective: 'time',
      maxImbalance: 0.03,
      memoryBytes: limit,
      hierarchical: true,
      maxScheduleTransfers: 200_000,
      baselines: true,
      stationary,
    },
    strategy: {
      family: 'grid',
      levels: [
        {
          name: 'ranks',
          parts: P,
          usedParts: used,
          grid,
          description: `grid ${dm}×${dn}×${dk}`,
          brick: { m: m / dm, n: n / dn, k: k / dk },
        },
      ],
      sequential: { m: 1, n: 1, k: steps, reason: steps > 1 ? 'working set exceeds memory' : 'fits' },
      usedRanks: used,
      idleRanks: ranks.filter((r) => r.bricks.length === 0).map((r) => r.rank),
      description: `fixture grid ${dm}×${dn}×${dk}`,
    },
    ranks,
    schedule: { steps, transferCount: 0, transfers: [], omitted: true },
    placement: stationary
      ? ranks.map((r) => ({
          host: r.host,
          node: r.node,
          rank: r.rank,
          operand: stationary,
          mode: r.rank % 2 ? ('shard' as const) : ('mirror' as const),
          block: r.bricks[0] ? { rows: r.bricks[0].k, cols: r.bricks[0].n } : null,
          bytes: r.bricks[0] ? k * n * 4 : 0,
          reason: 'mirror where the whole operand fits the node',
        }))
      : [],
    volume: {
      maxPerRank,
      total,
      perLinkClass,
      perRank,
      totalBytes: total * 4,
      maxPerRankBytes: maxPerRank * 4,
    },
    memory: {
      limitBytes: limit,
      peakBytes: Math.max(...ranks.map((r) => r.peakMemoryBytes)),
      perRank: ranks.map((r) => r.peakMemoryBytes),
    },
    compute: {
      totalMultiplyAdds: m * n * k,
      maxPerRank: Math.max(...ranks.map((r) => r.multiplyAdds)),
      imbalance: 0,
    },
    time: slowest.time,
    lowerBound: { memoryIndependent: bound, memoryDependent: bound, perRank: bound },
    ratioToLowerBound: bound > 0 ? maxPerRank / bound : 1,
    baselines: {
      '1D (m)': baseline('1D (m)', 3.2),
      '2D SUMMA': baseline('2D SUMMA', 1.6),
      '2.5D': baseline('2.5D', 1.3),
      CARMA: baseline('CARMA', 1.1, (P & (P - 1)) === 0),
      COSMA: baseline('COSMA', 1.05),
      '1D (k)': baseline('1D (k)', 40),
    },
  };
}
