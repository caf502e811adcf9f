// GGUF reader and writer against real files: every value type and tensor type round-trips, and
// damaged files (truncated, wrong magic or version, unknown types, shapes or offsets that do not
// fit, absurd counts, random byte flips) give a GgufError naming the problem, never a crash.
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GgufError, readGguf, readTensorData } from '../../model/gguf/read.js';
import { GGML_TYPES, rowBytes } from '../../model/gguf/types.js';
import { gv, type GgufValue } from '../../model/gguf/value.js';
import { writeGguf, type GgufTensorInput } from '../../model/gguf/write.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-gguf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmp = (): string => join(dir, `f${fileNo++}.gguf`);

/** Deterministic bytes (xorshift), so failures reproduce. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const everyValue: Record<string, GgufValue> = {
  'general.architecture': gv.string('llama'),
  'test.u8': gv.u8(255),
  'test.i8': gv.i8(-128),
  'test.u16': gv.u16(65535),
  'test.i16': gv.i16(-32768),
  'test.u32': gv.u32(4294967295),
  'test.i32': gv.i32(-2147483648),
  'test.f32': gv.f32(-1.5),
  'test.f64': gv.f64(Math.PI),
  'test.bool': gv.bool(true),
  'test.string': gv.string('héllo ▁wörld 🦙'),
  'test.empty_string': gv.string(''),
  'test.u64': gv.u64(18446744073709551615n),
  'test.i64': gv.i64(-9223372036854775808n),
  'test.strings': gv.strings(['<unk>', '<s>', '', '▁the']),
  'test.f32s': gv.numbers('f32', [0.25, -2, 1e-6 * 0 + 0.125]),
  'test.i32s': gv.numbers('i32', [1, 2, 3, 6, -7]),
  'test.u32s': gv.numbers('u32', [0, 4294967295]),
  'test.u8s': gv.numbers('u8', [0, 1, 255]),
  'test.i8s': gv.numbers('i8', [-1]),
  'test.u16s': gv.numbers('u16', [7]),
  'test.i16s': gv.numbers('i16', [-7]),
  'test.f64s': gv.numbers('f64', [0.1]),
  'test.u64s': gv.bigints('u64', [1n, 2n ** 64n - 1n]),
  'test.i64s': gv.bigints('i64', [-1n]),
  'test.bools': gv.bools([true, false]),
  'test.empty': gv.strings([]),
  'test.nested': gv.arrays([gv.strings(['a', 'b']), gv.numbers('i32', []), gv.arrays([gv.bools([true])])]),
};

/** Two rows of two blocks of every type, plus 1-d and 4-d tensors. */
function everyTensor(): GgufTensorInput[] {
  const out: GgufTensorInput[] = GGML_TYPES.map((t, i) => ({
    name: `t.${t.name}`,
    ne: [t.blockElements * 2, 3],
    type: t.name,
    data: bytes(rowBytes(t, t.blockElements * 2) * 3, i + 1),
  }));
  out.push({ name: 'one_d', ne: [5], type: 'f32', data: bytes(20, 99) });
  out.push({ name: 'four_d', ne: [64, 2, 3, 2], type: 'q8_0', data: () => bytes(2 * 34 * 12, 100) });
  return out;
}

function dataOf(t: GgufTensorInput): Uint8Array {
  return typeof t.data === 'function' ? t.data() : t.data;
}

function writeSample(alignment?: number): { path: string; tensors: GgufTensorInput[] } {
  const path = tmp();
  const tensors = everyTensor();
  writeGguf(path, { metadata: everyValue, tensors, ...(alignment ? { alignment } : {}) });
  return { path, tensors };
}

