// f32 GEMM on strided sub-blocks against a double-accumulation reference.
import { afterAll, describe, expect, it } from 'vitest';
import { gemmF32, gemmF32Async, openblasGemm, type GemmOptions } from '../../native/kernels.js';
import { at, makePool, random, relErrors } from './helpers.js';

const pool = makePool(2);
afterAll(() => pool.close());

interface Case {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  pad: number; // extra columns in every leading dimension
  off: number; // element offset of every operand
  alpha: number;
  beta: number;
}

function setup(c: Case, seed: number) {
  const lda = (c.transA ? c.m : c.k) + c.pad;
  const ldb = (c.transB ? c.k : c.n) + c.pad;
  const ldc = c.n + c.pad;
  const aRows = c.transA ? c.k : c.m;
  const bRows = c.transB ? c.n : c.k;
  const a = random(c.off + aRows * lda, seed);
  const b = random(c.off + bRows * ldb, seed + 1);
  const c0 = random(c.off + c.m * ldc, seed + 2);
  const want: number[] = [];
  const mag: number[] = [];
  for (let i = 0; i < c.m; i++)
    for (let j = 0; j < c.n; j++) {
      let s = 0;
      let sa = 0;
      for (let p = 0; p < c.k; p++) {
        const t = at(a, c.off, lda, c.transA, i, p) * at(b, c.off, ldb, c.transB, p, j);
        s += t;
        sa += Math.abs(t);
      }
      const cij = c0[c.off + i * ldc + j]!;
      want.push(c.alpha * s + c.beta * cij);
      mag.push(Math.abs(c.alpha) * sa + Math.abs(c.beta * cij));
    }
  const opts: GemmOptions = {
    m: c.m,
    n: c.n,
    k: c.k,
    a,
    b,
    c: c0.slice(),
    aOffset: c.off,
    bOffset: c.off,
    cOffset: c.off,
    lda,
    ldb,
    ldc,
    transA: c.transA,
    transB: c.transB,
    alpha: c.alpha,
    beta: c.beta,
  };
  const read = (out: Float32Array) => {
    const got: number[] = [];
    for (let i = 0; i < c.m; i++) for (let j = 0; j < c.n; j++) got.push(out[c.off + i * ldc + j]!);
    return got;
  };
  // Everything outside the C block must be left as it was.
  const untouched = (out: Float32Array) => {
    for (let idx = 0; idx < out.length; idx++) {
      const r = Math.floor((idx - c.off) / ldc);
      const col = (idx - c.off) % ldc;
      const inside = idx >= c.off && r < c.m && col < c.n;
      if (!inside && out[idx] !== c0[idx]) return false;
    }
    return true;
  };
  return { opts, want, mag, read, untouched };
}

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [7, 31, 33],
  [33, 7, 1],
  [31, 33, 7],
  [1, 33, 4097],
  [4097, 3, 2],
  [257, 129, 65], // large enough to be split over both workers
  [64, 300, 40], // split along n
];

describe('gemmF32', () => {
  let seed = 1;
  for (const [m, n, k] of shapes)
    for (const transA of [false, true])
      for (const transB of [false, true]) {
        const c: Case = { m, n, k, transA, transB, pad: 3, off: 5, alpha: 0.75, beta: -0.5 };
        const s = seed++;
        it(`${m}×${n}×${k} transA=${transA} transB=${transB} with strides and offsets`, () => {
          const { opts, want, mag, read, untouched } = setup(c, s * 10);
          gemmF32(pool, opts);
          const out = opts.c as Float32Array;
          expect(relErrors(read(out), want, mag)).toBeLessThan(1e-5);
          expect(untouched(out)).toBe(true);
        });
      }

  it('beta = 0 ignores NaN in C, and k = 0 only scales C', () => {
    const m = 5,
      n = 6;
    const c = new Float32Array(m * n).fill(Number.NaN);
    gemmF32(pool, { m, n, k: 3, a: random(m * 3, 3), b: random(3 * n, 4), c });
    expect(c.every((v) => Number.isFinite(v))).toBe(true);
    const c2 = new Float32Array(m * n).fill(2);
    gemmF32(pool, { m, n, k: 0, a: new Float32Array(0), b: new Float32Array(0), c: c2, beta: 3 });
    expect(Array.from(c2)).toEqual(new Array(m * n).fill(6));
  });

  it('accepts ArrayBuffers and matches OpenBLAS called directly', () => {
    const { opts, want, mag, read } = setup(
      { m: 40, n: 50, k: 60, transA: false, transB: true, pad: 0, off: 0, alpha: 1, beta: 0 },
      77,
    );
    const c1 = new Float32Array(40 * 50);
    gemmF32(pool, {
      ...opts,
      a: (opts.a as Float32Array).buffer as ArrayBuffer,
      c: c1.buffer as ArrayBuffer,
    });
    expect(relErrors(read(c1), want, mag)).toBeLessThan(1e-5);
    const c2 = new Float32Array(40 * 50);
    openblasGemm({ ...opts, c: c2 }, 1);
    expect(relErrors(read(c2), want, mag)).toBeLessThan(1e-5);
  });

  it('views (subarray) start at their own byte offset', () => {
    const big = random(1000, 5);
    const a = big.subarray(100, 106); // 2×3
    const b = big.subarray(200, 212); // 3×4
    const c = new Float32Array(20).subarray(4, 12); // 2×4
    gemmF32(pool, { m: 2, n: 4, k: 3, a, b, c });
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 4; j++) {
        let s = 0;
        for (let p = 0; p < 3; p++) s += a[i * 3 + p]! * b[p * 4 + j]!;
        expect(c[i * 4 + j]).toBeCloseTo(s, 5);
      }
  });

  it('async version resolves with the same result', async () => {
    const { opts, want, mag, read } = setup(
      { m: 129, n: 130, k: 131, transA: true, transB: false, pad: 1, off: 2, alpha: 2, beta: 1 },
      91,
    );
    await gemmF32Async(pool, opts);
    expect(relErrors(read(opts.c as Float32Array), want, mag)).toBeLessThan(1e-5);
  });

  it('async version leaves the event loop free while it runs', async () => {
    const s = 768;
    const c = new Float32Array(s * s);
    let ticks = 0;
    let running = true;
    const tick = () => {
      ticks++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    await gemmF32Async(pool, { m: s, n: s, k: s, a: random(s * s, 1), b: random(s * s, 2), c });
    running = false;
    expect(ticks).toBeGreaterThan(0);
    expect(c.some((v) => v !== 0)).toBe(true);
  });

  it('async version rejects bad arguments synchronously with a clear error', () => {
    expect(() =>
      gemmF32Async(pool, {
        m: 4,
        n: 4,
        k: 4,
        a: new Float32Array(15),
        b: new Float32Array(16),
        c: new Float32Array(16),
      }),
    ).toThrow(/a is too short/);
  });
});
