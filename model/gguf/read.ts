// readGguf(path): the header of a GGUF file (versions 2 and 3, little-endian): metadata and tensor
// infos, every count, length, type, shape and offset checked before use, so a truncated download
// or a corrupt file gives a GgufError that says what is wrong instead of a crash, a hang or a
// huge allocation. Only the header region is read, by positional reads; files can be 20 GB.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { shown } from '../../common/format.js';
import { describeTypeId, ggmlTypeById, rowBytes, type GgmlType, type GgmlTypeName } from './types.js';
import {
  FIXED_SIZE,
  VALUE_TYPE_BY_ID,
  describeValueType,
  type ArrayValue,
  type GgufValue,
  type ItemTypeName,
  type ValueTypeName,
} from './value.js';

export class GgufError extends Error {
  override name = 'GgufError';
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;
/** Nested arrays deeper than this are refused (no real file nests at all; bounds the recursion). */
const MAX_ARRAY_DEPTH = 8;
const CHUNK = 1 << 20;
/** Items of one array, tensors or keys (vocabularies have ~10^5 tokens). */
const MAX_COUNT = 1 << 26;
/** Bytes of one string (chat templates are kilobytes; V8 strings stop near 2^29). */
const MAX_STRING_BYTES = 1 << 28;

export interface GgufTensor {
  name: string;
  /** ggml ne: ne[0] is the row length (contiguous). */
  ne: number[];
  type: GgmlType;
  typeName: GgmlTypeName;
  elements: number;
  /** Absolute byte offset in the file. */
  offset: number;
  bytes: number;
}

export class GgufFile {
  readonly tensorByName: ReadonlyMap<string, GgufTensor>;

  constructor(
    readonly path: string,
    readonly fileSize: number,
    readonly version: number,
    readonly alignment: number,
    /** Absolute offset of the data section (aligned). */
    readonly dataOffset: number,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: readonly GgufTensor[],
  ) {
    this.tensorByName = new Map(tensors.map((t) => [t.name, t]));
  }

  has(key: string): boolean {
    return this.metadata.has(key);
  }

  get(key: string): GgufValue | undefined {
    return this.metadata.get(key);
  }

  /** Any integer type whose value fits in u32 (converters differ in the widths they write). */
  getU32(key: string): number {
    const v = this.required(key, 'u32');
    if (isInteger(v)) {
      const n = Number(v.value);
      if (n >= 0 && n <= 0xffffffff) return n;
    }
    throw this.wrongType(key, v, 'an unsigned 32-bit integer');
  }

  getU32Opt(key: string): number | undefined {
    return this.has(key) ? this.getU32(key) : undefined;
  }

  /** f32 or f64. */
  getF32(key: string): number {
    const v = this.required(key, 'f32');
    if (v.type === 'f32' || v.type === 'f64') return v.value;
    throw this.wrongType(key, v, 'f32');
  }

  getF32Opt(key: string): number | undefined {
    return this.has(key) ? this.getF32(key) : undefined;
  }

  getBool(key: string): boolean {
    const v = this.required(key, 'bool');
    if (v.type === 'bool') return v.value;
    throw this.wrongType(key, v, 'bool');
  }

  getBoolOpt(key: string): boolean | undefined {
    return this.has(key) ? this.getBool(key) : undefined;
  }

  getString(key: string): string {
    const v = this.required(key, 'string');
    if (v.type === 'string') return v.value;
    throw this.wrongType(key, v, 'string');
  }

  getStringOpt(key: string): string | undefined {
    return this.has(key) ? this.getString(key) : undefined;
  }

  /** An array, of the given item type when one is given. */
  getArray(key: string, itemType?: ItemTypeName | 'array'): ArrayValue {
    const v = this.required(key, itemType === undefined ? 'array' : `array of ${itemType}`);
    if (v.type === 'array' && (itemType === undefined || v.itemType === itemType)) return v;
    throw this.wrongType(key, v, itemType === undefined ? 'an array' : `array of ${itemType}`);
  }

  getArrayOpt(key: string, itemType?: ItemTypeName | 'array'): ArrayValue | undefined {
    return this.has(key) ? this.getArray(key, itemType) : undefined;
  }

  getStringArray(key: string): string[] {
    return this.getArray(key, 'string').value as string[];
  }

