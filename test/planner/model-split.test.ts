// planModelSplit over random model shapes, type mixes and rates: every KV head, n_ff row and
// vocabulary row is computed by exactly one rank, in-row cuts fall on block boundaries, shares
// are within one unit of proportional, byte totals add up; and one real (synthetic) model.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeModel } from '../../model/arch.js';
import { readGguf } from '../../model/gguf/read.js';
import { ggmlType, rowBytes, type GgmlTypeName } from '../../model/gguf/types.js';
import { writeSyntheticModel } from '../../model/synth.js';
import { PlanInputError } from '../../planner/errors.js';
import {
  planModelSplit,
  ratesFromSpeeds,
  sharedNodeNotes,
  renderModelSplit,
  type ModelShape,
} from '../../planner/model-split.js';
import { len } from '../../planner/split.js';
import type { Range } from '../../planner/types.js';
import { tinyLlamaQ4_0 } from '../helpers/model-shapes.js';

const weightType = fc.constantFrom<GgmlTypeName>(
  'f32',
  'f16',
  'bf16',
  'q8_0',
  'q4_0',
  'q4_k',
  'q5_k',
  'q6_k',
);

const shape: fc.Arbitrary<ModelShape> = fc
  .record({
    nLayer: fc.integer({ min: 1, max: 3 }),
    nHeadKv: fc.integer({ min: 1, max: 16 }),
    groupSize: fc.constantFrom(1, 2, 4, 7, 8),
    headDim: fc.constantFrom(32, 64, 80, 128, 256),
    ffBlocks: fc.integer({ min: 1, max: 60 }),
    nVocab: fc.integer({ min: 1, max: 5000 }),
    tied: fc.boolean(),
    qkvBias: fc.boolean(),
    qkNorm: fc.boolean(),
    types: fc.array(fc.array(weightType, { minLength: 7, maxLength: 7 }), { minLength: 3, maxLength: 3 }),
    emb: fc.array(weightType, { minLength: 2, maxLength: 2 }),
  })
  .map((r) => {
    const pick = (t: GgmlTypeName[], i: number): GgmlTypeName => t[i % t.length]!;
    // n_embd and n_ff whole 256-blocks, so every type fits every row; q heads · head_dim likewise
    // only when attn_output's type allows it: fall back to f32 otherwise.
    const nEmbd = 256;
    const qDim = r.nHeadKv * r.groupSize * r.headDim;
    const layers = Array.from({ length: r.nLayer }, (_, i) => {
      const t = r.types[i]!;
      const attnOutput = pick(t, 3);
      return {
        attnQ: pick(t, 0),
        attnK: pick(t, 1),
        attnV: pick(t, 2),
        attnOutput: qDim % ggmlType(attnOutput).blockElements === 0 ? attnOutput : ('f32' as const),
        ffnGate: pick(t, 4),
        ffnUp: pick(t, 5),
        ffnDown: pick(t, 6),
      };
    });
    return {
      nLayer: r.nLayer,
      nEmbd,
      nHead: r.nHeadKv * r.groupSize,
      nHeadKv: r.nHeadKv,
      headDim: r.headDim,
      nFf: r.ffBlocks * 256,
      nVocab: r.nVocab,
      tiedEmbeddings: r.tied,
      qkvBias: r.qkvBias,
      qkNorm: r.qkNorm,
      tokenEmbd: r.emb[0]!,
      output: r.emb[1]!,
      layers,
    };
  });

const rates = fc.array(fc.double({ min: 0.1, max: 10, noNaN: true }), { minLength: 1, maxLength: 12 });

function expectTiles(parts: Range[], total: number): void {
  let at = 0;
  for (const [lo, hi] of parts) {
    expect(lo).toBe(at);
    expect(hi).toBeGreaterThanOrEqual(lo);
    at = hi;
  }
  expect(at).toBe(total);
}

