// The causal attention kernel (native/src/model/attention.cc) on its own, through the addon:
// against a float64 reference over caches of f16 values, on its AVX2 and AVX-512 tiles and its
// scalar path, across key chunks (128 positions) and token blocks (8), for head sizes the tiles
// take whole (64, 128), in 16s (80: AVX-512), in halves (24: dims in 8s, AVX2 on every cpu) and
// not at all (20: the scalar path). A token's output is bit-identical whether it is attended
// alone, in a prompt batch, or with other rows around it, on one thread or two, and on either
// tile width: what serve's "each stream gets the tokens it would get alone" needs.
import { availableParallelism } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { createThreadPool } from '../../native/binding.js';
import { modelAddon, type AttentionCall } from '../../native/model.js';
import { kernelPaths } from '../../native/kernels.js';

const cpus = availableParallelism();
const pool1 = createThreadPool([0]);
const pool2 = createThreadPool([0, 1].map((c) => c % cpus));
afterAll(() => {
  pool1.close();
  pool2.close();
});

/** A pseudo-random stream (the same every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** f16 bits of k / 1024 for an integer |k| ≤ 2047 (exact in f16). */
function f16Bits(k: number): number {
  if (k === 0) return 0;
  const sign = k < 0 ? 0x8000 : 0;
  let a = Math.abs(k);
  let e = 15 - 10; // value = a · 2^-10: normalise a to 1.xxx · 2^e
  if (a >= 2048) throw new Error('out of range');
  while (a < 1024) {
    a *= 2;
    e--;
  }
  // a in [1024, 2048): mantissa a − 1024, exponent e + 10 − 10 with bias 15
  const exp = e + 10;
  if (exp <= 0) throw new Error('subnormal');
  return sign | (exp << 10) | (a - 1024);
}

interface Case {
  name: string;
  headDim: number;
  qHeads: number;
  group: number;
  nTokens: number;
  pos0: number;
  nCtx: number;
}

function makeInputs(c: Case, seed: number) {
  const r = rng(seed);
  const kvHeads = c.qHeads / c.group;
  const kvElems = kvHeads * c.nCtx * c.headDim;
  const kInt = Int16Array.from({ length: kvElems }, () => Math.round((r() - 0.5) * 4000));
  const vInt = Int16Array.from({ length: kvElems }, () => Math.round((r() - 0.5) * 4000));
  const q = Float32Array.from({ length: c.nTokens * c.qHeads * c.headDim }, () => (r() - 0.5) * 3);
  return {
    q,
    k: Uint16Array.from(kInt, f16Bits),
    v: Uint16Array.from(vInt, f16Bits),
    kVal: (i: number) => kInt[i]! / 1024,
    vVal: (i: number) => vInt[i]! / 1024,
  };
}

function reference(c: Case, inp: ReturnType<typeof makeInputs>): Float64Array {
  const out = new Float64Array(c.nTokens * c.qHeads * c.headDim);
  const hd = c.headDim;
  for (let t = 0; t < c.nTokens; t++)
    for (let h = 0; h < c.qHeads; h++) {
      const kv = Math.floor(h / c.group);
      const len = c.pos0 + t + 1;
      const s = new Float64Array(len);
      let mx = -Infinity;
      for (let j = 0; j < len; j++) {
        let d = 0;
        for (let i = 0; i < hd; i++)
          d += inp.q[(t * c.qHeads + h) * hd + i]! * inp.kVal((kv * c.nCtx + j) * hd + i);
        s[j] = d / Math.sqrt(hd);
        mx = Math.max(mx, s[j]!);
      }
      let sum = 0;
      for (let j = 0; j < len; j++) sum += s[j] = Math.exp(s[j]! - mx);
      for (let j = 0; j < len; j++)
        for (let i = 0; i < hd; i++) {
          const o = (t * c.qHeads + h) * hd + i;
          out[o] = out[o]! + (s[j]! / sum) * inp.vVal((kv * c.nCtx + j) * hd + i);
        }
    }
  return out;
}

const CASES: Case[] = [
  // 37 tokens: 5 blocks (the last of 5), keys over two chunk boundaries (positions to 186)
  {
    name: 'head 64, GQA 8/2, a prompt batch after 150 cached',
    headDim: 64,
    qHeads: 8,
    group: 4,
    nTokens: 37,
    pos0: 150,
    nCtx: 300,
  },
  {
    name: 'head 128, GQA 4/1, a short prompt',
    headDim: 128,
    qHeads: 4,
    group: 4,
    nTokens: 3,
    pos0: 0,
    nCtx: 8,
  },
  {
    name: 'head 24 (dims in 8s), GQA 6/2, past a chunk',
    headDim: 24,
    qHeads: 6,
    group: 3,
    nTokens: 20,
    pos0: 130,
    nCtx: 160,
  },
  {
    name: 'head 80 (dims in 16s), GQA 10/2, keys to 45',
    headDim: 80,
    qHeads: 10,
    group: 5,
    nTokens: 11,
    pos0: 34,
    nCtx: 48,
  },
  { name: 'head 8, no grouping', headDim: 8, qHeads: 2, group: 1, nTokens: 9, pos0: 0, nCtx: 16 },
  {
    name: 'head 20 (the scalar path on every cpu)',
    headDim: 20,
    qHeads: 4,
    group: 2,
    nTokens: 5,
    pos0: 3,
    nCtx: 8,
  },
  {
    name: 'one token decoding at position 256',
    headDim: 64,
    qHeads: 8,
    group: 8,
    nTokens: 1,
    pos0: 256,
    nCtx: 260,
  },
];

