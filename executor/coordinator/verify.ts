// Checks a distributed result against one OpenBLAS call in this process. Finite values must
// agree within f32 rounding; NaN and ±Inf (inputs run with --allow-non-finite) must sit at the
// same positions as OpenBLAS's, with the same sign.
import { openblasGemm } from '../../native/kernels.js';
import type { GemmRunResult } from './gemm-run.js';

export interface GemmVerification {
  /** Largest |difference| over the positions where the reference is finite. */
  maxAbsError: number;
  maxRelError: number;
  /** Allowed error: f32 rounding of k-long dot products, scaled by the largest finite |C|. */
  tolerance: number;
  /** Positions where OpenBLAS gives NaN or ±Inf. */
  nonFinite: number;
  /** Positions where the result is non-finite and the reference is not, or the other way, or the wrong Inf. */
  mismatches: number;
  firstMismatch?: { row: number; col: number; expected: number; got: number };
  ok: boolean;
}

export function verifyGemm(
  r: Pick<GemmRunResult, 'm' | 'n' | 'k' | 'a' | 'b' | 'c'>,
  threads = 1,
): GemmVerification {
  const ref = new Float32Array(r.m * r.n);
  openblasGemm({ m: r.m, n: r.n, k: r.k, a: r.a, b: r.b, c: ref }, threads);
  let maxAbs = 0;
  let maxRef = 0;
  let nonFinite = 0;
  let mismatches = 0;
  let firstMismatch: GemmVerification['firstMismatch'];
  const mismatch = (i: number) => {
    mismatches++;
    firstMismatch ??= { row: Math.floor(i / r.n), col: i % r.n, expected: ref[i]!, got: r.c[i]! };
  };
  for (let i = 0; i < ref.length; i++) {
    const want = ref[i]!;
    const got = r.c[i]!;
    if (!Number.isFinite(want)) {
      nonFinite++;
      if (!(Object.is(want, got) || (Number.isNaN(want) && Number.isNaN(got)))) mismatch(i);
      continue;
    }
    if (!Number.isFinite(got)) {
      mismatch(i);
      continue;
    }
    maxAbs = Math.max(maxAbs, Math.abs(want - got));
    maxRef = Math.max(maxRef, Math.abs(want));
  }
  const eps = 2 ** -23;
  const tolerance = 4 * eps * Math.sqrt(r.k) * Math.max(1, maxRef) * 8;
  return {
    maxAbsError: maxAbs,
    maxRelError: maxAbs / Math.max(maxRef, 1e-30),
    tolerance,
    nonFinite,
    mismatches,
    ...(firstMismatch ? { firstMismatch } : {}),
    ok: maxAbs <= tolerance && mismatches === 0,
  };
}

/** Why a verification failed, in words (empty when it did not). */
export function verificationFailure(v: GemmVerification): string {
  if (v.ok) return '';
  const parts: string[] = [];
  if (v.mismatches > 0) {
    const f = v.firstMismatch!;
    parts.push(
      `${v.mismatches} position(s) disagree with OpenBLAS on NaN or Inf, the first at row ${f.row}, column ${f.col} (expected ${f.expected}, got ${f.got})`,
    );
  }
  if (v.maxAbsError > v.tolerance)
    parts.push(`largest error ${v.maxAbsError} over the finite values exceeds ${v.tolerance}`);
  return `verification failed: ${parts.join('; ')}`;
}
