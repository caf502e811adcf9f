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

/** A whole number of bytes from 1 to 2^53 - 1 (8 PiB: past it, sizes stop being exact). */
export function parseBytes(value: string | number, what: string): number {
  if (typeof value === 'number') {
    const bytes = Math.floor(value);
    if (!Number.isSafeInteger(bytes) || bytes <= 0)
      throw new PlanInputError(`${what} must be a positive number of bytes below 2^53, got ${value}`);
    return bytes;
  }
  // A topology file may hold anything here: an object, a list, null.
  if (typeof value !== 'string')
    throw new PlanInputError(
      `${what} must be a size in bytes like 17179869184 or 16GiB, got ${typeof value}`,
    );
  const m = /^\s*([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new PlanInputError(`${what} must be a size in bytes like 17179869184 or 16GiB, got '${value}'`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0)
    throw new PlanInputError(`${what} must be a positive size below 2^53 bytes (8 PiB), got '${value}'`);
  return bytes;
}
