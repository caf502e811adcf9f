// Bad inputs to every kernel entry point throw clear errors and never take the process down.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../native/addon.js';
import {
  dequantize,
  gemmF32,
  kernelPaths,
  matmulQ,
  matmulQAsync,
  quantize,
  readBytes,
  rowBytes,
  type MatmulQOptions,
  type WeightType,
} from '../../native/kernels.js';
import { makePool } from './helpers.js';

const pool = makePool(1);
const f32 = (n: number) => new Float32Array(n);
const gemm = { m: 4, n: 5, k: 6, a: f32(24), b: f32(30), c: f32(20) };
const q8 = (): MatmulQOptions => ({
  type: 'q8_0',
  w: new Uint8Array(3 * 34),
  n: 3,
  k: 32,
  x: f32(64),
  m: 2,
  y: f32(6),
});

describe('kernel argument errors', () => {
  it('row length not a multiple of the block size', () => {
    expect(() => quantize('q4_0', f32(31), 1, 31)).toThrow(/multiple of 32 .* got k=31/);
    expect(() => rowBytes('q8_0', 33)).toThrow(/multiple of 32/);
    expect(() => dequantize('q8_0', new Uint8Array(34), 1, 48)).toThrow(/multiple of 32/);
    expect(() => matmulQ(pool, { ...q8(), k: 40 })).toThrow(/multiple of 32/);
    expect(rowBytes('f16', 33)).toBe(66); // half formats have no blocks
    expect(rowBytes('f32', 33)).toBe(132);
    // K types: super-blocks of 256
    expect(() => rowBytes('q4_k', 255)).toThrow(/q4_k rows must hold a multiple of 256 elements .*got k=255/);
    expect(() => quantize('q5_k', f32(288), 1, 288)).toThrow(/q5_k .*multiple of 256.*k=288/);
    expect(() => dequantize('q6_k', new Uint8Array(210), 1, 32)).toThrow(/multiple of 256/);
    expect(() => matmulQ(pool, { ...q8(), type: 'q6_k', k: 32 })).toThrow(/multiple of 256 .*got k=32/);
  });

  it('buffers too short, including through offsets and strides', () => {
    expect(() => gemmF32(pool, { ...gemm, a: f32(23) })).toThrow(/a is too short.*needs elements \[0, 24\)/);
    expect(() => gemmF32(pool, { ...gemm, bOffset: 1 })).toThrow(/b is too short/);
    expect(() => gemmF32(pool, { ...gemm, ldc: 6 })).toThrow(/c is too short/);
    expect(() => matmulQ(pool, { ...q8(), w: new Uint8Array(3 * 34 - 1) })).toThrow(
      /w \(bytes\) is too short/,
    );
    expect(() => matmulQ(pool, { ...q8(), wStride: 35 })).toThrow(/w \(bytes\) is too short/);
    expect(() => matmulQ(pool, { ...q8(), xOffset: 1 })).toThrow(/x is too short/);
    expect(() => matmulQ(pool, { ...q8(), y: f32(5) })).toThrow(/y is too short/);
    expect(() => quantize('q8_0', f32(63), 2, 32)).toThrow(/x is too short/);
    expect(() => dequantize('q4_0', new Uint8Array(35), 2, 32)).toThrow(/w \(bytes\) is too short/);
    expect(() => readBytes(pool, new Uint8Array(10), 4, 7)).toThrow(/too short/);
  });

  it('absurd sizes fail the bounds check instead of wrapping around it', () => {
    const huge = 2 ** 40;
    expect(() => quantize('q8_0', f32(64), huge, huge)).toThrow(/overflows/);
    expect(() => gemmF32(pool, { ...gemm, m: 2 ** 30, lda: huge })).toThrow(
      /too short|overflows|below 2\^31/,
    );
    expect(() => matmulQ(pool, { ...q8(), n: huge, wStride: huge })).toThrow(/overflows|too short/);
    for (const type of ['q8_0', 'q4_0', 'f16', 'bf16', 'f32', 'q4_k', 'q5_k', 'q6_k'] as const) {
      const y = f32(4).fill(-1);
      matmulQ(pool, { type, w: new Uint8Array(0), n: 2, k: 0, x: f32(0), m: 2, y }); // empty dot products
      expect(Array.from(y)).toEqual([0, 0, 0, 0]);
    }
  });

  it('inconsistent leading dimensions and strides', () => {
    expect(() => gemmF32(pool, { ...gemm, lda: 5 })).toThrow(/lda=5 is smaller than the row length of A \(6/);
    expect(() => gemmF32(pool, { ...gemm, transB: true, ldb: 5 })).toThrow(
      /ldb=5 .*B is n×k when transposed/,
    );
    expect(() => matmulQ(pool, { ...q8(), wStride: 33 })).toThrow(
      /row stride 33 bytes is below the row size 34/,
    );
    expect(() => matmulQ(pool, { ...q8(), ldx: 31 })).toThrow(/ldx=31 is smaller than k=32/);
  });

  it('wrong types', () => {
    expect(() => gemmF32(pool, { ...gemm, a: new Float64Array(24) as unknown as Float32Array })).toThrow(
      /a must be a Float32Array or an ArrayBuffer/,
    );
    expect(() => gemmF32(pool, { ...gemm, transA: 'T' as unknown as boolean })).toThrow(
      /transA' must be a boolean/,
    );
    expect(() => gemmF32(pool, { ...gemm, m: -1 })).toThrow(/'m' must be a non-negative integer/);
    expect(() => gemmF32(pool, { ...gemm, k: 1.5 })).toThrow(/'k' must be a non-negative integer/);
    expect(() => gemmF32(pool, { ...gemm, n: Number.NaN })).toThrow(/'n' must be a non-negative integer/);
    expect(() => gemmF32(pool, { ...gemm, alpha: '1' as unknown as number })).toThrow(
      /'alpha' must be a number/,
    );
    expect(() => gemmF32(pool, null as unknown as typeof gemm)).toThrow(/expected an options object/);
    expect(() => gemmF32({} as never, gemm)).toThrow(/expected a ThreadPool/);
    expect(() => matmulQ(pool, { ...q8(), type: 'iq2_xxs' as WeightType })).toThrow(
      /unknown weight type "iq2_xxs"/,
    );
    expect(() => matmulQ(pool, { ...q8(), w: 'bytes' as unknown as Uint8Array })).toThrow(
      /w must be a Uint8Array/,
    );
    expect(() => matmulQ(pool, { ...q8(), isa: 'neon' as never })).toThrow(/unknown kernel path "neon"/);
    expect(() => quantize('q4_0', [1, 2] as unknown as Float32Array, 1, 2)).toThrow(/Float32Array/);
    // The native layer checks on its own too (calls that bypass the TS wrapper).
    const raw = loadAddon<{ quantize(t: unknown, x: unknown, r: number, k: number): Uint8Array }>();
    expect(() => raw.quantize(3, f32(32), 1, 32)).toThrow(/weight type must be a string/);
  });

  it('overlapping output and input, closed pools, async calls (checked before they are queued)', () => {
    const buf = f32(64);
    expect(() => gemmF32(pool, { m: 2, n: 2, k: 2, a: buf, b: buf, c: buf, cOffset: 2 })).toThrow(
      /must not overlap/,
    );
    const closed = makePool(1);
    closed.close();
    expect(() => gemmF32(closed, gemm)).toThrow(/closed/);
    expect(() => matmulQAsync(pool, { ...q8(), y: f32(1) })).toThrow(/y is too short/);
  });

  it('REDBLUE_KERNEL_PATH pins what auto means, and a bad value is named with the fix', () => {
    const auto = (value: string) =>
      spawnSync(
        process.execPath,
        ['-e', "console.log(require('./build/Release/redblue.node').kernelPaths().auto)"],
        { env: { ...process.env, REDBLUE_KERNEL_PATH: value }, encoding: 'utf8', timeout: 30_000 },
      );
    const pinned = auto('avx2');
    expect(pinned.stdout.trim(), pinned.stderr).toBe(kernelPaths().supported.includes('avx2') ? 'avx2' : '');
    expect(auto('scalar').stdout.trim()).toBe('scalar');
    expect(auto('').stdout.trim()).toBe(kernelPaths().auto);
    expect(auto('neon').stderr).toMatch(
      /REDBLUE_KERNEL_PATH: unknown kernel path 'neon': use 'auto', 'scalar'/,
    );
    if (!kernelPaths().supported.includes('amx'))
      expect(auto('amx').stderr).toMatch(
        /REDBLUE_KERNEL_PATH=amx is not supported by this cpu: unset it or name one of kernelPaths\(\)/,
      );
  });

  it('REDBLUE_GEMV_PREFETCH picks where the GEMVs prefetch, without changing a bit; a bad value is named', () => {
    // A decoding matmul (m = 1, rows8 Q4_0: the one-stream GEMV) under each setting, its Y printed.
    const script = [
      "const k = require('./build/Release/redblue.node');",
      'const pool = new k.ThreadPool([0]);',
      'const n = 64, kk = 256, x = new Float32Array(kk).map((_, i) => Math.sin(i));',
      "const w = k.interleaveRows8('q4_0', k.quantize('q4_0', new Float32Array(n * kk).map((_, i) => Math.cos(i * 0.37)), n, kk), n, kk);",
      'const y = new Float32Array(n);',
      "k.matmulQ(pool, { type: 'q4_0', w, n, k: kk, x, m: 1, y, rows8: true });",
      'console.log(JSON.stringify(Array.from(y)));',
    ].join('\n');
    const run = (value: string) =>
      spawnSync(process.execPath, ['-e', script], {
        env: { ...process.env, REDBLUE_GEMV_PREFETCH: value },
        encoding: 'utf8',
        timeout: 30_000,
      });
    const l1 = run('l1');
    const l2 = run('l2');
    expect(l1.status, l1.stderr).toBe(0);
    expect(JSON.parse(l1.stdout)).toHaveLength(64);
    expect(l2.stdout).toBe(l1.stdout);
    expect(run('').stdout).toBe(l1.stdout);
    const bad = run('l3');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(
      /REDBLUE_GEMV_PREFETCH='l3' is neither l1 nor l2: unset it or use one of those/,
    );
  });

  it('the process is still healthy afterwards', () => {
    const y = f32(6);
    // 127 quantizes exactly (d = 1), so the result is exact: 32 · 127².
    const w = quantize('q8_0', new Float32Array(96).fill(127), 3, 32);
    matmulQ(pool, { ...q8(), x: new Float32Array(64).fill(127), w, y });
    expect(Array.from(y)).toEqual(new Array(6).fill(32 * 127 * 127));
    pool.close();
  });
});
