// Sequential steps when memory is short (COSMA's "s" steps, per rank): keep the C chunk resident and
// stream A and B along k first (that moves nothing extra); only when the C block itself does not fit
// cut m or n too, which makes A or B be fetched again for every n or m chunk (counted again).
import { C_BYTES } from './dtype.js';
import type { EvalContext } from './context.js';
import { ONE_STEP, type Chunking } from './chunks.js';
import { rectsArea, type Owns } from './ownership.js';
import { bricksByRank, type TreeNode } from './tree.js';

interface Group {
  x: number;
  y: number;
  z: number;
  resident: number;
  vA: number;
  vB: number;
  vC: number;
}

/** At most this many sequential steps per rank: below the memory this needs, the problem is refused
 * (with the minimum) rather than planned as millions of tiny steps. */
export const MAX_STEPS = 1024;

export type ChunkChoice = { ok: true; chunking: Chunking; reason: string } | { ok: false; minBytes: number };

function counts(max: number): number[] {
  const out: number[] = [];
  for (let s = 1; s < max; s *= 2) out.push(s);
  out.push(Math.max(1, max));
  return out;
}

export function chooseChunking(ctx: EvalContext, tree: TreeNode, owns: Owns): ChunkChoice {
  const inB = ctx.dtype.bytesPerElement;
  const gran = ctx.dtype.blockK;
  // Ranks with the same brick and holdings behave the same: keep one of each.
  const groups = new Map<string, Group>();
  const bricks = bricksByRank(tree, ctx.P);
  let allFit = true;
  const cands: Group[] = [];
  for (let r = 0; r < ctx.P; r++) {
    const b = bricks[r];
    if (!b) continue;
    const x = b.m[1] - b.m[0];
    const y = b.n[1] - b.n[0];
    const z = b.k[1] - b.k[0];
    if (x * y * z === 0) continue;
    const oA = rectsArea(owns.A[r]);
    const oB = rectsArea(owns.B[r]);
    const oC = rectsArea(owns.C[r]);
    const resident =
      C_BYTES * oC +
      inB * (ctx.stationary === 'A' ? x * z : oA) +
      inB * (ctx.stationary === 'B' ? z * y : oB);
    const g: Group = {
      x,
      y,
      z,
      resident,
      vA: ctx.stationary === 'A' ? 0 : x * z - oA,
      vB: ctx.stationary === 'B' ? 0 : z * y - oB,
      vC: x * y - oC,
    };
    cands.push(g);
    if (
      resident +
        C_BYTES * x * y +
        inB * z * ((ctx.stationary === 'A' ? 0 : x) + (ctx.stationary === 'B' ? 0 : y)) >
      ctx.limitBytes
    )
      allFit = false;
  }
  if (allFit) return { ok: true, chunking: ONE_STEP, reason: 'the working set fits' };
  for (const g of cands) groups.set(`${g.x},${g.y},${g.z},${g.resident},${g.vA},${g.vB},${g.vC}`, g);
  const all = [...groups.values()];
  const limit = ctx.limitBytes;

  const maxX = Math.max(...all.map((g) => g.x));
  const maxY = Math.max(...all.map((g) => g.y));
  let best: { chunking: Chunking; score: number; steps: number } | null = null;
  let minBytes = Infinity;
  const perK = (a: number, b: number) =>
    inB * ((ctx.stationary === 'A' ? 0 : a) + (ctx.stationary === 'B' ? 0 : b));
  for (const sm of counts(maxX)) {
    for (const sn of counts(maxY)) {
      if (sm * sn > MAX_STEPS) continue;
      // The least memory this (sm, sn) can reach within the step budget.
      const skMax = Math.floor(MAX_STEPS / (sm * sn));
      let need = 0;
      for (const g of all) {
        const a = Math.ceil(g.x / sm);
        const b = Math.ceil(g.y / sn);
        const c = Math.min(g.z, Math.ceil(Math.ceil(g.z / gran) / skMax) * gran);
        need = Math.max(need, g.resident + C_BYTES * a * b + perK(a, b) * c);
      }
      minBytes = Math.min(minBytes, need);
      if (need > limit) continue;
      let sk = 1;
      for (const g of all) {
        const a = Math.ceil(g.x / sm);
        const b = Math.ceil(g.y / sn);
        const per = perK(a, b);
        if (per === 0) continue;
        const avail = limit - g.resident - C_BYTES * a * b;
        const units = Math.ceil(g.z / gran);
        const cUnits = Math.max(1, Math.min(units, Math.floor(avail / per / gran)));
        sk = Math.max(sk, Math.ceil(units / cUnits));
      }
      sk = Math.min(sk, skMax);
      const fA = sk > 1 ? sn : 1;
      const fB = sn > 1 || sk > 1 ? sm : 1;
      const score = Math.max(...all.map((g) => g.vA * fA + g.vB * fB + g.vC));
      const steps = sm * sn * sk;
      if (!best || score < best.score || (score === best.score && steps < best.steps))
        best = { chunking: { m: sm, n: sn, k: sk }, score, steps };
    }
  }
  if (!best) return { ok: false, minBytes };
  const c = best.chunking;
  const extra =
    c.m > 1 || c.n > 1 ? '; the C block does not fit either, so A or B is fetched again per chunk' : '';
  return {
    ok: true,
    chunking: c,
    reason: `the working set exceeds the memory limit: ${c.m}×${c.n}×${c.k} sequential chunks${extra}`,
  };
}
