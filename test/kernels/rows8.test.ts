// The rows8 layout (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS rows interleaved 8 at a
// time, the model's matmul weights where the kernels run it): the bytes sit where quant_impl.h
// says (decoded here in TS from that description), the scalar kernel on it gives the natural
// scalar kernel's bits, every SIMD path on it agrees with scalar, and a row's bits do not depend
// on how many rows of X share the call.
import { afterAll, describe, expect, it } from 'vitest';
import {
  interleaveRows8,
  kernelPaths,
  matmulQ,
  quantize,
  rowBytes,
  rows8Runs,
  timeMatmulQ,
  type KernelPath,
} from '../../native/kernels.js';
import { makePool, random } from './helpers.js';

const pool = makePool(2);
afterAll(() => pool.close());

const BLOCK = 144; // BlockQ4_K
const GROUP_BLOCK = 8 * BLOCK; // BlockQ4_Kx8

/** ggml's get_scale_min_k4: the 6-bit scale and min of sub-block s from a Q4_K block's 12 bytes. */
function scaleMin(b: Uint8Array, s: number): [number, number] {
  if (s < 4) return [b[s]! & 63, b[s + 4]! & 63];
  return [(b[s + 4]! & 0xf) | ((b[s - 4]! >> 6) << 4), (b[s + 4]! >> 4) | ((b[s]! >> 6) << 4)];
}

/** Value (row, sub-block) of a 48-byte six-bit table, read as quant_impl.h describes it. */
function six(t: Uint8Array, row: number, sub: number): number {
  const j = 16 * Math.floor(row / 4) + 4 * (sub % 4) + (row % 4);
  const h = Math.floor(sub / 4);
  const lo = (t[j]! >> (4 * h)) & 0xf;
  const hi = (t[32 + (j % 16)]! >> (2 * (2 * h + Math.floor(j / 16)))) & 3;
  return lo | (hi << 4);
}

type Rows8Type =
  | 'q8_0'
  | 'q4_0'
  | 'q5_0'
  | 'q4_1'
  | 'q5_1'
  | 'iq4_nl'
  | 'q2_k'
  | 'q3_k'
  | 'q4_k'
  | 'q5_k'
  | 'q6_k'
  | 'iq4_xs';
const TYPES: readonly Rows8Type[] = [
  'q8_0',
  'q4_0',
  'q5_0',
  'q4_1',
  'q5_1',
  'iq4_nl',
  'q2_k',
  'q3_k',
  'q4_k',
  'q5_k',
  'q6_k',
  'iq4_xs',
];

function q4k(n: number, k: number, seed: number, type: Rows8Type = 'q4_k'): Uint8Array {
  return quantize(type, random(n * k, seed), n, k);
}

function run(
  w: Uint8Array,
  n: number,
  k: number,
  x: Float32Array,
  m: number,
  isa: KernelPath,
  rows8: boolean,
  type: Rows8Type = 'q4_k',
) {
  const y = new Float32Array(m * n);
  matmulQ(pool, { type, w, n, k, x, m, y, isa, rows8 });
  return y;
}

