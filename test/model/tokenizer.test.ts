// The tokenizers against llama.cpp itself (node-llama-cpp loads vocab-only GGUF files written
// from real vocabularies: Llama 2 SentencePiece, Llama 3 BPE as 'llama-bpe' and as 'qwen2') and
// against the two npm tokenizers those vocabularies come from; decode round trips; the streaming
// decoder on characters split across tokens; the errors.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import llama2Js from 'llama-tokenizer-js';
import llama3Js from 'llama3-tokenizer-js';
import { getLlama, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../model/gguf/read.js';
import { gv, type GgufValue } from '../../model/gguf/value.js';
import { loadVocab, vocabMetadata, type VocabKind } from '../../model/vocab.js';
import { createTokenizer, TokenizerError, type Tokenizer } from '../../model/tokenizer/index.js';
import { CORPUS, randomTexts } from './corpus.js';
import { writeVocabGguf } from './vocab-gguf.js';

// The real vocabularies of model/vocab.ts (Llama 2 SentencePiece; Llama 3 BPE as 'llama-bpe' and,
// with Qwen2's settings, as 'qwen2'), and the first 20k tokens of the Llama 3 one with GPT-2's,
// SmolLM's, tekken's and the default pre-tokenizer (llama.cpp loads a whole 128k vocabulary in
// about 1.7 s here; the pre-tokenizers need only the common merges).
type Meta = Map<string, GgufValue>;
const metadata = (kind: VocabKind): Meta => new Map(vocabMetadata(loadVocab(kind)));
const withKey = (m: Meta, key: string, v: GgufValue | undefined): Meta => {
  const copy = new Map(m);
  if (v === undefined) copy.delete(key);
  else copy.set(key, v);
  return copy;
};
const meta2 = metadata('llama2');
const meta3 = metadata('llama3');
const metaQwen = metadata('qwen2');
const arrayOf = <T>(m: Meta, key: string): T[] => [...(m.get(key)!.value as T[])];
/**
 * Llama 3's vocabulary cut to its first `n` tokens and its control tokens (renumbered after them),
 * with the merges that stay inside: a real BPE vocabulary that llama.cpp and we load in a tenth of
 * the time, for the pre-tokenizer cases below.
 */
function smallBpe(m: Meta, n: number): Meta {
  const tokens = arrayOf<string>(m, 'tokenizer.ggml.tokens');
  const types = arrayOf<number>(m, 'tokenizer.ggml.token_type');
  const keep = [...tokens.keys()].filter((i) => i < n || types[i] === 3);
  const kept = new Set(keep.map((i) => tokens[i]!));
  const merges = arrayOf<string>(m, 'tokenizer.ggml.merges').filter((x) => {
    const [a, b] = x.split(' ');
    return kept.has(a!) && kept.has(b!) && kept.has(a! + b!);
  });
  const id = (key: string) => keep.indexOf(m.get(key)!.value as number);
  let out = withKey(m, 'tokenizer.ggml.tokens', gv.strings(keep.map((i) => tokens[i]!)));
  out = withKey(
    out,
    'tokenizer.ggml.token_type',
    gv.numbers(
      'i32',
      keep.map((i) => types[i]!),
    ),
  );
  out = withKey(out, 'tokenizer.ggml.merges', gv.strings(merges));
  out = withKey(out, 'tokenizer.ggml.bos_token_id', gv.u32(id('tokenizer.ggml.bos_token_id')));
  out = withKey(out, 'tokenizer.ggml.eos_token_id', gv.u32(id('tokenizer.ggml.eos_token_id')));
  // Given, not detected: llama.cpp takes the first end-of-turn text its hash map yields, and
  // with another vocabulary size that is <|end_of_text|> rather than <|eot_id|>.
  return withKey(out, 'tokenizer.ggml.eot_token_id', gv.u32(keep.indexOf(tokens.indexOf('<|eot_id|>'))));
}
// GPT-2's pre-tokenizer, and those of several passes (llama.cpp's regex lists): SmolLM's (digits,
// then GPT-2's) and the default one older BPE files get, having no tokenizer.ggml.pre.
const metaSmall = smallBpe(meta3, 20_000);
const metaGpt2 = withKey(metaSmall, 'tokenizer.ggml.pre', gv.string('gpt-2'));
const metaSmol = withKey(metaSmall, 'tokenizer.ggml.pre', gv.string('smollm'));
const metaDefault = withKey(metaSmall, 'tokenizer.ggml.pre', undefined);
// Mistral's tekken pre-tokenizer (its own 131k vocabulary is not in an npm package here: Llama 3's
// merges stand in; the regex and the flags are what is tested).
const metaTekken = withKey(metaSmall, 'tokenizer.ggml.pre', gv.string('tekken'));
// Variants for paths the real files do not take. SentencePiece with a token that holds '▁' after a
// character ('o▁w', scored above all), so merges cross words and the text is not cut at spaces.
// Llama 3 (its first 20k tokens) with user-defined tokens, which llama.cpp splits out even when special tokens are not
// parsed: one that looks special and one that is a plain word ('Hello').
const metaCross = (() => {
  const tokens = arrayOf<string>(meta2, 'tokenizer.ggml.tokens');
  const scores = arrayOf<number>(meta2, 'tokenizer.ggml.scores');
  tokens[31999] = 'o\u2581w';
  scores[31999] = 0;
  const m = withKey(meta2, 'tokenizer.ggml.tokens', gv.strings(tokens));
  return withKey(m, 'tokenizer.ggml.scores', gv.numbers('f32', scores));
})();
const metaUser = (() => {
  const types = arrayOf<number>(metaSmall, 'tokenizer.ggml.token_type');
  const tokens = arrayOf<string>(metaSmall, 'tokenizer.ggml.tokens');
  for (const t of ['<|reserved_special_token_5|>', 'Hello']) types[tokens.indexOf(t)] = 4;
  return withKey(metaSmall, 'tokenizer.ggml.token_type', gv.numbers('i32', types));
})();
const llama2 = createTokenizer(meta2);
const llama3 = createTokenizer(meta3);
const qwen2 = createTokenizer(metaQwen);
const gpt2 = createTokenizer(metaGpt2);

const RANDOM = randomTexts(1000, 20261203);
const ALL = [...CORPUS, ...RANDOM];
// A long mixed text: merges over thousands of symbols, every pre-tokenizer branch many times.
const LONG = [...CORPUS, ...RANDOM.slice(0, 300)].join(' ').slice(0, 12_000);

// node-llama-cpp first tries a full load to estimate memory; on a vocab-only file that attempt
// fails (no tensors) before it loads the vocabulary alone. Those two llama.cpp messages are
// expected and dropped here; node-llama-cpp's own "Failed simulating model resource usage"
// warning (printed by it, not by llama.cpp) is the same expected event.
const EXPECTED_LOAD_NOISE = /missing tensor 'token_embd\.weight'|failed to load model/;

describe('against llama.cpp (node-llama-cpp, vocab-only GGUF files)', () => {
  let dir = '';
  let llama: Llama;
  const models = new Map<string, LlamaModel>();
  const cases: [string, Tokenizer, Meta][] = [
    ['llama2-spm', llama2, meta2],
    ['llama3-bpe', llama3, meta3],
    ['qwen2-bpe', qwen2, metaQwen],
    ['gpt2-bpe', gpt2, metaGpt2],
    ['smollm-bpe', createTokenizer(metaSmol), metaSmol],
    ['tekken-bpe', createTokenizer(metaTekken), metaTekken],
    ['default-bpe', createTokenizer(metaDefault), metaDefault],
    ['spm-cross-word-token', createTokenizer(metaCross), metaCross],
    ['bpe-user-defined', createTokenizer(metaUser), metaUser],
  ];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redblue-tokenizer-'));
    llama = await getLlama({
      gpu: false,
      build: 'never',
      logger: (level, message) => {
        if (!EXPECTED_LOAD_NOISE.test(message) && /error|warn/.test(level)) console.error(message);
      },
    });
    for (const [name, , meta] of cases) {
      const path = join(dir, `${name}.gguf`);
      writeVocabGguf(path, meta);
      models.set(name, await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 }));
    }
  }, 120_000);

  afterAll(async () => {
    for (const m of models.values()) await m.dispose();
    await llama?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, tok] of cases) {
    it(`${name}: the same tokens for every text, special tokens parsed or not`, () => {
      const model = models.get(name)!;
      const diffs: string[] = [];
      for (const text of [...ALL, LONG]) {
        for (const parseSpecial of [false, true]) {
          // node-llama-cpp tokenizes with add_special = false.
          const ref = model.tokenize(text, parseSpecial);
          const got = tok.encode(text, { addBos: false, addEos: false, parseSpecial });
          if (JSON.stringify(ref) !== JSON.stringify(got)) {
            diffs.push(`${JSON.stringify(text)} special=${parseSpecial}: llama.cpp ${ref} ours ${got}`);
          }
        }
      }
      expect(diffs).toEqual([]);
    });

    it(`${name}: the same text back from llama.cpp's tokens, control tokens rendered or not`, () => {
      const model = models.get(name)!;
      const diffs: string[] = [];
      for (const text of [...ALL, LONG]) {
        const ids = model.tokenize(text, true);
        for (const withBos of [false, true]) {
          const seq = withBos && tok.bos !== null ? [tok.bos, ...ids] : ids;
          for (const special of [false, true]) {
            const ref = model.detokenize(seq as Token[], special);
            const got = tok.decode(seq, { special });
            if (ref !== got) diffs.push(`${JSON.stringify(text)} bos=${withBos} special=${special}`);
          }
        }
      }
      expect(diffs).toEqual([]);
    });
  }

  it('reads the same vocabulary through the GGUF reader (typed values) as from the plain object', () => {
    for (const [name, tok] of cases) {
      const fromFile = createTokenizer(readGguf(join(dir, `${name}.gguf`)).metadata);
      expect(fromFile.vocabSize).toBe(tok.vocabSize);
      for (const text of CORPUS) {
        expect(fromFile.encode(text, { parseSpecial: true }), `${name} ${JSON.stringify(text)}`).toEqual(
          tok.encode(text, { parseSpecial: true }),
        );
      }
    }
  });

  it('agrees with llama.cpp on BOS, EOS and the end-of-generation tokens', () => {
    for (const [name, tok] of cases) {
      const model = models.get(name)!;
      expect(tok.bos).toBe(model.tokens.bos);
      expect(tok.eos).toBe(model.tokens.eos);
      expect(tok.eot).toBe(model.tokens.eot);
      for (let id = 0; id < tok.vocabSize; id++) {
        if (tok.isEog(id) !== model.isEogToken(id as Token))
          throw new Error(`${name}: token ${id} end-of-generation differs`);
      }
    }
  });
});