  tensor(name: string): GgufTensor {
    const t = this.tensorByName.get(name);
    if (t === undefined) throw new GgufError(`${this.path}: no tensor '${name}' in the file`);
    return t;
  }

  private required(key: string, expected: string): GgufValue {
    const v = this.metadata.get(key);
    if (v === undefined) throw new GgufError(`${this.path}: metadata key '${key}' (${expected}) is missing`);
    return v;
  }

  private wrongType(key: string, v: GgufValue, expected: string): GgufError {
    const value = v.type === 'array' ? `${v.value.length} items` : shown(String(v.value), 40);
    return new GgufError(
      `${this.path}: metadata key '${key}' is ${describeValueType(v)} (${value}), expected ${expected}`,
    );
  }
}

function isInteger(v: GgufValue): v is GgufValue & { value: number | bigint } {
  return ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'u64', 'i64'].includes(v.type);
}

/** Positional reads through a window of the file; every read is bounds-checked first. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true }); // a token may be U+FEFF itself

  constructor(
    private readonly fd: number,
    readonly fileSize: number,
    private readonly path: string,
  ) {}

  remaining(): number {
    return this.fileSize - this.pos;
  }

  fail(message: string): never {
    throw new GgufError(`${this.path}: ${message}`);
  }

  /** Makes [pos, pos+n) readable from the window (which it may replace: read this.buf after). */
  private need(n: number, what: () => string): number {
    if (n > this.remaining()) {
      this.fail(
        `the file ends at byte ${this.fileSize} while reading ${what()} at byte ${this.pos} ` +
          `(${n} bytes needed; truncated download?)`,
      );
    }
    const end = this.bufStart + this.buf.length;
    if (this.pos < this.bufStart || this.pos + n > end) {
      const size = Math.min(Math.max(n, CHUNK), this.remaining());
      this.buf = Buffer.alloc(size);
      this.bufStart = this.pos;
      let got = 0;
      while (got < size) {
        const r = readSync(this.fd, this.buf, got, size - got, this.pos + got);
        if (r === 0) this.fail(`the file shrank while being read (at byte ${this.pos + got})`);
        got += r;
      }
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }

  u8(what: () => string): number {
    const at = this.need(1, what);
    return this.buf.readUInt8(at);
  }
  i8(what: () => string): number {
    const at = this.need(1, what);
    return this.buf.readInt8(at);
  }
  u16(what: () => string): number {
    const at = this.need(2, what);
    return this.buf.readUInt16LE(at);
  }
  i16(what: () => string): number {
    const at = this.need(2, what);
    return this.buf.readInt16LE(at);
  }
  u32(what: () => string): number {
    const at = this.need(4, what);
    return this.buf.readUInt32LE(at);
  }
  i32(what: () => string): number {
    const at = this.need(4, what);
    return this.buf.readInt32LE(at);
  }
  f32(what: () => string): number {
    const at = this.need(4, what);
    return this.buf.readFloatLE(at);
  }
  f64(what: () => string): number {
    const at = this.need(8, what);
    return this.buf.readDoubleLE(at);
  }
  u64(what: () => string): bigint {
    const at = this.need(8, what);
    return this.buf.readBigUInt64LE(at);
  }
  i64(what: () => string): bigint {
    const at = this.need(8, what);
    return this.buf.readBigInt64LE(at);
  }

  /** A u64 count or size that must also fit in the rest of the file at `minBytesEach` apiece. */
  count(what: () => string, minBytesEach: number, max = MAX_COUNT): number {
    const at = this.pos;
    const n = this.u64(what);
    const room = BigInt(this.remaining());
    if (n * BigInt(minBytesEach) > room) {
      this.fail(
        `${what()} at byte ${at} is ${n}, but only ${room} bytes follow ` +
          `(at least ${minBytesEach} per item; corrupt or truncated file)`,
      );
    }
    // A 20 GB file has room for absurd counts; these limits are far above any real header.
    if (n > BigInt(max))
      this.fail(`${what()} at byte ${at} is ${n}, more than the ${max} a GGUF header can plausibly hold`);
    return Number(n);
  }

  string(what: () => string): string {
    const len = this.count(() => `the length of ${what()}`, 1, MAX_STRING_BYTES);
    const at = this.need(len, what);
    return this.decoder.decode(this.buf.subarray(at, at + len));
  }

  /**
   * `n` strings, as string() each, without its per-item closures, BigInts and views: a 152k-token
   * vocabulary's header read took 0.4 s, mostly garbage. Anything unusual (a length past 2^32 or
   * past the file, a string across the window's end) goes through string() for its checks and
   * its message. Buffer's UTF-8 decoding replaces bad bytes and keeps a BOM as TextDecoder does.
   * `decode` false (ReadOptions.strings 'count'): every length checked the same, nothing decoded,
   * an array of `n` holes (an executor spent 0.25 s decoding a 152k-token vocabulary and its
   * merges for their count alone).
   */
  strings(n: number, what: (i: number) => string, decode = true): string[] {
    const out: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const at = this.pos - this.bufStart;
      const buf = this.buf;
      if (at >= 0 && at + 8 <= buf.length && buf.readUInt32LE(at + 4) === 0) {
        const len = buf.readUInt32LE(at);
        if (len <= MAX_STRING_BYTES && at + 8 + len <= buf.length) {
          this.pos += 8 + len;
          if (decode) out[i] = buf.toString('utf8', at + 8, at + 8 + len);
          continue;
        }
      }
      if (decode) out[i] = this.string(() => what(i));
      else
        this.need(
          this.count(() => `the length of ${what(i)}`, 1, MAX_STRING_BYTES),
          () => what(i),
        );
    }
    return out;
  }

  /** `n` fixed-size items read by `get` (a Buffer reader), after one check of all their bytes. */
  fixed<T>(n: number, size: number, get: (b: Buffer, at: number) => T, what: () => string): T[] {
    const at = this.need(n * size, what);
    const out: T[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = get(this.buf, at + i * size);
    return out;
  }
}

