// ggml block layouts, byte for byte against blocks written by hand from the GGUF spec, and
// quantize → dequantize error within each format's bound.
import { describe, expect, it } from 'vitest';
import { dequantize, quantize, rowBytes } from '../../native/kernels.js';
import { random } from './helpers.js';

function block(values: Record<number, number>): Float32Array {
  const x = new Float32Array(32);
  for (const [i, v] of Object.entries(values)) x[Number(i)] = v;
  return x;
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('Q8_0 layout (fp16 d, 32 × int8; x = d·q)', () => {
  it('encodes a hand-computed block: amax 127 gives d = 1.0 (0x3C00), q = round half away from zero', () => {
    const x = block({ 0: 127, 1: -127, 2: 0.5, 3: -0.5, 4: 1.49, 5: 2.5, 6: -2.5, 7: 100.2 });
    const q = quantize('q8_0', x, 1, 32);
    const want = '003c' + '7f' + '81' + '01' + 'ff' + '01' + '03' + 'fd' + '64' + '00'.repeat(24);
    expect(q.length).toBe(34);
    expect(hex(q)).toBe(want);
    expect(Array.from(dequantize('q8_0', q, 1, 32)).slice(0, 8)).toEqual([127, -127, 1, -1, 1, 3, -3, 100]);
  });

  it('an all-zero block has d = 0 and q = 0; two blocks are laid out back to back', () => {
    const x = new Float32Array(64);
    x[32 + 5] = -63.5; // second block: d = 0.5 (0x3800), q = −127
    const q = quantize('q8_0', x, 1, 64);
    expect(hex(q)).toBe('0000' + '00'.repeat(32) + '0038' + '00'.repeat(5) + '81' + '00'.repeat(26));
  });
});

describe('Q8_0 quantizer paths', () => {
  it('the SIMD quantizer (used for activations) gives the same bytes as the scalar reference, ties included', () => {
    // amax 127 → d = 1: every x.5 is a tie that roundf sends away from zero.
    const ties = new Float32Array(32 * 4);
    for (let i = 0; i < ties.length; i++) ties[i] = i % 32 === 0 ? 127 : (i % 64) - 32 + 0.5;
    for (const x of [ties, random(32 * 64, 9, 5), random(32 * 8, 10, 1e-30)]) {
      const rows = x.length / 32 / 2;
      const scalar = quantize('q8_0', x, rows, 64, 'scalar');
      expect(hex(quantize('q8_0', x, rows, 64))).toBe(hex(scalar));
    }
    // −30.5 → −31 (0xe1), −29.5 → −30, −28.5 → −29
    const q = quantize('q8_0', ties, 1, 32, 'scalar');
    expect(Array.from(q.subarray(2, 6))).toEqual([127, 0xe1, 0xe2, 0xe3]);
  });
});

describe('Q4_0 layout (fp16 d, 16 bytes; low nibbles = elements 0..15, high = 16..31; x = d·(q−8))', () => {
  it('max −8 gives d = 1.0; q = min(15, trunc(x/d + 8.5))', () => {
    const x = block({ 0: -8, 1: 7, 2: 0.49, 3: -0.51, 16: 3, 17: -3.4, 18: 7.6 });
    const q = quantize('q4_0', x, 1, 32);
    expect(q.length).toBe(18);
    expect(hex(q)).toBe('003c' + 'b0' + '5f' + 'f8' + '87' + '88'.repeat(12));
    const back = Array.from(dequantize('q4_0', q, 1, 32));
    expect(back.slice(0, 4)).toEqual([-8, 7, 0, -1]);
    expect(back.slice(16, 19)).toEqual([3, -3, 7]);
  });

  it('a positive extreme gives a negative d (max / −8), and the opposite extreme clamps to 15', () => {
    const x = block({ 0: 16, 1: -16, 16: 5 });
    const q = quantize('q4_0', x, 1, 32);
    expect(hex(q)).toBe('00c0' + '60' + '8f' + '88'.repeat(14));
    const back = dequantize('q4_0', q, 1, 32);
    expect([back[0], back[1], back[16], back[2]]).toEqual([16, -14, 4, -0]); // d·0 with d < 0
  });

  it('an all-zero block is d = 0 / −8 = −0 (0x8000, as ggml writes it) with every nibble 8', () => {
    expect(hex(quantize('q4_0', new Float32Array(32), 1, 32))).toBe('0080' + '88'.repeat(16));
  });
});

// Q5_0 (fp16 d, 4 bytes qh, 16 bytes qs; x = d·(q−16)), Q4_1 (fp16 d, fp16 m, 16 bytes; x = d·q + m),
// Q5_1 (fp16 d, fp16 m, qh, qs): the low four bits as Q4_0's nibbles, the fifth bit of element j in
// bit j of qh (little-endian).
describe('Q5_0, Q4_1 and Q5_1 layouts', () => {
  it('Q5_0: max −16 gives d = 1.0; q = min(31, trunc(x/d + 16.5)), fifth bits in qh', () => {
    const x = block({ 0: -16, 1: 15, 2: 0.49, 3: -0.51, 16: 3, 17: -3.4, 18: 15.6 });
    const q = quantize('q5_0', x, 1, 32);
    expect(q.length).toBe(22);
    // q: 0, 31, 16, 15, 16…; 19, 13, 31 (clamped from 32), 16…
    expect(hex(q)).toBe('003c' + 'f6fffdff' + '30' + 'df' + 'f0' + '0f' + '00'.repeat(12));
    const back = Array.from(dequantize('q5_0', q, 1, 32));
    expect(back.slice(0, 5)).toEqual([-16, 15, 0, -1, 0]);
    expect(back.slice(16, 19)).toEqual([3, -3, 15]);
  });

  it('Q4_1: d = (max − min)/15, m = min; q = min(15, trunc((x − m)/d + 0.5))', () => {
    const x = block({ 0: -1, 1: 14, 2: 3.49, 3: 3.51, 16: 0, 17: 7.5, 18: 13.99 });
    const q = quantize('q4_1', x, 1, 32);
    expect(q.length).toBe(20);
    expect(hex(q)).toBe('003c' + '00bc' + '10' + '9f' + 'f4' + '15' + '11'.repeat(12));
    const back = Array.from(dequantize('q4_1', q, 1, 32));
    expect(back.slice(0, 5)).toEqual([-1, 14, 3, 4, 0]);
    expect(back.slice(16, 19)).toEqual([0, 8, 14]);
  });

  it('Q5_1: d = (max − min)/31, m = min, fifth bits in qh', () => {
    const x = block({ 0: -1, 1: 30, 2: 3.49, 16: 0, 17: 16.5, 18: 29.99 });
    const q = quantize('q5_1', x, 1, 32);
    expect(q.length).toBe(24);
    expect(hex(q)).toBe('003c' + '00bc' + '02000600' + '10' + '2f' + 'f4' + '11'.repeat(13));
    const back = Array.from(dequantize('q5_1', q, 1, 32));
    expect(back.slice(0, 4)).toEqual([-1, 30, 3, 0]);
    expect(back.slice(16, 19)).toEqual([0, 17, 30]);
  });
});

describe('F16 and BF16 (round to nearest even, little-endian)', () => {
  it('f16 encodes normals, subnormals, overflow, signed zero and ties', () => {
    const x = new Float32Array([
      1,
      -2,
      65504,
      0.1,
      2 ** -24,
      1e-9,
      70000,
      -0,
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
    ]);
    const q = quantize('f16', x, 1, x.length);
    const words = Array.from(new Uint16Array(q.buffer, q.byteOffset, x.length));
    expect(words).toEqual([0x3c00, 0xc000, 0x7bff, 0x2e66, 0x0001, 0x0000, 0x7c00, 0x8000, 0x3c00, 0x3c02]);
    expect(Array.from(dequantize('f16', q, 1, x.length)).slice(0, 5)).toEqual([
      1,
      -2,
      65504,
      0.0999755859375,
      2 ** -24,
    ]);
  });

  it('bf16 keeps the top 16 bits with round to nearest even', () => {
    const x = new Float32Array([1, 0.1, -2, 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8]);
    const q = quantize('bf16', x, 1, x.length);
    expect(Array.from(new Uint16Array(q.buffer, q.byteOffset, x.length))).toEqual([
      0x3f80, 0x3dcd, 0xc000, 0x4040, 0x3f80, 0x3f82,
    ]);
  });
});

describe('quantize → dequantize error bounds on random rows', () => {
  const rows = 7;
  const k = 32 * 9;
  const x = random(rows * k, 5, 3);
  // Per block: Q8_0 |err| ≤ d/2 + 127·|d − fp16(d)|, d = amax/127; Q4_0 |err| ≤ d (the clamp
  // at 15 costs one step on the side opposite the extreme) + 8·|d − fp16(d)|, d = amax/8; Q5_0
  // the same with 16 levels a side; Q4_1 / Q5_1 |err| ≤ d/2 + levels·|d − fp16(d)| +
  // |m − fp16(m)|, d = (max − min)/levels.
  type T = 'q8_0' | 'q4_0' | 'q5_0' | 'q4_1' | 'q5_1' | 'f16' | 'bf16';
  const bound = (t: T, amax: number, v: number, range: number): number => {
    switch (t) {
      case 'q8_0':
        return (amax / 127) * (0.5 + 127 * 2 ** -11) + 1e-12;
      case 'q4_0':
        return (amax / 8) * (1 + 8 * 2 ** -11) + 1e-12;
      case 'q5_0':
        return (amax / 16) * (1 + 16 * 2 ** -11) + 1e-12;
      case 'q4_1':
        return (range / 15) * (0.5 + 15 * 2 ** -11) + amax * 2 ** -11 + 1e-12;
      case 'q5_1':
        return (range / 31) * (0.5 + 31 * 2 ** -11) + amax * 2 ** -11 + 1e-12;
      case 'f16':
        return Math.abs(v) * 2 ** -11 + 2 ** -25;
      case 'bf16':
        return Math.abs(v) * 2 ** -8;
    }
  };
  for (const t of ['q8_0', 'q4_0', 'q5_0', 'q4_1', 'q5_1', 'f16', 'bf16'] as const)
    it(`${t}: every element within its bound`, () => {
      const q = quantize(t, x, rows, k);
      expect(q.length).toBe(rows * rowBytes(t, k));
      const back = dequantize(t, q, rows, k);
      let worst = 0;
      for (let b = 0; b < (rows * k) / 32; b++) {
        let amax = 0,
          lo = Infinity,
          hi = -Infinity;
        for (let j = 0; j < 32; j++) {
          const v = x[b * 32 + j]!;
          amax = Math.max(amax, Math.abs(v));
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        for (let j = 0; j < 32; j++) {
          const i = b * 32 + j;
          worst = Math.max(worst, Math.abs(back[i]! - x[i]!) / bound(t, amax, x[i]!, hi - lo));
        }
      }
      expect(worst).toBeLessThanOrEqual(1);
      expect(worst).toBeGreaterThan(0.05); // the check is not vacuous
    });
});
