// Checks a distributed result against one OpenBLAS call in this process.
import { openblasGemm } from '../../native/kernels.js';
import type { GemmRunResult } from './gemm-run.js';

export interface GemmVerification {
  maxAbsError: number;
  maxRelError: number;
  /** Allowed error: f32 rounding of k-long dot products, scaled by the largest |C|. */
  tolerance: number;
  ok: boolean;
}

export function verifyGemm(r: GemmRunResult, threads = 1): GemmVerification {
  const ref = new Float32Array(r.m * r.n);
  openblasGemm({ m: r.m, n: r.n, k: r.k, a: r.a, b: r.b, c: ref }, threads);
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ref[i]! - r.c[i]!);
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  const eps = 2 ** -23;
  const tolerance = 4 * eps * Math.sqrt(r.k) * Math.max(1, maxRef) * 8;
  return {
    maxAbsError: maxAbs,
    maxRelError: maxAbs / Math.max(maxRef, 1e-30),
    tolerance,
    ok: maxAbs <= tolerance,
  };
}
