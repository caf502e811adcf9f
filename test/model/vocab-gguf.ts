// Vocab-only GGUF files for llama.cpp: a vocabulary's tokenizer keys plus the few llama
// hyperparameters llama.cpp reads before it stops at vocab_only, and no tensors. node-llama-cpp
// loads them with { vocabOnly: true } and runs llama.cpp's own tokenizer on them.
import { writeGguf } from '../../model/gguf/write.js';
import { gv, type GgufValue } from '../../model/gguf/value.js';

export function writeVocabGguf(path: string, tokenizer: ReadonlyMap<string, GgufValue>): void {
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gv.string('llama')],
    ['general.name', gv.string('vocab-only test file')],
    ['llama.context_length', gv.u32(2048)],
    ['llama.embedding_length', gv.u32(64)],
    ['llama.block_count', gv.u32(1)],
    ['llama.feed_forward_length', gv.u32(128)],
    ['llama.attention.head_count', gv.u32(4)],
    ['llama.attention.head_count_kv', gv.u32(4)],
    ['llama.attention.layer_norm_rms_epsilon', gv.f32(1e-5)],
    ['llama.rope.dimension_count', gv.u32(16)],
    ...tokenizer,
  ]);
  writeGguf(path, { metadata, tensors: [] });
}
