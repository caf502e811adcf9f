// Fuzzing the GGUF reader and what reads its metadata (describeModel, the tokenizer), from small
// synthetic models (llama with a SentencePiece vocabulary, qwen2 with a BPE one, both cut to a few
// hundred tokens): random bytes, truncations, byte and field mutations of the files, and metadata
// of the wrong types written by the writer. Every input must parse or give a GgufError (or a
// TokenizerError) whose message starts with the file's path; a header that parses must describe
// tensors that lie inside the file, every one readable.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { describeModel } from '../../model/arch.js';
import { GgufError, readGguf, readTensorData, type GgufFile } from '../../model/gguf/read.js';
import { rowBytes } from '../../model/gguf/types.js';
import { gv, type GgufValue, type ItemTypeName } from '../../model/gguf/value.js';
import { writeGguf, type GgufTensorInput } from '../../model/gguf/write.js';
import { syntheticModel } from '../../model/synth.js';
import { TokenizerError, createTokenizer } from '../../model/tokenizer/index.js';
import type { Arch } from '../../model/arch.js';
import { attempt, fuzz, type Outcome } from './harness.js';

const FILE = 'test/fuzz/gguf.test.ts';
const dir = mkdtempSync(join(tmpdir(), 'redblue-fuzz-gguf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = join(dir, 'input.gguf');

interface Model {
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInput[];
}

/** A one-layer synthetic model of `arch`, its vocabulary cut to `nVocab` tokens and `nMerges` merges. */
function smallModel(arch: Arch, nVocab: number, nMerges: number): Model {
  const full = syntheticModel({
    arch,
    nLayer: 1,
    nEmbd: 32,
    nHead: 2,
    nHeadKv: 1,
    nFf: 64,
    nCtx: 64,
    types: { default: 'q8_0', attn_q: 'f16', ffn_up: 'q4_0' },
  });
  const fullVocab = full.tensors.find((t) => t.name === 'token_embd.weight')!.ne[1]!;
  const metadata = new Map<string, GgufValue>();
  for (const [key, v] of full.metadata) {
    if (v.type === 'array') {
      const n = key === 'tokenizer.ggml.merges' ? nMerges : nVocab;
      metadata.set(key, { ...v, value: v.value.slice(0, n) } as GgufValue);
    } else if (key === `${arch}.vocab_size`) metadata.set(key, gv.u32(nVocab));
    else metadata.set(key, v);
  }
  const tensors = full.tensors.map((t): GgufTensorInput => {
    if (t.ne[1] !== fullVocab) return t;
    const bytes = rowBytes(t.type, t.ne[0]!) * nVocab;
    const data = typeof t.data === 'function' ? t.data() : t.data;
    return { ...t, ne: [t.ne[0]!, nVocab], data: data.subarray(0, bytes) };
  });
  return { metadata, tensors };
}

const models: Record<'llama' | 'qwen2', Model> = {
  llama: smallModel('llama', 300, 0), // byte tokens <0x00>..<0xFF> are 3..258
  qwen2: smallModel('qwen2', 400, 200),
};
const files = Object.fromEntries(
  Object.entries(models).map(([arch, m]) => {
    const p = join(dir, `${arch}.gguf`);
    writeGguf(p, { metadata: m.metadata, tensors: m.tensors });
    const f = readGguf(p);
    const dataEnd = Math.max(...f.tensors.map((t) => t.offset + t.bytes));
    return [arch, { bytes: readFileSync(p), headerEnd: f.dataOffset, dataEnd }];
  }),
) as Record<keyof typeof models, { bytes: Buffer; headerEnd: number; dataEnd: number }>;

const inPath = (m: string): boolean =>
  m.startsWith(`${path}: `) || m.startsWith(`cannot read the model ${path}`);
const gguf = { type: GgufError, names: inPath, readable: { path } };
const tokenizerRefusal = { type: TokenizerError, readable: { path } };

/** Reads `bytes` as a GGUF file; when it parses, holds it to what the reader promises. */
function readBytes(bytes: Uint8Array): Outcome<GgufFile> {
  writeFileSync(path, bytes);
  const out = attempt(gguf, () => readGguf(path));
  if (out.ok) checkParsed(out.value, bytes.length);
  return out;
}

/** A parsed header: tensors inside the file, each readable; then the model and the tokenizer. */
function checkParsed(f: GgufFile, size: number): void {
  expect(f.fileSize).toBe(size);
  expect(f.dataOffset % f.alignment).toBe(0);
  for (const t of f.tensors) {
    expect(Number.isSafeInteger(t.offset) && Number.isSafeInteger(t.bytes)).toBe(true);
    expect(t.offset + t.bytes).toBeLessThanOrEqual(size);
    expect(readTensorData(f, t).length).toBe(t.bytes);
  }
  attempt(gguf, () => describeModel(f));
  const tok = attempt(tokenizerRefusal, () => createTokenizer(f.metadata));
  if (tok.ok) {
    const t = tok.value;
    const ids = attempt(tokenizerRefusal, () => t.encode('Hello wörld 🦙 <s> 123', { parseSpecial: true }));
    if (ids.ok) {
      for (const id of ids.value) expect(Number.isInteger(id) && id >= 0 && id < t.vocabSize).toBe(true);
      attempt(tokenizerRefusal, () => t.decode(ids.value));
    }
    attempt(tokenizerRefusal, () => t.decode([0, 1, 2, t.vocabSize - 1, t.vocabSize]));
  }
}

const arch = fc.constantFrom<keyof typeof models>('llama', 'qwen2');

/** u64 values that make counts, lengths, dimensions and offsets interesting. */
const u64Values = fc.oneof(
  fc.bigInt({ min: 0n, max: 600n }),
  fc.constantFrom(
    2n ** 16n,
    2n ** 26n,
    2n ** 26n + 1n,
    2n ** 28n + 1n,
    2n ** 31n,
    2n ** 32n - 1n,
    2n ** 32n,
    2n ** 53n - 1n,
    2n ** 53n,
    2n ** 53n + 1n,
    2n ** 62n,
    2n ** 63n,
    2n ** 64n - 1n,
  ),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

/** One edit of a file; `where` picks the byte it starts at. */
type Mutation =
  | { kind: 'byte'; value: number }
  | { kind: 'u32'; value: number }
  | { kind: 'u64'; value: bigint }
  | { kind: 'cut'; length: number }
  | { kind: 'insert'; bytes: Uint8Array }
  | { kind: 'copy'; from: number; length: number };
interface Edit {
  /** Mostly in the header (where the parsing is), sometimes anywhere: byte n modulo that span. */
  where: { header: boolean; n: number };
  m: Mutation;
}

const edit: fc.Arbitrary<Edit> = fc.record({
  where: fc.record({
    header: fc.oneof(
      { weight: 4, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
    n: fc.nat(),
  }),
  m: fc.oneof(
    fc.record({ kind: fc.constant('byte' as const), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({
      kind: fc.constant('u32' as const),
      value: fc.oneof(fc.nat({ max: 40 }), fc.constantFrom(0xffffffff, 2 ** 31, 0x02000000), fc.nat()),
    }),
    fc.record({ kind: fc.constant('u64' as const), value: u64Values }),
    fc.record({ kind: fc.constant('cut' as const), length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({
      kind: fc.constant('insert' as const),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    }),
    fc.record({
      kind: fc.constant('copy' as const),
      from: fc.nat({ max: 4096 }),
      length: fc.integer({ min: 1, max: 64 }),
    }),
  ),
});

function mutate(base: Buffer, headerEnd: number, edits: Edit[]): Buffer {
  let b = Buffer.from(base);
  for (const { where, m } of edits) {
    const span = Math.max(1, Math.min(where.header ? headerEnd : b.length, b.length));
    const at = where.n % span;
    switch (m.kind) {
      case 'byte':
        if (at < b.length) b[at] = m.value;
        break;
      case 'u32':
        if (at + 4 <= b.length) b.writeUInt32LE(m.value, at);
        break;
      case 'u64':
        if (at + 8 <= b.length) b.writeBigUInt64LE(m.value, at);
        break;
      case 'cut':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'copy': {
        const from = m.from % Math.max(b.length, 1);
        Buffer.from(b.subarray(from, from + m.length)).copy(b, at);
        break;
      }
    }
  }
  return b;
}

describe('fuzz: GGUF files', () => {
  it('the small models parse and describe themselves (the base of every mutation)', () => {
    for (const a of ['llama', 'qwen2'] as const) {
      writeFileSync(path, files[a].bytes);
      const f = readGguf(path);
      expect(describeModel(f).nVocab).toBe(a === 'llama' ? 300 : 400);
      expect(createTokenizer(f.metadata).encode('Hello').length).toBeGreaterThan(0);
    }
  });

  it('random bytes', () => {
    fuzz(
      FILE,
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => void readBytes(b)),
      300,
    );
  });

  it('random bytes after a GGUF magic and version', () => {
    fuzz(
      FILE,
      fc.property(fc.constantFrom(2, 3), fc.uint8Array({ maxLength: 512 }), (version, rest) => {
        const head = Buffer.alloc(8);
        head.write('GGUF', 0, 'latin1');
        head.writeUInt32LE(version, 4);
        readBytes(Buffer.concat([head, rest]));
      }),
      300,
    );
  });

  it('truncations: an error before the end of the last tensor, never anything else', () => {
    fuzz(
      FILE,
      fc.property(arch, fc.nat(), (a, n) => {
        const { bytes, dataEnd } = files[a];
        const len = n % (bytes.length + 1);
        const out = readBytes(bytes.subarray(0, len));
        if (len < dataEnd) expect(out.ok).toBe(false);
      }),
      300,
    );
  });

  it('byte, field, cut, insert and copy mutations', () => {
    fuzz(
      FILE,
      fc.property(arch, fc.array(edit, { minLength: 1, maxLength: 6 }), (a, edits) => {
        readBytes(mutate(files[a].bytes, files[a].headerEnd, edits));
      }),
      400,
    );
  });
});

/** Any GGUF value, with the edge values of each type. */
const scalarValue: fc.Arbitrary<GgufValue> = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map(gv.u8),
  fc.integer({ min: -128, max: 127 }).map(gv.i8),
  fc.integer({ min: 0, max: 65535 }).map(gv.u16),
  fc.integer({ min: -32768, max: 32767 }).map(gv.i16),
  fc.oneof(fc.nat({ max: 600 }), fc.constantFrom(0, 0xffffffff, 2 ** 31)).map(gv.u32),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map(gv.i32),
  fc.float().map(gv.f32),
  fc.double().map(gv.f64),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(gv.u64),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(gv.i64),
  fc.boolean().map(gv.bool),
  fc
    .oneof(fc.constantFrom('llama', 'gpt2', 'qwen2', 'llama3', 'linear', 'none', ''), fc.string())
    .map(gv.string),
);

const ITEM_TYPES: ItemTypeName[] = [
  'u8',
  'i8',
  'u16',
  'i16',
  'u32',
  'i32',
  'f32',
  'f64',
  'u64',
  'i64',
  'bool',
  'string',
];
const arrayValue: fc.Arbitrary<GgufValue> = fc.oneof(
  fc.array(scalarValue, { maxLength: 8 }).chain((items) =>
    fc.constantFrom(...ITEM_TYPES).map((itemType) => {
      const same = items.filter((v) => v.type === itemType).map((v) => v.value);
      return { type: 'array', itemType, value: same } as GgufValue;
    }),
  ),
  fc.constant(gv.arrays([gv.strings(['a']), gv.strings([])])),
);
const anyValue = fc.oneof({ weight: 4, arbitrary: scalarValue }, { weight: 1, arbitrary: arrayValue });

const EXTRA_KEYS = [
  'general.alignment',
  'expert_count',
  'rope.scaling.type',
  'rope.scaling.factor',
  'rope.freq_base',
  'tokenizer.ggml.add_space_prefix',
  'tokenizer.ggml.eot_token_id',
  'tokenizer.ggml.eom_token_id',
  'tokenizer.ggml.padding_token_id',
  'tokenizer.ggml.fim_pad_token_id',
  'tokenizer.ggml.unknown_token_id',
  'tokenizer.ggml.scores',
  'tokenizer.ggml.merges',
];

/** A value as it reads back: f32 values rounded to f32. */
function asStored(v: GgufValue): GgufValue {
  if (v.type === 'f32') return gv.f32(Math.fround(v.value));
  if (v.type === 'array' && v.itemType === 'f32') return gv.numbers('f32', v.value.map(Math.fround));
  return v;
}

describe('fuzz: GGUF metadata of any type', () => {
  it('written by the writer, read back equal; the model and the tokenizer read it or say why', () => {
    fuzz(
      FILE,
      fc.property(
        arch,
        fc.array(fc.tuple(fc.nat(), fc.option(anyValue, { freq: 4 })), { maxLength: 4 }),
        fc.array(fc.tuple(fc.constantFrom(...EXTRA_KEYS), anyValue), { maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('drop', 'shape', 'type')), { maxLength: 2 }),
        (a, edits, extra, tensorEdits) => {
          const base = models[a];
          const metadata = new Map(base.metadata);
          const keys = [...metadata.keys()];
          for (const [i, v] of edits) {
            const key = keys[i % keys.length]!;
            if (v === null) metadata.delete(key);
            else metadata.set(key, v);
          }
          for (const [k, v] of extra) {
            const key = k.startsWith('tokenizer.') || k.startsWith('general.') ? k : `${a}.${k}`;
            if (key !== 'general.alignment') metadata.set(key, v);
          }
          let tensors = [...base.tensors];
          for (const [i, edit] of tensorEdits) {
            const j = i % tensors.length;
            const t = tensors[j]!;
            if (edit === 'drop') tensors = tensors.filter((_, k) => k !== j);
            // Same bytes, other shape or type: the writer takes it, describeModel must not.
            else if (edit === 'shape') tensors[j] = { ...t, ne: [...t.ne].reverse() };
            else if (t.type === 'q8_0')
              tensors[j] = { ...t, type: 'f16', ne: [(t.ne[0]! / 32) * 17, ...t.ne.slice(1)] };
          }
          let size: number;
          try {
            size = writeGguf(path, { metadata, tensors });
          } catch (e) {
            // A shape change the writer refuses (not a whole number of blocks); not the reader's case.
            if (e instanceof RangeError) return;
            throw e;
          }
          const f = readGguf(path); // what the writer writes always reads
          expect([...f.metadata.keys()]).toEqual([...metadata.keys()]);
          for (const [key, v] of metadata) expect(f.metadata.get(key)).toEqual(asStored(v));
          checkParsed(f, size);
        },
      ),
      300,
    );
  });
});
