// Y = X·Wᵀ on quantized / half / f32 weights, every SIMD path forced one by one plus scalar, against
// a double-accumulation reference (dequantized W against X as the kernel sees it: Q8_0-quantized
// for the _0 types, Q8_K-quantized for the K types), and every path against the scalar one.
import { afterAll, describe, expect, it } from 'vitest';
import {
  dequantize,
  kernelPaths,
  matmulQ,
  matmulQAsync,
  matmulQShared,
  interleaveRows8,
  quantize,
  quantizeQ8K,
  rowBytes,
  type KernelPath,
  type MatmulQOptions,
  type WeightType,
  WEIGHT_TYPES,
} from '../../native/kernels.js';
import { makePool, random, relErrors } from './helpers.js';

const pool = makePool(2);
afterAll(() => pool.close());

const paths: KernelPath[] = [...kernelPaths().supported, 'auto'];

interface Built {
  opts: MatmulQOptions;
  want: number[]; // against X as the kernel sees it (Q8_0 / Q8_K-quantized)
  mag: number[];
  wantF32: number[]; // against X in f32
  errBound: number[]; // bound on |want − wantF32| from the activation quantization
  read: (y: Float32Array) => number[];
  outside: (y: Float32Array) => boolean;
}

const K_TYPES: readonly WeightType[] = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_xs'];
/** The 32-element types: X as Q8_0 (Q8_1 for the affine ones, x = d·q + m). */
const Q8_TYPES: readonly WeightType[] = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'iq4_nl'];
const AFFINE: readonly WeightType[] = ['q4_1', 'q5_1'];

const f16 = (v: number): number => dequantize('f16', quantize('f16', Float32Array.of(v), 1, 1), 1, 1)[0]!;

/**
 * Q8_1's s per block of 32 of X, as quantize_row_q8_1_ref: f16(d·Σq) with d = amax/127 before
 * its f16 rounding (the q are Q8_0's).
 */
function q8_1Sums(x: Float32Array, m: number, k: number): Float32Array {
  const q = quantize('q8_0', x, m, k);
  const out = new Float32Array((m * k) / 32);
  for (let b = 0; b < out.length; b++) {
    let amax = 0,
      sum = 0;
    for (let t = 0; t < 32; t++) {
      amax = Math.max(amax, Math.abs(x[b * 32 + t]!));
      sum += (q[b * 34 + 2 + t]! << 24) >> 24;
    }
    out[b] = f16(Math.fround(sum * Math.fround(amax / 127)));
  }
  return out;
}

/** X after Q8_K quantization (d·q per block of 256), as the K-type kernels see it. */
function q8kDequantized(x: Float32Array, m: number, k: number): Float32Array {
  const q = quantizeQ8K(x, m, k);
  const v = new DataView(q.buffer, q.byteOffset, q.byteLength);
  const out = new Float32Array(m * k);
  for (let b = 0; b < (m * k) / 256; b++)
    for (let j = 0; j < 256; j++) out[b * 256 + j] = v.getFloat32(b * 292, true) * v.getInt8(b * 292 + 4 + j);
  return out;
}