describe('against the npm tokenizers the vocabularies come from', () => {
  it('Llama 2 (SentencePiece): the same tokens as llama-tokenizer-js, BOS and space prefix included', () => {
    // llama-tokenizer-js has no special-token parsing and always adds the prefix space, which is
    // what llama.cpp does for a text with no special tokens in it.
    for (const text of ALL.filter((t) => t.length > 0)) {
      expect(llama2.encode(text), JSON.stringify(text)).toEqual(llama2Js.encode(text));
    }
  });

  it('Llama 3 (BPE): the same tokens as llama3-tokenizer-js, which always parses special tokens', () => {
    // Known difference: the package's regex uses JavaScript's \s, which has U+FEFF and lacks
    // U+0085; llama.cpp's (and ours) is Unicode's White_Space, so texts with those two differ.
    const diffs: string[] = [];
    for (const text of ALL.filter((t) => !/[\ufeff\u0085]/u.test(t))) {
      const ours = llama3.encode(text, { parseSpecial: true });
      const theirs = llama3Js.encode(text, { bos: true, eos: false });
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) diffs.push(JSON.stringify(text));
    }
    expect(diffs).toEqual([]);
    expect(llama3.encode("a\ufeff's", { addBos: false })).not.toEqual(
      llama3Js.encode("a\ufeff's", { bos: false, eos: false }),
    );
  });
});

