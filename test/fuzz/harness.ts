// What every fuzz harness shares: the budget, the seed, and the one rule each parser of outside
// input is held to: an input either parses or is refused with an error of the parser's own class
// whose message names the problem; any other exception (a TypeError from reading past the end of
// an array, a RangeError out of a DataView) is a bug, and so is an input that takes too long.
//
// Budget: FUZZ_RUNS inputs per property (`npm run fuzz` sets 100000); without it, each property's
// small smoke budget, so that `npm test` stays quick. Seed: FUZZ_SEED, else a fixed one in the
// normal run (the suite gives the same answer every time) and a fresh one under FUZZ_RUNS. A
// failure prints the line that replays it: FUZZ_SEED=… FUZZ_PATH=… npx vitest run <file> -t '<test>'.
import fc from 'fast-check';
import { expect } from 'vitest';

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new Error(`${name} must be a whole number, got '${v}'`);
  return Number(v);
}

const RUNS = envInt('FUZZ_RUNS');
const SEED = envInt('FUZZ_SEED') ?? (RUNS === undefined ? 20240611 : Date.now() ^ (Math.random() * 2 ** 31));
const PATH = process.env.FUZZ_PATH;

/** Inputs per property: FUZZ_RUNS when set, else the property's smoke budget. */
export function runs(smoke: number): number {
  return RUNS ?? smoke;
}

/** Slowest input allowed, in ms: far above any parser's real cost, far below a hang. */
export const SLOW_MS = envInt('FUZZ_SLOW_MS') ?? 2000;

/** Checks `property` over its budget; a failure says how to replay it. */
export function fuzz<Ts>(file: string, property: fc.IProperty<Ts>, smoke: number): void {
  const params: fc.Parameters<Ts> = {
    numRuns: runs(smoke),
    seed: SEED,
    ...(PATH !== undefined ? { path: PATH, endOnFailure: true } : {}),
  };
  const out = fc.check(property, params);
  if (out.failed) {
    // The path belongs to this property alone: -t keeps the file's other properties out.
    const test = expect.getState().currentTestName?.split(' > ').pop();
    const replay =
      `replay: FUZZ_SEED=${out.seed}` +
      (out.counterexamplePath !== null ? ` FUZZ_PATH=${out.counterexamplePath}` : '') +
      ` npx vitest run ${file}` +
      (test !== undefined
        ? ` -t '${test.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/'/g, "'\\''")}'`
        : '');
    const error = new Error(`${fc.defaultReportMessage(out)}\n${replay}`);
    // The parser's own exception, with its stack: that is where the bug is.
    if (out.errorInstance instanceof Error) error.cause = out.errorInstance;
    throw error;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ErrorClass = abstract new (...args: any[]) => Error;

export interface Refusal {
  /** The exact class the parser throws (a subclass or a TypeError is not it). */
  type: ErrorClass;
  /** What the message must match, where the parser promises it (the file, the flag, the line). */
  names?: RegExp | ((message: string) => boolean);
  /**
   * Binary formats: the message is one readable line, whatever bytes the file holds (no control
   * characters, at most MAX_MESSAGE characters besides the path), not the file's garbage echoed.
   */
  readable?: { path: string };
}

export const MAX_MESSAGE = 600;

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: Error };

/**
 * Runs `parse` on one input: its value, or the error it was refused with. Throws (failing the
 * property) when it threw anything but a `refusal`, or ran longer than SLOW_MS.
 */
export function attempt<T>(refusal: Refusal, parse: () => T): Outcome<T> {
  const t0 = performance.now();
  let out: Outcome<T>;
  try {
    out = { ok: true, value: parse() };
  } catch (e) {
    checkRefusal(e, refusal);
    out = { ok: false, error: e as Error };
  }
  const ms = performance.now() - t0;
  if (ms > SLOW_MS) throw new Error(`one input took ${ms.toFixed(0)} ms (limit ${SLOW_MS} ms)`);
  return out;
}

function checkRefusal(e: unknown, refusal: Refusal): void {
  const fail = (why: string): never => {
    const error = new Error(`${why}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    error.cause = e;
    throw error;
  };
  if (!(e instanceof Error)) fail('threw a non-Error');
  const error = e as Error;
  if (error.constructor !== refusal.type)
    fail(`threw ${error.constructor.name}, expected ${refusal.type.name}`);
  if (error.message.trim() === '') fail('threw an error without a message');
  if (refusal.readable !== undefined) {
    const rest = error.message.split(refusal.readable.path).join('');
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f]/.test(rest)) fail('the message holds control characters');
    if (rest.length > MAX_MESSAGE) fail(`the message is ${rest.length} characters long`);
  }
  const names = refusal.names;
  if (names !== undefined) {
    const ok = typeof names === 'function' ? names(error.message) : names.test(error.message);
    if (!ok) fail(`the message does not name the problem as promised (${String(names)})`);
  }
}

/** Strings that look like what the parser reads, so inputs get past the first check. */
export function textFrom(pieces: readonly string[], maxLength = 12): fc.Arbitrary<string> {
  return fc
    .array(
      fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...pieces) },
        { weight: 2, arbitrary: fc.string({ maxLength: 4 }) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }) },
        { weight: 1, arbitrary: fc.nat().map(String) },
        {
          weight: 1,
          arbitrary: fc.constantFrom('0', '-1', '1e400', '9007199254740993', '4294967296', '65536', '1.5'),
        },
      ),
      { maxLength },
    )
    .map((parts) => parts.join(''));
}
