// Byte sizes as people write them: 17179869184, "16GiB", "16 GB", "512MiB".
import { PlanInputError } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 2 ** 10,
  m: 1e6,
  mb: 1e6,
  mib: 2 ** 20,
  g: 1e9,
  gb: 1e9,
  gib: 2 ** 30,
  t: 1e12,
  tb: 1e12,
  tib: 2 ** 40,
};

export function parseBytes(value: string | number, what: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0)
      throw new PlanInputError(`${what} must be a positive number of bytes, got ${value}`);
    return Math.floor(value);
  }
  const m = /^\s*([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new PlanInputError(`${what} must be a size in bytes like 17179869184 or 16GiB, got '${value}'`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!(bytes > 0)) throw new PlanInputError(`${what} must be positive, got '${value}'`);
  return bytes;
}
