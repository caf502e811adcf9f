// ggml's K-type super-blocks (Q4_K, Q5_K, Q6_K) and Q8_K activations: blocks built here from
// the bit layout are decoded independently in TS and compared with the native dequantizer
// value for value; quantizer output against ggml's own (hashes of what ggml's
// quantize_row_q*_K_ref wrote for the same input); quantize → dequantize error bounds.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BLOCK_BYTES,
  BLOCK_ELEMENTS,
  dequantize,
  ggmlTypeId,
  Q8K_BLOCK_BYTES,
  quantize,
  quantizeQ8K,
  rowBytes,
  WEIGHT_FORMATS,
  WEIGHT_TYPES,
  weightTypeFromGgml,
} from '../../native/kernels.js';
import { random } from './helpers.js';

const fr = Math.fround;

/** IEEE half → number, from the format's definition. */
function f16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31,
    m = h & 1023;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Deterministic bytes (from the shared seeded generator). */
function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from(random(n, seed), (v) => Math.floor((v + 1) * 128) & 255);
}

/** Elements that differ, +0 and −0 told apart (ggml's dequantizers produce both). */
function mismatches(got: Float32Array, want: number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < want.length; i++)
    if (!Object.is(got[i], want[i])) out.push(`[${i}] got ${got[i]} want ${want[i]}`);
  return out.slice(0, 5);
}

/** The 12 scale bytes of Q4_K / Q5_K, packed as the layout describes (6 bits each). */
function packScales(sc: number[], m: number[]): number[] {
  const out = new Array<number>(12).fill(0);
  for (let j = 0; j < 4; j++) {
    out[j] = sc[j]! | ((sc[j + 4]! >> 4) << 6);
    out[j + 4] = m[j]! | ((m[j + 4]! >> 4) << 6);
    out[j + 8] = (sc[j + 4]! & 15) | ((m[j + 4]! & 15) << 4);
  }
  return out;
}

function half(view: DataView, off: number, h: number): void {
  view.setUint16(off, h, true);
}

// Q4_K / Q5_K: 2 × f16 (d, dmin), 12 scale bytes, [Q5_K: 32 qh bytes], 128 qs bytes.
function affineBlock(q5: boolean, d: number, dmin: number, sc: number[], m: number[], seed: number) {
  const size = q5 ? 176 : 144;
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  half(v, 0, d);
  half(v, 2, dmin);
  b.set(packScales(sc, m), 4);
  const qh = bytes(32, seed);
  const qs = bytes(128, seed + 1);
  if (q5) b.set(qh, 16);
  b.set(qs, q5 ? 48 : 16);
  // x = d·sc_s·q − dmin·m_s for sub-block s = e/32; q = nibble (low for even s, high for odd)
  // of qs[32·(s/2) + l], plus 16·bit s of qh[l] for Q5_K; rounded as ggml rounds it.
  const want: number[] = [];
  for (let e = 0; e < 256; e++) {
    const s = e >> 5,
      l = e & 31;
    const byte = qs[32 * (s >> 1) + l]!;
    let q = s & 1 ? byte >> 4 : byte & 15;
    if (q5) q += ((qh[l]! >> s) & 1) << 4;
    want.push(fr(fr(fr(f16(d) * sc[s]!) * q) - fr(f16(dmin) * m[s]!)));
  }
  return { block: b, want };
}

// Q6_K: ql[128], qh[64], int8 scales[16], f16 d.
function q6Block(d: number, scales: number[], seed: number) {
  const b = new Uint8Array(210);
  const ql = bytes(128, seed),
    qh = bytes(64, seed + 1);
  b.set(ql, 0);
  b.set(qh, 128);
  new Int8Array(b.buffer, 192, 16).set(scales);
  half(new DataView(b.buffer), 208, d);
  // element e = 128h + 32t + l: low 4 bits from ql[64h + l + 32·(t&1)] (low nibble for t < 2),
  // high 2 bits (qh[32h + l] >> 2t) & 3; x = d·scales[e/16]·(q − 32).
  const want: number[] = [];
  for (let e = 0; e < 256; e++) {
    const h = e >> 7,
      t = (e >> 5) & 3,
      l = e & 31;
    const low = ql[64 * h + l + 32 * (t & 1)]!;
    const q = (t < 2 ? low & 15 : low >> 4) | (((qh[32 * h + l]! >> (2 * t)) & 3) << 4);
    want.push(fr(fr(f16(d) * scales[e >> 4]!) * (q - 32)));
  }
  return { block: b, want };
}

