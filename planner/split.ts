// Splitting one index range into parts, proportionally to weights, in units of a granularity
// (quantised types may only be cut between blocks along k). Cuts are rounded cumulatively, so parts
// differ by at most one unit from their exact share and always tile the range.
import type { Range } from './types.js';

export function splitRange(range: Range, weights: readonly number[], granularity = 1): Range[] {
  const [lo, hi] = range;
  const length = hi - lo;
  const units = Math.ceil(length / granularity);
  let total = 0;
  for (const w of weights) total += w;
  const out: Range[] = [];
  let cum = 0;
  let prev = lo;
  for (let i = 0; i < weights.length; i++) {
    cum += weights[i]!;
    const u = i === weights.length - 1 ? units : Math.round((units * cum) / total);
    const cut = Math.min(hi, lo + u * granularity);
    out.push([prev, Math.max(prev, cut)]);
    prev = Math.max(prev, cut);
  }
  return out;
}

/** Equal parts: the first (units mod parts) parts get one unit more. Exact integer arithmetic. */
export function splitEven(range: Range, parts: number, granularity = 1): Range[] {
  const [lo, hi] = range;
  const units = Math.ceil((hi - lo) / granularity);
  const out: Range[] = [];
  for (let i = 0; i < parts; i++) {
    const a = Math.min(hi, lo + Math.floor((units * i) / parts) * granularity);
    const b = Math.min(hi, lo + Math.floor((units * (i + 1)) / parts) * granularity);
    out.push([a, b]);
  }
  return out;
}

export function len(r: Range): number {
  return r[1] - r[0];
}

/** Largest part when `length` is split evenly into `parts` parts of whole units. */
export function maxPart(length: number, parts: number, granularity = 1): number {
  const units = Math.ceil(length / granularity);
  return Math.min(length, Math.ceil(units / parts) * granularity);
}
