// Real vocabularies for synthetic models, from the npm tokenizer packages, in the form llama.cpp's
// convert_hf_to_gguf.py writes them (tokenizer.ggml.*), plus each package's own encoder so tests
// can check that llama.cpp tokenizes a synthetic model's text the same way.
//  - 'llama2': Llama 2's SentencePiece vocabulary (llama-tokenizer-js). The package keeps the
//    merges, not the SentencePiece scores; a token's score here is minus the rank of the first
//    merge that makes it, which gives llama.cpp's score-driven SPM merging the package's order.
//  - 'llama3': Llama 3's byte-level BPE vocabulary and merges (llama3-tokenizer-js), pre 'llama-bpe'.
//  - 'qwen2': no Qwen vocabulary package is installed, so this is the Llama 3 vocabulary with
//    Qwen2's pre-tokenizer name ('qwen2'), no BOS added, as Qwen2 files have. The two
//    pre-tokenizers differ only on digit runs (Qwen2 splits every digit; Llama 3 up to three),
//    so texts without multi-digit numbers tokenize the same as with the package's encoder.
import { createRequire } from 'node:module';
import type LlamaTokenizerModule from 'llama-tokenizer-js';
import type Llama3TokenizerModule from 'llama3-tokenizer-js';
import { gv, type GgufValue } from './gguf/value.js';

// The packages take ~0.7 s to load (their vocabularies are baked into the code): loaded on first
// use, not by every command that imports the model room. require() of an ES module: Node ≥ 20.19.
const requireEsm = createRequire(import.meta.url);
const tokenizerPackage = <T>(name: string): T => (requireEsm(name) as { default: T }).default;

export type VocabKind = 'llama2' | 'llama3' | 'qwen2';
export const VOCAB_KINDS: readonly VocabKind[] = ['llama2', 'llama3', 'qwen2'];

/** llama.cpp's llama_token_type / gguf TokenType. */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface Vocab {
  kind: VocabKind;
  model: 'llama' | 'gpt2';
  pre: string;
  tokens: string[];
  tokenTypes: number[];
  scores?: number[];
  merges?: string[];
  bos: number;
  eos: number;
  unk?: number;
  addBos: boolean;
  /** The package's own encoding of text, without BOS/EOS. */
  encode(text: string): number[];
}

function llama2(): Vocab {
  const llamaTokenizer = tokenizerPackage<typeof LlamaTokenizerModule>('llama-tokenizer-js');
  const tokens = llamaTokenizer.vocabById;
  const scores = new Array<number>(tokens.length).fill(0);
  const made = new Set<number>();
  for (const [pair, rank] of llamaTokenizer.merges) {
    const id = llamaTokenizer.vocabByString.get(pair.replace(' ', ''));
    if (id !== undefined && !made.has(id)) {
      made.add(id);
      scores[id] = -rank;
    }
  }
  // Single characters are never made by a merge: below every merged token, in id order.
  const floor = -2 * llamaTokenizer.merges.size - 10;
  const tokenTypes = tokens.map((t, id) => {
    if (id === 0) return TOKEN_TYPE.unknown;
    if (id === 1 || id === 2) return TOKEN_TYPE.control;
    if (/^<0x[0-9A-F]{2}>$/.test(t)) return TOKEN_TYPE.byte;
    if (!made.has(id)) scores[id] = floor - id;
    return TOKEN_TYPE.normal;
  });
  return {
    kind: 'llama2',
    model: 'llama',
    pre: 'default',
    tokens,
    tokenTypes,
    scores,
    bos: 1,
    eos: 2,
    unk: 0,
    addBos: true,
    encode: (text) => llamaTokenizer.encode(text, false, true),
  };
}

function llama3(kind: 'llama3' | 'qwen2'): Vocab {
  const llama3Tokenizer = tokenizerPackage<typeof Llama3TokenizerModule>('llama3-tokenizer-js');
  const tokens = llama3Tokenizer.vocabById;
  const firstSpecial = tokens.indexOf('<|begin_of_text|>');
  const tokenTypes = tokens.map((_, id) => (id >= firstSpecial ? TOKEN_TYPE.control : TOKEN_TYPE.normal));
  return {
    kind,
    model: 'gpt2',
    pre: kind === 'qwen2' ? 'qwen2' : 'llama-bpe',
    tokens,
    tokenTypes,
    merges: [...llama3Tokenizer.merges.keys()],
    bos: firstSpecial,
    eos: firstSpecial + 1,
    addBos: kind === 'llama3',
    encode: (text) => llama3Tokenizer.encode(text, { bos: false, eos: false }),
  };
}

const cache = new Map<VocabKind, Vocab>();

export function loadVocab(kind: VocabKind): Vocab {
  let v = cache.get(kind);
  if (v === undefined) {
    v = kind === 'llama2' ? llama2() : llama3(kind);
    cache.set(kind, v);
  }
  return v;
}

/** tokenizer.ggml.* as convert_hf_to_gguf.py writes them (SentencePiece or gpt2 BPE). */
export function vocabMetadata(v: Vocab): [string, GgufValue][] {
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', gv.string(v.model)],
    ['tokenizer.ggml.pre', gv.string(v.pre)],
    ['tokenizer.ggml.tokens', gv.strings(v.tokens)],
  ];
  if (v.scores) out.push(['tokenizer.ggml.scores', gv.numbers('f32', v.scores)]);
  out.push(['tokenizer.ggml.token_type', gv.numbers('i32', v.tokenTypes)]);
  if (v.merges) out.push(['tokenizer.ggml.merges', gv.strings(v.merges)]);
  out.push(['tokenizer.ggml.bos_token_id', gv.u32(v.bos)], ['tokenizer.ggml.eos_token_id', gv.u32(v.eos)]);
  if (v.unk !== undefined) out.push(['tokenizer.ggml.unknown_token_id', gv.u32(v.unk)]);
  out.push(
    ['tokenizer.ggml.add_bos_token', gv.bool(v.addBos)],
    ['tokenizer.ggml.add_eos_token', gv.bool(false)],
  );
  return out;
}
