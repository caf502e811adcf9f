// A tiny llama GGUF (f32, random weights, LLaMA's real 32000-token SentencePiece vocabulary from
// llama-tokenizer-js) for the llama.cpp reference tests. model/synth.ts will make these properly;
// this is the least that llama.cpp loads and runs.
import llamaTokenizer from 'llama-tokenizer-js';
import { Rng } from '../../model/sampling.js';
import { gv, type GgufValue } from '../../model/gguf/value.js';
import { writeGguf, type GgufTensorInput } from '../../model/gguf/write.js';

export interface TinyLlama {
  embd: number;
  heads: number;
  kvHeads: number;
  layers: number;
  ff: number;
  ctx: number;
  /** No output.weight: llama.cpp then projects with token_embd.weight. */
  tied: boolean;
}

export const TINY: TinyLlama = { embd: 64, heads: 4, kvHeads: 2, layers: 2, ff: 128, ctx: 1024, tied: false };

export function writeTinyLlama(path: string, h: TinyLlama = TINY, seed = 1): number {
  const tokens = llamaTokenizer.vocabById;
  const n = tokens.length;
  // SentencePiece's llama vocabulary: <unk>, <s>, </s>, 256 byte tokens, then pieces in merge order.
  const types = tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1));
  const scores = tokens.map((_, i) => (i < 259 ? 0 : -(i - 259)));
  const arch = 'llama';
  const metadata: Record<string, GgufValue> = {
    'general.architecture': gv.string(arch),
    'general.name': gv.string('redblue tiny llama'),
    'general.file_type': gv.u32(0),
    [`${arch}.context_length`]: gv.u32(h.ctx),
    [`${arch}.embedding_length`]: gv.u32(h.embd),
    [`${arch}.block_count`]: gv.u32(h.layers),
    [`${arch}.feed_forward_length`]: gv.u32(h.ff),
    [`${arch}.attention.head_count`]: gv.u32(h.heads),
    [`${arch}.attention.head_count_kv`]: gv.u32(h.kvHeads),
    [`${arch}.attention.layer_norm_rms_epsilon`]: gv.f32(1e-5),
    [`${arch}.rope.dimension_count`]: gv.u32(h.embd / h.heads),
    [`${arch}.rope.freq_base`]: gv.f32(10000),
    [`${arch}.vocab_size`]: gv.u32(n),
    'tokenizer.ggml.model': gv.string('llama'),
    'tokenizer.ggml.tokens': gv.strings(tokens),
    'tokenizer.ggml.scores': gv.numbers('f32', scores),
    'tokenizer.ggml.token_type': gv.numbers('i32', types),
    'tokenizer.ggml.bos_token_id': gv.u32(1),
    'tokenizer.ggml.eos_token_id': gv.u32(2),
    'tokenizer.ggml.unknown_token_id': gv.u32(0),
    'tokenizer.ggml.add_bos_token': gv.bool(true),
    'tokenizer.ggml.add_eos_token': gv.bool(false),
  };
  const rng = new Rng(seed);
  const kv = (h.embd / h.heads) * h.kvHeads;
  const w = 1 / Math.sqrt(h.embd);
  const f32 =
    (ne: number[], scale: number, offset = 0) =>
    (): Uint8Array => {
      const a = new Float32Array(ne.reduce((x, y) => x * y, 1));
      for (let i = 0; i < a.length; i++) a[i] = offset + (rng.nextFloat() * 2 - 1) * scale;
      return new Uint8Array(a.buffer);
    };
  const tensors: GgufTensorInput[] = [
    { name: 'token_embd.weight', ne: [h.embd, n], type: 'f32', data: f32([h.embd, n], 1) },
    { name: 'output_norm.weight', ne: [h.embd], type: 'f32', data: f32([h.embd], 0.1, 1) },
  ];
  if (!h.tied)
    tensors.push({ name: 'output.weight', ne: [h.embd, n], type: 'f32', data: f32([h.embd, n], w) });
  for (let l = 0; l < h.layers; l++) {
    const t = (name: string, ne: number[], scale: number, offset = 0): void => {
      tensors.push({ name: `blk.${l}.${name}.weight`, ne, type: 'f32', data: f32(ne, scale, offset) });
    };
    t('attn_norm', [h.embd], 0.1, 1);
    t('attn_q', [h.embd, h.embd], w);
    t('attn_k', [h.embd, kv], w);
    t('attn_v', [h.embd, kv], w);
    t('attn_output', [h.embd, h.embd], w);
    t('ffn_norm', [h.embd], 0.1, 1);
    t('ffn_gate', [h.embd, h.ff], w);
    t('ffn_up', [h.embd, h.ff], w);
    t('ffn_down', [h.ff, h.embd], 1 / Math.sqrt(h.ff));
  }
  return writeGguf(path, { metadata, tensors });
}
