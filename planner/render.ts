// The text form of a Plan (`redblue plan` without --json): the grid at each level with a small
// picture, brick sizes, volume against the lower bound and every baseline, memory and time.
import type { Brick, Level, Plan, Range } from './types.js';
import { formatBytes as bytes } from '../common/format.js';

const SYMBOLS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function num(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-2) return v.toExponential(3);
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** The project's byte formatter (planner/format.ts). */
export { bytes };

export function seconds(s: number): string {
  if (s === 0) return '0 s';
  if (s < 1e-3) return `${(s * 1e6).toFixed(1)} µs`;
  if (s < 1) return `${(s * 1e3).toFixed(2)} ms`;
  return `${s.toFixed(3)} s`;
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(w.map((x) => '-'.repeat(x))), ...rows.map(line)].join('\n');
}

function hull(bricks: Brick[]): Brick | null {
  if (bricks.length === 0) return null;
  const r = (d: 'm' | 'n' | 'k'): Range => [
    Math.min(...bricks.map((b) => b[d][0])),
    Math.max(...bricks.map((b) => b[d][1])),
  ];
  return { m: r('m'), n: r('n'), k: r('k') };
}

/** An m (rows) × n (columns) picture of the parts at one level, cut at the middle of k: each letter
 * is one part (host, node or rank). */
export function picture(parts: { label: number; box: Brick }[], within: Brick, rows = 8, cols = 32): string {
  const kMid = Math.floor((within.k[0] + within.k[1] - 1) / 2);
  const mLen = within.m[1] - within.m[0];
  const nLen = within.n[1] - within.n[0];
  const R = Math.min(rows, mLen);
  const C = Math.min(cols, nLen);
  const out: string[] = [];
  for (let i = 0; i < R; i++) {
    const mi = within.m[0] + Math.floor(((i + 0.5) * mLen) / R);
    let line = '';
    for (let j = 0; j < C; j++) {
      const nj = within.n[0] + Math.floor(((j + 0.5) * nLen) / C);
      const p = parts.find(
        (q) =>
          q.box.m[0] <= mi &&
          mi < q.box.m[1] &&
          q.box.n[0] <= nj &&
          nj < q.box.n[1] &&
          q.box.k[0] <= kMid &&
          kMid < q.box.k[1],
      );
      line += p ? SYMBOLS[p.label % SYMBOLS.length] : '.';
    }
    out.push('    ' + line);
  }
  return out.join('\n');
}

function levelParts(plan: Plan, level: Level): { parts: { label: number; box: Brick }[]; within: Brick } {
  const whole: Brick = { m: [0, plan.problem.m], n: [0, plan.problem.n], k: [0, plan.problem.k] };
  if (level.name === 'hosts') {
    const byHost = new Map<number, Brick[]>();
    for (const r of plan.ranks) byHost.set(r.host, (byHost.get(r.host) ?? []).concat(r.bricks));
    const parts: { label: number; box: Brick }[] = [];
    for (const [h, bricks] of byHost) {
      const box = hull(bricks);
      if (box) parts.push({ label: h, box });
    }
    return { parts, within: whole };
  }
  if (level.name === 'nodes') {
    const ranks = plan.ranks.filter((r) => r.host === 0);
    const parts = ranks.flatMap((r) => {
      const box = hull(r.bricks);
      return box ? [{ label: r.node, box }] : [];
    });
    return { parts, within: hull(ranks.flatMap((r) => r.bricks)) ?? whole };
  }
  const parts = plan.ranks.flatMap((r) => {
    const box = hull(r.bricks);
    return box ? [{ label: r.rank, box }] : [];
  });
  return { parts, within: whole };
}

