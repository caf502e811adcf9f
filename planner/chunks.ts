// Sequential steps: a rank's brick cut into sm×sn×sk chunks, computed m-chunk by n-chunk with k
// innermost, so one C chunk accumulates over its k chunks and is reduced once.
import { splitEven } from './split.js';
import type { Brick } from './types.js';

export interface Chunking {
  m: number;
  n: number;
  k: number;
}

export const ONE_STEP: Chunking = { m: 1, n: 1, k: 1 };

export function chunkBrick(b: Brick, c: Chunking, gran: number): Brick[] {
  const cap = (parts: number, length: number, g: number) =>
    Math.max(1, Math.min(parts, Math.ceil(length / g)));
  const ms = splitEven(b.m, cap(c.m, b.m[1] - b.m[0], 1));
  const ns = splitEven(b.n, cap(c.n, b.n[1] - b.n[0], 1));
  const ks = splitEven(b.k, cap(c.k, b.k[1] - b.k[0], gran), gran);
  const out: Brick[] = [];
  for (const m of ms) for (const n of ns) for (const k of ks) out.push({ m, n, k });
  return out;
}