/** Buffer readers of the fixed-size item types whose values need no check (bool's 0/1 does). */
const FIXED_READER: Partial<Record<ValueTypeName, (b: Buffer, at: number) => number | bigint>> = {
  u8: (b, at) => b.readUInt8(at),
  i8: (b, at) => b.readInt8(at),
  u16: (b, at) => b.readUInt16LE(at),
  i16: (b, at) => b.readInt16LE(at),
  u32: (b, at) => b.readUInt32LE(at),
  i32: (b, at) => b.readInt32LE(at),
  f32: (b, at) => b.readFloatLE(at),
  f64: (b, at) => b.readDoubleLE(at),
  u64: (b, at) => b.readBigUInt64LE(at),
  i64: (b, at) => b.readBigInt64LE(at),
};

function readValue(
  c: Cursor,
  type: ValueTypeName,
  what: () => string,
  depth: number,
  o: ReadOptions,
): GgufValue {
  switch (type) {
    case 'u8':
      return { type, value: c.u8(what) };
    case 'i8':
      return { type, value: c.i8(what) };
    case 'u16':
      return { type, value: c.u16(what) };
    case 'i16':
      return { type, value: c.i16(what) };
    case 'u32':
      return { type, value: c.u32(what) };
    case 'i32':
      return { type, value: c.i32(what) };
    case 'f32':
      return { type, value: c.f32(what) };
    case 'f64':
      return { type, value: c.f64(what) };
    case 'u64':
      return { type, value: c.u64(what) };
    case 'i64':
      return { type, value: c.i64(what) };
    case 'bool': {
      const at = c.pos;
      const b = c.u8(what);
      if (b > 1) c.fail(`${what()} at byte ${at} is a bool of value ${b} (must be 0 or 1)`);
      return { type, value: b === 1 };
    }
    case 'string':
      return { type, value: c.string(what) };
    case 'array':
      return readArray(c, what, depth, o);
  }
}

function readValueType(c: Cursor, what: () => string): ValueTypeName {
  const at = c.pos;
  const id = c.u32(() => `the value type of ${what()}`);
  const t = VALUE_TYPE_BY_ID.get(id);
  if (t === undefined) {
    c.fail(`${what()} has unknown value type ${id} (at byte ${at}; GGUF types are 0..12)`);
  }
  return t;
}