function build(type: WeightType, m: number, n: number, k: number, seed: number): Built {
  const quantized = Q8_TYPES.includes(type);
  const affine = AFFINE.includes(type);
  const kType = K_TYPES.includes(type);
  const x = random(m * k, seed, 2);
  const wf = random(n * k, seed + 1);
  const packed = quantize(type, wf, n, k);
  const rb = rowBytes(type, k);
  const wd = dequantize(type, packed, n, k);
  const xk = quantized
    ? dequantize('q8_0', quantize('q8_0', x, m, k), m, k)
    : kType
      ? q8kDequantized(x, m, k)
      : x;
  const sums = affine ? q8_1Sums(x, m, k) : undefined;
  // Strided copies with offsets, to exercise every addressing parameter.
  const wStride = rb + 6,
    wOffset = 10,
    ldx = k + 3,
    xOffset = 4,
    ldy = n + 2,
    yOffset = 3;
  const w = new Uint8Array(wOffset + n * wStride).fill(0xee);
  for (let j = 0; j < n; j++) w.set(packed.subarray(j * rb, (j + 1) * rb), wOffset + j * wStride);
  const xs = new Float32Array(xOffset + m * ldx).fill(Number.NaN);
  for (let i = 0; i < m; i++) xs.set(x.subarray(i * k, (i + 1) * k), xOffset + i * ldx);
  const y = new Float32Array(yOffset + m * ldy).fill(-7);
  const want: number[] = [];
  const mag: number[] = [];
  const wantF32: number[] = [];
  const errBound: number[] = [];
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0,
        sa = 0,
        s32 = 0,
        eb = 0;
      for (let p = 0; p < k; p++) {
        const wv = wd[j * k + p]!;
        s += wv * xk[i * k + p]!;
        sa += Math.abs(wv * xk[i * k + p]!);
        s32 += wv * x[i * k + p]!;
      }
      // Per activation block |x − d·q| ≤ d/2, d = amax/127: Q8_0 also rounds d to f16 (up to
      // 127·2⁻¹¹·d more); Q8_K keeps d in f32.
      const act = quantized
        ? { size: 32, factor: 0.5 + 127 * 2 ** -11 }
        : kType
          ? { size: 256, factor: 0.5 * (1 + 1e-6) }
          : null;
      if (act)
        for (let b = 0; b < k / act.size; b++) {
          let amax = 0,
            wsum = 0;
          for (let t = 0; t < act.size; t++) {
            amax = Math.max(amax, Math.abs(x[i * k + b * act.size + t]!));
            wsum += Math.abs(wd[j * k + b * act.size + t]!);
          }
          eb += wsum * (amax / 127) * act.factor;
        }
      if (sums) {
        // The kernel adds m_w·s where dequantized W against X as seen adds m_w·Σ xk; m_w is the
        // block's f16 at byte 2. s moves from Σ xk by two f16 roundings at most.
        const bb = rb / (k / 32);
        for (let b = 0; b < k / 32; b++) {
          const mw = dequantize('f16', packed.subarray(j * rb + b * bb + 2, j * rb + b * bb + 4), 1, 1)[0]!;
          let xsum = 0;
          for (let t = 0; t < 32; t++) xsum += xk[i * k + b * 32 + t]!;
          const sb = sums[(i * k) / 32 + b]!;
          s += mw * (sb - xsum);
          eb += Math.abs(mw) * Math.abs(sb) * 2 ** -9;
        }
      }
      want.push(s);
      mag.push(sa);
      wantF32.push(s32);
      errBound.push(eb + 1e-5 * sa + 1e-9);
    }
  return {
    opts: { type, w, wOffset, wStride, n, k, x: xs, xOffset, ldx, m, y, yOffset, ldy },
    want,
    mag,
    wantF32,
    errBound,
    read: (out) => {
      const got: number[] = [];
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) got.push(out[yOffset + i * ldy + j]!);
      return got;
    },
    outside: (out) =>
      out.every((v, idx) => {
        const r = Math.floor((idx - yOffset) / ldy),
          c = (idx - yOffset) % ldy;
        return (idx >= yOffset && r < m && c < n) || v === -7;
      }),
  };
}

// k in blocks: 1, 3, 8 (one group), 9, 13 (group + quad + 1), 15 (group + quad + 3), 35, 43.
const qShapes: [number, number, number][] = [
  [1, 1, 32],
  [7, 31, 96],
  [33, 7, 256],
  [1, 33, 288],
  [5, 33, 416],
  [33, 65, 480], // big enough for both workers and every row-tile size
  [1, 4097, 64],
  // More than one AVX2 panel of 32 blocks with a ragged last one (35, 43 blocks), odd n.
  [1, 7, 1120],
  [6, 11, 1376],
];
const halfShapes: [number, number, number][] = [
  [1, 1, 1],
  [7, 31, 7],
  [33, 7, 31],
  [5, 33, 33],
  [3, 5, 4097],
];

