// Model shapes the tests use: ones the planner splits without a file, and small files to write.
import type { ModelShape } from '../../planner/model-split.js';
import type { SynthOptions } from '../../model/synth.js';

/** A llama file small enough to write and load in well under a second; q8_0 cuts on 32-element blocks. */
export const SMALL_LLAMA: SynthOptions = {
  arch: 'llama',
  vocab: 'llama2',
  nLayer: 2,
  nEmbd: 64,
  nHead: 4,
  nHeadKv: 2,
  nFf: 128,
  nCtx: 256,
  types: { default: 'q8_0' },
};

/** TinyLlama 1.1B in Q4_0: 22 layers, 2048 wide, 32 heads over 4 KV heads, n_ff 5632. */
export function tinyLlamaQ4_0(): ModelShape {
  const layer = {
    attnQ: 'q4_0',
    attnK: 'q4_0',
    attnV: 'q4_0',
    attnOutput: 'q4_0',
    ffnGate: 'q4_0',
    ffnUp: 'q4_0',
    ffnDown: 'q4_0',
  } as const;
  return {
    nLayer: 22,
    nEmbd: 2048,
    nHead: 32,
    nHeadKv: 4,
    headDim: 64,
    nFf: 5632,
    nVocab: 32000,
    tiedEmbeddings: false,
    qkvBias: false,
    qkNorm: false,
    tokenEmbd: 'q4_0',
    output: 'q4_0',
    layers: Array.from({ length: 22 }, () => ({ ...layer })),
  };
}
