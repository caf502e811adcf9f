// An independent checker for plans: recomputes everything from the Plan's own data (bricks, owned
// rectangles, transfers) with straightforward code, and throws on the first inconsistency.
import type { Brick, Operand, Plan, Rect, Transfer } from '../../planner/types.js';

const len = (r: [number, number]) => r[1] - r[0];
const area = (r: Rect) => len(r.rows) * len(r.cols);
const vol = (b: Brick) => len(b.m) * len(b.n) * len(b.k);

function inter(a: Rect, b: Rect): Rect | null {
  const r0 = Math.max(a.rows[0], b.rows[0]);
  const r1 = Math.min(a.rows[1], b.rows[1]);
  const c0 = Math.max(a.cols[0], b.cols[0]);
  const c1 = Math.min(a.cols[1], b.cols[1]);
  return r0 < r1 && c0 < c1 ? { rows: [r0, r1], cols: [c0, c1] } : null;
}
const inside = (a: Rect, b: Rect) =>
  a.rows[0] >= b.rows[0] && a.rows[1] <= b.rows[1] && a.cols[0] >= b.cols[0] && a.cols[1] <= b.cols[1];

function fp(op: Operand, b: Brick): Rect {
  return op === 'A'
    ? { rows: b.m, cols: b.k }
    : op === 'B'
      ? { rows: b.k, cols: b.n }
      : { rows: b.m, cols: b.n };
}

function fail(msg: string): never {
  throw new Error(`plan check: ${msg}`);
}

/** Rectangles pairwise disjoint and exactly tiling `whole`. */
function tiles(rects: Rect[], whole: Rect, what: string): void {
  let total = 0;
  for (const r of rects) {
    if (!inside(r, whole)) fail(`${what}: ${JSON.stringify(r)} outside ${JSON.stringify(whole)}`);
    total += area(r);
  }
  if (total !== area(whole)) fail(`${what}: areas sum to ${total}, expected ${area(whole)}`);
  const sorted = [...rects].sort((a, b) => a.rows[0] - b.rows[0]);
  for (let i = 0; i < sorted.length; i++)
    for (let j = i + 1; j < sorted.length && sorted[j]!.rows[0] < sorted[i]!.rows[1]; j++)
      if (inter(sorted[i]!, sorted[j]!))
        fail(`${what}: overlap ${JSON.stringify(sorted[i])} ${JSON.stringify(sorted[j])}`);
}

export interface CheckOptions {
  eps?: number;
}

