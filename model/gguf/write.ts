// writeGguf(path, {metadata, tensors}): a GGUF version 3 file, little-endian, the way llama.cpp's
// gguf writer lays it out: header, metadata, tensor infos, padding to the alignment, then each
// tensor's data in order, each padded to the alignment (gguf.cpp requires exactly this packing).
// Tensor data is streamed: a tensor may give a callback that produces its bytes when written,
// so a large test model never has to be in memory whole.
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_DIMS } from './read.js';
import { ggmlType, rowBytes, type GgmlTypeName } from './types.js';
import { VALUE_TYPE_IDS, type GgufValue, type ItemTypeName } from './value.js';

export interface GgufTensorInput {
  name: string;
  /** ggml ne: ne[0] is the row length. */
  ne: number[];
  type: GgmlTypeName;
  /** Exactly the tensor's bytes, or a function called once, when the tensor is written. */
  data: Uint8Array | (() => Uint8Array);
}

export interface GgufWriteInput {
  /** Written in insertion order. general.alignment is added when the alignment is not 32. */
  metadata: Map<string, GgufValue> | Record<string, GgufValue>;
  tensors: GgufTensorInput[];
  alignment?: number;
}

/** Grows as it is written; the header of a 150k-token vocabulary is a few MB. */
class ByteSink {
  buf = Buffer.alloc(1 << 16);
  len = 0;
  /** Room for n bytes; may replace this.buf, so callers read this.buf after calling it. */
  private reserve(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    const at = this.len;
    this.len += n;
    return at;
  }
  u8(v: number): void {
    const at = this.reserve(1);
    this.buf.writeUInt8(v, at);
  }
  i8(v: number): void {
    const at = this.reserve(1);
    this.buf.writeInt8(v, at);
  }
  u16(v: number): void {
    const at = this.reserve(2);
    this.buf.writeUInt16LE(v, at);
  }
  i16(v: number): void {
    const at = this.reserve(2);
    this.buf.writeInt16LE(v, at);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.buf.writeUInt32LE(v, at);
  }
  i32(v: number): void {
    const at = this.reserve(4);
    this.buf.writeInt32LE(v, at);
  }
  f32(v: number): void {
    const at = this.reserve(4);
    this.buf.writeFloatLE(v, at);
  }
  f64(v: number): void {
    const at = this.reserve(8);
    this.buf.writeDoubleLE(v, at);
  }
  u64(v: bigint | number): void {
    const at = this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), at);
  }
  i64(v: bigint): void {
    const at = this.reserve(8);
    this.buf.writeBigInt64LE(v, at);
  }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf-8');
    this.u64(bytes.length);
    const at = this.reserve(bytes.length);
    bytes.copy(this.buf, at);
  }
}

function writeItem(s: ByteSink, type: ItemTypeName | 'array', v: unknown, key: string): void {
  const bad = (): never => {
    throw new TypeError(`metadata key '${key}': ${String(v).slice(0, 40)} is not a valid ${type}`);
  };
  switch (type) {
    case 'string':
      if (typeof v !== 'string') bad();
      return s.string(v as string);
    case 'bool':
      if (typeof v !== 'boolean') bad();
      return s.u8(v ? 1 : 0);
    case 'u64':
    case 'i64':
      if (typeof v !== 'bigint') bad();
      return type === 'u64' ? s.u64(v as bigint) : s.i64(v as bigint);
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') bad();
      return type === 'f32' ? s.f32(v as number) : s.f64(v as number);
    case 'array':
      return writeValue(s, v as GgufValue, key);
    default:
      // Integer types: Buffer's writers throw a RangeError naming the range when out of it.
      if (typeof v !== 'number' || !Number.isInteger(v)) bad();
      return s[type](v as number);
  }
}

function writeValue(s: ByteSink, v: GgufValue, key: string): void {
  if (v.type !== 'array') return writeItem(s, v.type, v.value, key);
  s.u32(VALUE_TYPE_IDS[v.itemType]);
  s.u64(v.value.length);
  // A nested array item is its item type, count and items, with no type of its own (gguf-py).
  for (const item of v.value) writeItem(s, v.itemType, item, key);
}

