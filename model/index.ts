// The model room: GGUF models described for tensor-parallel generation.
//  1. gguf/ : the ggml type table (types.ts), typed metadata values (value.ts), the header reader
//     (read.ts: every count, type, shape and offset checked, positional reads only) and the
//     version-3 writer (write.ts: tensor data streamed).
export * from './gguf/types.js';
export * from './gguf/value.js';
export * from './gguf/read.js';
export * from './gguf/write.js';
