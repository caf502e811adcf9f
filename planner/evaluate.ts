// Exact figures of one decomposition: for every rank and sequential step, the A and B rectangles it
// must fetch (its chunk minus what it holds) and the partial C it sends to the owners, split by the
// link class each piece crosses; peak memory; predicted time (alpha-beta per link class plus compute
// at the node's rate). Owner look-ups are cached by rectangle, since in a grid whole rows of ranks
// ask for the same block. Per-rank figures live in typed arrays: this runs for every candidate and
// baseline, at up to tens of thousands of ranks.
import { chunkBrick, type Chunking } from './chunks.js';
import { C_BYTES } from './dtype.js';
import type { EvalContext } from './context.js';
import { forEachOwnerArea, rectsArea, type Owns } from './ownership.js';
import { brickVolume, bricksByRank, type TreeNode } from './tree.js';
import type { Brick, LinkClass, Operand, TimeFigures } from './types.js';

export interface RankFigures {
  bricks: Brick[];
  multiplyAdds: number;
  volume: Record<Operand, number>;
  /** elements per link class */
  link: Record<LinkClass, number>;
  peakBytes: number;
  time: TimeFigures;
}

export interface Evaluation {
  tree: TreeNode;
  owns: Owns;
  chunking: Chunking;
  bricks: (Brick | undefined)[];
  /** Per-rank figures (built on demand: they allocate). */
  rank(r: number): RankFigures;
  maxVolume: number;
  totalVolume: number;
  maxVolumeBytes: number;
  totalVolumeBytes: number;
  perLinkClass: Record<LinkClass, number>;
  maxMultiplyAdds: number;
  /** max over ranks of multiplyAdds / (mnk · rate share) − 1 */
  imbalance: number;
  peakBytes: number;
  time: TimeFigures;
  transferCount: number;
  usedRanks: number;
}

interface Gathered {
  r0: number;
  r1: number;
  c0: number;
  c1: number;
  area: number;
  pieces: number;
  /** Per host (only when hosts have several nodes): area and piece count held there. */
  hostArea?: Map<number, number>;
  hostPieces?: Map<number, number>;
}

/** Start of part i of `parts` of [lo, hi) in whole units of g (the cuts of split.ts splitEven);
 * i = parts gives hi. */
function partLo(lo: number, hi: number, parts: number, i: number, g: number): number {
  const units = Math.ceil((hi - lo) / g);
  return Math.min(hi, lo + Math.floor((units * i) / parts) * g);
}

function overlap(a0: number, a1: number, b0: number, b1: number): number {
  const d = Math.min(a1, b1) - Math.max(a0, b0);
  return d > 0 ? d : 0;
}