export function renderPlan(plan: Plan): string {
  const L: string[] = [];
  const { m, n, k, dtype } = plan.problem;
  const c = plan.cluster;
  L.push(
    `C (${m}×${n}) = A (${m}×${k}) · B (${k}×${n}), ${dtype}, on ${c.ranks} rank(s): ${c.hosts} host(s) × ` +
      `${[...new Set(c.nodesPerHost)].join('/')} node(s)` +
      `; objective ${plan.options.objective}, max imbalance ${(plan.options.maxImbalance * 100).toFixed(1)}%` +
      (plan.options.stationary ? `, ${plan.options.stationary} stationary` : ''),
  );
  L.push(
    `plan: ${plan.strategy.family}; ${plan.strategy.usedRanks} rank(s) used, ${c.ranks - plan.strategy.usedRanks} idle` +
      (c.listedRanks < c.ranks
        ? ` (ranks ${c.listedRanks}–${c.ranks - 1} cannot get work and are not listed)`
        : ''),
  );
  L.push('');
  for (const level of plan.strategy.levels) {
    const b = level.brick;
    L.push(
      `level ${level.name}: ${level.description}; ${level.usedParts} of ${level.parts} part(s) used; largest part ${b.m}×${b.n}×${b.k}`,
    );
    const { parts, within } = levelParts(plan, level);
    const kParts = new Set(parts.map((p) => p.box.k[0])).size;
    L.push(
      `  m (down) × n (across) at k = ${Math.floor((within.k[0] + within.k[1] - 1) / 2)}; one letter per ${level.name === 'hosts' ? 'host' : level.name === 'nodes' ? 'node (of host 0)' : 'rank'}; k is cut into ${kParts} range(s)`,
    );
    L.push(picture(parts, within));
  }
  const seq = plan.strategy.sequential;
  L.push('', `sequential steps: ${seq.m}×${seq.n}×${seq.k} (${seq.reason})`);
  const sizes = new Map<string, number>();
  for (const r of plan.ranks) {
    const h = hull(r.bricks);
    if (!h) continue;
    const key = `${h.m[1] - h.m[0]}×${h.n[1] - h.n[0]}×${h.k[1] - h.k[0]}`;
    sizes.set(key, (sizes.get(key) ?? 0) + 1);
  }
  const sizeList = [...sizes.entries()].sort((a, b) => b[1] - a[1]);
  L.push(
    `brick sizes (m×n×k): ${sizeList
      .slice(0, 6)
      .map(([s, cnt]) => `${s} ×${cnt}`)
      .join(', ')}${sizeList.length > 6 ? `, … (${sizeList.length} sizes)` : ''}`,
  );
  L.push(
    `compute: ${num(plan.compute.maxPerRank)} multiply-adds on the busiest rank, ${(plan.compute.imbalance * 100).toFixed(2)}% above its share`,
  );
  const v = plan.volume;
  L.push(
    `volume (elements): max per rank ${num(v.maxPerRank)} (${bytes(v.maxPerRankBytes)}), total ${num(v.total)} (${bytes(v.totalBytes)}); ` +
      `by link: memory ${num(v.perLinkClass.memory)}, inter-socket ${num(v.perLinkClass.interSocket)}, network ${num(v.perLinkClass.network)}`,
  );
  const lb = plan.lowerBound;
  L.push(
    `lower bound per rank: ${num(lb.perRank)} (memory-independent ${num(lb.memoryIndependent)}, memory-dependent ${num(lb.memoryDependent)}); plan/bound ${plan.ratioToLowerBound === null ? 'n/a' : plan.ratioToLowerBound.toFixed(3)}`,
  );
  L.push(`peak memory: ${bytes(plan.memory.peakBytes)} of ${bytes(plan.memory.limitBytes)} per rank`);
  L.push(
    `predicted time: ${seconds(plan.time.total)} (compute ${seconds(plan.time.compute)}, communication ${seconds(plan.time.communication)})`,
  );
  L.push(
    `schedule: ${plan.schedule.steps} step(s), ${plan.schedule.transferCount} transfer(s)${plan.schedule.omitted ? ' (not listed: more than maxScheduleTransfers; planner buildTransfers(plan) regenerates them)' : ''}`,
  );
  if (plan.placement.length > 0) {
    const mirrors = plan.placement.filter((p) => p.mode === 'mirror').length;
    const first = plan.placement.find((p) => p.block) ?? plan.placement[0]!;
    L.push(
      `placement of ${first.operand}: ${mirrors} node(s) mirror, ${plan.placement.length - mirrors} shard; e.g. rank ${first.rank}: ${first.mode}, ${first.reason}`,
    );
  }
  const rows: string[][] = [
    [
      'plan',
      plan.strategy.levels.map((l) => l.description).join(' / '),
      String(plan.strategy.usedRanks),
      num(v.maxPerRank),
      '1.00',
      `${(plan.compute.imbalance * 100).toFixed(1)}%`,
      bytes(plan.memory.peakBytes),
      seconds(plan.time.total),
      'yes',
    ],
    [
      'lower bound',
      '',
      '',
      num(lb.perRank),
      plan.ratioToLowerBound ? (1 / plan.ratioToLowerBound).toFixed(2) : '-',
      '',
      '',
      '',
      '',
    ],
  ];
  for (const b of Object.values(plan.baselines)) {
    rows.push(
      b.applicable
        ? [
            b.name,
            b.description,
            String(b.usedRanks),
            num(b.volume.maxPerRank),
            b.ratioToPlan === null ? 'inf' : b.ratioToPlan.toFixed(2),
            `${(b.imbalance * 100).toFixed(1)}%`,
            bytes(b.peakMemoryBytes),
            seconds(b.time.total),
            b.fitsMemory ? 'yes' : 'no',
          ]
        : [b.name, `n/a: ${b.reason ?? ''}`, '', '', '', '', '', '', ''],
    );
  }
  if (Object.keys(plan.baselines).length > 0) {
    L.push(
      '',
      "against the lower bound and the baselines (same cost model; ratio = max per-rank volume / plan's):",
    );
    L.push(
      table(
        [
          'method',
          'decomposition',
          'ranks used',
          'max volume/rank',
          'ratio',
          'imbalance',
          'peak memory',
          'time',
          'fits',
        ],
        rows,
      ),
    );
  }
  return L.join('\n') + '\n';
}
