// Errors meant for the user: printed as one line without a stack, exit code 2.
export class UsageError extends Error {
  override name = 'UsageError';
}

export function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${flag} must be a whole number of at least 1, got '${value}'`);
  }
  return n;
}