/** Each part's units (last one may be partial) within one unit of its proportional share. */
function expectBalanced(parts: Range[], total: number, unit: number, w: number[]): void {
  const units = Math.ceil(total / unit);
  const sum = w.reduce((a, b) => a + b, 0);
  parts.forEach((r, i) => {
    const got = Math.ceil((r[1] - r[0]) / unit);
    expect(Math.abs(got - (units * w[i]!) / sum)).toBeLessThan(1 + 1e-9);
  });
}

describe('ratesFromSpeeds', () => {
  it('gives equal nodes measured a few percent apart equal rates, and slower nodes their share', () => {
    expect(ratesFromSpeeds([20.5, 22.1])).toEqual([1, 1]);
    expect(ratesFromSpeeds([17.2, 22.1, 21])).toEqual([1, 1, 1]);
    expect(ratesFromSpeeds([28, 14])).toEqual([1, 0.5]);
    expect(ratesFromSpeeds([30, 20, 3])).toEqual([1, 0.5, 0.25]);
    // Nothing measured (or nonsense): all equal.
    expect(ratesFromSpeeds([0, 0])).toEqual([1, 1]);
    expect(ratesFromSpeeds([NaN, 10])).toEqual([1, 1]);
  });

  it('gives ranks that read one memory node rates by their cpus, whatever each measured', () => {
    // Two 1-core virtual nodes of one socket, measured as they started (what a run saw): without
    // places one of them would take a third of the work.
    expect(ratesFromSpeeds([15.5, 21.0])).toEqual([0.5, 1]);
    const oneNode = [
      { host: 0, memoryNode: 0, cpus: 1 },
      { host: 0, memoryNode: 0, cpus: 1 },
    ];
    expect(ratesFromSpeeds([15.5, 21.0], oneNode)).toEqual([1, 1]);
    // Uneven virtual nodes (3 cores as 2 + 1): the bandwidth per cpu of the best measurement.
    expect(
      ratesFromSpeeds(
        [30, 9],
        [
          { host: 0, memoryNode: 0, cpus: 2 },
          { host: 0, memoryNode: 0, cpus: 1 },
        ],
      ),
    ).toEqual([1, 0.5]);
    // Different nodes, or the same node number on different hosts, keep their own measurements;
    // an unknown node (-1) groups with nothing.
    const two = (a: number, b: number, host = 0) => [
      { host: 0, memoryNode: a, cpus: 1 },
      { host, memoryNode: b, cpus: 1 },
    ];
    expect(ratesFromSpeeds([28, 14], two(0, 1))).toEqual([1, 0.5]);
    expect(ratesFromSpeeds([28, 14], two(0, 0, 1))).toEqual([1, 0.5]);
    expect(ratesFromSpeeds([28, 14], two(-1, -1))).toEqual([1, 0.5]);
    expect(sharedNodeNotes(oneNode)).toEqual([
      'ranks 0, 1 read one memory node (host 0, memory node 0) and share its bandwidth: their rates follow their cpus, not their separate measurements',
    ]);
    expect(sharedNodeNotes(two(0, 1))).toEqual([]);
    expect(sharedNodeNotes(two(-1, -1))).toEqual([]);
    // Places that do not match the ranks are ignored.
    expect(ratesFromSpeeds([28, 14], [{ host: 0, memoryNode: 0 }])).toEqual([1, 0.5]);
  });

  it('a node with half the bandwidth gets half the FFN and vocabulary rows', () => {
    const m = tinyLlamaQ4_0();
    const s = planModelSplit(
      m,
      ratesFromSpeeds([28, 14]).map((rate) => ({ rate })),
    );
    const ff = s.ranks.map((r) => r.ff[1] - r.ff[0]);
    const vocab = s.ranks.map((r) => r.vocab[1] - r.vocab[0]);
    expect(Math.abs(ff[0]! / ff[1]! - 2)).toBeLessThan(0.15);
    expect(Math.abs(vocab[0]! / vocab[1]! - 2)).toBeLessThan(0.01);
    expect(s.ranks[0]!.weightBytes).toBeGreaterThan(1.5 * s.ranks[1]!.weightBytes);
  });
});

