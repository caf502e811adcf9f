// The native normal draws of synthetic models (gaussian.cc) against the JS loop they replaced:
// the same f32 values in the same order, across fills that split a pair (the spare value), so a
// model written before and after the move is the same file.
import { describe, expect, it } from 'vitest';
import { gaussianFillF32 } from '../../native/kernels.js';

/** The former model/synth.ts Gaussian, verbatim in its arithmetic. */
class JsGaussian {
  private spare = 0;
  private hasSpare = false;
  constructor(private s: number) {}
  fill(x: Float32Array, mean: number, std: number): void {
    const n = x.length;
    let i = 0;
    if (this.hasSpare && n > 0) {
      x[i++] = mean + std * this.spare;
      this.hasSpare = false;
    }
    let s = this.s;
    while (i < n) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      const u1 = (s + 1) / 4294967297;
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      const u2 = (s + 1) / 4294967297;
      const r = Math.sqrt(-2 * Math.log(u1));
      const t = 2 * Math.PI * u2;
      x[i++] = mean + std * (r * Math.cos(t));
      const second = r * Math.sin(t);
      if (i < n) x[i++] = mean + std * second;
      else {
        this.spare = second;
        this.hasSpare = true;
      }
    }
    this.s = s;
  }
}

describe('gaussianFillF32', () => {
  it('draws what the JS loop draws, fill after fill, odd lengths and all', () => {
    for (const seed of [1, 0x9e3779b9, 2166136261, 4294967295]) {
      const js = new JsGaussian(seed);
      const state = new Float64Array([seed, 0, 0]);
      // odd lengths leave a spare for the next fill; 0 and 1 take only the spare
      for (const [n, mean, std] of [
        [1_000_001, 0, 0.02],
        [0, 0, 1],
        [1, 1, 0.1],
        [7, -3, 2],
        [2_000_000, 0, 1],
      ] as const) {
        const want = new Float32Array(n);
        const got = new Float32Array(n);
        js.fill(want, mean, std);
        gaussianFillF32(got, mean, std, state);
        expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `seed ${seed}, n ${n}`).toBe(true);
      }
    }
  });

  it('refuses a state that is not three numbers with a live xorshift state', () => {
    const x = new Float32Array(4);
    expect(() => gaussianFillF32(x, 0, 1, new Float64Array(2))).toThrow(/Float64Array of 3/);
    expect(() => gaussianFillF32(x, 0, 1, new Float64Array([0, 0, 0]))).toThrow(/integer in 1\.\.2\^32-1/);
    expect(() => gaussianFillF32(x, 0, 1, new Float64Array([1.5, 0, 0]))).toThrow(/integer/);
  });
});
