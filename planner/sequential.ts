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
  const groups = new Map<string, Group>();
  const bricks = bricksByRank(tree, ctx.P);
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
      C_BYTES * oC + inB * (ctx.stationary === 'A' ? x * z : oA) + inB * (ctx.stationary === 'B' ? z * y : oB);
    const key = `${x},${y},${z},${resident},${oA},${oB},${oC}`;
    if (groups.has(key)) continue;
    groups.set(key, {
      x,
      y,
      z,
      resident,
      vA: ctx.stationary === 'A' ? 0 : x * z - oA,
      vB: ctx.stationary === 'B' ? 0 : z * y - oB,
      vC: x * y - oC,
    });
  }
  const all = [...groups.values()];
  const limit = ctx.limitBytes;
  const fits = (g: Group, a: number, b: number, c: number) =>
    g.resident +
      C_BYTES * a * b +
      inB * c * ((ctx.stationary === 'A' ? 0 : a) + (ctx.stationary === 'B' ? 0 : b)) <=
    limit;
  if (all.every((g) => fits(g, g.x, g.y, g.z))) return { ok: true, chunking: ONE_STEP, reason: 'the working set fits' };

  const maxX = Math.max(...all.map((g) => g.x));
  const maxY = Math.max(...all.map((g) => g.y));
  let best: { chunking: Chunking; score: number; steps: number } | null = null;
  for (const sm of counts(maxX)) {
    for (const sn of counts(maxY)) {
      let sk = 1;
      let feasible = true;
      for (const g of all) {
        const a = Math.ceil(g.x / sm);
        const b = Math.ceil(g.y / sn);
        const avail = limit - g.resident - C_BYTES * a * b;
        const per = inB * ((ctx.stationary === 'A' ? 0 : a) + (ctx.stationary === 'B' ? 0 : b));
        const units = Math.ceil(g.z / gran);
        if (per === 0) {
          if (avail < 0) feasible = false;
          continue;
        }
        const cUnits = Math.min(units, Math.floor(avail / per / gran));
        if (cUnits < 1 && !(g.z < gran && avail >= per * g.z)) {
          feasible = false;
          break;
        }
        sk = Math.max(sk, Math.ceil(units / Math.max(1, cUnits)));
      }
      if (!feasible) continue;
      const fA = sk > 1 ? sn : 1;
      const fB = sn > 1 || sk > 1 ? sm : 1;
      const score = Math.max(...all.map((g) => g.vA * fA + g.vB * fB + g.vC));
      const steps = sm * sn * sk;
      if (!best || score < best.score || (score === best.score && steps < best.steps))
        best = { chunking: { m: sm, n: sn, k: sk }, score, steps };
    }
  }
  if (!best) {
    const minBytes = Math.max(
      ...all.map(
        (g) =>
          g.resident +
          C_BYTES +
          inB * Math.min(gran, g.z) * ((ctx.stationary === 'A' ? 0 : 1) + (ctx.stationary === 'B' ? 0 : 1)),
      ),
    );
    return { ok: false, minBytes };
  }
  const c = best.chunking;
  const extra = c.m > 1 || c.n > 1 ? '; the C block does not fit either, so A or B is fetched again per chunk' : '';
  return {
    ok: true,
    chunking: c,
    reason: `the working set exceeds the memory limit: ${c.m}×${c.n}×${c.k} sequential chunks${extra}`,
  };
}
