// NumPy .npy files (format versions 1.0-3.0), the exchange format of `redblue run gemm`.
// Reads little-endian f32/f64 C-order 2-D (or 1-D) arrays; writes f32. Every malformed file gives
// an error that names the file and what is wrong, never a crash or a silent misread.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { shown } from '../../common/format.js';

export interface NpyHeader {
  dtype: 'f32' | 'f64';
  shape: number[];
  /** Byte offset of the data in the file. */
  dataOffset: number;
}

export class NpyError extends Error {
  override name = 'NpyError';
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

export function readNpyHeader(fd: number, path: string): NpyHeader {
  const size = fstatSync(fd).size;
  const pre = Buffer.alloc(12);
  const got = readSync(fd, pre, 0, 12, 0);
  if (got < 10 || !pre.subarray(0, 6).equals(MAGIC)) {
    throw new NpyError(`${path} is not a .npy file (no \\x93NUMPY magic)`);
  }
  const major = pre[6]!;
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = pre.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (got < 12) throw new NpyError(`${path}: truncated .npy header`);
    headerLen = pre.readUInt32LE(8);
    start = 12;
  } else {
    throw new NpyError(`${path}: unsupported .npy format version ${major}`);
  }
  if (start + headerLen > size) throw new NpyError(`${path}: truncated .npy header`);
  const hb = Buffer.alloc(headerLen);
  readSync(fd, hb, 0, headerLen, start);
  const header = hb.toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyError(`${path}: malformed .npy header: ${shown(header.trim(), 200)}`);
  }
  let dtype: 'f32' | 'f64';
  if (descr === '<f4' || descr === '=f4') dtype = 'f32';
  else if (descr === '<f8' || descr === '=f8') dtype = 'f64';
  else throw new NpyError(`${path}: dtype ${shown(descr)} is not supported: save it as float32 or float64`);
  if (fortran === 'True') {
    throw new NpyError(`${path}: Fortran-ordered arrays are not supported: save with np.ascontiguousarray`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new NpyError(`${path}: bad shape (${shown(shapeText)})`);
  }
  const dataOffset = start + headerLen;
  const elems = shape.reduce((a, b) => a * b, 1);
  const need = dataOffset + elems * (dtype === 'f32' ? 4 : 8);
  if (size < need) {
    throw new NpyError(
      `${path} is truncated: shape (${shape.join(', ')}) needs ${need} bytes, the file has ${size}`,
    );
  }
  return { dtype, shape, dataOffset };
}

/** Reads an array of any rank into f32 (float64 files are converted). */
export function readNpyArray(path: string): { shape: number[]; data: Float32Array } {
  const fd = openNpy(path);
  try {
    const h = readNpyHeader(fd, path);
    const n = h.shape.reduce((a, b) => a * b, 1);
    const bytes = Buffer.alloc(n * (h.dtype === 'f32' ? 4 : 8));
    readFully(fd, bytes, h.dataOffset);
    let data: Float32Array;
    if (h.dtype === 'f32') {
      data = new Float32Array(n);
      new Uint8Array(data.buffer).set(bytes);
    } else {
      data = Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, n));
    }
    return { shape: h.shape, data };
  } finally {
    closeSync(fd);
  }
}

/** The rows and columns of a 2-D (or 1-D: one row) .npy file, from its header alone. */
export function readNpyMatrixShape(path: string): { rows: number; cols: number } {
  const fd = openNpy(path);
  try {
    return matrixShape(path, readNpyHeader(fd, path).shape);
  } finally {
    closeSync(fd);
  }
}

function matrixShape(path: string, shape: number[]): { rows: number; cols: number } {
  if (shape.length > 2 || shape.length === 0) {
    throw new NpyError(`${path}: expected a matrix, got an array of shape (${shape.join(', ')})`);
  }
  const [rows, cols] = shape.length === 1 ? [1, shape[0]!] : [shape[0]!, shape[1]!];
  return { rows, cols };
}

/** Reads a 2-D matrix (a 1-D array is read as one row) into f32. */
export function readNpyMatrix(path: string): { rows: number; cols: number; data: Float32Array } {
  const { shape, data } = readNpyArray(path);
  return { ...matrixShape(path, shape), data };
}

export function writeNpyMatrix(path: string, rows: number, cols: number, data: Float32Array): void {
  if (data.length !== rows * cols) {
    throw new NpyError(`cannot write ${path}: ${data.length} values for a ${rows}×${cols} matrix`);
  }
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  // Pad so that the data starts on a 64-byte boundary, as NumPy does; the header ends in '\n'.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, pre);
    writeSync(fd, Buffer.from(header, 'latin1'));
    writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } finally {
    closeSync(fd);
  }
}

function openNpy(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new NpyError(code === 'ENOENT' ? `${path} does not exist` : `cannot open ${path}: ${String(e)}`);
  }
}

function readFully(fd: number, into: Buffer, position: number): void {
  let off = 0;
  while (off < into.length) {
    const n = readSync(fd, into, off, Math.min(into.length - off, 1 << 30), position + off);
    if (n === 0) throw new NpyError('unexpected end of file');
    off += n;
  }
}