describe('behaviour', () => {
  const textOf = (tok: Tokenizer, ids: number[]) => ids.map((id) => tok.tokenText(id));

  it('llama3 groups digits by three, qwen2 splits every digit', () => {
    expect(textOf(llama3, llama3.encode('1234567', { addBos: false }))).toEqual(['123', '456', '7']);
    expect(textOf(qwen2, qwen2.encode('1234567', { addBos: false }))).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
    ]);
  });

  it('adds BOS (and the space prefix for SentencePiece) by default, as llama.cpp with add_special', () => {
    expect(llama2.encode('Hello')).toEqual([1, 15043]);
    expect(llama2.encode('Hello', { addBos: false })).toEqual([15043]);
    expect(llama2.encode('Hello', { addEos: true })).toEqual([1, 15043, 2]);
    expect(llama3.encode('Hello')).toEqual([128000, 9906]);
    // qwen2 adds no BOS by default (nor do Qwen2 files), unless the file says so.
    expect(qwen2.encode('Hello')).toEqual([9906]);
    const noKey = withKey(metaQwen, 'tokenizer.ggml.add_bos_token', undefined);
    expect(createTokenizer(noKey).encode('Hello')).toEqual([9906]);
    const withBos = withKey(metaQwen, 'tokenizer.ggml.add_bos_token', gv.bool(true));
    expect(createTokenizer(withBos).encode('Hello')).toEqual([128000, 9906]);
  });

  it('matches control tokens only with parseSpecial', () => {
    const text = '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>';
    const parsed = llama3.encode(text, { addBos: false, parseSpecial: true });
    expect(parsed).toEqual([128006, 882, 128007, 271, 13347, 128009]);
    expect(llama3.encode(text, { addBos: false })).not.toContain(128009);
    expect(llama3.decode(parsed)).toBe('user\n\nHi');
    expect(llama3.decode(parsed, { special: true })).toBe(text);
    // SentencePiece puts a space prefix after a special token too (llama.cpp, not Hugging Face).
    expect(llama2.encode('<s>Hi', { addBos: false, parseSpecial: true })).toEqual([1, 6324]);
  });

  it('merges across words when a token spans a space, and splits out user-defined tokens always', () => {
    expect(createTokenizer(metaCross).encode('go west', { addBos: false })).toContain(31999);
    const user = createTokenizer(metaUser);
    // ' Hello' is one token ('ĠHello') normally; with 'Hello' user-defined the space stands alone.
    expect(llama3.encode(' Hello', { addBos: false })).toHaveLength(1);
    expect(user.encode(' Hello', { addBos: false })).toEqual([220, 9906]);
  });

  it('knows the end-of-generation tokens', () => {
    expect(llama3.eot).toBe(128009);
    for (const id of [128001, 128008, 128009]) expect(llama3.isEog(id)).toBe(true);
    expect(llama3.isEog(128000)).toBe(false);
    expect([...llama2.eogIds]).toEqual([2]);
  });

  it('round-trips text through encode and decode', () => {
    for (const text of ALL) {
      const clean = text.replace(/\p{Cs}/gu, '\uFFFD');
      // SentencePiece renders '▁' in the text as a space, as llama.cpp does.
      if (!text.includes('\u2581')) {
        expect(llama2.decode(llama2.encode(text, { addBos: false })), JSON.stringify(text)).toBe(clean);
      }
      expect(qwen2.decode(qwen2.encode(text, { addBos: false })), JSON.stringify(text)).toBe(clean);
      // llama3 cleans " ?", " 's" ... on the way back (clean_spaces), as llama.cpp does.
      if (!/ [?!.,']/.test(text))
        expect(llama3.decode(llama3.encode(text)), JSON.stringify(text)).toBe(clean);
    }
  });

  it('falls back to byte tokens for characters outside the SentencePiece vocabulary', () => {
    const ids = llama2.encode('🎉', { addBos: false });
    expect(textOf(llama2, ids)).toEqual(['▁', '<0xF0>', '<0x9F>', '<0x8E>', '<0x89>']);
    expect(llama2.decode(ids)).toBe('🎉');
  });
});