export function checkPlan(plan: Plan, transfers: Transfer[]): void {
  const { m, n, k } = plan.problem;
  // Ranks from listedRanks on are idle and in no list (a cluster far larger than the product).
  const P = plan.cluster.listedRanks;
  if (P > plan.cluster.ranks) fail('listed ranks');
  if (plan.ranks.length !== P) fail('rank count');
  if (plan.strategy.usedRanks + plan.strategy.idleRanks.length !== P) fail('used + idle ≠ listed ranks');
  // 1. Bricks partition the iteration space.
  const all: Brick[] = plan.ranks.flatMap((r) => r.bricks);
  let total = 0;
  for (const b of all) {
    if (vol(b) <= 0) fail(`empty brick ${JSON.stringify(b)}`);
    if (b.m[0] < 0 || b.m[1] > m || b.n[0] < 0 || b.n[1] > n || b.k[0] < 0 || b.k[1] > k)
      fail('brick outside');
    total += vol(b);
  }
  if (total !== m * n * k) fail(`bricks cover ${total} of ${m * n * k} multiply-adds`);
  const sorted = [...all].sort((a, b) => a.m[0] - b.m[0]);
  for (let i = 0; i < sorted.length; i++)
    for (let j = i + 1; j < sorted.length && sorted[j]!.m[0] < sorted[i]!.m[1]; j++) {
      const a = sorted[i]!;
      const b = sorted[j]!;
      if (a.n[0] < b.n[1] && b.n[0] < a.n[1] && a.k[0] < b.k[1] && b.k[0] < a.k[1]) fail('bricks overlap');
    }
  // Quantised k: cuts on block boundaries.
  const g = plan.dtype.blockK;
  for (const b of all)
    if ((b.k[0] % g !== 0 || (b.k[1] % g !== 0 && b.k[1] !== k)) && g > 1) fail('k cut inside a block');

  // 2. The layout: every operand tiled by the owned rectangles, each inside its owner's footprint.
  const whole: Record<Operand, Rect> = {
    A: { rows: [0, m], cols: [0, k] },
    B: { rows: [0, k], cols: [0, n] },
    C: { rows: [0, m], cols: [0, n] },
  };
  for (const op of ['A', 'B', 'C'] as const) {
    if (plan.options.stationary === op) continue;
    tiles(
      plan.ranks.flatMap((r) => r.owns[op]),
      whole[op],
      `owned ${op}`,
    );
    for (const r of plan.ranks)
      for (const o of r.owns[op]) {
        const covered = r.bricks.reduce(
          (s, b) => s + (inter(o, fp(op, b)) ? area(inter(o, fp(op, b))!) : 0),
          0,
        );
        // chunks of one brick tile its footprint at most (sk, sn, sm) times: use the hull instead
        const hull = r.bricks.length
          ? {
              rows: [
                Math.min(...r.bricks.map((b) => fp(op, b).rows[0])),
                Math.max(...r.bricks.map((b) => fp(op, b).rows[1])),
              ],
              cols: [
                Math.min(...r.bricks.map((b) => fp(op, b).cols[0])),
                Math.max(...r.bricks.map((b) => fp(op, b).cols[1])),
              ],
            }
          : null;
        if (!hull || !inside(o, hull as Rect) || covered === 0)
          fail(`rank ${r.rank} holds ${op} outside its footprint`);
      }
  }
  const owner = (op: Operand, rank: number, piece: Rect) =>
    plan.ranks[rank]!.owns[op].some((o) => inside(piece, o));

  // 3. The schedule delivers exactly the A and B each chunk needs, and reduces each partial C once.
  const byKey = new Map<string, Transfer[]>();
  for (const t of transfers) {
    if (t.elements !== area(t)) fail('transfer element count');
    const rt = plan.ranks[t.from]!;
    const rr = plan.ranks[t.to]!;
    const link = rt.host !== rr.host ? 'network' : rt.node !== rr.node ? 'interSocket' : 'memory';
    if (t.link !== link) fail(`transfer link ${t.link}, expected ${link}`);
    const key = t.phase === 'fetch' ? `f${t.to},${t.step},${t.operand}` : `r${t.from},${t.step}`;
    const list = byKey.get(key) ?? [];
    list.push(t);
    byKey.set(key, list);
  }
  let seen = 0;
  const recomputed: number[] = new Array<number>(P).fill(0);
  const recomputedFromOwns = new Array<number>(P).fill(0);
  for (const r of plan.ranks) {
    const prev: Record<string, Rect | null> = { A: null, B: null };
    r.bricks.forEach((b, step) => {
      for (const op of ['A', 'B'] as const) {
        const got = byKey.get(`f${r.rank},${step},${op}`) ?? [];
        seen += got.length;
        if (plan.options.stationary === op) {
          if (got.length) fail('stationary operand moved');
          continue;
        }
        const need = fp(op, b);
        const p = prev[op];
        const same =
          p &&
          p.rows[0] === need.rows[0] &&
          p.rows[1] === need.rows[1] &&
          p.cols[0] === need.cols[0] &&
          p.cols[1] === need.cols[1];
        prev[op] = need;
        if (same) {
          if (got.length) fail('re-fetch of an unchanged chunk');
          continue;
        }
        const own = r.owns[op].map((o) => inter(o, need)).filter((x): x is Rect => x !== null);
        for (const t of got) if (!owner(op, t.from, t)) fail(`rank ${t.from} sends ${op} it does not hold`);
        tiles([...own, ...got], need, `rank ${r.rank} step ${step} ${op}`);
        recomputed[r.rank] = recomputed[r.rank]! + got.reduce((s, t) => s + t.elements, 0);
        recomputedFromOwns[r.rank] =
          recomputedFromOwns[r.rank]! + area(need) - own.reduce((s, o) => s + area(o), 0);
      }
      const next = r.bricks[step + 1];
      const sent = byKey.get(`r${r.rank},${step}`) ?? [];
      seen += sent.length;
      if (!next || next.m[0] !== b.m[0] || next.n[0] !== b.n[0]) {
        const need = fp('C', b);
        const own = r.owns.C.map((o) => inter(o, need)).filter((x): x is Rect => x !== null);
        for (const t of sent) if (!owner('C', t.to, t)) fail(`partial C sent to a rank that does not own it`);
        tiles([...own, ...sent], need, `rank ${r.rank} step ${step} C`);
        recomputed[r.rank] = recomputed[r.rank]! + sent.reduce((s, t) => s + t.elements, 0);
        recomputedFromOwns[r.rank] =
          recomputedFromOwns[r.rank]! + area(need) - own.reduce((s, o) => s + area(o), 0);
      } else if (sent.length) fail('C sent before its last k chunk');
    });
  }
  if (seen !== transfers.length) fail(`${transfers.length - seen} transfers belong to no step`);

  // 4. Reported volumes equal the recomputed ones.
  for (const r of plan.ranks) {
    if (r.volume.total !== recomputed[r.rank])
      fail(`rank ${r.rank} volume ${r.volume.total} ≠ schedule ${recomputed[r.rank]}`);
    if (r.volume.total !== recomputedFromOwns[r.rank]) fail(`rank ${r.rank} volume ≠ footprint minus held`);
    if (plan.volume.perRank[r.rank] !== r.volume.total) fail('perRank');
    const links = r.volume.perLinkClass;
    if (links.memory + links.interSocket + links.network !== r.volume.total) fail('per-link split');
  }
  if (plan.volume.maxPerRank !== Math.max(0, ...recomputed)) fail('maxPerRank');
  if (plan.volume.total !== recomputed.reduce((a, b) => a + b, 0)) fail('total');
  const net = transfers.filter((t) => t.link === 'network').reduce((s, t) => s + t.elements, 0);
  if (plan.volume.perLinkClass.network !== net)
    fail(`network volume ${plan.volume.perLinkClass.network} ≠ ${net}`);
  if (plan.schedule.transferCount !== transfers.length) fail('transfer count');

  // 5. Memory within the limit; compute adds up.
  for (const r of plan.ranks) {
    if (r.peakMemoryBytes > plan.memory.limitBytes) fail(`rank ${r.rank} peak ${r.peakMemoryBytes} > limit`);
    const ma = r.bricks.reduce((s, b) => s + vol(b), 0);
    if (ma !== r.multiplyAdds) fail('multiply-adds');
  }
}
