// Synthetic models load in llama.cpp (node-llama-cpp 3.21.1, the reference), for every arch and
// vocabulary, and llama.cpp tokenizes text into the same ids as the vocabulary package's own
// encoder, so the tokenizer metadata is what llama.cpp expects.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Arch } from '../../model/arch.js';
import type { GgmlTypeName } from '../../model/gguf/types.js';
import { describeModel } from '../../model/arch.js';
import { readGguf } from '../../model/gguf/read.js';
import { writeSyntheticModel } from '../../model/synth.js';
import { loadVocab, type VocabKind } from '../../model/vocab.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-synth-'));
let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
afterAll(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

// No multi-digit numbers: the 'qwen2' vocabulary is Llama 3's with Qwen2's pre-tokenizer.
const TEXTS = [
  'hello',
  'Hello world, this is a test of the tokenizer.',
  '  leading spaces and\nnew lines\ttabs',
  'Ünïcödé façade — naïve café 🦙 日本語',
];

const cases: [Arch, VocabKind, GgmlTypeName, boolean][] = [
  ['llama', 'llama2', 'f32', false],
  ['llama', 'llama3', 'f16', true],
  ['qwen2', 'qwen2', 'q8_0', false],
  ['qwen3', 'qwen2', 'q4_0', true],
];

describe('synthetic models in llama.cpp', () => {
  for (const [arch, vocabKind, type, tied] of cases) {
    it(`${arch} with the ${vocabKind} vocabulary, ${type} weights${tied ? ', tied output' : ''}`, async () => {
      const path = join(dir, `${arch}-${vocabKind}.gguf`);
      writeSyntheticModel(path, {
        arch,
        vocab: vocabKind,
        nLayer: 2,
        nEmbd: 64,
        nHead: 4,
        nHeadKv: 2,
        nFf: 128,
        nCtx: 256,
        types: { default: type },
        tied,
        ropeFreqs: vocabKind === 'llama3',
      });
      const info = describeModel(readGguf(path));
      const vocab = loadVocab(vocabKind);
      expect(info.nVocab).toBe(vocab.tokens.length);
      const model = await llama.loadModel({ modelPath: path });
      try {
        expect(model.fileInfo.metadata.general.architecture).toBe(arch);
        expect(model.tokens.bos).toBe(vocab.bos);
        expect(model.tokens.eos).toBe(vocab.eos);
        const context = await model.createContext({ contextSize: 128 });
        await context.dispose();
        for (const text of TEXTS) expect([...model.tokenize(text)], text).toEqual(vocab.encode(text));
      } finally {
        await model.dispose();
      }
    });
  }
});
