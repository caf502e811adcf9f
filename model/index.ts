// The model room: GGUF models described for tensor-parallel generation.
//  1. gguf/ : the ggml type table (types.ts), typed metadata values (value.ts), the header reader
//     (read.ts: every count, type, shape and offset checked, positional reads only) and the
//     version-3 writer (write.ts: tensor data streamed).
//  2. arch.ts: describeModel(gguf) → ModelInfo: llama / qwen2 / qwen3 hyperparameters with
//     llama.cpp's defaults, every tensor by role checked for shape and type, byte figures.
//  3. vocab.ts + synth.ts: synthetic models (random weights scaled to keep activations O(1) and
//     logits peaked, real Llama 2 / Llama 3 vocabularies) that llama.cpp loads, for tests and the demo.
//  4. The split across ranks is planned in planner/model-split.ts (pure): KV-head groups, n_ff
//     slices on block boundaries, vocabulary rows.
//  5. tokenizer/: createTokenizer(metadata) → text ↔ tokens exactly as llama.cpp (SentencePiece and
//     byte-level BPE with the llama3 / qwen2 / gpt-2 pre-tokenizers), a streaming decoder.
//  6. sampling.ts: llama.cpp's sampler chain (penalties, top-k, top-p, min-p, temperature) with a
//     seeded generator of our own, so a seed gives the same text in every process.
//  7. presets.ts: shapes of synthetic models (tiny, demo, TinyLlama) and the demo model's file.
//  8. lookup.ts: prompt lookup, drafts of the next tokens copied from the context (generate --lookup)
//     or from texts served before (NgramCache: serve --lookup-shared).
//  9. chat.ts: chat prompts from the file's Jinja template; tool-calls.ts: the functions a chat may
//     call, shown to templates that do not know them, and the calls read back from the answer.
// 10. json-constraint.ts: JSON mode and JSON schemas as a byte automaton the sampler consults;
//     regex.ts: a schema's `pattern` and `format` as DFAs over code points, built as they are walked.
// Running a model (loading the split on the executors, the generation loop) is the coordinator's
// (executor/coordinator/generate.ts); the forward pass itself is native (native/src/model/).
export * from './gguf/types.js';
export * from './gguf/value.js';
export * from './gguf/read.js';
export * from './gguf/write.js';
export * from './arch.js';
export * from './vocab.js';
export * from './synth.js';
export * from './tokenizer/index.js';
export * from './sampling.js';
export * from './presets.js';
export * from './lookup.js';
