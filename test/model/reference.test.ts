// bench/llama-reference.ts against the real llama.cpp (node-llama-cpp's prebuilt CPU binary) on a
// tiny random-weight llama (model/synth.ts: f32, LLaMA 2's real 32000-token vocabulary).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import llamaTokenizer from 'llama-tokenizer-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openReference, type LlamaReference } from '../../bench/llama-reference.js';
import { argmax, Sampler, type SamplingParams } from '../../model/sampling.js';
import { TINY, writeSyntheticModel } from '../../model/synth.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-reference-'));
const modelPath = join(dir, 'tiny-llama.gguf');
let ref: LlamaReference;

beforeAll(async () => {
  // Output gain 1: spread logits, so the log-probabilities are a real distribution to compare.
  writeSyntheticModel(modelPath, { arch: 'llama', ...TINY, types: { default: 'f32' }, outputGain: 1 });
  // One thread: this machine's cores are shared, and llama.cpp's spinning threads crawl when
  // they outnumber the free cores (tg went from ~200 to ~2 tokens/s with 2 threads on 2 busy cores).
  ref = await openReference(modelPath, { threads: 1, ctx: 512 });
});

afterAll(async () => {
  await ref?.close();
  rmSync(dir, { recursive: true, force: true });
});

const TEXT = 'Hello world, this is a test. Ünïcödé 123 日本語!';

