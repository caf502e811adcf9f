// Errors meant for the user (any layer may throw them): one line without a stack, exit code 2.
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Errors already shown to the user as they happened (a lost host is reported before the other
 * hosts are stopped, which can take seconds): the CLI's last word does not print them again.
 */
export const shownErrors = new WeakSet<object>();

/** A whole number from 1 to `max` (at most 2^53 − 1: beyond it a double is no longer exact). */
export function parsePositiveInt(value: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n < 1) {
    throw new UsageError(`${flag} must be a whole number of at least 1, got '${value}'`);
  }
  if (!Number.isSafeInteger(n) || n > max) {
    throw new UsageError(`${flag} must be at most ${max}, got '${value}'`);
  }
  return n;
}

export function parseNonNegativeInt(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) {
    throw new UsageError(`${flag} must be a non-negative whole number, got '${value}'`);
  }
  return n;
}

/** --seed of every workload (run and launch alike): any whole number from 0. */
export function parseSeed(value: string): number {
  return parseNonNegativeInt(value, '--seed');
}