describe('streaming decoder', () => {
  it('holds back a character split across byte tokens until it is whole', () => {
    const ids = llama2.encode('a🎉b', { addBos: false });
    const s = llama2.streamDecoder();
    const out = ids.map((id) => s.push(id));
    expect(out).toEqual([' a', '', '', '', '🎉', 'b']);
    expect(s.flush()).toBe('');
  });

  it('never emits part of a character, for any text and either vocabulary', () => {
    for (const tok of [llama2, llama3]) {
      let split = 0;
      for (const text of ALL) {
        const s = tok.streamDecoder();
        let all = '';
        for (const id of tok.encode(text, { addBos: false })) {
          const part = s.push(id);
          if (part === '') split++;
          expect(part).not.toContain('\uFFFD');
          all += part;
        }
        all += s.flush();
        // Pieces as generated: SentencePiece's prefix space stays, '▁' is a space.
        const expected = tok.kind === 'spm' && text !== '' ? ' ' + text.replaceAll('\u2581', ' ') : text;
        expect(all).toBe(expected);
      }
      expect(split).toBeGreaterThan(0); // some characters did span tokens
    }
  });

  it('flushes an incomplete character as U+FFFD', () => {
    const s = llama2.streamDecoder();
    expect(s.push(llama2.encode('🎉', { addBos: false })[1]!)).toBe('');
    expect(s.flush()).toBe('\uFFFD');
  });
});

