// Waiting for something at most so long.

/**
 * `p`'s outcome (its value, or the error it rejected with, as a value) if it settles within `ms`,
 * else undefined. The timer is cleared either way: one left pending kept a failed run's process
 * alive for its whole length after the error had been printed.
 */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.catch((e: unknown) => e),
      new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** `p`'s value, or an Error(`message`) if `ms` pass first; the timer is cleared either way. */
export async function withDeadline<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