describe('GGUF round trip', () => {
  for (const alignment of [undefined, 64]) {
    it(`every value type and tensor type (alignment ${alignment ?? 'default'})`, () => {
      const { path, tensors } = writeSample(alignment);
      const f = readGguf(path);
      expect(f.version).toBe(3);
      expect(f.alignment).toBe(alignment ?? 32);
      const expected = new Map(Object.entries(everyValue));
      if (alignment) expected.set('general.alignment', gv.u32(alignment));
      expect(f.metadata).toEqual(expected);
      expect(f.dataOffset % f.alignment).toBe(0);
      const file = readFileSync(path);
      expect(f.tensors.map((t) => t.name)).toEqual(tensors.map((t) => t.name));
      tensors.forEach((t, i) => {
        const r = f.tensors[i]!;
        expect(r.ne).toEqual(t.ne);
        expect(r.typeName).toBe(t.type);
        expect(r.offset % f.alignment).toBe(0);
        expect(r.elements).toBe(t.ne.reduce((a, b) => a * b, 1));
        expect(new Uint8Array(file.subarray(r.offset, r.offset + r.bytes))).toEqual(dataOf(t));
        expect(readTensorData(f, r)).toEqual(dataOf(t));
        const rows = r.elements / r.ne[0]!;
        if (rows >= 2) {
          const rowSize = r.bytes / rows;
          expect(readTensorData(f, r, 1, 2)).toEqual(dataOf(t).subarray(rowSize, 2 * rowSize));
        }
      });
    });
  }

  it('a header larger than the first buffer of the writer and the first window of the reader', () => {
    const path = tmp();
    const many = gv.strings(Array.from({ length: 150000 }, (_, i) => `token ${i}`));
    writeGguf(path, {
      metadata: { many },
      tensors: [{ name: 'x', ne: [32], type: 'q8_0', data: bytes(34, 3) }],
    });
    const f = readGguf(path);
    expect(f.getStringArray('many')).toEqual(many.value);
    expect(f.tensor('x').offset).toBe(f.dataOffset);
    expect(f.dataOffset).toBeGreaterThan(2 << 20);
  });

  it("strings: 'count' checks string arrays and counts them without decoding; all else reads alike", () => {
    // String arrays as their lengths, holes checked (nested ones too).
    const shape = (v: GgufValue): unknown =>
      v.type !== 'array'
        ? v
        : v.itemType === 'string'
          ? { strings: v.value.length, decoded: Object.keys(v.value).length }
          : v.itemType === 'array'
            ? v.value.map(shape)
            : v;
    const shapes = (m: ReadonlyMap<string, GgufValue>) => [...m].map(([k, v]) => [k, shape(v)]);
    const { path } = writeSample();
    const full = readGguf(path);
    const counted = readGguf(path, { strings: 'count' });
    expect(counted.tensors).toEqual(full.tensors);
    expect(counted.dataOffset).toBe(full.dataOffset);
    const want = shapes(full.metadata).map(([k, v]) =>
      k === 'test.strings'
        ? [k, { strings: 4, decoded: 0 }]
        : k === 'test.nested'
          ? [k, [{ strings: 2, decoded: 0 }, ...(v as unknown[]).slice(1)]]
          : [k, v],
    );
    expect(shapes(counted.metadata)).toEqual(want);
    // A vocabulary past the reader's first window; then cut inside it: the same error either way.
    const big = tmp();
    writeGguf(big, {
      metadata: { many: gv.strings(Array.from({ length: 150000 }, (_, i) => `token ${i}`)) },
      tensors: [{ name: 'x', ne: [32], type: 'q8_0', data: bytes(34, 3) }],
    });
    const b = readGguf(big, { strings: 'count' });
    expect(b.getStringArray('many')).toHaveLength(150000);
    expect(b.dataOffset).toBe(readGguf(big).dataOffset);
    const cut = tmp();
    writeFileSync(cut, readFileSync(big).subarray(0, 2_000_003));
    const errorOf = (o: { strings?: 'count' }) => {
      try {
        readGguf(cut, o);
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const e = errorOf({ strings: 'count' });
    expect(e).toBeInstanceOf(GgufError);
    expect((e as Error).message).toMatch(/item \d+ of metadata key 'many'.*truncated/);
    expect((e as Error).message).toBe((errorOf({}) as Error).message);
  });

  it('typed getters return values and name the key and the expected type', () => {
    const f = readGguf(writeSample().path);
    expect(f.getU32('test.u32')).toBe(4294967295);
    expect(f.getU32('test.u8')).toBe(255);
    expect(f.getF32('test.f32')).toBe(-1.5);
    expect(f.getString('general.architecture')).toBe('llama');
    expect(f.getStringArray('test.strings')).toEqual(['<unk>', '<s>', '', '▁the']);
    expect(f.getArray('test.f32s', 'f32').value).toEqual([0.25, -2, 0.125]);
    expect(f.getBool('test.bool')).toBe(true);
    expect(f.getU32Opt('no.such.key')).toBeUndefined();
    expect(() => f.getU32('test.i32')).toThrow(
      /'test.i32' is i32 \(-2147483648\), expected an unsigned 32-bit/,
    );
    expect(() => f.getU32('test.string')).toThrow(GgufError);
    expect(() => f.getString('test.u32')).toThrow(/'test.u32' is u32 .*expected string/);
    expect(() => f.getArray('test.strings', 'f32')).toThrow(
      /'test.strings' is array of string .*expected array of f32/,
    );
    expect(() => f.getF32('missing.key')).toThrow(/'missing.key' \(f32\) is missing/);
    expect(() => f.tensor('nope')).toThrow(/no tensor 'nope'/);
    expect(() => readTensorData(f, f.tensor('t.f32'), 2, 4)).toThrow(
      /rows \[2, 4\) are not inside tensor 't.f32' \(3 rows\)/,
    );
  });

  it('the writer checks tensor byte counts and metadata types', () => {
    const t = { name: 'w', ne: [256, 2], type: 'q4_k' as const };
    expect(() => writeGguf(tmp(), { metadata: {}, tensors: [{ ...t, data: new Uint8Array(10) }] })).toThrow(
      /'w' \(q4_k \[256, 2\]\) needs 288 bytes, got 10/,
    );
    expect(() =>
      writeGguf(tmp(), { metadata: {}, tensors: [{ ...t, ne: [100, 2], data: new Uint8Array(10) }] }),
    ).toThrow(/not a whole number of 256-element blocks/);
    expect(() => writeGguf(tmp(), { metadata: { k: gv.u32(-1) }, tensors: [] })).toThrow(RangeError);
    expect(() => writeGguf(tmp(), { metadata: { k: gv.u32(1.5) }, tensors: [] })).toThrow(
      /'k'.*not a valid u32/,
    );
  });

  it('a write that fails midway leaves the file that was there, and no partial file', () => {
    const path = tmp();
    const t = { name: 'w', ne: [32, 1], type: 'f32' as const };
    const good = writeGguf(path, { metadata: {}, tensors: [{ ...t, data: new Uint8Array(128) }] });
    const before = readFileSync(path);
    expect(before.length).toBe(good);
    const failing: GgufTensorInput = {
      name: 'v',
      ne: [32, 1],
      type: 'f32',
      data: () => {
        throw new Error('disk gone');
      },
    };
    expect(() =>
      writeGguf(path, { metadata: {}, tensors: [{ ...t, data: new Uint8Array(128) }, failing] }),
    ).toThrow(/disk gone/);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
  });
});

/** Position of the u64 length that precedes `name` in the header. */
function lengthAt(buf: Buffer, name: string): number {
  const needle = Buffer.from(name);
  const at = buf.indexOf(needle);
  expect(at).toBeGreaterThan(8);
  return at - 8;
}

function damaged(edit: (b: Buffer) => Buffer | void): string {
  const { path } = writeSample();
  const buf = readFileSync(path);
  const out = edit(buf) ?? buf;
  const p = tmp();
  writeFileSync(p, out);
  return p;
}

function expectGgufError(path: string, message: RegExp): void {
  let err: unknown;
  try {
    readGguf(path);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GgufError);
  expect((err as Error).message).toMatch(message);
  expect((err as Error).message.startsWith(path)).toBe(true);
}

describe('GGUF damaged files', () => {
  it('truncated at several points', () => {
    const { path } = writeSample();
    const good = readGguf(path);
    const last = good.tensors.reduce((a, b) => (a.offset + a.bytes > b.offset + b.bytes ? a : b));
    const full = readFileSync(path);
    const metaAt = lengthAt(full, 'test.nested');
    const infoAt = lengthAt(full, 't.q4_k');
    for (const [len, message] of [
      [0, /ends at byte 0 while reading the magic number/],
      [3, /ends at byte 3 while reading the magic number/],
      [6, /while reading the version/],
      [12, /while reading the tensor count/],
      [30, /truncated/],
      [metaAt + 25, /metadata key 'test.nested' .*truncated/],
      [metaAt + 5, /the length of the key of metadata entry \d+ at byte \d+/],
      [infoAt + 5, /while reading the length of the name of tensor \d+/],
      [good.dataOffset - 3, /truncated/],
      [
        good.dataOffset + 10,
        /tensor 't.f32' ends at byte \d+ but the file has \d+ bytes \(truncated download\?\)/,
      ],
      [last.offset + last.bytes - 1, new RegExp(`tensor '${last.name}' ends at byte`)],
    ] as const) {
      const p = tmp();
      writeFileSync(p, full.subarray(0, len));
      expectGgufError(p, message);
    }
  });

  it('wrong magic, version 1, unknown versions', () => {
    expectGgufError(
      damaged((b) => void b.write('GGML', 0)),
      /not a GGUF file \(starts with 'GGML', expected 'GGUF'\)/,
    );
    expectGgufError(
      damaged((b) => void b.writeUInt32LE(1, 4)),
      /version 1 is not supported .*re-convert/,
    );
    expectGgufError(
      damaged((b) => void b.writeUInt32LE(7, 4)),
      /version 7 is not supported/,
    );
    expectGgufError(
      damaged((b) => void b.writeUInt32BE(3, 4)),
      /big-endian/,
    );
  });

  it('unknown tensor type and unknown value type', () => {
    // t.q4_k: name, n_dims (u32), ne[2] (u64 each), then the type.
    const typeAt = (b: Buffer): number => lengthAt(b, 't.q4_k') + 8 + 't.q4_k'.length + 4 + 16;
    expectGgufError(
      damaged((b) => void b.writeUInt32LE(16, typeAt(b))),
      /tensor 't.q4_k' has tensor type id 16 \(ggml IQ2_XXS\), which redblue does not read/,
    );
    expectGgufError(
      damaged((b) => void b.writeUInt32LE(77, typeAt(b))),
      /tensor 't.q4_k' has tensor type id 77 \(not a ggml type\)/,
    );
    expectGgufError(
      damaged((b) => void b.writeUInt32LE(13, lengthAt(b, 'test.u16') + 8 + 'test.u16'.length)),
      /metadata key 'test.u16' has unknown value type 13/,
    );
    expectGgufError(
      damaged((b) => void b.writeUInt32LE(42, lengthAt(b, 'test.f32s') + 8 + 'test.f32s'.length + 4)),
      /the items of metadata key 'test.f32s' has unknown value type 42/,
    );
  });

  it('shapes that disagree with the type or the bytes, offsets out of place', () => {
    const neAt = (b: Buffer, name: string): number => lengthAt(b, name) + 8 + name.length + 4;
    const offsetAt = (b: Buffer, name: string): number => neAt(b, name) + 16 + 4;
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(100n, neAt(b, 't.q4_k'))),
      /tensor 't.q4_k' has rows of 100 elements, not a multiple of q4_k's 256-element block/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(3000n, neAt(b, 't.q8_0') + 8)),
      /tensor 't.q8_0' (ends at byte \d+ but the file has|.*overlaps)/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(1n << 40n, neAt(b, 'one_d'))),
      /tensor 'one_d' ends at byte \d+ but the file has \d+ bytes/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(1n << 40n, neAt(b, 't.f16') + 8)),
      /tensor 't.f16' ends at byte/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(1n << 62n, neAt(b, 't.f16') + 8)),
      /tensor 't.f16' has an impossible shape/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(0n, offsetAt(b, 't.q8_0'))),
      /tensor '.*' \(bytes \d+\.\.\d+\) overlaps tensor '.*'/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(16n, offsetAt(b, 't.q8_0'))),
      /tensor 't.q8_0' has data offset 16 .*not a multiple of the alignment 32/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(1n << 50n, offsetAt(b, 't.q8_0'))),
      /tensor 't.q8_0' ends at byte \d+ but the file has \d+ bytes/,
    );
    expectGgufError(
      damaged((b) => void b.writeUInt32LE(5, neAt(b, 't.q8_0') - 4)),
      /tensor 't.q8_0' has 5 dimensions \(1..4 allowed\)/,
    );
    // t.q4_0 and t.q8_0 have names of the same length: make them equal.
    expectGgufError(
      damaged((b) => void b.write('t.q8_0', lengthAt(b, 't.q4_0') + 8)),
      /tensor 't.q8_0' appears twice/,
    );
    expectGgufError(
      damaged((b) => void b.write('test.u8', lengthAt(b, 'test.i8') + 8)),
      /metadata key 'test.u8' appears twice/,
    );
  });

  it('names from a damaged file are quoted on one line, escaped and cut', () => {
    // The kind of name test/fuzz/gguf.test.ts makes by damaging a length: any bytes, any length.
    const odd = 'bad\u001b[2J\nkey';
    const long = 'k'.repeat(300);
    const p = tmp();
    writeGguf(p, { metadata: { [odd]: gv.u8(1) }, tensors: [] });
    const b = readFileSync(p);
    b.writeUInt32LE(13, lengthAt(b, odd) + 8 + Buffer.byteLength(odd)); // unknown value type
    writeFileSync(p, b);
    expectGgufError(p, /: metadata key 'bad\\x1b\[2J\\nkey' has unknown value type 13/);
    const q = tmp();
    writeGguf(q, { metadata: { [long]: gv.u8(2) }, tensors: [] });
    const c = readFileSync(q);
    c.writeUInt32LE(13, lengthAt(c, long) + 8 + long.length);
    writeFileSync(q, c);
    expectGgufError(q, new RegExp(`metadata key '${'k'.repeat(100)}…' has unknown value type 13 \\(`));
  });

  it('huge counts and lengths are refused before any allocation', () => {
    const huge = (1n << 64n) - 1n;
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(huge, 8)),
      /the tensor count at byte 8 is \d+, but only/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(huge, 16)),
      /the metadata count at byte 16 is/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(huge, lengthAt(b, 'test.string') + 8 + 11 + 4)),
      /the length of metadata key 'test.string' at byte \d+ is 18446744073709551615, but only/,
    );
    expectGgufError(
      damaged((b) => void b.writeBigUInt64LE(1n << 40n, lengthAt(b, 'test.strings') + 8 + 12 + 8)),
      /the item count of metadata key 'test.strings' .* is 1099511627776/,
    );
  });

  it('counts that fit a huge file but no real header are refused (sparse 1 GiB file)', () => {
    const p = damaged((b) => void b.writeBigUInt64LE(1n << 27n, lengthAt(b, 'test.u8s') + 8 + 8 + 4 + 4));
    truncateSync(p, 1 << 30);
    expectGgufError(
      p,
      /the item count of metadata key 'test.u8s' at byte \d+ is 134217728, more than the 67108864/,
    );
    const q = damaged((b) => void b.writeBigUInt64LE(1n << 29n, lengthAt(b, 'test.string') + 8 + 11 + 4));
    truncateSync(q, 1 << 30);
    expectGgufError(
      q,
      /the length of metadata key 'test.string' at byte \d+ is 536870912, more than the 268435456/,
    );
  });

  it('random byte flips in the header give a GgufError or a valid file, never anything else', () => {
    const { path } = writeSample();
    const full = readFileSync(path);
    const headerEnd = readGguf(path).dataOffset;
    const noise = bytes(4 * 200, 7);
    let errors = 0;
    for (let i = 0; i < 200; i++) {
      const b = Buffer.from(full);
      const pos = ((noise[4 * i]! << 16) | (noise[4 * i + 1]! << 8) | noise[4 * i + 2]!) % headerEnd;
      b[pos] = noise[4 * i + 3]! ^ (b[pos]! === noise[4 * i + 3]! ? 0xff : 0);
      const p = join(dir, 'flip.gguf');
      writeFileSync(p, b);
      try {
        readGguf(p);
      } catch (e) {
        expect(e).toBeInstanceOf(GgufError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(0);
  });
});
