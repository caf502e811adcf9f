// describeModel on real GGUF files written by the synthetic-model writer: hyperparameters, roles,
// per-arch tensors (qwen2 biases, qwen3 q/k norms, tied output, rope_freqs), and the errors for
// unsupported architectures and missing or wrong-shaped tensors.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeModel } from '../../model/arch.js';
import { GgufError, readGguf } from '../../model/gguf/read.js';
import { gv } from '../../model/gguf/value.js';
import { writeGguf, type GgufTensorInput } from '../../model/gguf/write.js';
import { syntheticModel, writeSyntheticModel, type SynthOptions } from '../../model/synth.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-arch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = (): string => join(dir, `m${n++}.gguf`);

const small: Omit<SynthOptions, 'arch'> = {
  nLayer: 2,
  nEmbd: 64,
  nHead: 4,
  nHeadKv: 2,
  nFf: 96,
  nCtx: 128,
  types: { default: 'f32' },
};

function edited(opts: SynthOptions, edit: (t: GgufTensorInput[]) => GgufTensorInput[]): string {
  const m = syntheticModel(opts);
  const p = tmp();
  writeGguf(p, { metadata: new Map(m.metadata), tensors: edit(m.tensors) });
  return p;
}

function describeError(path: string): string {
  try {
    describeModel(readGguf(path));
  } catch (e) {
    expect(e).toBeInstanceOf(GgufError);
    return (e as Error).message;
  }
  throw new Error('describeModel accepted a bad model');
}

describe('describeModel', () => {
  it('llama: hyperparameters, roles, byte totals', () => {
    const p = tmp();
    writeSyntheticModel(p, { ...small, arch: 'llama', ropeFreqs: true });
    const m = describeModel(readGguf(p));
    expect(m).toMatchObject({
      arch: 'llama',
      nLayer: 2,
      nCtxTrain: 128,
      nEmbd: 64,
      nFf: 96,
      nHead: 4,
      nHeadKv: 2,
      headDim: 16,
      ropeDim: 16,
      ropeFreqBase: 10000,
      ropeOrdering: 'normal',
      ropeScaling: { type: 'none', factor: 1 },
      nVocab: 32000,
      tiedEmbeddings: false,
      qkvBias: false,
      qkNorm: false,
    });
    expect(m.rmsEps).toBeCloseTo(1e-5, 10);
    expect(m.ropeFreqs?.ne).toEqual([8]);
    expect(m.layers).toHaveLength(2);
    expect(m.layers[1]!.attnK.name).toBe('blk.1.attn_k.weight');
    expect(m.layers[1]!.attnK.ne).toEqual([64, 32]);
    expect(m.layers[0]!.ffnDown.ne).toEqual([96, 64]);
    expect(m.output.name).toBe('output.weight');
    const perLayer = 2 * 64 + 64 * 64 * 2 + 64 * 32 * 2 + 64 * 96 * 3;
    const params = 2 * 64 * 32000 + 64 + 2 * perLayer + 8;
    expect(m.parameterCount).toBe(params);
    expect(m.bytesByType).toEqual({ f32: { tensors: 3 + 2 * 9 + 1, elements: params, bytes: 4 * params } });
    // Everything but token_embd, plus one row of it.
    expect(m.weightBytesPerToken).toBe(4 * (params - 64 * 32000 + 64));
  });

  it('qwen2: neox RoPE and Q/K/V biases; qwen3: q/k norms, tied output', () => {
    const p2 = tmp();
    writeSyntheticModel(p2, { ...small, arch: 'qwen2' });
    const q2 = describeModel(readGguf(p2));
    expect(q2).toMatchObject({
      arch: 'qwen2',
      ropeOrdering: 'neox',
      qkvBias: true,
      qkNorm: false,
      nVocab: 128256,
    });
    expect(q2.layers[0]!.attnKBias?.ne).toEqual([32]);
    expect(q2.ropeFreqBase).toBe(1000000);

    const p3 = tmp();
    writeSyntheticModel(p3, { ...small, arch: 'qwen3', headDim: 32, tied: true });
    const q3 = describeModel(readGguf(p3));
    expect(q3).toMatchObject({
      arch: 'qwen3',
      headDim: 32,
      qkNorm: true,
      qkvBias: false,
      tiedEmbeddings: true,
    });
    expect(q3.layers[0]!.attnQ.ne).toEqual([64, 128]);
    expect(q3.layers[0]!.attnOutput.ne).toEqual([128, 64]);
    expect(q3.layers[0]!.attnQNorm?.ne).toEqual([32]);
    expect(q3.output).toBe(q3.tokenEmbd);
    expect(q3.weightBytesPerToken).toBe(q3.parameterCount * 4);
  });

  it('linear RoPE scaling; other scalings are refused by name', () => {
    const m = syntheticModel({ ...small, arch: 'llama' });
    const withScaling = (type: string): string => {
      const p = tmp();
      const metadata = new Map(m.metadata);
      metadata.set('llama.rope.scaling.type', gv.string(type));
      metadata.set('llama.rope.scaling.factor', gv.f32(4));
      writeGguf(p, { metadata, tensors: m.tensors });
      return p;
    };
    expect(describeModel(readGguf(withScaling('linear'))).ropeScaling).toEqual({ type: 'linear', factor: 4 });
    expect(describeModel(readGguf(withScaling('none'))).ropeScaling).toEqual({ type: 'none', factor: 1 });
    expect(describeError(withScaling('yarn'))).toMatch(
      /'llama.rope.scaling.type' is 'yarn'; redblue supports none and linear/,
    );
  });

  it('names an unsupported architecture and the supported ones', () => {
    const p = tmp();
    writeGguf(p, { metadata: { 'general.architecture': gv.string('gpt2') }, tensors: [] });
    expect(describeError(p)).toMatch(
      /architecture 'gpt2' is not supported; redblue runs llama, qwen2, qwen3/,
    );
  });

  it('quotes a damaged architecture name with its control characters escaped', () => {
    // Found by test/fuzz/gguf.test.ts: a zeroed byte made 'llama' '\0lama', printed raw.
    const p = tmp();
    writeGguf(p, { metadata: { 'general.architecture': gv.string('\u0000lama\u001b[2J') }, tensors: [] });
    expect(describeError(p)).toMatch(/architecture '\\x00lama\\x1b\[2J' is not supported/);
  });

  it('names a missing tensor, a wrong shape, a missing key', () => {
    expect(
      describeError(
        edited({ ...small, arch: 'qwen2' }, (ts) => ts.filter((t) => t.name !== 'blk.1.attn_v.bias')),
      ),
    ).toMatch(/tensor 'blk.1.attn_v.bias' \(n_head_kv·head_dim, shape \[32\]\) is missing/);
    expect(
      describeError(
        edited({ ...small, arch: 'llama' }, (ts) =>
          ts.map((t) =>
            t.name === 'blk.0.ffn_up.weight' ? { ...t, ne: [64, 64], data: new Uint8Array(64 * 64 * 4) } : t,
          ),
        ),
      ),
    ).toMatch(/tensor 'blk.0.ffn_up.weight' has shape \[64, 64\], expected \[64, 96\] \(n_embd × n_ff\)/);
    const m = syntheticModel({ ...small, arch: 'llama' });
    const p = tmp();
    writeGguf(p, {
      metadata: new Map(m.metadata.filter(([k]) => k !== 'llama.attention.layer_norm_rms_epsilon')),
      tensors: m.tensors,
    });
    expect(describeError(p)).toMatch(
      /metadata key 'llama.attention.layer_norm_rms_epsilon' \(f32\) is missing/,
    );
  });
});
