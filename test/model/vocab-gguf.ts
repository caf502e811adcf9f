// Vocab-only GGUF files for llama.cpp: the tokenizer keys of a vocabulary plus the few llama
// hyperparameters llama.cpp reads before it stops at vocab_only, and no tensors. node-llama-cpp
// loads them with { vocabOnly: true } and runs llama.cpp's own tokenizer on them.
import { writeGguf } from '../../model/gguf/write.js';
import type { GgufValue } from '../../model/gguf/value.js';

function typed(key: string, v: unknown): GgufValue {
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'boolean') return { type: 'bool', value: v };
  if (typeof v === 'number') return { type: 'u32', value: v };
  if (Array.isArray(v)) {
    if (key.endsWith('.scores')) return { type: 'array', itemType: 'f32', value: v as number[] };
    if (key.endsWith('.token_type')) return { type: 'array', itemType: 'i32', value: v as number[] };
    return { type: 'array', itemType: 'string', value: v as string[] };
  }
  throw new Error(`no GGUF type for ${key}`);
}

export function writeVocabGguf(path: string, tokenizer: Record<string, unknown>): void {
  const metadata: Record<string, GgufValue> = {
    'general.architecture': { type: 'string', value: 'llama' },
    'general.name': { type: 'string', value: 'vocab-only test file' },
    'llama.context_length': { type: 'u32', value: 2048 },
    'llama.embedding_length': { type: 'u32', value: 64 },
    'llama.block_count': { type: 'u32', value: 1 },
    'llama.feed_forward_length': { type: 'u32', value: 128 },
    'llama.attention.head_count': { type: 'u32', value: 4 },
    'llama.attention.head_count_kv': { type: 'u32', value: 4 },
    'llama.attention.layer_norm_rms_epsilon': { type: 'f32', value: 1e-5 },
    'llama.rope.dimension_count': { type: 'u32', value: 16 },
  };
  for (const [k, v] of Object.entries(tokenizer)) metadata[k] = typed(k, v);
  writeGguf(path, { metadata, tensors: [] });
}