describe('planModelSplit properties', () => {
  it('covers every head, n_ff row and vocabulary row once, on block boundaries, balanced', () => {
    fc.assert(
      fc.property(shape, rates, (m, w) => {
        const s = planModelSplit(
          m,
          w.map((rate) => ({ rate })),
          { context: 1000 },
        );
        const kv = s.ranks.map((r) => r.kvHeads);
        const ff = s.ranks.map((r) => r.ff);
        expectTiles(kv, m.nHeadKv);
        expectTiles(
          s.ranks.map((r) => r.qHeads),
          m.nHead,
        );
        expectTiles(ff, m.nFf);
        expectTiles(
          s.ranks.map((r) => r.vocab),
          m.nVocab,
        );
        for (const l of m.layers) {
          for (const [lo] of kv)
            expect((lo * s.groupSize * m.headDim) % ggmlType(l.attnOutput).blockElements).toBe(0);
          for (const t of [l.ffnGate, l.ffnUp, l.ffnDown]) {
            expect(s.ffBlock % ggmlType(t).blockElements).toBe(0);
          }
        }
        for (const [lo] of ff) expect(lo % s.ffBlock).toBe(0);
        for (const [lo] of kv) expect(lo % s.kvUnit).toBe(0);
        expectBalanced(ff, m.nFf, s.ffBlock, w);
        // The output sharded in proportion, or (rows of a few bytes, where the gather costs more
        // than the read it saves) all on the fastest rank.
        if (s.output.placement === 'sharded')
          expectBalanced(
            s.ranks.map((r) => r.vocab),
            m.nVocab,
            1,
            w,
          );
        else expect(s.ranks.filter((r) => len(r.vocab) > 0).map((r) => len(r.vocab))).toEqual([m.nVocab]);
        const kvUnits = Math.ceil(m.nHeadKv / s.kvUnit);
        const sum = w.reduce((a, b) => a + b, 0);
        if (kvUnits >= w.length) {
          // Every rank gets heads; when no share is under one unit that costs no balance.
          for (const r of kv) expect(r[1]).toBeGreaterThan(r[0]);
          if (w.every((x) => (kvUnits * x) / sum >= 1)) expectBalanced(kv, m.nHeadKv, s.kvUnit, w);
        } else {
          expectBalanced(kv, m.nHeadKv, s.kvUnit, w);
          expect(s.notes.join('\n')).toMatch(/no attention heads/);
        }

        // Sharded bytes add up to the model's, mirrored bytes are on every rank; token_embd is
        // one shared copy, counted apart (tied: its rows are the output's, sharded).
        const mirrored = (m.nLayer * 2 + 1) * m.nEmbd * 4 + (m.qkNorm ? m.nLayer * 2 * m.headDim * 4 : 0);
        expect(s.tokenEmbd.bytes).toBe(rowBytes(m.tokenEmbd, m.nEmbd) * m.nVocab);
        const qDim = m.nHead * m.headDim;
        const kvDim = m.nHeadKv * m.headDim;
        let sharded = rowBytes(m.tiedEmbeddings ? m.tokenEmbd : m.output, m.nEmbd) * m.nVocab;
        for (const l of m.layers) {
          sharded +=
            qDim * rowBytes(l.attnQ, m.nEmbd) +
            kvDim * (rowBytes(l.attnK, m.nEmbd) + rowBytes(l.attnV, m.nEmbd));
          sharded += m.nEmbd * rowBytes(l.attnOutput, qDim) + (m.qkvBias ? (qDim + 2 * kvDim) * 4 : 0);
          sharded += m.nFf * (rowBytes(l.ffnGate, m.nEmbd) + rowBytes(l.ffnUp, m.nEmbd));
          sharded += m.nEmbd * rowBytes(l.ffnDown, m.nFf);
        }
        const total = s.ranks.reduce((a, r) => a + r.weightBytes, 0);
        expect(total).toBe(sharded + w.length * mirrored);
        expect(s.ranks.reduce((a, r) => a + r.kvCacheBytes, 0)).toBe(4 * 1000 * m.nLayer * kvDim);
      }),
      { numRuns: 300, seed: 2026 },
    );
  });

  it('groups KV heads when one head is not whole attn_output blocks', () => {
    // MHA, head_dim 128, q4_k attn_output: 2 heads per 256-block.
    const m: ModelShape = {
      nLayer: 1,
      nEmbd: 256,
      nHead: 6,
      nHeadKv: 6,
      headDim: 128,
      nFf: 768,
      nVocab: 10,
      tiedEmbeddings: true,
      qkvBias: false,
      qkNorm: false,
      tokenEmbd: 'q8_0',
      output: 'q8_0',
      layers: [
        {
          attnQ: 'q4_k',
          attnK: 'q4_k',
          attnV: 'q6_k',
          attnOutput: 'q4_k',
          ffnGate: 'q4_k',
          ffnUp: 'q4_k',
          ffnDown: 'q6_k',
        },
      ],
    };
    const s = planModelSplit(m, [{ rate: 1 }, { rate: 1 }, { rate: 1 }, { rate: 1 }]);
    expect(s.kvUnit).toBe(2);
    expect(s.ranks.map((r) => r.kvHeads)).toEqual([
      [0, 2],
      [2, 4],
      [4, 4],
      [4, 6],
    ]);
    expect(s.ranks.map((r) => r.ff)).toEqual([
      [0, 256],
      [256, 512],
      [512, 512],
      [512, 768],
    ]);
    expect(s.notes.join('\n')).toMatch(/4 ranks for 3 KV-head units: 1 rank has no attention heads/);
    expect(() => planModelSplit(m, [])).toThrow(PlanInputError);
    expect(() => planModelSplit(m, [{ rate: 0 }])).toThrow(/rank 0 has rate 0/);
  });

  it('plans a real model file and renders the plan', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redblue-split-'));
    try {
      const path = join(dir, 'm.gguf');
      writeSyntheticModel(path, {
        arch: 'qwen3',
        nLayer: 2,
        nEmbd: 64,
        nHead: 8,
        nHeadKv: 4,
        nFf: 96,
        nCtx: 128,
        types: { default: 'f32' },
      });
      const info = describeModel(readGguf(path));
      const s = planModelSplit(info, [{ rate: 2 }, { rate: 1 }, { rate: 1 }], { context: 128 });
      expect(s.ranks.map((r) => r.kvHeads)).toEqual([
        [0, 2],
        [2, 3],
        [3, 4],
      ]);
      expect(s.ranks.map((r) => r.qHeads)).toEqual([
        [0, 4],
        [4, 6],
        [6, 8],
      ]);
      expect(s.ranks.map((r) => r.ff)).toEqual([
        [0, 48],
        [48, 72],
        [72, 96],
      ]);
      expect(s.ranks[0]!.kvCacheBytes).toBe(2 * 2 * 128 * 2 * 2 * 8);
      const text = renderModelSplit(s);
      expect(text).toMatch(/^rank +rate +kv heads +q heads +n_ff +vocab rows +weights +kv cache @128$/m);
      expect(text).toMatch(/^0 +2 +\[0, 2\) +\[0, 4\) +\[0, 48\) +\[0, 64128\)/m);
      expect(text).toMatch(
        /^token_embd: shared, one copy per host \(.*one .* row looked up per token\): the ranks' memory nodes are not known$/m,
      );
      expect(text).toMatch(
        /^output: sharded by vocabulary rows, the largest share reading .*: sharding with /m,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('token_embd and the output projection: the planner places them', () => {
  const m = tinyLlamaQ4_0();
  const two = [
    { rate: 1, speed: 20 },
    { rate: 1, speed: 20 },
  ];
  const embd = rowBytes(m.tokenEmbd, m.nEmbd) * m.nVocab;

  it('one host, one memory node: token_embd shared, the output sharded (a gather in shared memory is cheap)', () => {
    const s = planModelSplit(m, two, {
      places: [
        { host: 0, memoryNode: 0 },
        { host: 0, memoryNode: 0 },
      ],
    });
    expect(s.tokenEmbd.placement).toBe('shared');
    expect(s.tokenEmbd.reason).toMatch(/share one memory node/);
    expect(s.output.placement).toBe('sharded');
    expect(s.output.seconds.sharded).toBeLessThan(s.output.seconds.single);
    expect(s.ranks.map((r) => r.vocab)).toEqual([
      [0, m.nVocab / 2],
      [m.nVocab / 2, m.nVocab],
    ]);
    // One rank measured slow by chance (a busy core as it started) reads the node as fast as the
    // other: the same choice and the same figures, not one rank reading every row.
    const noisy = planModelSplit(m, [two[0]!, { rate: 1, speed: 3 }], {
      places: [
        { host: 0, memoryNode: 0 },
        { host: 0, memoryNode: 0 },
      ],
    });
    expect(noisy.output).toEqual(s.output);
  });

  it('ranks on two memory nodes with room: token_embd mirrored, its bytes counted on every rank', () => {
    const shared = planModelSplit(m, two);
    const s = planModelSplit(m, two, {
      places: [
        { host: 0, memoryNode: 0, memoryBytes: 64 * 2 ** 30 },
        { host: 0, memoryNode: 1, memoryBytes: 64 * 2 ** 30 },
      ],
    });
    expect(s.tokenEmbd.placement).toBe('mirrored');
    s.ranks.forEach((r, i) => expect(r.weightBytes - shared.ranks[i]!.weightBytes).toBe(embd));
    expect(renderModelSplit(s)).toMatch(
      /^token_embd: mirrored, a .* copy in each rank's node memory: the ranks sit on different memory nodes/m,
    );
    // No room for the copy beside the weights and the KV cache: shared, naming the rank.
    const tight = planModelSplit(m, two, {
      places: [
        { host: 0, memoryNode: 0, memoryBytes: 64 * 2 ** 30 },
        { host: 0, memoryNode: 1, memoryBytes: shared.ranks[1]!.weightBytes + shared.ranks[1]!.kvCacheBytes },
      ],
    });
    expect(tight.tokenEmbd.placement).toBe('shared');
    expect(tight.tokenEmbd.reason).toMatch(/rank 1's node has no room/);
  });

  it('across hosts on a slow link one rank reads the whole projection; on a fast one it is sharded', () => {
    const places = [
      { host: 0, memoryNode: -1 },
      { host: 1, memoryNode: -1 },
    ];
    const slow = planModelSplit(m, two, { places, gatherGBps: 0.001 });
    expect(slow.output.placement).toBe('single');
    expect(slow.output.seconds.single).toBeLessThan(slow.output.seconds.sharded);
    expect(slow.output.reason).toMatch(/rank 0 reading every row .* beats sharding/);
    // Contiguous ranges, every row once: rank 0 all, rank 1 none.
    expect(slow.ranks.map((r) => r.vocab)).toEqual([
      [0, m.nVocab],
      [m.nVocab, m.nVocab],
    ]);
    const fast = planModelSplit(m, two, { places, gatherGBps: 10 });
    expect(fast.output.placement).toBe('sharded');
    // Without a measured link the assumed 10 Gb Ethernet is named.
    expect(planModelSplit(m, two, { places }).output.reason).toMatch(/an assumed 1\.25 GB\/s link/);
    // The faster rank takes it when one is faster.
    const uneven = planModelSplit(
      m,
      [
        { rate: 1, speed: 10 },
        { rate: 2, speed: 20 },
      ],
      { places, gatherGBps: 0.001 },
    );
    expect(uneven.ranks.map((r) => r.vocab)).toEqual([
      [0, 0],
      [0, m.nVocab],
    ]);
  });

  it('a run may fix either choice', () => {
    const s = planModelSplit(m, two, { embeddings: 'mirrored', output: 'single' });
    expect([s.tokenEmbd.placement, s.output.placement]).toEqual(['mirrored', 'single']);
    expect(s.output.reason).toMatch(/^asked for \(sharded .* ms, single .* ms a token\)$/);
    const one = planModelSplit(m, [{ rate: 1 }]);
    expect(one.output.placement).toBe('sharded');
    expect(one.ranks[0]!.vocab).toEqual([0, m.nVocab]);
  });
});