function readArray(c: Cursor, what: () => string, depth: number, o: ReadOptions): ArrayValue {
  if (depth >= MAX_ARRAY_DEPTH) c.fail(`${what()} nests arrays more than ${MAX_ARRAY_DEPTH} deep`);
  const itemType = readValueType(c, () => `the items of ${what()}`);
  // Strings take their 8-byte length at least, nested arrays their type and count.
  const minBytes = FIXED_SIZE[itemType] ?? (itemType === 'string' ? 8 : 12);
  const n = c.count(() => `the item count of ${what()}`, minBytes);
  if (itemType === 'string') {
    const item = (i: number) => `item ${i} of ${what()}`;
    return { type: 'array', itemType, value: c.strings(n, item, o.strings !== 'count') };
  }
  const reader = FIXED_READER[itemType];
  // (in one read up to 64 MiB; a bigger array, never seen in a real header, item by item)
  if (reader && n * FIXED_SIZE[itemType]! <= 64 << 20) {
    const value = c.fixed(n, FIXED_SIZE[itemType]!, reader, () => `the ${n} items of ${what()}`);
    return { type: 'array', itemType, value } as ArrayValue;
  }
  const items: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const v = readValue(c, itemType, () => `item ${i} of ${what()}`, depth + 1, o);
    items[i] = v.type === 'array' ? v : v.value;
  }
  return { type: 'array', itemType, value: items } as ArrayValue;
}

/**
 * One tensor's bytes, by positional reads (rows [rowLo, rowHi) of its ne[0]-element rows when
 * given, e.g. a rank's slice). The header checks guarantee the range is inside the file.
 */