describe('errors', () => {
  it('names an unknown tokenizer model and the supported ones', () => {
    expect(() => createTokenizer(withKey(meta2, 'tokenizer.ggml.model', gv.string('t5')))).toThrow(
      /'t5' is not supported; supported: 'llama'.*'gpt2'/,
    );
    expect(() => createTokenizer({})).toThrow(TokenizerError);
  });

  it('refuses a special token id that is not a whole number (found by test/fuzz/gguf.test.ts)', () => {
    // Was taken as the BOS id: encode() then began with the token 1.4e-45.
    const meta = withKey(meta2, 'tokenizer.ggml.bos_token_id', gv.f32(1.401298464324817e-45));
    expect(() => createTokenizer(meta)).toThrow(
      /tokenizer.ggml.bos_token_id must be a whole number \(a token id\), got 1.401298464324817e-45/,
    );
    // A whole number out of range is ignored, as llama.cpp does (the default id stays).
    expect(createTokenizer(withKey(meta2, 'tokenizer.ggml.bos_token_id', gv.u32(10 ** 9))).bos).toBe(1);
  });

  it('names an unsupported pre-tokenizer and lists the supported ones', () => {
    expect(() => createTokenizer(withKey(meta3, 'tokenizer.ggml.pre', gv.string('deepseek-coder')))).toThrow(
      /'deepseek-coder' is not supported; supported pre-tokenizers: .*'llama-bpe'.*'qwen2'/,
    );
    expect(() => createTokenizer(withKey(meta3, 'tokenizer.ggml.pre', gv.string('command-r')))).toThrow(
      /'command-r' is not supported; .*'tekken'.*'smollm'.*'default'/,
    );
  });

  it('rejects a BPE vocabulary without merges and ids outside the vocabulary', () => {
    expect(() => createTokenizer(withKey(meta3, 'tokenizer.ggml.merges', undefined))).toThrow(
      /merges is missing/,
    );
    expect(() => llama3.decode([128256])).toThrow(/outside the vocabulary/);
  });

  it('reads plain values as well as typed GGUF values', () => {
    const plain = Object.fromEntries([...meta2].map(([k, v]) => [k, v.value]));
    expect(createTokenizer(plain).encode('Hello world')).toEqual(llama2.encode('Hello world'));
  });
});