/**
 * Writes the file (replacing any); returns its size in bytes. The bytes go to a temporary file
 * beside it, renamed over `path` only once whole: an error or a kill midway never leaves a
 * truncated model under the name (an error removes the temporary file too).
 */
export function writeGguf(path: string, input: GgufWriteInput): number {
  const steps = writeSteps(path, input);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * writeGguf, giving the event loop a turn after each tensor, so that `signal` (Ctrl-C in the CLI)
 * can stop it: the temporary file is then removed and nothing is written under `path`.
 */
export async function writeGgufAsync(
  path: string,
  input: GgufWriteInput,
  signal?: AbortSignal,
): Promise<number> {
  const steps = writeSteps(path, input);
  try {
    for (;;) {
      signal?.throwIfAborted();
      const r = steps.next();
      if (r.done) return r.value;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    steps.return(0); // runs the writer's cleanup if it stopped midway; a no-op once done
  }
}

/** The writer, one tensor per step. */
function* writeSteps(path: string, input: GgufWriteInput): Generator<void, number, void> {
  const alignment = input.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new RangeError(`alignment ${alignment} is not a power of two`);
  }
  const metadata = new Map(input.metadata instanceof Map ? input.metadata : Object.entries(input.metadata));
  if (alignment !== GGUF_DEFAULT_ALIGNMENT || metadata.has('general.alignment')) {
    const given = metadata.get('general.alignment');
    if (given !== undefined && (given.type !== 'u32' || given.value !== alignment)) {
      throw new RangeError(`metadata 'general.alignment' must be u32 ${alignment}, the alignment written`);
    }
    metadata.set('general.alignment', { type: 'u32', value: alignment });
  }

  const pad = (n: number): number => Math.ceil(n / alignment) * alignment;
  const names = new Set<string>();
  const sizes: number[] = [];
  let dataBytes = 0;
  const s = new ByteSink();
  s.u32(GGUF_MAGIC);
  s.u32(3);
  s.u64(input.tensors.length);
  s.u64(metadata.size);
  for (const [key, v] of metadata) {
    s.string(key);
    s.u32(VALUE_TYPE_IDS[v.type]);
    writeValue(s, v, key);
  }
  for (const t of input.tensors) {
    if (names.has(t.name)) throw new RangeError(`tensor '${t.name}' is given twice`);
    names.add(t.name);
    if (t.ne.length < 1 || t.ne.length > GGUF_MAX_DIMS) {
      throw new RangeError(`tensor '${t.name}' has ${t.ne.length} dimensions (1..${GGUF_MAX_DIMS} allowed)`);
    }
    const rows = t.ne.slice(1).reduce((a, b) => a * b, 1);
    const bytes = rowBytes(ggmlType(t.type), t.ne[0]!) * rows;
    sizes.push(bytes);
    s.string(t.name);
    s.u32(t.ne.length);
    for (const n of t.ne) s.u64(n);
    s.u32(ggmlType(t.type).id);
    s.u64(dataBytes);
    dataBytes += pad(bytes);
  }

  const tmp = `${path}.partial-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let whole = false;
  try {
    let pos = 0;
    const put = (b: Uint8Array): void => {
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done, pos + done);
      pos += b.length;
    };
    const zeros = Buffer.alloc(alignment);
    const padTo = (): void => put(zeros.subarray(0, pad(pos) - pos));
    put(s.buf.subarray(0, s.len));
    padTo();
    for (const [i, t] of input.tensors.entries()) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      if (data.length !== sizes[i]) {
        throw new RangeError(
          `tensor '${t.name}' (${t.type} [${t.ne.join(', ')}]) needs ${sizes[i]} bytes, got ${data.length}`,
        );
      }
      put(data);
      padTo();
      yield;
    }
    whole = true;
    return pos;
  } finally {
    closeSync(fd);
    if (whole) renameSync(tmp, path);
    else rmSync(tmp, { force: true });
  }
}