export function evaluate(ctx: EvalContext, tree: TreeNode, owns: Owns, chunking: Chunking): Evaluation {
  const { P, dtype } = ctx;
  const gran = dtype.blockK;
  const inB = dtype.bytesPerElement;
  const multiNode = ctx.hosts < P;
  // Hashed look-up on the four coordinates (entries keep them to resolve collisions): strings or
  // nested maps cost more than the owner walks they save at tens of thousands of ranks.
  const caches = { A: new Map(), B: new Map(), C: new Map() } as Record<Operand, Map<number, Gathered[]>>;
  // Math.imul keeps only the low 32 bits: fold in the high ones, or cuts of a 2^53-long dimension
  // (multiples of 2^49) all land in one bucket.
  const fold = (x: number) => (x | 0) ^ Math.imul((x / 4294967296) | 0, 40503);
  const gather = (op: Operand, r0: number, r1: number, c0: number, c1: number): Gathered => {
    const h =
      (Math.imul(fold(r0), 73856093) ^
        Math.imul(fold(r1), 19349663) ^
        Math.imul(fold(c0), 83492791) ^
        Math.imul(fold(c1), 50331653)) |
      0;
    let bucket = caches[op].get(h);
    if (!bucket) {
      bucket = [];
      caches[op].set(h, bucket);
    }
    let g: Gathered | undefined;
    for (let i = 0; i < bucket.length; i++) {
      const e = bucket[i]!;
      if (e.r0 === r0 && e.r1 === r1 && e.c0 === c0 && e.c1 === c1) {
        g = e;
        break;
      }
    }
    if (!g) {
      const gg: Gathered = { r0, r1, c0, c1, area: 0, pieces: 0 };
      if (multiNode) {
        gg.hostArea = new Map();
        gg.hostPieces = new Map();
      }
      forEachOwnerArea(tree, owns, op, r0, r1, c0, c1, (rank, a) => {
        gg.area += a;
        gg.pieces++;
        if (gg.hostArea) {
          const h = ctx.hostOf[rank]!;
          gg.hostArea.set(h, (gg.hostArea.get(h) ?? 0) + a);
          gg.hostPieces!.set(h, (gg.hostPieces!.get(h) ?? 0) + 1);
        }
      });
      bucket.push(gg);
      g = gg;
    }
    return g;
  };

  const bricks = bricksByRank(tree, P);
  const total = brickVolume(tree.box);
  const flopsTotal = ctx.flopsTotal;
  const vol = { A: new Float64Array(P), B: new Float64Array(P), C: new Float64Array(P) };
  const linkIS = new Float64Array(P);
  const linkNet = new Float64Array(P);
  const bytesIS = new Float64Array(P);
  const bytesNet = new Float64Array(P);
  const msgIS = new Float64Array(P);
  const msgNet = new Float64Array(P);
  const peak = new Float64Array(P);
  const ma = new Float64Array(P);
  const tComp = new Float64Array(P);
  const tComm = new Float64Array(P);
  const hostNetBytes = new Float64Array(ctx.hosts);
  let transferCount = 0;
  let used = 0;

  for (let r = 0; r < P; r++) {
    const b = bricks[r];
    if (!b || brickVolume(b) === 0) continue;
    used++;
    const host = ctx.hostOf[r]!;
    ma[r] = brickVolume(b);
    const own = { A: owns.A[r]!, B: owns.B[r]!, C: owns.C[r]! };
    const move = (op: Operand, r0: number, r1: number, c0: number, c1: number) => {
      const g = gather(op, r0, r1, c0, c1);
      let ownArea = 0;
      let ownPieces = 0;
      const mine = own[op];
      for (let i = 0; i < mine.length; i++) {
        const o = mine[i]!;
        const a = overlap(o.rows[0], o.rows[1], r0, r1) * overlap(o.cols[0], o.cols[1], c0, c1);
        ownArea += a;
        if (a > 0) ownPieces++;
      }
      const sameHost = g.hostArea ? (g.hostArea.get(host) ?? 0) : ownArea;
      const sameHostPieces = g.hostPieces ? (g.hostPieces.get(host) ?? 0) : ownPieces;
      const bytesPer = op === 'C' ? C_BYTES : inB;
      const intra = sameHost - ownArea;
      const net = g.area - sameHost;
      vol[op][r] = vol[op][r]! + g.area - ownArea;
      linkIS[r] = linkIS[r]! + intra;
      linkNet[r] = linkNet[r]! + net;
      bytesIS[r] = bytesIS[r]! + intra * bytesPer;
      bytesNet[r] = bytesNet[r]! + net * bytesPer;
      msgIS[r] = msgIS[r]! + sameHostPieces - ownPieces;
      msgNet[r] = msgNet[r]! + g.pieces - sameHostPieces;
      transferCount += g.pieces - ownPieces;
    };
    let resident = C_BYTES * rectsArea(own.C);
    resident += inB * (ctx.stationary === 'A' ? (b.m[1] - b.m[0]) * (b.k[1] - b.k[0]) : rectsArea(own.A));
    resident += inB * (ctx.stationary === 'B' ? (b.k[1] - b.k[0]) * (b.n[1] - b.n[0]) : rectsArea(own.B));
    const cap = (parts: number, length: number, g: number) =>
      Math.max(1, Math.min(parts, Math.ceil(length / g)));
    const sm = cap(chunking.m, b.m[1] - b.m[0], 1);
    const sn = cap(chunking.n, b.n[1] - b.n[0], 1);
    const sk = cap(chunking.k, b.k[1] - b.k[0], gran);
    let maxChunk = 0;
    let prevAm = -1;
    let prevAk = -1;
    let prevBk = -1;
    let prevBn = -1;
    for (let im = 0; im < sm; im++) {
      const m0 = partLo(b.m[0], b.m[1], sm, im, 1);
      const m1 = partLo(b.m[0], b.m[1], sm, im + 1, 1);
      for (let jn = 0; jn < sn; jn++) {
        const n0 = partLo(b.n[0], b.n[1], sn, jn, 1);
        const n1 = partLo(b.n[0], b.n[1], sn, jn + 1, 1);
        for (let lk = 0; lk < sk; lk++) {
          const k0 = partLo(b.k[0], b.k[1], sk, lk, gran);
          const k1 = partLo(b.k[0], b.k[1], sk, lk + 1, gran);
          let chunkBytes = C_BYTES * (m1 - m0) * (n1 - n0);
          if (ctx.stationary !== 'A') {
            chunkBytes += inB * (m1 - m0) * (k1 - k0);
            if (m0 !== prevAm || k0 !== prevAk) move('A', m0, m1, k0, k1);
            prevAm = m0;
            prevAk = k0;
          }
          if (ctx.stationary !== 'B') {
            chunkBytes += inB * (k1 - k0) * (n1 - n0);
            if (k0 !== prevBk || n0 !== prevBn) move('B', k0, k1, n0, n1);
            prevBk = k0;
            prevBn = n0;
          }
          if (chunkBytes > maxChunk) maxChunk = chunkBytes;
        }
        // The C chunk is complete after its last k chunk.
        move('C', m0, m1, n0, n1);
      }
    }
    peak[r] = resident + maxChunk;
    hostNetBytes[host] = hostNetBytes[host]! + bytesNet[r]!;
  }

  const L = ctx.links;
  let maxVolume = 0;
  let totalVolume = 0;
  let maxVolumeBytes = 0;
  let totalVolumeBytes = 0;
  let maxMA = 0;
  let imbalance = -1;
  let peakMax = 0;
  let slowest = 0;
  let slowestTime = -1;
  const perLinkClass: Record<LinkClass, number> = { memory: 0, interSocket: 0, network: 0 };
  for (let r = 0; r < P; r++) {
    const v = vol.A[r]! + vol.B[r]! + vol.C[r]!;
    const vb = bytesIS[r]! + bytesNet[r]!;
    if (v > maxVolume) maxVolume = v;
    totalVolume += v;
    if (vb > maxVolumeBytes) maxVolumeBytes = vb;
    totalVolumeBytes += vb;
    perLinkClass.interSocket += linkIS[r]!;
    perLinkClass.network += linkNet[r]!;
    if (ma[r]! > maxMA) maxMA = ma[r]!;
    imbalance = Math.max(imbalance, ma[r]! / ((total * ctx.flops[r]!) / flopsTotal) - 1);
    if (peak[r]! > peakMax) peakMax = peak[r]!;
    if (ma[r] === 0) continue;
    tComp[r] = (2 * ma[r]!) / ctx.flops[r]!;
    // The network link is the host's: all its ranks' network traffic shares it.
    tComm[r] =
      bytesIS[r]! / L.interSocket.bandwidth +
      msgIS[r]! * L.interSocket.latency +
      (bytesNet[r]! > 0 ? hostNetBytes[ctx.hostOf[r]!]! / L.network.bandwidth : 0) +
      msgNet[r]! * L.network.latency;
    if (tComp[r]! + tComm[r]! > slowestTime) {
      slowestTime = tComp[r]! + tComm[r]!;
      slowest = r;
    }
  }
  const timeOf = (r: number): TimeFigures => ({
    compute: tComp[r]!,
    communication: tComm[r]!,
    total: tComp[r]! + tComm[r]!,
  });
  return {
    tree,
    owns,
    chunking,
    bricks,
    rank: (r) => {
      const b = bricks[r];
      return {
        bricks: b && ma[r]! > 0 ? chunkBrick(b, chunking, gran) : [],
        multiplyAdds: ma[r]!,
        volume: { A: vol.A[r]!, B: vol.B[r]!, C: vol.C[r]! },
        link: { memory: 0, interSocket: linkIS[r]!, network: linkNet[r]! },
        peakBytes: peak[r]!,
        time: timeOf(r),
      };
    },
    maxVolume,
    totalVolume,
    maxVolumeBytes,
    totalVolumeBytes,
    perLinkClass,
    maxMultiplyAdds: maxMA,
    imbalance,
    peakBytes: peakMax,
    // Overall: the slowest rank's time, split as that rank's.
    time: timeOf(slowest),
    transferCount,
    usedRanks: used,
  };
}
