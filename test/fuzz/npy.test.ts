// Fuzzing the .npy reader: random bytes, headers put together from the pieces NumPy writes (and
// wrong ones), header lengths that disagree with the file, truncated and damaged data. Every file
// must read as an array whose data fits its shape, or give an NpyError naming the file.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  NpyError,
  readNpyArray,
  readNpyMatrix,
  readNpyMatrixShape,
  writeNpyMatrix,
} from '../../executor/coordinator/npy.js';
import { attempt, fuzz } from './harness.js';

const FILE = 'test/fuzz/npy.test.ts';
const dir = mkdtempSync(join(tmpdir(), 'redblue-fuzz-npy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = join(dir, 'input.npy');
const npy = { type: NpyError, names: (m: string) => m.includes(path), readable: { path } };

/** Reads `bytes` every way the CLI does; a result must agree with its shape. */
function readBytes(bytes: Uint8Array): void {
  writeFileSync(path, bytes);
  const array = attempt(npy, () => readNpyArray(path));
  if (array.ok) {
    const { shape, data } = array.value;
    expect(data.length).toBe(shape.reduce((a, b) => a * b, 1));
  }
  const shape = attempt(npy, () => readNpyMatrixShape(path));
  const matrix = attempt(npy, () => readNpyMatrix(path));
  if (matrix.ok) {
    expect(shape.ok).toBe(true);
    expect(matrix.value.data.length).toBe(matrix.value.rows * matrix.value.cols);
    if (shape.ok)
      expect([shape.value.rows, shape.value.cols]).toEqual([matrix.value.rows, matrix.value.cols]);
  }
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

const dim = fc.oneof(
  { weight: 6, arbitrary: fc.nat({ max: 6 }).map(String) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '-1',
      '1.5',
      '1e3',
      '0x10',
      'L',
      '',
      ' ',
      '9007199254740993',
      '4294967296',
      'inf',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 3 }) },
);
const shapeText = fc
  .tuple(fc.array(dim, { maxLength: 4 }), fc.boolean())
  .map(([dims, comma]) => `(${dims.join(', ')}${comma ? ',' : ''})`);
const descr = fc.oneof(
  fc.constantFrom('<f4', '<f8', '=f4', '=f8', '>f4', '<i4', '|u1', '<f2', ''),
  fc.string({ maxLength: 4 }),
);
const fortran = fc.constantFrom('False', 'True', 'false', '0', '');

/** A header dict as NumPy writes it, its entries shuffled, sometimes one missing or mangled. */
const headerText = fc
  .record({
    descr,
    fortran,
    shape: shapeText,
    drop: fc.option(fc.nat({ max: 2 }), { freq: 4 }),
    junk: fc.option(fc.string({ maxLength: 8 }), { freq: 4 }),
    order: fc.nat({ max: 5 }),
  })
  .map(({ descr, fortran, shape, drop, junk, order }) => {
    const entries = [`'descr': '${descr}'`, `'fortran_order': ${fortran}`, `'shape': ${shape}`];
    if (drop !== null) entries.splice(drop, 1);
    for (let i = 0; i < order; i++) entries.push(entries.shift()!);
    return `{${entries.join(', ')}, ${junk ?? ''}}`;
  });

/** A whole file: magic, version, header length (right or not), header, padding, data. */
const file = fc
  .record({
    major: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(1, 2, 3) },
      { weight: 1, arbitrary: fc.nat(255) },
    ),
    header: headerText,
    pad: fc.nat({ max: 70 }),
    lengthDelta: fc.oneof(
      { weight: 6, arbitrary: fc.constant(0) },
      { weight: 2, arbitrary: fc.integer({ min: -8, max: 8 }) },
      { weight: 1, arbitrary: fc.constantFrom(2 ** 16 - 1, 2 ** 31, 2 ** 32 - 1) },
    ),
    dataBytes: fc.oneof(fc.nat({ max: 260 }), fc.constantFrom(0, 4, 8, 16, 48, 96, 192)),
    cut: fc.option(fc.nat(), { freq: 4 }),
  })
  .map(({ major, header, pad, lengthDelta, dataBytes, cut }) => {
    const text = Buffer.from(header + ' '.repeat(pad) + '\n', major === 3 ? 'utf8' : 'latin1');
    const wide = major !== 1;
    const pre = Buffer.alloc(wide ? 12 : 10);
    Buffer.from(MAGIC).copy(pre);
    pre[6] = major;
    const len = text.length + lengthDelta;
    if (wide) pre.writeUInt32LE(((len % 2 ** 32) + 2 ** 32) % 2 ** 32, 8);
    else pre.writeUInt16LE(((len % 2 ** 16) + 2 ** 16) % 2 ** 16, 8);
    const data = Buffer.alloc(dataBytes, 0x3f);
    const all = Buffer.concat([pre, text, data]);
    return cut === null ? all : all.subarray(0, cut % (all.length + 1));
  });

describe('fuzz: .npy files', () => {
  it('random bytes, with and without the magic', () => {
    fuzz(
      FILE,
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 300 }), (magic, rest) => {
        readBytes(magic ? Buffer.concat([Buffer.from(MAGIC), rest]) : rest);
      }),
      300,
    );
  });

  it('headers and lengths as NumPy writes them and otherwise', () => {
    fuzz(FILE, fc.property(file, readBytes), 500);
  });

  it('byte mutations of a file the writer wrote', () => {
    const base = join(dir, 'base.npy');
    writeNpyMatrix(base, 3, 5, new Float32Array(15).fill(1.5));
    const good = readFileSync(base);
    fuzz(
      FILE,
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.nat(), { freq: 3 }),
        (edits, cut) => {
          const b = Buffer.from(good);
          // Mostly in the 128-byte header, where the parsing is.
          for (const [at, v] of edits) b[at % 3 === 0 ? at % b.length : at % 128] = v;
          readBytes(cut === null ? b : b.subarray(0, cut % (b.length + 1)));
        },
      ),
      300,
    );
  });
});