const attention = (args: AttentionCall, pool = pool1) => modelAddon().causalAttention(pool, args);

describe('causal attention against a float64 reference', () => {
  for (const c of CASES)
    for (const path of ['auto', 'scalar'] as const)
      it(`${c.name} (${path})`, () => {
        const inp = makeInputs(c, c.headDim * 7 + c.nTokens);
        const got = attention({ ...c, q: inp.q, k: inp.k, v: inp.v, path });
        const want = reference(c, inp);
        let scale = 0;
        let worst = 0;
        for (let i = 0; i < want.length; i++) {
          scale = Math.max(scale, Math.abs(want[i]!));
          worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        }
        expect(scale).toBeGreaterThan(0.1);
        expect(worst).toBeLessThanOrEqual(2e-6 * scale);
      });
});

describe('a token attended alone, in a batch, or on two threads: the same bits', () => {
  const c = CASES[0]!;
  const inp = makeInputs(c, 99);
  const row = c.qHeads * c.headDim;
  const batch = attention({ ...c, q: inp.q, k: inp.k, v: inp.v });

  it('each token alone (one-token calls at its position) gives its row of the batch', () => {
    for (let t = 0; t < c.nTokens; t++) {
      const alone = attention({
        ...c,
        nTokens: 1,
        pos0: c.pos0 + t,
        q: inp.q.subarray(t * row, (t + 1) * row),
        k: inp.k,
        v: inp.v,
      });
      expect(Buffer.from(alone.buffer).equals(Buffer.from(batch.buffer, t * row * 4, row * 4))).toBe(true);
    }
  });

  it('a batch that starts 3 tokens later (other blocks, other tile neighbours) gives the same rows', () => {
    const later = attention({
      ...c,
      nTokens: c.nTokens - 3,
      pos0: c.pos0 + 3,
      q: inp.q.subarray(3 * row),
      k: inp.k,
      v: inp.v,
    });
    expect(Buffer.from(later.buffer).equals(Buffer.from(batch.buffer, 3 * row * 4))).toBe(true);
  });

  it('two threads (the query heads split between tasks) give the same bits as one', () => {
    const two = attention({ ...c, q: inp.q, k: inp.k, v: inp.v }, pool2);
    expect(Buffer.from(two.buffer).equals(Buffer.from(batch.buffer))).toBe(true);
    const decode = { ...c, nTokens: 1, pos0: 200, q: inp.q.subarray(0, row), k: inp.k, v: inp.v };
    const a = attention(decode, pool1);
    const b = attention(decode, pool2);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });
});

describe('every SIMD path this cpu has: the same bits as the AVX2 tiles', () => {
  const paths = kernelPaths().supported.filter((p) => p !== 'scalar' && p !== 'avx2');
  for (const c of CASES.filter((x) => x.headDim % 8 === 0))
    it(c.name, () => {
      const inp = makeInputs(c, c.headDim + 5);
      const avx2 = attention({ ...c, q: inp.q, k: inp.k, v: inp.v, path: 'avx2' });
      for (const path of ['auto', ...paths] as const) {
        const got = attention({ ...c, q: inp.q, k: inp.k, v: inp.v, path });
        expect(Buffer.from(got.buffer).equals(Buffer.from(avx2.buffer)), path).toBe(true);
      }
    });
});

describe('bad calls', () => {
  it('are refused with the size that is wrong', () => {
    const c = CASES[1]!;
    const inp = makeInputs(c, 1);
    expect(() => attention({ ...c, q: inp.q.subarray(1), k: inp.k, v: inp.v })).toThrow(
      /q must be a Float32Array of nTokens × qHeads × headDim/,
    );
    expect(() => attention({ ...c, q: inp.q, k: inp.k.subarray(2), v: inp.v })).toThrow(
      /k and v must be Uint16Arrays/,
    );
    expect(() => attention({ ...c, pos0: 6, q: inp.q, k: inp.k, v: inp.v })).toThrow(
      /pos0 \+ nTokens exceeds nCtx/,
    );
    expect(() => attention({ ...c, group: 3, q: inp.q, k: inp.k, v: inp.v })).toThrow(/multiple of group/);
  });
});
