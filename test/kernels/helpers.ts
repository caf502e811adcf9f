// Shared by the kernel tests: a seeded generator, a pool on this process's cpus, references.
import { loadAddon, type NativeThreadPool } from '../../native/addon.js';

/** Deterministic uniform values in [-scale, scale) (mulberry32), so failures reproduce. */
export function random(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** A pinned pool on up to `workers` of the cpus this process may use. */
export function makePool(workers = 2): NativeThreadPool {
  const addon = loadAddon();
  const cpus = addon.currentAffinity().slice(0, workers);
  return new addon.ThreadPool(cpus);
}

/** Element (i, j) of a row-major matrix stored with leading dimension ld, optionally transposed. */
export function at(buf: Float32Array, off: number, ld: number, trans: boolean, i: number, j: number): number {
  return trans ? buf[off + j * ld + i]! : buf[off + i * ld + j]!;
}

/** max |got − want| / (Σ|terms| + tiny) over a matrix: the error relative to the dot's magnitude. */
export function relErrors(got: number[], want: number[], mag: number[]): number {
  let worst = 0;
  for (let i = 0; i < got.length; i++)
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (mag[i]! + 1e-30));
  return worst;
}