// K types: k in super-blocks 1, 3, 4; m = 1 (generation) and m > 1 (prompts, every row-tile size).
const kShapes: [number, number, number][] = [
  [1, 1, 256],
  [1, 37, 768],
  [3, 9, 256],
  [7, 33, 1024],
  [33, 65, 512],
  // Q4_K / Q5_K run tiles of 8 rows: 8 + 2, 8 + 4, 8 + 5, 8 + 6 left
  [10, 5, 256],
  [12, 3, 512],
  [13, 4, 256],
  [14, 9, 256],
];

describe('matmulQ', () => {
  let seed = 100;
  for (const type of WEIGHT_TYPES)
    for (const [m, n, k] of K_TYPES.includes(type)
      ? kShapes
      : Q8_TYPES.includes(type)
        ? qShapes
        : halfShapes) {
      const s = (seed += 10);
      it(`${type} m=${m} n=${n} k=${k}, every path`, () => {
        const b = build(type, m, n, k, s);
        let scalar: number[] = [];
        for (const isa of paths) {
          const y = b.opts.y as Float32Array;
          y.fill(-7);
          matmulQ(pool, { ...b.opts, isa });
          const got = b.read(y);
          const err = relErrors(got, b.want, b.mag);
          expect(err, `${isa}: relative error ${err}`).toBeLessThan(2e-5);
          expect(b.outside(y), `${isa} wrote outside Y`).toBe(true);
          // Same integer sums on every path; only the float accumulation order differs.
          if (isa === 'scalar') scalar = got;
          else expect(relErrors(got, scalar, b.mag), `${isa} against scalar`).toBeLessThan(1e-5);
          if (isa === 'auto')
            for (let i = 0; i < got.length; i++)
              expect(Math.abs(got[i]! - b.wantF32[i]!)).toBeLessThanOrEqual(b.errBound[i]!);
        }
      });
    }

  it('the async version gives the same result', async () => {
    const b = build('q4_0', 9, 40, 480, 7);
    await matmulQAsync(pool, b.opts);
    expect(relErrors(b.read(b.opts.y as Float32Array), b.want, b.mag)).toBeLessThan(2e-5);
  });

  it('weights given as a view into a larger buffer', () => {
    const b = build('q8_0', 3, 5, 64, 11);
    const base = new Uint8Array((b.opts.w as Uint8Array).length + 7);
    base.set(b.opts.w as Uint8Array, 7);
    matmulQ(pool, { ...b.opts, w: base.subarray(7) });
    expect(relErrors(b.read(b.opts.y as Float32Array), b.want, b.mag)).toBeLessThan(2e-5);
  });

  it('m = 0 or n = 0 is a no-op', () => {
    const y = new Float32Array(4).fill(1);
    matmulQ(pool, { type: 'q8_0', w: new Uint8Array(0), n: 0, k: 32, x: new Float32Array(64), m: 2, y });
    expect(Array.from(y)).toEqual([1, 1, 1, 1]);
  });
});

// A layer's q, k and v (or gate and up) share one quantized X: each part's Y must be the bits a
// call of its own gives, whether its kernels read X as the first part's do (shared) or not (its
// own quantization), on every path, in a prompt batch and row-invariant.
describe('matmulQShared: several weights on one X', () => {
  const k = 512;
  const x = random(6 * k, 21, 2);
  const parts: { type: WeightType; n: number; rows8?: boolean }[] = [
    { type: 'q4_0', n: 48, rows8: true },
    { type: 'q4_0', n: 21 },
    { type: 'q8_0', n: 16 },
    { type: 'q6_k', n: 24, rows8: true },
    { type: 'q4_k', n: 9 },
    { type: 'f16', n: 5 },
    { type: 'q4_1', n: 8 },
  ];
  const weights = parts.map((p, i) => {
    const w = quantize(p.type, random(p.n * k, 30 + i), p.n, k);
    return p.rows8 ? interleaveRows8(p.type, w, p.n, k) : w;
  });
  for (const isa of paths)
    for (const rowInvariant of [false, true])
      for (const m of [1, 6])
        it(`${isa}, m = ${m}${rowInvariant ? ', row-invariant' : ''}: each part as alone`, () => {
          const opts = (i: number): MatmulQOptions => ({
            type: parts[i]!.type,
            w: weights[i]!,
            n: parts[i]!.n,
            k,
            x,
            m,
            y: new Float32Array(m * parts[i]!.n).fill(Number.NaN),
            isa,
            rowInvariant,
            rows8: parts[i]!.rows8 ?? false,
          });
          const shared = parts.map((_, i) => opts(i));
          matmulQShared(pool, shared);
          parts.forEach((p, i) => {
            const alone = opts(i);
            matmulQ(pool, alone);
            expect(Array.from(shared[i]!.y as Float32Array), `${p.type} n=${p.n}`).toEqual(
              Array.from(alone.y as Float32Array),
            );
            expect((alone.y as Float32Array).some(Number.isNaN)).toBe(false);
          });
        });

  it('parts reading different X are refused', () => {
    const y = new Float32Array(48);
    const a: MatmulQOptions = { type: 'q4_0', w: weights[1]!, n: 21, k, x, m: 1, y };
    expect(() => matmulQShared(pool, [a, { ...a, x: x.subarray(k) }])).toThrow(/same X/);
    expect(() => matmulQShared(pool, [a, { ...a, m: 2 }])).toThrow(/same X/);
  });
});

