// .npy reading and writing, including the malformed files users will hand us.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNpyMatrix, writeNpyMatrix } from '../../executor/coordinator/npy.js';
import { randomF32 } from '../helpers/reference.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-npy-'));

function npyBytes(descr: string, shape: string, data: Uint8Array, fortran = 'False'): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  const pad = (64 - ((10 + header.length + 1) % 64)) % 64;
  header += ' '.repeat(pad) + '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data)]);
}

describe('.npy files', () => {
  it('round-trips f32 matrices with a NumPy-compatible header', () => {
    const data = randomF32(7 * 5, 9);
    const p = join(dir, 'a.npy');
    writeNpyMatrix(p, 7, 5, data);
    const bytes = readFileSync(p);
    expect(bytes.subarray(0, 6)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]));
    expect((10 + bytes.readUInt16LE(8)) % 64).toBe(0); // data aligned as NumPy writes it
    expect(bytes.toString('latin1', 10, 80)).toMatch(
      /'descr': '<f4', 'fortran_order': False, 'shape': \(7, 5\)/,
    );
    const back = readNpyMatrix(p);
    expect(back.rows).toBe(7);
    expect(back.cols).toBe(5);
    expect(back.data).toEqual(data);
  });

  it('reads float64 files (converted to f32) and 1-D arrays as one row', () => {
    const f64 = new Float64Array([1.5, -2.25, 3, 4e-3, 5, 6]);
    const p = join(dir, 'd.npy');
    writeFileSync(p, npyBytes('<f8', '(2, 3)', new Uint8Array(f64.buffer)));
    const r = readNpyMatrix(p);
    expect([r.rows, r.cols]).toEqual([2, 3]);
    expect(Array.from(r.data)).toEqual(Array.from(Float32Array.from(f64)));
    const v = join(dir, 'v.npy');
    writeFileSync(v, npyBytes('<f4', '(4,)', new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer)));
    expect(readNpyMatrix(v)).toMatchObject({ rows: 1, cols: 4 });
  });

  it('names the problem in truncated, foreign, integer, Fortran and 3-D files', () => {
    const good = npyBytes('<f4', '(4, 4)', new Uint8Array(64));
    const cases: [Buffer, RegExp][] = [
      [good.subarray(0, good.length - 4), /truncated: shape \(4, 4\) needs 192 bytes, the file has 188/],
      [good.subarray(0, 20), /truncated .npy header/],
      [Buffer.from('hello world, not numpy'), /not a .npy file/],
      [
        npyBytes('<i4', '(2, 2)', new Uint8Array(16)),
        /dtype <i4 is not supported: save it as float32 or float64/,
      ],
      [npyBytes('<f4', '(2, 2)', new Uint8Array(16), 'True'), /Fortran-ordered/],
      [
        npyBytes('<f4', '(2, 2, 2)', new Uint8Array(32)),
        /expected a matrix, got an array of shape \(2, 2, 2\)/,
      ],
    ];
    cases.forEach(([bytes, msg], i) => {
      const p = join(dir, `bad${i}.npy`);
      writeFileSync(p, bytes);
      expect(() => readNpyMatrix(p)).toThrow(msg);
    });
    expect(() => readNpyMatrix(join(dir, 'missing.npy'))).toThrow(/missing.npy does not exist/);
  });

  it('quotes a malformed header on one line, control characters escaped (found by test/fuzz/npy.test.ts)', () => {
    // The header length counts one byte of data too: the message held the header's newline.
    const header = "{'fortran_order': False, 'shape': (), }\n?";
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    pre.writeUInt16LE(header.length, 8);
    const p = join(dir, 'newline.npy');
    writeFileSync(p, Buffer.concat([pre, Buffer.from(header + '???', 'latin1')]));
    expect(() => readNpyMatrix(p)).toThrow(
      `${p}: malformed .npy header: {'fortran_order': False, 'shape': (), }\\n?`,
    );
    const long = join(dir, 'long.npy');
    writeFileSync(long, npyBytes('\u001b'.repeat(500), '(1,)', new Uint8Array(4)));
    expect(() => readNpyMatrix(long)).toThrow(/dtype (\\x1b){100}… is not supported/);
  });
});
