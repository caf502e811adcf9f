// Fuzzing the parsers of command-line flag values: whole numbers and seeds, cpu lists, listen
// addresses and ports, byte sizes, thread counts and weight types, and the argv of an executor
// process. Each value parses to what the flag promises or is refused with a UsageError (a
// PlanInputError for sizes) that names the flag; nothing else escapes, nothing takes long.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError, parseNonNegativeInt, parsePositiveInt, parseSeed } from '../../common/errors.js';
import { parseCpuList, parseDataPort, parseListen } from '../../executor/host/options.js';
import { parseExecutorArgs } from '../../executor/node/args.js';
import { PlanInputError } from '../../planner/errors.js';
import { parseBytes } from '../../planner/units.js';
import { parseThreads, parseTypes } from '../../bench/kernels.js';
import { attempt, fuzz, textFrom } from './harness.js';

const FILE = 'test/fuzz/cli-flags.test.ts';

const NUMBERS = [
  '0',
  '1',
  '7',
  '007',
  '-1',
  '+1',
  ' 1 ',
  '1.5',
  '1e3',
  '0x10',
  '9007199254740991',
  '9007199254740992',
  '9007199254740996',
  '99999999999999999999',
  'Infinity',
  'NaN',
  '',
];
/** Flag values: digits, signs, separators, and now and then anything. */
const value = (pieces: string[]) =>
  fc.oneof(
    { weight: 5, arbitrary: textFrom(pieces, 8) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  );
const usage = (flag: string) => ({ type: UsageError, names: (m: string) => m.includes(flag) });

describe('fuzz: flag values', () => {
  it('--xxx whole numbers and --seed', () => {
    fuzz(
      FILE,
      fc.property(value([...NUMBERS, ' ', '\t', '\n']), (v) => {
        const pos = attempt(usage('--n'), () => parsePositiveInt(v, '--n'));
        if (pos.ok) expect(Number.isSafeInteger(pos.value) && pos.value >= 1).toBe(true);
        const nonNeg = attempt(usage('--n'), () => parseNonNegativeInt(v, '--n'));
        if (nonNeg.ok) expect(Number.isSafeInteger(nonNeg.value) && nonNeg.value >= 0).toBe(true);
        const seed = attempt(usage('--seed'), () => parseSeed(v));
        expect(seed).toEqual(nonNeg.ok ? nonNeg : seed);
      }),
      500,
    );
  });

  it('--cpus lists: cpu ids in order of the list, at most 4097 per range', () => {
    fuzz(
      FILE,
      fc.property(value([...NUMBERS, '-', ',', '0-3', '8', '3-0', '0-4096', '0-4097', ' ']), (v) => {
        const out = attempt(usage('--cpus'), () => parseCpuList(v));
        if (out.ok) {
          expect(out.value.length).toBeGreaterThan(0);
          for (const c of out.value) expect(Number.isSafeInteger(c) && c >= 0).toBe(true);
        }
      }),
      500,
    );
  });

  it('--listen HOST:PORT and --data-port', () => {
    fuzz(
      FILE,
      fc.property(
        value([...NUMBERS, ':', '[', ']', '::1', '127.0.0.1', 'host', '65535', '65536', ' ']),
        (v) => {
          const listen = attempt(usage('--listen'), () => parseListen(v));
          if (listen.ok) {
            expect(Number.isInteger(listen.value.port) && listen.value.port <= 65535).toBe(true);
            expect(listen.value.host.length).toBeGreaterThan(0);
          }
          const port = attempt(usage('--data-port'), () => parseDataPort(v));
          if (port.ok)
            expect(Number.isInteger(port.value) && port.value >= 0 && port.value <= 65535).toBe(true);
        },
      ),
      500,
    );
  });

  it('--memory sizes: a positive whole number of bytes', () => {
    fuzz(
      FILE,
      fc.property(
        fc.oneof(
          value([...NUMBERS, 'GiB', 'gb', 'k', 'TiB', ' ', '.', 'e', '1e400', '16GiB', 'b']),
          fc.double(),
          fc.constantFrom(0.5, 1e300, Infinity, -0),
        ),
        (v) => {
          const out = attempt({ type: PlanInputError, names: (m) => m.startsWith('--memory') }, () =>
            parseBytes(v, '--memory'),
          );
          if (out.ok) expect(Number.isSafeInteger(out.value) && out.value > 0).toBe(true);
        },
      ),
      500,
    );
  });

  it('bench --threads and --gemv-types', () => {
    fuzz(
      FILE,
      fc.property(
        value([...NUMBERS, ',', ' ']),
        value(['q4_0', 'q8_0', 'q4_k', 'q6_k', 'f32', ',', ' ', 'Q4_0']),
        fc.integer({ min: 1, max: 64 }),
        (threads, types, available) => {
          const t = attempt(usage('--threads'), () => parseThreads(threads, available));
          if (t.ok) {
            for (const n of t.value) expect(Number.isInteger(n) && n >= 1 && n <= available).toBe(true);
            expect(new Set(t.value).size).toBe(t.value.length);
          }
          attempt(usage('--gemv-types'), () => parseTypes(types));
        },
      ),
      500,
    );
  });

  it('the argv of an executor process', () => {
    const flags = ['--rank', '--world', '--cpus', '--memory-node', '--listen'];
    fuzz(
      FILE,
      fc.property(
        fc.array(fc.oneof(fc.constantFrom(...flags), value([...NUMBERS, ',', '0,1', '127.0.0.1:0'])), {
          maxLength: 12,
        }),
        (argv) => {
          const out = attempt({ type: Error, names: /^executor: / }, () => parseExecutorArgs(argv));
          if (out.ok) {
            const a = out.value;
            expect(a.rank).toBeLessThan(a.world);
            expect(a.cpus.length).toBeGreaterThan(0);
          }
        },
      ),
      500,
    );
  });
});