// A batching server runs each sequence's row beside others'; with rowInvariant every row must be
// the bits it would be alone (m = 1) or in any other batch, on every path (the AVX2 GEMV sums a
// lone row in another order, so without the flag a lone row may differ in the last bits).
describe('rowInvariant: a row of Y does not depend on the rows beside it', () => {
  const types: WeightType[] = [
    'q4_0',
    'q8_0',
    'q4_1',
    'q5_0',
    'q5_1',
    'iq4_nl',
    'q2_k',
    'q3_k',
    'q4_k',
    'q6_k',
    'iq4_xs',
    'f16',
  ];
  for (const isa of paths)
    for (const type of types)
      it(`${type} on ${isa}`, () => {
        const k = K_TYPES.includes(type) ? 512 : 352; // 11 Q8_0 blocks: quads plus a tail
        const n = 37,
          m = 9;
        const w = quantize(type, random(n * k, 7), n, k);
        const x = random(m * k, 8, 3);
        const run = (r0: number, rows: number) => {
          const y = new Float32Array(rows * n);
          matmulQ(pool, {
            type,
            w,
            n,
            k,
            x: x.subarray(r0 * k, (r0 + rows) * k),
            m: rows,
            y,
            isa,
            rowInvariant: true,
          });
          return y;
        };
        const all = run(0, m);
        for (let r = 0; r < m; r++)
          expect(Array.from(run(r, 1)), `row ${r} alone`).toEqual(
            Array.from(all.subarray(r * n, (r + 1) * n)),
          );
        const mid = run(2, 5);
        expect(Array.from(mid)).toEqual(Array.from(all.subarray(2 * n, 7 * n)));
      });
});

// Steps of up to 8 rows of X deal W's rows out in runs whose ends move from call to call (a
// worker done early takes grains from the back of another's run, ThreadPool::ParallelRuns): a
// row of Y must be the same bits whichever worker, tile and range computed it.
describe('decoding steps in runs: the same bits on 1 and 2 workers, call after call', () => {
  const one = makePool(1);
  afterAll(() => one.close());
  const types: WeightType[] = ['q4_0', 'q8_0', 'q4_k', 'q6_k', 'iq4_xs'];
  for (const type of types)
    for (const m of [1, 3, 8])
      it(`${type} rows8, m = ${m}`, () => {
        const k = 1024;
        const n = 400; // several ~32 KiB grains, a tail past the last 16-row pair
        const w = interleaveRows8(type, quantize(type, random(n * k, 40 + m), n, k), n, k);
        const x = random(m * k, 41, 2);
        const run = (p: typeof pool) => {
          const y = new Float32Array(m * n).fill(Number.NaN);
          matmulQ(p, { type, w, n, k, x, m, y, rows8: true, rowInvariant: m > 1 });
          return Array.from(y);
        };
        const want = run(one);
        expect(want.some(Number.isNaN)).toBe(false);
        for (let i = 0; i < 25; i++) expect(run(pool), `call ${i}`).toEqual(want);
      });
});