export function readTensorData(f: GgufFile, t: GgufTensor, rowLo = 0, rowHi?: number): Uint8Array {
  const rows = t.elements / Math.max(t.ne[0] ?? 1, 1);
  const hi = rowHi ?? rows;
  if (!Number.isInteger(rowLo) || !Number.isInteger(hi) || rowLo < 0 || hi > rows || rowLo > hi) {
    throw new RangeError(`rows [${rowLo}, ${hi}) are not inside tensor '${t.name}' (${rows} rows)`);
  }
  const rowSize = rows === 0 ? 0 : t.bytes / rows;
  const out = new Uint8Array((hi - rowLo) * rowSize);
  const fd = openSync(f.path, 'r');
  try {
    let got = 0;
    while (got < out.length) {
      const r = readSync(fd, out, got, out.length - got, t.offset + rowLo * rowSize + got);
      if (r === 0)
        throw new GgufError(
          `${f.path}: the file ended while reading tensor '${shown(t.name)}' (changed since read?)`,
        );
      got += r;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

export interface ReadOptions {
  /**
   * 'count': arrays of strings (a vocabulary, its merges) are checked as ever but not decoded:
   * their values are arrays of as many holes, for readers that need only their lengths (an
   * executor placing weights). Default 'read'.
   */
  strings?: 'read' | 'count';
}

/** Reads and validates a GGUF header; the tensor data is not read. */
export function readGguf(path: string, options: ReadOptions = {}): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file (check the path)'
        : code === 'EACCES'
          ? 'permission denied'
          : (e as Error).message;
    throw new GgufError(`cannot open the model ${path}: ${why}`);
  }
  try {
    if (!fstatSync(fd).isFile())
      throw new GgufError(`cannot read the model ${path}: it is not a regular file`);
    return parse(fd, path, options);
  } finally {
    closeSync(fd);
  }
}

function parse(fd: number, path: string, o: ReadOptions): GgufFile {
  const fileSize = fstatSync(fd).size;
  const c: Cursor = new Cursor(fd, fileSize, path);
  const magic = c.u32(() => 'the magic number');
  if (magic !== GGUF_MAGIC) {
    const bytes = [magic & 0xff, (magic >> 8) & 0xff, (magic >> 16) & 0xff, magic >>> 24];
    const start = bytes.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    c.fail(`not a GGUF file (starts with '${start}', expected 'GGUF')`);
  }
  const version = c.u32(() => 'the version');
  if (version === 1) {
    c.fail('GGUF version 1 is not supported (32-bit counts); re-convert the model with a current llama.cpp');
  }
  if (version !== 2 && version !== 3) {
    const hint = version === 0x02000000 || version === 0x03000000 ? ' (a big-endian file?)' : '';
    c.fail(`GGUF version ${version} is not supported (2 and 3 are)${hint}`);
  }
  // A tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes, a
  // key-value pair 8 (key length) + 4 (type) + 1 bytes.
  const tensorCount = c.count(() => 'the tensor count', 24);
  const kvCount = c.count(() => 'the metadata count', 13);

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(() => `the key of metadata entry ${i}`);
    // Names from the file are quoted through shown(): a damaged one may hold any bytes.
    if (metadata.has(key)) c.fail(`metadata key '${shown(key)}' appears twice`);
    const what = (): string => `metadata key '${shown(key)}'`;
    const type = readValueType(c, what);
    metadata.set(key, readValue(c, type, what, 0, o));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const a = metadata.get('general.alignment');
  if (a !== undefined) {
    if (a.type !== 'u32') c.fail(`metadata key 'general.alignment' is ${describeValueType(a)}, expected u32`);
    if (a.value === 0 || (a.value & (a.value - 1)) !== 0) {
      c.fail(`metadata key 'general.alignment' is ${a.value}, expected a power of two`);
    }
    alignment = a.value;
  }

  interface Info {
    name: string;
    ne: number[];
    type: GgmlType;
    elements: number;
    bytes: number;
    rel: number;
  }
  const infos: Info[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(() => `the name of tensor ${i}`);
    const what = (): string => `tensor '${shown(name)}'`;
    if (names.has(name)) c.fail(`${what()} appears twice`);
    names.add(name);
    const nDims = c.u32(() => `the dimension count of ${what()}`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) {
      c.fail(`${what()} has ${nDims} dimensions (1..${GGUF_MAX_DIMS} allowed)`);
    }
    const ne: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const n = c.u64(() => `dimension ${d} of ${what()}`);
      elements *= n;
      if (elements > BigInt(Number.MAX_SAFE_INTEGER) || n > BigInt(Number.MAX_SAFE_INTEGER)) {
        c.fail(`${what()} has an impossible shape (dimension ${d} is ${n}; over 2^53 elements)`);
      }
      ne.push(Number(n));
    }
    const typeId = c.u32(() => `the type of ${what()}`);
    const type = ggmlTypeById(typeId);
    if (type === undefined) {
      c.fail(`${what()} has tensor type ${describeTypeId(typeId)}, which redblue does not read`);
    }
    const rowLen = ne[0] ?? 0;
    if (rowLen % type.blockElements !== 0) {
      c.fail(
        `${what()} has rows of ${rowLen} elements, not a multiple of ${type.name}'s ` +
          `${type.blockElements}-element block (shape [${ne.join(', ')}])`,
      );
    }
    const rows = Number(elements) / Math.max(rowLen, 1);
    const bytes = rowLen === 0 ? 0 : rowBytes(type, rowLen) * rows;
    const relAt = c.pos;
    const rel = c.u64(() => `the offset of ${what()}`);
    if (rel % BigInt(alignment) !== 0n) {
      c.fail(
        `${what()} has data offset ${rel} (at byte ${relAt}), not a multiple of the alignment ${alignment}`,
      );
    }
    if (rel > BigInt(Number.MAX_SAFE_INTEGER)) {
      c.fail(`${what()} starts at data offset ${rel}, beyond any file (truncated or corrupt header?)`);
    }
    infos.push({ name, ne, type, elements: Number(elements), bytes, rel: Number(rel) });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors: GgufTensor[] = infos.map((t) => ({
    name: t.name,
    ne: t.ne,
    type: t.type,
    typeName: t.type.name,
    elements: t.elements,
    offset: dataOffset + t.rel,
    bytes: t.bytes,
  }));
  for (const t of tensors) {
    if (t.offset + t.bytes > fileSize) {
      c.fail(
        `tensor '${shown(t.name)}' ends at byte ${t.offset + t.bytes} but the file has ${fileSize} bytes ` +
          `(truncated download?)`,
      );
    }
  }
  const sorted = [...tensors].sort((x, y) => x.offset - y.offset);
  let prev: GgufTensor | undefined; // the tensor reaching furthest so far
  for (const cur of sorted) {
    if (cur.bytes === 0) continue;
    if (prev !== undefined && prev.offset + prev.bytes > cur.offset) {
      c.fail(
        `tensor '${shown(cur.name)}' (bytes ${cur.offset}..${cur.offset + cur.bytes}) overlaps tensor ` +
          `'${shown(prev.name)}' (bytes ${prev.offset}..${prev.offset + prev.bytes})`,
      );
    }
    if (prev === undefined || cur.offset + cur.bytes > prev.offset + prev.bytes) prev = cur;
  }
  return new GgufFile(path, fileSize, version, alignment, dataOffset, metadata, tensors);
}
