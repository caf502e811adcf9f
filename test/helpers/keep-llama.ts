// Runs before every test file: llama.cpp, once loaded, stays loaded until the file's process
// ends (bench/llama-reference.ts keptLoaded), so that each reference a test opens does not
// load it again. A mark on the global object, not an import: importing llama-reference here cost
// every test file 0.2 s (its imports, transformed afresh in each file's fork).
(globalThis as Record<symbol, unknown>)[Symbol.for('redblue.keepLlamaLoaded')] = true;
