// Several sequences in one step (a server's continuous batch), through real executor processes
// and the doorbell: each sequence in its own KV slot gets exactly the logits it gets alone, bit
// for bit, whether its prompt arrives whole or in chunks beside other sequences' decode tokens.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generate,
  loadModel,
  localRunner,
  runnerOf,
  type ModelRunner,
} from '../../executor/coordinator/generate.js';
import { LocalCluster } from '../../executor/host/local-cluster.js';
import { writeSyntheticModel, type WeightTypes } from '../../model/synth.js';
import type { SeqRun } from '../../native/model.js';
import { readTopology } from '../../native/topology.js';
import { virtualize } from '../../native/virtual-nodes.js';
import { argmax } from './tiny-model.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-batch-'));
let cluster: LocalCluster;
beforeAll(async () => {
  cluster = await LocalCluster.start({ topology: virtualize(readTopology(), 2) });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const PROMPTS = [
  [1, 450, 4996, 17354, 1701, 432, 17204],
  [1, 29871, 13, 3492, 526, 366, 263, 8444, 20255, 29889, 3529, 1234],
  [1, 15043, 3186],
];
const DECODE = 6;

/** A 2-layer model of `types` written to `file` in the test's directory; its path. */
function writeModel(types: WeightTypes, file: string): string {
  const path = join(dir, file);
  // 128 wide: 4 Q8_0 blocks per row, so the Q4_0 rows take the quad path as a real model's do;
  // K types need whole 256-element blocks on each rank's side of every cut.
  const k = Object.values(types).some((t) => String(t).endsWith('_k'));
  writeSyntheticModel(path, {
    arch: 'llama',
    nLayer: 2,
    nEmbd: k ? 256 : 128,
    nHead: 4,
    nHeadKv: 2,
    nFf: k ? 512 : 256,
    nCtx: 128,
    types,
  });
  return path;
}

async function load(types: WeightTypes, file: string): Promise<ModelRunner> {
  const path = writeModel(types, file);
  const runner = localRunner(cluster);
  const model = await loadModel(runner, { path, ctx: 64, slots: 4, batchInvariant: true });
  expect(model.slots).toBe(4);
  return runner;
}

/** Logits after each step of one sequence run alone in `slot`: its prompt, then greedy tokens. */
async function alone(runner: ModelRunner, slot: number, prompt: number[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  let r = await runner.step!(prompt, [{ slot, pos: 0, count: prompt.length, logits: true }]);
  out.push(r.logits[0]!);
  for (let i = 0; i < DECODE; i++) {
    const next = argmax(out.at(-1)!);
    r = await runner.step!([next], [{ slot, pos: prompt.length + i, count: 1, logits: true }]);
    out.push(r.logits[0]!);
  }
  return out;
}

interface Seq {
  slot: number;
  prompt: number[];
  fed: number; // prompt tokens in the cache
  logits: Float32Array[];
  next?: number;
}

/**
 * All sequences together: prompts fed in chunks of at most `chunk` tokens, sequence i joining at
 * step i (so prompts run beside others' decode tokens), greedy decoding until each has DECODE.
 */
async function together(runner: ModelRunner, chunk: number): Promise<Float32Array[][]> {
  const seqs: Seq[] = PROMPTS.map((prompt, i) => ({ slot: 3 - i, prompt, fed: 0, logits: [] }));
  for (let stepNo = 0; stepNo < 64; stepNo++) {
    const tokens: number[] = [];
    const runs: SeqRun[] = [];
    const asked: Seq[] = [];
    seqs.forEach((s, i) => {
      if (i > stepNo || s.logits.length > DECODE) return;
      if (s.fed < s.prompt.length) {
        const n = Math.min(chunk, s.prompt.length - s.fed);
        tokens.push(...s.prompt.slice(s.fed, s.fed + n));
        const last = s.fed + n === s.prompt.length;
        runs.push({ slot: s.slot, pos: s.fed, count: n, logits: last });
        s.fed += n;
        if (last) asked.push(s);
      } else {
        tokens.push(s.next!);
        runs.push({ slot: s.slot, pos: s.prompt.length + s.logits.length - 1, count: 1, logits: true });
        asked.push(s);
      }
    });
    if (runs.length === 0) break;
    const r = await runner.step!(tokens, runs);
    expect(r.logits).toHaveLength(asked.length);
    asked.forEach((s, i) => {
      s.logits.push(r.logits[i]!);
      s.next = argmax(r.logits[i]!);
    });
  }
  return seqs.map((s) => s.logits);
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

describe('continuous batching: sequences in KV slots, one step for all', () => {
  for (const [name, types] of [
    ['q4_0', { default: 'q4_0' }],
    ['q8_0', { default: 'q8_0' }],
    ['q4_k', { default: 'q4_k' }],
  ] as const)
    it(`${name}: each sequence's logits in a batch equal its logits alone, bit for bit`, async () => {
      const runner = await load(types as WeightTypes, `${name}.gguf`);
      const ref: Float32Array[][] = [];
      for (let i = 0; i < PROMPTS.length; i++) ref.push(await alone(runner, 3 - i, PROMPTS[i]!));
      for (const chunk of [64, 5]) {
        const got = await together(runner, chunk);
        for (let i = 0; i < PROMPTS.length; i++) {
          expect(got[i]!.length, `sequence ${i}, chunks of ${chunk}`).toBe(DECODE + 1);
          got[i]!.forEach((l, t) =>
            expect(bits(l), `sequence ${i} step ${t}, chunks of ${chunk}`).toBe(bits(ref[i]![t]!)),
          );
        }
      }
    }, 60_000);

  it("a run's last n rows of logits (a prompt scored token by token): each as its prefix alone", async () => {
    const runner = await load({ default: 'q4_0' }, 'rows.gguf');
    const p = PROMPTS[1]!;
    // Slot 1 decodes beside it: one row of its own before the prompt's three.
    await runner.step!([7], [{ slot: 1, pos: 0, count: 1, logits: true }]);
    const r = await runner.step!(
      [8, ...p],
      [
        { slot: 1, pos: 1, count: 1, logits: 1 },
        { slot: 0, pos: 0, count: p.length, logits: 3 },
      ],
    );
    expect(r.logits).toHaveLength(4);
    for (let j = 0; j < 3; j++) {
      const prefix = p.slice(0, p.length - 2 + j);
      const ref = await runner.step!(prefix, [{ slot: 2, pos: 0, count: prefix.length, logits: true }]);
      expect(bits(r.logits[1 + j]!), `row ${j}`).toBe(bits(ref.logits[0]!));
    }
    const run = (logits: number): SeqRun[] => [{ slot: 0, pos: 0, count: p.length, logits }];
    await expect(runner.step!(p, run(p.length + 1))).rejects.toThrow(
      /asks for 13 rows of logits but carries 12/,
    );
    await expect(runner.step!(p, run(5))).rejects.toThrow(/at most 4 rows of logits, not 5/);
  }, 60_000);

  it("a slot that takes another's prefix goes on as if it had computed it, bit for bit", async () => {
    const runner = await load({ default: 'q4_0' }, 'copy.gguf');
    const p = PROMPTS[1]!;
    const L = p.length;
    const whole = (slot: number): SeqRun[] => [{ slot, pos: 0, count: L, logits: true }];
    // The reference: the prompt, then one more token, computed in slot 2.
    const ref = await runner.step!(p, whole(2));
    const next = argmax(ref.logits[0]!);
    const ref2 = await runner.step!([next], [{ slot: 2, pos: L, count: 1, logits: true }]);
    // Slot 0 computes the prompt; slot 1 takes its first L - 1 positions and feeds the last token,
    // in the step where slot 0 writes its next position (copies come first).
    await runner.step!(p, whole(0));
    const r = await runner.step!(
      [next, p[L - 1]!],
      [
        { slot: 0, pos: L, count: 1, logits: true },
        { slot: 1, pos: L - 1, count: 1, logits: true, from: 0 },
      ],
    );
    expect(bits(r.logits[0]!)).toBe(bits(ref2.logits[0]!));
    expect(bits(r.logits[1]!)).toBe(bits(ref.logits[0]!));
    const on = await runner.step!([next], [{ slot: 1, pos: L, count: 1, logits: true }]);
    expect(bits(on.logits[0]!)).toBe(bits(ref2.logits[0]!));
    // Part of a prefix (5 positions; slot 0 holds L + 1), the rest of the prompt fed after it.
    const part = await runner.step!(p.slice(5), [{ slot: 3, pos: 5, count: L - 5, logits: true, from: 0 }]);
    expect(bits(part.logits[0]!)).toBe(bits(ref.logits[0]!));

    const copy = (slot: number, from: number, pos: number): SeqRun => ({
      slot,
      pos,
      count: 1,
      logits: true,
      from,
    });
    await expect(runner.step!([5], [copy(1, 1, 3)])).rejects.toThrow(
      /copies from slot 1: not another of slots 0-3/,
    );
    await expect(runner.step!([5], [copy(1, 4, 3)])).rejects.toThrow(/copies from slot 4/);
    await expect(runner.step!([5], [copy(1, 3, L + 1)])).rejects.toThrow(
      new RegExp(`executor rank 0: .*copies positions 0..${L} of slot 3, which holds 0..${L - 1}`),
    );
    await expect(runner.step!([5, 6], [copy(1, 3, 2), copy(2, 1, 2)])).rejects.toThrow(
      /slot 1 takes a copy and gives one in the same step/,
    );
  }, 60_000);

  it('bad steps are refused with the reason, and the next good step runs', async () => {
    const runner = await load({ default: 'q8_0' }, 'errors.gguf');
    const one = (slot: number, pos = 0): SeqRun => ({ slot, pos, count: 1, logits: true });
    await expect(runner.step!([5], [one(4)])).rejects.toThrow(/KV slot 4 does not exist: .*slots 0-3/);
    await expect(runner.step!([5, 6], [one(1), one(1)])).rejects.toThrow(/KV slot 1 appears twice/);
    await expect(runner.step!([5, 6], [one(1)])).rejects.toThrow(/runs hold 1 tokens but the step has 2/);
    // Positions are the executors' to check: a gap in slot 2's cache.
    await expect(runner.step!([5], [one(2, 9)])).rejects.toThrow(/executor rank 0: .*slot 2.*leaves a gap/);
    const r = await runner.step!([5, 6], [one(2), one(0)]);
    expect(r.logits).toHaveLength(2);
    expect(r.logits[0]!.every(Number.isFinite)).toBe(true);
    // A new sequence in a slot restarts it at position 0 and gives what it gave before.
    const again = await runner.step!([6], [one(0)]);
    expect(bits(again.logits[0]!)).toBe(bits(r.logits[1]!));
    // Into a caller's buffer (a server's rows, reused every step): the same bits, views of it.
    const rows = new Float32Array(3 * r.logits[0]!.length).fill(Number.NaN);
    const into = await runner.step!([5, 6], [one(2), one(0)], rows);
    expect(into.logits.map((l) => l.buffer === rows.buffer)).toEqual([true, true]);
    expect(into.logits.map(bits)).toEqual(r.logits.map(bits));
    expect(rows.subarray(2 * r.logits[0]!.length).every(Number.isNaN)).toBe(true);
    const row = new Float32Array(r.logits[0]!.length);
    const f = await runner.forward([6], 0, 'last', true, row);
    expect(f.logits.buffer).toBe(row.buffer);
    expect(bits(f.logits)).toBe(bits(r.logits[1]!));
    await expect(runner.step!([5, 6], [one(2), one(0)], row)).rejects.toThrow(
      /the logits buffer holds \d+ floats, not the \d+ of this step/,
    );
  }, 60_000);

  it('a model loaded on the cluster runs its steps through the doorbell of that load', async () => {
    // generate(cluster) after loadModel(cluster): both must reach the runner that holds the
    // doorbell, or every token would go as a gRPC call (and step() would refuse).
    const path = join(dir, 'cluster.gguf');
    writeSyntheticModel(path, {
      arch: 'llama',
      nLayer: 1,
      nEmbd: 128,
      nHead: 4,
      nHeadKv: 2,
      nFf: 256,
      nCtx: 64,
      types: { default: 'q8_0' },
    });
    await loadModel(cluster, { path, ctx: 32 });
    expect(runnerOf(cluster)).toBe(runnerOf(cluster));
    const r = await runnerOf(cluster).step!([5], [{ slot: 0, pos: 0, count: 1, logits: true }]);
    expect(r.logits[0]!.every(Number.isFinite)).toBe(true);
    // A step posted the moment the loops are (re)started is served by every rank: a loop that took
    // its first seq when its thread first ran, not when it was made, missed such a step now and
    // then, and the other rank waited in an all-reduce until its timeout (seen in parity.test.ts).
    for (let i = 0; i < 200; i++) {
      await Promise.all(cluster.clients.map((c) => c.startModelLoop({})));
      const step = runnerOf(cluster).step!([5], [{ slot: 0, pos: 0, count: 1, logits: true }]);
      const missed = new Promise<'missed'>((res) => setTimeout(() => res('missed'), 5000).unref());
      expect(await Promise.race([step.then(() => `served`), missed]), `restart ${i}`).toBe('served');
    }
  }, 60_000);
});

const LOOKUP_PROMPT = [...PROMPTS[0]!, 263, 931];

// generate --lookup: drafts copied from the context, checked in one step whose rows of logits are,
// bit for bit, those of a step per token; so the text is the one generated without it, greedy
// or sampled with a seed.
describe('generate --lookup: a step that checks drafted tokens', () => {
  for (const [name, types] of [
    ['q4_0', { default: 'q4_0' }],
    ['q4_k', { default: 'q4_k' }],
  ] as const)
    it(`${name}: a step of 1 + k tokens gives each row as a step of its own, bit for bit`, async () => {
      const path = writeModel(types as WeightTypes, `lookup-${name}.gguf`);
      const runner = localRunner(cluster);
      const model = await loadModel(runner, { path, ctx: 64, draftTokens: 7 });
      const tokens = [3492, 526, 366, 263, 8444, 20255, 29889, 3529];
      await runner.step!(LOOKUP_PROMPT, [{ slot: 0, pos: 0, count: LOOKUP_PROMPT.length, logits: 0 }]);
      const alone: string[] = [];
      for (const [i, t] of tokens.entries()) {
        const r = await runner.step!([t], [{ slot: 0, pos: LOOKUP_PROMPT.length + i, count: 1, logits: 1 }]);
        alone.push(bits(r.logits[0]!));
      }
      // 2, 3 (a tile of 4, padded), 4, 7 (a tile of 8, padded) and 8 rows of X.
      for (const count of [2, 3, 4, 7, 8]) {
        const r = await runner.step!(tokens.slice(0, count), [
          { slot: 0, pos: LOOKUP_PROMPT.length, count, logits: count },
        ]);
        expect(r.logits.map(bits), `${count} tokens`).toEqual(alone.slice(0, count));
      }
      // More rows than the load allows: refused by name.
      await expect(
        runner.step!([...tokens, 1], [{ slot: 0, pos: LOOKUP_PROMPT.length, count: 9, logits: 9 }]),
      ).rejects.toThrow(/at most 8 rows of logits, not 9/);

      // The generation: the same tokens with drafts as without, greedy and sampled. A random model
      // seldom repeats itself; raised far above the rest, 3 tokens make all of its text, which
      // then repeats (the drafts are right some of the time, wrong the rest).
      const logitBias = [450, 4996, 17354].map((t) => [t, 100] as const);
      for (const sampling of [
        { temperature: 0, seed: 1, logitBias },
        { temperature: 0.9, topK: 0, topP: 1, minP: 0, seed: 7, logitBias },
      ]) {
        const run = (lookup: number) =>
          generate(runner, model, {
            prompt: '',
            promptTokens: LOOKUP_PROMPT,
            maxTokens: 48,
            stopAtEog: false,
            sampling,
            lookup,
          });
        const plain = await run(0);
        const drafted = await run(7);
        expect(drafted.generatedTokens, `temperature ${sampling.temperature}`).toEqual(plain.generatedTokens);
        expect(plain.timings.drafted).toBeUndefined();
        expect(drafted.timings.drafted).toBeGreaterThan(0);
        expect(drafted.timings.accepted).toBeGreaterThan(0);
        expect(drafted.timings.accepted).toBeLessThan(drafted.timings.drafted!);
      }
    });
});