describe('llama.cpp reference', () => {
  it('reports the settings llama.cpp resolved: f16 KV cache, flash attention on under "auto"', () => {
    expect(ref.vocabSize).toBe(32000);
    expect(ref.bos).toBe(1);
    expect(ref.eos).toBe(2);
    expect(ref.settings).toMatchObject({
      threads: 1,
      ctx: 512,
      batch: 512,
      ubatch: 512,
      flashAttentionRequested: 'auto',
      flashAttention: true,
      kvCacheK: 'f16',
      kvCacheV: 'f16',
    });
    expect(ref.settings.system).toMatch(/AVX2 = 1/);
  });

  it('tokenizes as the LLaMA tokenizer does and detokenizes back to the text', () => {
    const ids = ref.tokenize(TEXT, false);
    expect(ids).toEqual(llamaTokenizer.encode(TEXT, false, true));
    expect(ref.detokenize(ids)).toBe(TEXT);
    expect(ref.tokenize(TEXT, false, true)).toEqual([1, ...ids]);
    // Special tokens: parsed only when asked, written out only when asked.
    expect(ref.tokenize('<s>Hi', true)[0]).toBe(1);
    expect(ref.tokenize('<s>Hi', false)).not.toContain(1);
    expect(ref.detokenize([1, ...ref.tokenize('Hi', false)], true)).toMatch(/^<s>/);
    expect(ref.detokenize([1, ...ref.tokenize('Hi', false)], false)).not.toMatch(/<s>/);
  });

  it('gives full-vocabulary log-probabilities at every position, and the same last ones with the KV cache reused', async () => {
    const prompt = ref.tokenize(TEXT, false, true);
    const all = await ref.logProbs(prompt);
    expect(all).toHaveLength(prompt.length);
    for (const lp of all) {
      expect(lp).toHaveLength(32000);
      let bad = 0;
      let mass = 0;
      for (const v of lp) {
        if (!Number.isFinite(v) || v > 0) bad++;
        mass += Math.exp(v);
      }
      expect(bad).toBe(0);
      expect(Math.abs(mass - 1)).toBeLessThan(1e-4);
    }
    const last = all.at(-1)!;
    const [lastOnly] = await ref.logProbs(prompt, { positions: 'last' });
    const cut = 7;
    await ref.logProbs(prompt.slice(0, cut), { positions: 'last' });
    const [twoParts] = await ref.logProbs(prompt.slice(cut), { positions: 'last', append: true });
    const maxDiff = (a: Float32Array, b: Float32Array): number =>
      a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
    expect(maxDiff(lastOnly!, last)).toBeLessThan(1e-4);
    expect(maxDiff(twoParts!, last)).toBeLessThan(1e-4);
    // The distribution is not degenerate: the test model's logits are spread.
    expect(Math.max(...last)).toBeLessThan(-0.5);
  });

  it('continues greedily: the argmax of the log-probabilities, the same in another opening (2 threads, batches of 4)', async () => {
    const prompt = ref.tokenize('Once upon a time', false, true);
    const first = await ref.greedy(prompt, 12);
    expect(first).toHaveLength(12);
    const [lp] = await ref.logProbs(prompt, { positions: 'last' });
    expect(first[0]).toBe(argmax(lp!));
    // Each next token is the argmax after the tokens before it.
    const [lp2] = await ref.logProbs([...prompt, ...first.slice(0, 5)], { positions: 'last' });
    expect(first[5]).toBe(argmax(lp2!));
    const other = await openReference(modelPath, { threads: 2, ctx: 256, batch: 4 });
    try {
      expect(await other.greedy(prompt, 12)).toEqual(first);
    } finally {
      await other.close();
    }
  });

  it("model/sampling.ts keeps llama.cpp's sampler candidates, with llama.cpp's probabilities", async () => {
    // Shift-invariant settings only: logProbs are the logits less a constant, and the repeat
    // penalty (divide if positive) depends on the raw sign; frequency and presence do not.
    const prompt = ref.tokenize(TEXT, false, true);
    const [lp] = await ref.logProbs(prompt, { positions: 'last' });
    const cases: (Partial<SamplingParams> & { temperature: number })[] = [
      { temperature: 0.8 }, // llama.cpp's defaults: top-k 40, top-p 0.95, min-p 0.05
      { temperature: 1, topK: 0, topP: 0.9, minP: 0 },
      { temperature: 1.3, topK: 100, topP: 1, minP: 0.1 },
      { temperature: 0.7, topK: 0, topP: 1, minP: 0.02 },
      {
        temperature: 0.7,
        topK: 0,
        topP: 1,
        minP: 0.02,
        frequencyPenalty: 0.5,
        presencePenalty: 0.3,
        repeatLastN: 8,
      },
    ];
    const sizes: number[] = [];
    for (const c of cases) {
      const params = { seed: 7, ...c };
      const s = new Sampler(ref.vocabSize, params);
      for (const t of prompt) s.accept(t);
      const ours = s.distribution(lp!);
      const theirs = await ref.samplerDistribution(prompt, params, prompt);
      // The same set, but for at most one token at the edge of a top-p nucleus of thousands,
      // where llama.cpp's f32 running sum and our f64 one part by rounding.
      const onlyOurs = [...ours.keys()].filter((id) => !theirs.has(id));
      const onlyTheirs = [...theirs.keys()].filter((id) => !ours.has(id));
      expect(onlyOurs.length + onlyTheirs.length).toBeLessThanOrEqual(
        c.topP !== undefined && c.topP < 1 ? 1 : 0,
      );
      for (const id of onlyOurs) expect(ours.get(id)!).toBeLessThan(1e-4);
      for (const id of onlyTheirs) expect(theirs.get(id)!).toBeLessThan(1e-4);
      let maxDiff = 0;
      for (const [id, p] of ours)
        if (theirs.has(id)) maxDiff = Math.max(maxDiff, Math.abs(p - theirs.get(id)!));
      expect(maxDiff).toBeLessThan(1e-5);
      sizes.push(ours.size);
    }
    // The cases cut differently: not all the whole vocabulary, not all one token.
    expect(new Set(sizes).size).toBeGreaterThan(2);
    expect(Math.max(...sizes)).toBeGreaterThan(10);
  });

  it('benchmarks prompt processing and generation with positive rates', async () => {
    const r = await ref.bench({ pp: 128, tg: 16, reps: 2 });
    for (const rate of [r.pp, r.tg]) {
      expect(rate.runs).toHaveLength(2);
      expect(rate.mean).toBeGreaterThan(0);
      expect(rate.sd).toBeGreaterThanOrEqual(0);
    }
  });

  it('rejects tokens outside the vocabulary and prompts longer than the context', async () => {
    await expect(ref.logProbs([1, 32000])).rejects.toThrow(/token 32000 is outside the vocabulary/);
    await expect(ref.greedy([1], 600)).rejects.toThrow(/do not fit the context of 512/);
    await expect(openReference(modelPath, { threads: 0, ctx: 512 })).rejects.toThrow(/threads must be/);
    await expect(openReference(join(dir, 'missing.gguf'), { threads: 1, ctx: 64 })).rejects.toThrow();
  });
});