describe('the type table', () => {
  it('block sizes, ggml ids and row sizes agree between TS and native', () => {
    expect(WEIGHT_TYPES).toEqual([
      'q4_0',
      'q8_0',
      'f16',
      'bf16',
      'f32',
      'q4_k',
      'q5_k',
      'q6_k',
      'q4_1',
      'q5_0',
      'q5_1',
      'q3_k',
      'iq4_nl',
      'iq4_xs',
      'q2_k',
    ]);
    for (const t of WEIGHT_TYPES) {
      const f = WEIGHT_FORMATS[t];
      expect(ggmlTypeId(t)).toBe(f.ggmlType);
      expect(weightTypeFromGgml(f.ggmlType)).toBe(t);
      expect(rowBytes(t, 4 * 256)).toBe(((4 * 256) / f.blockElements) * f.blockBytes);
      expect([BLOCK_ELEMENTS[t], BLOCK_BYTES[t]]).toEqual([f.blockElements, f.blockBytes]);
    }
    expect(BLOCK_BYTES).toMatchObject({ q4_k: 144, q5_k: 176, q6_k: 210, f32: 4 });
    expect(WEIGHT_FORMATS.q6_k.ggmlType).toBe(14);
    expect(BLOCK_BYTES).toMatchObject({ q4_1: 20, q5_0: 22, q5_1: 24, q3_k: 110 });
    expect([3, 6, 7].map((id) => weightTypeFromGgml(id))).toEqual(['q4_1', 'q5_0', 'q5_1']);
    expect([10, 20, 23].map((id) => weightTypeFromGgml(id))).toEqual(['q2_k', 'iq4_nl', 'iq4_xs']);
    expect(BLOCK_BYTES).toMatchObject({ q2_k: 84, iq4_nl: 18, iq4_xs: 136 });
  });

  it('unknown and activation-only ggml ids are refused, naming the id', () => {
    expect(() => weightTypeFromGgml(16)).toThrow(/ggml type id 16 is not supported.*12 \(q4_k\)/);
    expect(() => weightTypeFromGgml(15)).toThrow(/ggml type id 15 \(q8_K is ggml's activation format/);
    expect(() => weightTypeFromGgml(99)).toThrow(/ggml type id 99/);
  });
});

describe('K-type dequantization against blocks built from the bit layout', () => {
  it('Q3_K with d = 0.5: 6-bit scales split over two places, levels from two qs bits and an hmask bit', () => {
    // 16 scales s_g (stored + 32), levels q_e in 0..7: x = d·(s_g − 32)·(q_e − 4).
    const scales = Array.from({ length: 16 }, (_, g) => (g * 37 + 5) % 64);
    const levels = Array.from({ length: 256 }, (_, e) => (e * 7 + (e >> 5)) % 8);
    const block = new Uint8Array(110); // hmask[32], qs[64], scales[12], d
    for (let e = 0; e < 256; e++) {
      const h = e >> 7,
        t = (e >> 5) & 3,
        l = e & 31;
      block[32 + 32 * h + l]! |= (levels[e]! & 3) << (2 * t);
      block[l]! |= (levels[e]! >> 2) << (e >> 5);
    }
    scales.forEach((v, g) => {
      block[96 + (g % 8)]! |= (v & 15) << (g < 8 ? 0 : 4);
      block[96 + 8 + (g % 4)]! |= (v >> 4) << (2 * (g >> 2));
    });
    block[108] = 0x00;
    block[109] = 0x38; // f16 0.5
    const want = levels.map((q, e) => 0.5 * (scales[e >> 4]! - 32) * (q - 4));
    expect(mismatches(dequantize('q3_k', block, 1, 256), want)).toEqual([]);
  });

  const sc = [1, 2, 3, 63, 33, 17, 40, 5];
  const mins = [0, 7, 63, 1, 50, 2, 3, 34];

  it('Q4_K with d = 1, dmin = 0.5: 6-bit scales and mins of sub-blocks 4-7 split over two bytes', () => {
    const { block, want } = affineBlock(false, 0x3c00, 0x3800, sc, mins, 31);
    const got = dequantize('q4_k', block, 1, 256);
    expect(mismatches(got, want)).toEqual([]);
    // sub-block 4 (scale 33, min 50): element 128 = low nibble of qs[64]
    expect(got[128]).toBe(33 * (block[16 + 64]! & 15) - 25);
  });

  for (const q5 of [false, true])
    it(`${q5 ? 'Q5_K' : 'Q4_K'} with scales that round (d, dmin not powers of two), three blocks in a row`, () => {
      const blocks = [0, 1, 2].map((i) =>
        affineBlock(
          q5,
          [0x2e66, 0x1a3c, 0x0203][i]!,
          [0x1f11, 0x2c01, 0x0001][i]!,
          sc.map((s) => (s * (i + 3)) % 64),
          mins.map((m) => (m * (i + 5)) % 64),
          40 + 2 * i,
        ),
      );
      const all = new Uint8Array(blocks.length * blocks[0]!.block.length);
      blocks.forEach((b, i) => all.set(b.block, i * b.block.length));
      const t = q5 ? 'q5_k' : 'q4_k';
      expect(
        mismatches(
          dequantize(t, all, 1, 768),
          blocks.flatMap((b) => b.want),
        ),
      ).toEqual([]);
      expect(
        mismatches(
          dequantize(t, all, 3, 256),
          blocks.flatMap((b) => b.want),
        ),
      ).toEqual([]);
    });

  it('Q6_K: low nibbles, 2-bit highs, signed 8-bit scales (−128 and 127 included)', () => {
    const scales = [1, -1, 127, -128, 5, 64, -7, 33, 0, 12, -90, 2, 3, 4, -5, 100];
    for (const [d, seed] of [
      [0x3c00, 50],
      [0x2e66, 52],
      [0x8123, 54],
    ] as const) {
      const { block, want } = q6Block(d, scales, seed);
      expect(mismatches(dequantize('q6_k', block, 1, 256), want)).toEqual([]);
    }
    const { block } = q6Block(0x3c00, scales, 50);
    // element 0: ql[0] low nibble | (qh[0] & 3) << 4, scale 1; element 168 (h 1, t 1, l 8):
    // ql[104] low nibble | ((qh[40] >> 2) & 3) << 4, scale [168/16 = 10] = −90
    const got = dequantize('q6_k', block, 1, 256);
    expect(got[0]).toBe(((block[0]! & 15) | ((block[128]! & 3) << 4)) - 32);
    expect(got[168]).toBe(-90 * (((block[104]! & 15) | (((block[128 + 40]! >> 2) & 3) << 4)) - 32));
  });
});

/** Q8_K as the spec says: iscale = −127/max (max = the value of largest magnitude), q = round
 * half to even of iscale·x capped at 127, d = 1/iscale, bsums = Σ of each 16 q. */
function q8kReference(x: Float32Array, k: number): Uint8Array {
  const out = new Uint8Array((x.length / 256) * Q8K_BLOCK_BYTES);
  const v = new DataView(out.buffer);
  const rhe = (y: number) => {
    const f = Math.floor(y),
      diff = y - f;
    return diff < 0.5 ? f : diff > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
  };
  for (let b = 0; b < x.length / 256; b++) {
    const o = b * Q8K_BLOCK_BYTES;
    let amax = 0,
      max = 0;
    for (let j = 0; j < 256; j++)
      if (Math.abs(x[b * 256 + j]!) > amax) {
        amax = Math.abs(x[b * 256 + j]!);
        max = x[b * 256 + j]!;
      }
    if (amax === 0) continue; // all zero bytes
    const iscale = fr(-127 / max);
    for (let j = 0; j < 256; j++) v.setInt8(o + 4 + j, Math.min(127, rhe(fr(iscale * x[b * 256 + j]!))));
    for (let g = 0; g < 16; g++) {
      let s = 0;
      for (let j = 0; j < 16; j++) s += v.getInt8(o + 4 + 16 * g + j);
      v.setInt16(o + 260 + 2 * g, s, true);
    }
    v.setFloat32(o, fr(1 / iscale), true);
  }
  expect(k % 256).toBe(0);
  return out;
}

describe('Q8_K activations', () => {
  it('bytes (f32 d, int8 q, int16 bsums) equal the spec computed here, ties and zero blocks included', () => {
    const x = random(4 * 512, 60, 3);
    for (let i = 0; i < 256; i++) x[512 + i] = 0; // an all-zero block
    for (let i = 0; i < 256; i++) x[1024 + i] = i === 0 ? -127 : (i % 64) - 32 + 0.5; // d = 1: x.5 ties
    x[1536 + 9] = 40; // a positive extreme: −127/max < 0
    x[1536 + 200] = -40; // the same magnitude later in that block: the first one gives the sign
    const got = quantizeQ8K(x, 4, 512);
    expect(got.length).toBe(8 * 292);
    const want = Buffer.from(q8kReference(x, 512));
    expect(Buffer.from(got).equals(want)).toBe(true);
    expect(Buffer.from(quantizeQ8K(x, 4, 512, 'scalar')).equals(want)).toBe(true); // both paths
    const wide = random(64 * 256, 61, 1e3);
    expect(
      Buffer.from(quantizeQ8K(wide, 8, 2048)).equals(Buffer.from(quantizeQ8K(wide, 8, 2048, 'scalar'))),
    ).toBe(true);
    // the tie block: max = −127 → iscale = 1, d = 1; −30.5 → −30, −29.5 → −30, −28.5 → −28
    const v = new DataView(got.buffer, got.byteOffset + 4 * 292);
    expect(v.getFloat32(0, true)).toBe(1);
    expect([v.getInt8(4 + 1), v.getInt8(4 + 2), v.getInt8(4 + 3)]).toEqual([-30, -30, -28]);
  });

  it('refuses k that is not a multiple of 256', () => {
    expect(() => quantizeQ8K(new Float32Array(300), 1, 300)).toThrow(/multiple of 256.*k=300/);
  });
});

describe('K-type quantizers match ggml', () => {
  // Hashes of the bytes ggml's quantize_row_q{4,5,6,8}_K_ref (ggml 9a4acb3, built with F16C)
  // wrote for this input: three rows of 512, the last with an all-zero block and an
  // all-positive one.
  const x = random(3 * 512, 21, 2);
  for (let i = 1024; i < 1024 + 256; i++) x[i] = 0;
  for (let i = 1024 + 256; i < 1536; i++) x[i] = Math.abs(x[i]!) + 0.25;
  const ggml: Record<string, string> = {
    q4_k: 'e48840df570870b5a07b327201ec8e41032403dfebd6f0ce55f00fe51552b007',
    q5_k: '9ce06dc78f562e64dc6ddae74c7fb643f884b38dd6ec9d9c5d0a3751bd2fe82d',
    q6_k: '7199dfa7e673113c9257d0e0b9bf2d069bf3cbe67285b78d739f3cecf58a953d',
    q8_k: '295af8b41660a7423b03960ddabc68198faec079fadeafe5ed034608adb969fe',
  };
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  for (const t of ['q4_k', 'q5_k', 'q6_k'] as const)
    it(`${t}: byte for byte`, () => expect(sha(quantize(t, x, 3, 512))).toBe(ggml[t]));
  it('q8_k: byte for byte', () => expect(sha(quantizeQ8K(x, 3, 512))).toBe(ggml.q8_k));
});

describe('K-type quantize → dequantize error', () => {
  // Per element: at most one quantization step of its group (range / levels: Q4_K 15 and Q5_K
  // 31 levels over [min(0, lo), max(0, hi)] of 32 values; Q6_K 63 and Q3_K 7 over ±amax of 16), and an rms
  // error relative to the data's rms typical of the format.
  const rows = 8,
    k = 1024;
  const uniform = random(rows * k, 70, 3);
  const u = random(rows * k, 71);
  const heavy = uniform.map((v, i) => (v / 3) ** 3 * 3 + 0.1 * u[i]!);
  const cases = [
    ['q4_k', 32, 15, 0.09],
    ['q5_k', 32, 31, 0.05],
    ['q6_k', 16, 63, 0.025],
    // 8 levels (−4..3) over ±amax of 16, with 6-bit scales: rms 0.13-0.14 measured
    ['q3_k', 16, 7, 0.18],
  ] as const;
  for (const [t, group, levels, rmsBound] of cases)
    for (const [name, x] of [
      ['uniform', uniform],
      ['heavy-tailed', heavy],
    ] as const)
      it(`${t}, ${name} values`, () => {
        const back = dequantize(t, quantize(t, x, rows, k), rows, k);
        let worst = 0,
          se = 0,
          sx = 0;
        for (let g = 0; g < x.length / group; g++) {
          let lo = 0,
            hi = 0,
            amax = 0;
          for (let i = 0; i < group; i++) {
            const v = x[g * group + i]!;
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
            amax = Math.max(amax, Math.abs(v));
          }
          const step = (t === 'q6_k' || t === 'q3_k' ? 2 * amax : hi - lo) / levels;
          for (let i = 0; i < group; i++) {
            const e = Math.abs(back[g * group + i]! - x[g * group + i]!);
            worst = Math.max(worst, e / step);
            se += e * e;
            sx += x[g * group + i]! ** 2;
          }
        }
        expect(worst).toBeLessThanOrEqual(1);
        expect(worst).toBeGreaterThan(0.3); // not vacuous
        expect(Math.sqrt(se / sx)).toBeLessThan(rmsBound);
      });

  it('zero rows stay zero; f32 round-trips exactly', () => {
    for (const t of ['q3_k', 'q4_k', 'q5_k', 'q6_k'] as const)
      expect(dequantize(t, quantize(t, new Float32Array(512), 1, 512), 1, 512).every((v) => v === 0)).toBe(
        true,
      );
    const x = random(300, 72, 1e30);
    expect(Array.from(dequantize('f32', quantize('f32', x, 3, 100), 3, 100))).toEqual(Array.from(x));
  });
});