describe('rows8 layout', () => {
  it('keeps every row of a group (d, dmin, scales, mins, nibbles) where the layout says, and the rest natural', () => {
    const n = 19,
      k = 512,
      nb = k / 256;
    const w = q4k(n, k, 1);
    const r8 = interleaveRows8('q4_k', w, n, k);
    expect(r8.length).toBe(w.length);
    const rb = rowBytes('q4_k', k);
    const dv = new DataView(w.buffer, w.byteOffset);
    const gv = new DataView(r8.buffer, r8.byteOffset);
    let checked = 0;
    for (let g = 0; g < Math.floor(n / 8); g++)
      for (let b = 0; b < nb; b++) {
        const G = g * 8 * rb + b * GROUP_BLOCK;
        for (let row = 0; row < 8; row++) {
          const B = (g * 8 + row) * rb + b * BLOCK;
          expect(gv.getUint16(G + 2 * row, true)).toBe(dv.getUint16(B, true)); // d
          expect(gv.getUint16(G + 16 + 2 * row, true)).toBe(dv.getUint16(B + 2, true)); // dmin
          const packed = w.subarray(B + 4, B + 16);
          for (let s = 0; s < 8; s++) {
            const [sc, mn] = scaleMin(packed, s);
            expect(six(r8.subarray(G + 32, G + 80), row, s)).toBe(sc);
            expect(six(r8.subarray(G + 80, G + 128), row, s)).toBe(mn);
          }
          for (let c = 0; c < 4; c++)
            for (let v = 0; v < 8; v++)
              for (let t = 0; t < 4; t++) {
                expect(r8[G + 128 + 256 * c + 32 * v + 4 * row + t]).toBe(w[B + 16 + 32 * c + 4 * v + t]);
                checked++;
              }
        }
      }
    expect(checked).toBe(2 * nb * 8 * 128);
    // Rows 16-18 (no whole group): copied as they were.
    expect(Buffer.from(r8.subarray(16 * rb)).equals(Buffer.from(w.subarray(16 * rb)))).toBe(true);
  });

  it('keeps every Q4_0 row of a group (d, nibbles) where the layout says', () => {
    const n = 11,
      k = 96,
      nb = k / 32;
    const w = q4k(n, k, 9, 'q4_0');
    const r8 = interleaveRows8('q4_0', w, n, k);
    const dv = new DataView(w.buffer, w.byteOffset);
    const gv = new DataView(r8.buffer, r8.byteOffset);
    for (let b = 0; b < nb; b++)
      for (let row = 0; row < 8; row++) {
        const G = b * 144,
          B = row * 18 * nb + b * 18;
        expect(gv.getUint16(G + 2 * row, true)).toBe(dv.getUint16(B, true));
        for (let v = 0; v < 4; v++)
          for (let t = 0; t < 4; t++) expect(r8[G + 16 + 32 * v + 4 * row + t]).toBe(w[B + 2 + 4 * v + t]);
      }
    expect(Buffer.from(r8.subarray(8 * 18 * nb)).equals(Buffer.from(w.subarray(8 * 18 * nb)))).toBe(true);
  });

  it('keeps every Q6_K row of a group (d, scales, each level) where the layout says', () => {
    const n = 9,
      k = 256;
    const w = q4k(n, k, 21, 'q6_k');
    const r8 = interleaveRows8('q6_k', w, n, k);
    for (let row = 0; row < 8; row++) {
      const B = row * 210;
      // Natural: ql[128], qh[64], scales[16], d at 208; level of element e as ggml's dequantizer reads it.
      const level = (e: number): number => {
        const h = Math.floor(e / 128),
          t = Math.floor((e % 128) / 32),
          l = e % 32;
        const lowByte = w[B + 64 * h + l + 32 * (t & 1)]!;
        return (t < 2 ? lowByte & 15 : lowByte >> 4) | (((w[B + 128 + 32 * h + l]! >> (2 * t)) & 3) << 4);
      };
      expect(r8[2 * row]! | (r8[2 * row + 1]! << 8)).toBe(w[B + 208]! | (w[B + 209]! << 8));
      for (let g = 0; g < 16; g++) {
        const j = 16 * Math.floor(row / 4) + 4 * (g % 4) + (row % 4);
        expect(r8[16 + 32 * Math.floor(g / 4) + j]).toBe(w[B + 192 + g]);
      }
      for (let e = 0; e < 256; e++) {
        const c = Math.floor(e / 64),
          h = Math.floor(e / 32) % 2,
          v = Math.floor(e / 4) % 8,
          t = e % 4;
        const lo = (r8[144 + 32 * (8 * c + v) + 4 * row + t]! >> (4 * h)) & 15;
        const hi =
          (r8[144 + 1024 + 32 * (4 * c + 2 * h + Math.floor(v / 4)) + 4 * row + t]! >> (2 * (v % 4))) & 3;
        expect(lo | (hi << 4)).toBe(level(e));
      }
    }
    expect(Buffer.from(r8.subarray(8 * 210)).equals(Buffer.from(w.subarray(8 * 210)))).toBe(true);
  });

  it('keeps every Q3_K row of a group (d, scales, each level) where the layout says', () => {
    const n = 10,
      k = 512,
      nb = k / 256;
    const w = q4k(n, k, 33, 'q3_k');
    const r8 = interleaveRows8('q3_k', w, n, k);
    for (let b = 0; b < nb; b++)
      for (let row = 0; row < 8; row++) {
        // Natural: hmask[32], qs[64], scales[12], d at 108; as ggml's dequantize_row_q3_K reads them.
        const B = row * 110 * nb + b * 110,
          G = b * 880;
        const level = (e: number): number => {
          const l = e % 32;
          const low = (w[B + 32 + 32 * Math.floor(e / 128) + l]! >> (2 * Math.floor((e % 128) / 32))) & 3;
          return low - ((w[B + l]! >> Math.floor(e / 32)) & 1 ? 0 : 4);
        };
        const scale = (g: number): number => {
          const s = w.subarray(B + 96, B + 108);
          const low = g < 8 ? s[g]! & 15 : s[g - 8]! >> 4;
          return low | (((s[8 + (g % 4)]! >> (2 * Math.floor(g / 4))) & 3) << 4);
        };
        expect(r8[G + 2 * row]! | (r8[G + 2 * row + 1]! << 8)).toBe(w[B + 108]! | (w[B + 109]! << 8));
        for (let g = 0; g < 16; g++)
          expect(
            six(r8.subarray(G + 16 + 48 * Math.floor(g / 8), G + 64 + 48 * Math.floor(g / 8)), row, g % 8),
          ).toBe(scale(g));
        for (let e = 0; e < 256; e++) {
          const g = Math.floor(e / 16),
            v = Math.floor((e % 16) / 4),
            t = e % 4;
          const low = (r8[G + 368 + 32 * g + 4 * row + t]! >> (2 * v)) & 3;
          // quant_impl.h's Q3KRows8HighBit
          const bit = 2 * (1 - (g % 2)) + (v % 2) + 4 * Math.floor(v / 2);
          const high = (r8[G + 112 + 32 * Math.floor(g / 2) + 4 * row + t]! >> bit) & 1;
          expect(low - (high ? 0 : 4)).toBe(level(e));
        }
      }
    expect(Buffer.from(r8.subarray(8 * 110 * nb)).equals(Buffer.from(w.subarray(8 * 110 * nb)))).toBe(true);
  });

  it('keeps every Q2_K row of a group (d, dmin, scale and min bytes, each level) where the layout says', () => {
    const n = 8,
      k = 256;
    const w = q4k(n, k, 35, 'q2_k');
    const r8 = interleaveRows8('q2_k', w, n, k);
    for (let row = 0; row < 8; row++) {
      // Natural: scales[16], qs[64], d at 80, dmin at 82; levels as ggml's dequantize_row_q2_K reads them.
      const B = row * 84;
      for (const [at, natural] of [
        [2 * row, B + 80],
        [16 + 2 * row, B + 82],
      ] as const)
        expect(r8[at]! | (r8[at + 1]! << 8)).toBe(w[natural]! | (w[natural + 1]! << 8));
      for (let g = 0; g < 16; g++) {
        const j = 16 * Math.floor(row / 4) + 4 * (g % 4) + (row % 4);
        expect(r8[32 + 32 * Math.floor(g / 4) + j]).toBe(w[B + g]);
      }
      for (let e = 0; e < 256; e++) {
        const level =
          (w[B + 16 + 32 * Math.floor(e / 128) + (e % 32)]! >> (2 * Math.floor((e % 128) / 32))) & 3;
        const at = 160 + 32 * Math.floor(e / 16) + 4 * row + (e % 4);
        expect((r8[at]! >> (2 * Math.floor((e % 16) / 4))) & 3).toBe(level);
      }
    }
  });

  it('keeps every IQ4_XS row of a group (d, scales, each index) where the layout says', () => {
    const n = 9,
      k = 512,
      nb = k / 256;
    const w = q4k(n, k, 37, 'iq4_xs');
    const r8 = interleaveRows8('iq4_xs', w, n, k);
    for (let b = 0; b < nb; b++)
      for (let row = 0; row < 8; row++) {
        // Natural: d, scales_h (u16), scales_l[4], qs[128]; as ggml's dequantize_row_iq4_xs reads them.
        const B = row * 136 * nb + b * 136,
          G = b * 1088;
        const scaleH = w[B + 2]! | (w[B + 3]! << 8);
        const scale = (s: number): number =>
          ((w[B + 4 + (s >> 1)]! >> (4 * (s % 2))) & 0xf) | (((scaleH >> (2 * s)) & 3) << 4);
        const index = (e: number): number => {
          const s = Math.floor(e / 32),
            l = e % 32;
          return (w[B + 8 + 16 * s + (l % 16)]! >> (l < 16 ? 0 : 4)) & 0xf;
        };
        expect(r8[G + 2 * row]! | (r8[G + 2 * row + 1]! << 8)).toBe(w[B]! | (w[B + 1]! << 8));
        for (let s = 0; s < 8; s++) expect(six(r8.subarray(G + 16, G + 64), row, s)).toBe(scale(s));
        for (let e = 0; e < 256; e++) {
          // quant_impl.h: vector v of pair c holds natural bytes 32c + 4v.. of each row.
          const s = Math.floor(e / 32),
            l = e % 32;
          const byte = 16 * (s % 2) + (l % 16);
          const at = G + 64 + 256 * Math.floor(s / 2) + 32 * Math.floor(byte / 4) + 4 * row + (byte % 4);
          expect((r8[at]! >> (l < 16 ? 0 : 4)) & 0xf).toBe(index(e));
        }
      }
    expect(Buffer.from(r8.subarray(8 * 136 * nb)).equals(Buffer.from(w.subarray(8 * 136 * nb)))).toBe(true);
  });

  it('the scalar kernel on rows8 gives the natural scalar kernel bit for bit', () => {
    for (const type of TYPES)
      for (const [n, k, m] of [
        [8, 256, 1],
        [19, 512, 3],
        [40, 1024, 5],
      ] as const) {
        const w = q4k(n, k, n + k, type);
        const x = random(m * k, 7);
        const want = run(w, n, k, x, m, 'scalar', false, type);
        const got = run(interleaveRows8(type, w, n, k), n, k, x, m, 'scalar', true, type);
        expect(Array.from(got)).toEqual(Array.from(want));
      }
  });

  const simd = kernelPaths().supported.filter((p) => p !== 'scalar' && TYPES.some((t) => rows8Runs(t, p)));
  it.runIf(simd.length > 0)(
    `${simd.join(', ') || 'no SIMD path'}: agrees with scalar, and a group's rows give the same bits alone as in a batch`,
    () => {
      for (const isa of simd)
        for (const type of TYPES.filter((t) => rows8Runs(t, isa)))
          for (const [n, k] of [
            [37, 1024],
            [64, 2048],
            [16, 160],
            [24, 512], // a pair of groups and a lone one (the AVX-512 tiles take 16 rows a step)
          ] as const) {
            if (k % (type.endsWith('_k') || type === 'iq4_xs' ? 256 : 32)) continue;
            // m = 15: a tile of 8 rows of X (with VNNI) and the last 7 through another, zeros
            // padding it (without VNNI: 4, 4, 4 and 3 padded); m = 3: through a tile of 4.
            for (const m of [3, 15]) {
              const w = q4k(n, k, 3 * n, type);
              const w8 = interleaveRows8(type, w, n, k);
              const x = random(m * k, 11);
              const want = run(w, n, k, x, m, 'scalar', false, type);
              const got = run(w8, n, k, x, m, isa, true, type);
              let worst = 0,
                scale = 0;
              for (let i = 0; i < want.length; i++) {
                worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
                scale = Math.max(scale, Math.abs(want[i]!));
              }
              expect(worst / scale).toBeLessThan(1e-5);
              const whole = Math.floor(n / 8) * 8;
              for (let r = 0; r < m; r++) {
                const alone = run(w8, n, k, x.subarray(r * k, (r + 1) * k), 1, isa, true, type);
                expect(Array.from(alone.subarray(0, whole))).toEqual(
                  Array.from(got.subarray(r * n, r * n + whole)),
                );
              }
            }
          }
    },
  );

  // The AVX-512 tiles take the AVX2 tiles' steps per row lane, 16 rows a zmm instead of 8: the
  // same bits, so a model gives the same tokens on either kind of cpu.
  it.runIf(simd.length > 1)(`${simd.join(', ')}: the same bits on every SIMD path`, () => {
    // m = 7: the 4-, 2- and 1-row tiles; m = 37: AMX's tiles of 16 rows and the rest on VNNI's;
    // k = 96 and 320: an odd count of blocks, and blocks past X's last quad (Q4Quads).
    for (const type of TYPES)
      for (const [n, k, m] of [
        [40, 512, 7],
        [48, 1024, 1],
        [40, 512, 37],
        [24, 96, 16],
        [24, 320, 33],
      ] as const) {
        if (k % 256 && (type.endsWith('_k') || type === 'iq4_xs')) continue;
        const paths = simd.filter((p) => rows8Runs(type, p));
        if (paths.length < 2) continue;
        const w8 = interleaveRows8(type, q4k(n, k, 5 * n, type), n, k);
        const x = random(m * k, 13);
        const first = Array.from(run(w8, n, k, x, m, paths[0]!, true, type));
        for (const isa of paths.slice(1))
          expect(Array.from(run(w8, n, k, x, m, isa, true, type)), `${type} ${isa} n=${n} m=${m}`).toEqual(
            first,
          );
      }
    // Weights and activations at their extreme levels, every product of one sign: the int16 sums
    // of the tiles without VNNI reach their bound (Q6_K: two vectors of 2·63·127), and the VNNI
    // tiles' int32 sums must give the same bits; a saturated sum would also leave the scalar kernel.
    const sign = (e: number) => ((Math.imul(e, 2654435761) >>> 28) & 1 ? 1 : -1);
    const [n, k, m] = [32, 1024, 18];
    const wf = new Float32Array(n * k).map((_, i) => sign(i % k));
    const x = new Float32Array(m * k).map((_, i) => sign(i % k) * (Math.floor(i / k) % 2 ? -1 : 1));
    for (const type of TYPES) {
      const paths = simd.filter((p) => rows8Runs(type, p));
      if (paths.length < 2) continue;
      const w = quantize(type, wf, n, k);
      const want = run(w, n, k, x, m, 'scalar', false, type);
      const w8 = interleaveRows8(type, w, n, k);
      const first = Array.from(run(w8, n, k, x, m, paths[0]!, true, type));
      for (let i = 0; i < want.length; i++)
        expect(Math.abs(first[i]! - want[i]!), `${type} extreme, output ${i}`).toBeLessThan(1e-5 * k);
      for (const isa of paths.slice(1))
        expect(Array.from(run(w8, n, k, x, m, isa, true, type)), `${type} ${isa} extreme`).toEqual(first);
    }
  });

  // The AMX tiles (Q4_0, Q8_0, Q4_K: 16 rows of X by 16 of W a tile op) run for real where the cpu has
  // AMX (then 'amx' is one of the SIMD paths above); here their logic runs on a C++ model of the
  // instructions and must give VNNI's bits: tiles of 16 rows, the rows past them, a lone group
  // of W (n = 24, 40), natural rows of W past the groups (n = 30), odd block counts and blocks
  // past X's last quad. Q4_0 takes the tiles from 48 rows of X on (below, the VNNI tiles), Q8_0
  // from 16: m = 16 and 37 check that.
  it.runIf(kernelPaths().supported.includes('avx512vnni'))(
    'the AMX tiles (on a model of the instructions) give the VNNI tiles bit for bit',
    () => {
      for (const type of ['q4_0', 'q8_0'] as const)
        for (const [n, k, m] of [
          [40, 512, 37],
          [24, 96, 16],
          [40, 512, 53],
          [24, 96, 48],
          [30, 320, 65],
          [32, 2048, 48],
        ] as const) {
          const w8 = interleaveRows8(type, q4k(n, k, 3 * n + k, type), n, k);
          const x = random(m * k, 17);
          const want = Array.from(run(w8, n, k, x, m, 'avx512vnni', true, type));
          const got = Array.from(run(w8, n, k, x, m, 'amx-emulated', true, type));
          expect(got, `${type} n=${n} k=${k} m=${m}`).toEqual(want);
        }
      // Q4_K (tiles from 16 rows of X): every sub-block's scale folded into B as 8·hi + lo, the
      // mins per row as the VNNI tile takes them; one super-block and several, a lone group, rows
      // past the groups, rows of X past the tiles.
      for (const [n, k, m] of [
        [40, 512, 53],
        [24, 256, 16],
        [30, 768, 65],
        [16, 256, 37],
      ] as const) {
        const w8 = interleaveRows8('q4_k', q4k(n, k, 5 * n + k, 'q4_k'), n, k);
        const x = random(m * k, 19);
        const want = Array.from(run(w8, n, k, x, m, 'avx512vnni', true, 'q4_k'));
        const got = Array.from(run(w8, n, k, x, m, 'amx-emulated', true, 'q4_k'));
        expect(got, `q4_k n=${n} k=${k} m=${m}`).toEqual(want);
      }
    },
  );

  it('timeMatmulQ runs the same kernel as matmulQ, times it natively, and refuses a bad call count', () => {
    const [n, k, m] = [40, 512, 3];
    const w8 = interleaveRows8('q4_0', q4k(n, k, 11, 'q4_0'), n, k);
    const x = random(m * k, 12);
    const want = run(w8, n, k, x, m, 'auto', true, 'q4_0');
    const y = new Float32Array(m * n);
    const seconds = timeMatmulQ(pool, { type: 'q4_0', w: w8, n, k, x, m, y, rows8: true }, 5);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(1);
    expect(Array.from(y)).toEqual(Array.from(want));
    expect(() => timeMatmulQ(pool, { type: 'q4_0', w: w8, n, k, x, m, y, rows8: true }, 0)).toThrow(
      /timeMatmulQ: calls must be 1-1000000, not 0/,
    );
    expect(() =>
      timeMatmulQ(pool, { type: 'q4_0', w: w8.subarray(0, 100), n, k, x, m, y, rows8: true }, 1),
    ).toThrow(/too short/);
  });

  it('is refused where it does not apply, naming the fix', () => {
    expect(rows8Runs('q4_k', 'scalar')).toBe(true);
    // The f32-activation types have no rows8 form (their tiles read W as it is).
    expect(rows8Runs('f16')).toBe(false);
    const f16 = quantize('f16', random(8 * 256, 2), 8, 256);
    expect(() => interleaveRows8('f16', f16, 8, 256)).toThrow(
      /rows8 layout has no f16 form: keep these weights natural/,
    );
    const w = q4k(8, 256, 4);
    const x = random(256, 5);
    expect(() =>
      matmulQ(pool, {
        type: 'f16',
        w: f16,
        n: 8,
        k: 256,
        x: random(256, 1),
        m: 1,
        y: new Float32Array(8),
        rows8: true,
      }),
    ).toThrow(/no rows8 form of f16: lay the weights out naturally/);
    expect(() =>
      matmulQ(pool, {
        type: 'q4_k',
        w: new Uint8Array(8 * 160),
        n: 8,
        k: 256,
        wStride: 160,
        x,
        m: 1,
        y: new Float32Array(8),
        rows8: true,
      }),
    ).toThrow(/wStride must be the row size 144, not 160/);
    expect(() => interleaveRows8('q4_k', w.subarray(0, 100), 8, 256)).toThrow(
      /interleaveRows8: w is too short/,
    );
  });
});
