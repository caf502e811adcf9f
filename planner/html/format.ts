// Number formatting for the HTML report: every figure carries its unit.
import type { Range } from '../types.js';
import { formatBytes as fmtBytes } from '../../common/format.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The project's byte formatter (planner/format.ts). */
export { fmtBytes };

/** Seconds with an SI prefix: 0.00123 → "1.23 ms". */
export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '-';
  if (s === 0) return '0 s';
  const a = Math.abs(s);
  if (a >= 1) return `${sig(s)} s`;
  if (a >= 1e-3) return `${sig(s * 1e3)} ms`;
  if (a >= 1e-6) return `${sig(s * 1e6)} µs`;
  return `${sig(s * 1e9)} ns`;
}

/** A count with an SI suffix: 1234567 → "1.23 M". */
export function fmtCount(n: number): string {
  const a = Math.abs(n);
  if (a < 1e4) return String(Math.round(n));
  if (a < 1e6) return `${sig(n / 1e3)} k`;
  if (a < 1e9) return `${sig(n / 1e6)} M`;
  if (a < 1e12) return `${sig(n / 1e9)} G`;
  return `${sig(n / 1e12)} T`;
}

/** Elements moved: "1.23 M el". */
export function fmtElements(n: number): string {
  return `${fmtCount(n)} el`;
}

/** null (a ratio to zero) and non-finite values print as "-". */
export function fmtRatio(r: number | null): string {
  if (r === null || !Number.isFinite(r)) return '-';
  return `${r >= 100 ? Math.round(r) : r.toFixed(2)}×`;
}

export function fmtRange(r: Range): string {
  return `[${r[0]}, ${r[1]})`;
}

/** Three significant digits without exponent notation. */
function sig(v: number): string {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** [0,1,2,3,8] → "0–3, 8" (sorted, duplicates dropped). */
export function compactList(xs: number[]): string {
  const v = [...new Set(xs)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < v.length;) {
    let j = i;
    while (j + 1 < v.length && v[j + 1] === v[j]! + 1) j++;
    out.push(j > i ? `${v[i]}–${v[j]}` : String(v[i]));
    i = j + 1;
  }
  return out.join(', ');
}
