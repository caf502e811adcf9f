// Runs before every test file: llama.cpp, once loaded, stays loaded until the file's process
// ends (bench/llama-reference.ts keepLlamaLoaded), so that each reference a test opens does not
// load it again.
import { keepLlamaLoaded } from '../../bench/llama-reference.js';

keepLlamaLoaded();
