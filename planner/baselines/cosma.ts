// Flat COSMA (cosma.md): balanced_divisors with its caps (no divisor above dimension/200, the
// COSMA_MIN_LOCAL_DIMENSION), the triple using the most ranks, ties broken by closeness to the cube
// side; ranks beyond dm·dn·dk idle; divisors applied as greedy prime-factor parallel steps on the
// currently largest dimension. Only factorisations of P itself are searched.
import { divisors, primeFactors } from '../factor.js';
import type { Grid } from '../grid-search.js';
import type { Dim } from '../types.js';

const MIN_LOCAL_DIMENSION = 200;

export function cosmaGrid(m: number, n: number, k: number, P: number): Grid {
  const cap = (x: number) => Math.max(1, Math.floor(x));
  const maxDivm = cap(Math.min(m, n, m / MIN_LOCAL_DIMENSION));
  const maxDivn = cap(Math.min(k, n, n / MIN_LOCAL_DIMENSION));
  const maxDivk = cap(Math.min(k, n, k / MIN_LOCAL_DIMENSION));
  const t = Math.cbrt((m * n * k) / P);
  let best: { g: Grid; used: number; dist: number } | null = null;
  for (const dm of divisors(P)) {
    if (dm > maxDivm) continue;
    for (const dn of divisors(P / dm)) {
      if (dn > maxDivn) continue;
      const dk = Math.min(P / dm / dn, maxDivk);
      const used = dm * dn * dk;
      const dist = Math.abs(m / dm - t) + Math.abs(n / dn - t) + Math.abs(k / dk - t);
      if (!best || used > best.used || (used === best.used && dist < best.dist))
        best = { g: [dm, dn, dk], used, dist };
    }
  }
  return best!.g;
}

/** COSMA's step string, e.g. "pm2,pn2,pk2": prime factors applied to the largest current dimension. */
export function cosmaSteps(m: number, n: number, k: number, g: Grid): string {
  const dims: Dim[] = ['m', 'n', 'k'];
  const size: Record<Dim, number> = { m, n, k };
  const left: Record<Dim, number[]> = {
    m: primeFactors(g[0]).reverse(),
    n: primeFactors(g[1]).reverse(),
    k: primeFactors(g[2]).reverse(),
  };
  const steps: [Dim, number][] = [];
  for (;;) {
    const open = dims.filter((d) => left[d].length > 0);
    if (open.length === 0) break;
    const d = open.reduce((a, b) => (size[b] > size[a] ? b : a));
    const p = left[d].shift()!;
    size[d] /= p;
    const last = steps[steps.length - 1];
    if (last && last[0] === d) last[1] *= p;
    else steps.push([d, p]);
  }
  return steps.map(([d, p]) => `p${d}${p}`).join(',') || '(one rank)';
}
