// Model shapes the planner tests split without a file.
import type { ModelShape } from '../../planner/model-split.js';

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
