// createTokenizer(metadata): text ↔ tokens for a GGUF vocabulary, token for token what llama.cpp
// (llama-vocab.cpp, unicode.cpp) gives. How it fits together:
//  1. vocab.ts reads the tokenizer.ggml.* keys into one Vocab: texts, scores, attributes, special
//     ids (with llama.cpp's defaults and detection by text), end-of-generation set, add_bos /
//     add_eos / add_space_prefix, clean_spaces, ignore_merges.
//  2. encode first cuts the text around special tokens (tokenizer_st_partition: longest first;
//     control and unknown tokens only with parseSpecial, user-defined ones always), then each
//     text fragment goes to spm.ts (SentencePiece: score-ordered merges, byte fallback, ' ' → '▁'
//     and a space prefix at the start and after each special token) or bpe.ts (byte-level BPE:
//     pre-tokenizer regex, GPT-2 byte map, rank-ordered merges).
//  3. detokenize.ts: token_to_piece (bytes), detokenize (first-token space strip, clean_spaces)
//     and a streaming decoder that only ever returns whole UTF-8 characters.
import { BpeTokenizer } from './bpe.js';
import { Pieces, detokenizeBytes, streamDecoder, textDecoder, type StreamDecoder } from './detokenize.js';
import { SpmTokenizer } from './spm.js';
import {
  ATTR,
  TokenizerError,
  buildVocab,
  type TokenizerMetadata,
  type Vocab,
  type TokenizerKind,
} from './vocab.js';

export { TokenizerError, type TokenizerKind, type TokenizerMetadata } from './vocab.js';
export type { StreamDecoder } from './detokenize.js';

export interface EncodeOptions {
  /** Prepend BOS; default: the vocabulary's add_bos (llama.cpp's add_special = true). */
  addBos?: boolean;
  /** Append EOS; default: the vocabulary's add_eos. */
  addEos?: boolean;
  /** Match control tokens (<|eot_id|>, <s>, ...) written in the text; default false. */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Render control tokens as their text (llama.cpp's unparse_special); default false: empty. */
  special?: boolean;
}

export interface Tokenizer {
  readonly kind: TokenizerKind;
  /** `tokenizer.ggml.pre` ('' for SentencePiece vocabularies). */
  readonly pre: string;
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number | null;
  readonly eot: number | null;
  /** Tokens that end generation (EOS, EOT, EOM and llama.cpp's list by text). */
  readonly eogIds: ReadonlySet<number>;
  /** Whether encode adds BOS by default. */
  readonly addBos: boolean;
  isEog(id: number): boolean;
  encode(text: string, options?: EncodeOptions): number[];
  /** llama_detokenize: the first token's leading space goes when a space prefix is added. */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** One token's text (token_to_piece); a byte token alone may be part of a character. */
  piece(id: number, options?: DecodeOptions): string;
  pieceBytes(id: number, options?: DecodeOptions): Uint8Array;
  /** The token's text as stored in the vocabulary ('▁' and GPT-2 byte characters included). */
  tokenText(id: number): string;
  /** Pieces concatenated as generated (no first-space strip, no clean-up), whole characters only. */
  streamDecoder(options?: DecodeOptions): StreamDecoder;
}

type Fragment = string | number;

const LONE_SURROGATE = /\p{Cs}/gu;

// tokenizer_st_partition: each special token, longest first, splits every text fragment that
// contains it; fragments already taken by a token stay as they are.
function partition(vocab: Vocab, text: string, parseSpecial: boolean): Fragment[] {
  let fragments: Fragment[] = text.length > 0 ? [text] : [];
  for (const id of vocab.specialTokens) {
    if (!parseSpecial && vocab.attrs[id]! & (ATTR.control | ATTR.unknown)) continue;
    const needle = vocab.texts[id]!;
    if (!fragments.some((f) => typeof f === 'string' && f.includes(needle))) continue;
    const next: Fragment[] = [];
    for (const f of fragments) {
      if (typeof f !== 'string') {
        next.push(f);
        continue;
      }
      let from = 0;
      for (let at = f.indexOf(needle); at >= 0; at = f.indexOf(needle, from)) {
        if (at > from) next.push(f.slice(from, at));
        next.push(id);
        from = at + needle.length;
      }
      if (from < f.length) next.push(f.slice(from));
    }
    fragments = next;
  }
  return fragments;
}

export function createTokenizer(metadata: TokenizerMetadata): Tokenizer {
  const vocab = buildVocab(metadata);
  const pieces = new Pieces(vocab);
  const bpe = vocab.kind === 'bpe' ? new BpeTokenizer(vocab) : null;
  const spm = vocab.kind === 'spm' ? new SpmTokenizer(vocab) : null;
  const decoder = textDecoder();

  const encode = (text: string, options: EncodeOptions = {}): number[] => {
    const addBos = options.addBos ?? vocab.addBos;
    const addEos = options.addEos ?? vocab.addEos;
    // Lone surrogates cannot be UTF-8; llama.cpp receives U+FFFD for them.
    const fragments = partition(vocab, text.replace(LONE_SURROGATE, '\uFFFD'), options.parseSpecial ?? false);
    const out: number[] = [];
    if (addBos) {
      if (vocab.bos === null) throw new TokenizerError('addBos: this vocabulary has no BOS token');
      out.push(vocab.bos);
    }
    // SentencePiece: a space goes before the text at the start and after every special token.
    let prevSpecial = true;
    for (const f of fragments) {
      if (typeof f === 'number') {
        out.push(f);
        prevSpecial = true;
      } else if (bpe) {
        bpe.tokenize(f, out);
      } else if (spm) {
        const prefixed = vocab.addSpacePrefix && prevSpecial ? ' ' + f : f;
        spm.tokenize(prefixed.replaceAll(' ', '\u2581'), out);
        prevSpecial = false;
      }
    }
    if (addEos) {
      if (vocab.eos === null) throw new TokenizerError('addEos: this vocabulary has no EOS token');
      out.push(vocab.eos);
    }
    return out;
  };

  const checkId = (id: number): void => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab.texts.length) {
      throw new TokenizerError(`token id ${id} is outside the vocabulary (0..${vocab.texts.length - 1})`);
    }
  };

  return {
    kind: vocab.kind,
    pre: vocab.pre,
    vocabSize: vocab.texts.length,
    bos: vocab.bos,
    eos: vocab.eos,
    eot: vocab.eot,
    eogIds: vocab.eogIds,
    addBos: vocab.addBos,
    isEog: (id) => vocab.eogIds.has(id),
    encode,
    decode: (ids, options = {}) =>
      decoder.decode(detokenizeBytes(vocab, pieces, ids, options.special ?? false)),
    piece: (id, options = {}) => decoder.decode(pieces.bytes(id, options.special ?? false)),
    pieceBytes: (id, options = {}) => pieces.bytes(id, options.special ?? false).slice(),
    tokenText: (id) => {
      checkId(id);
      return vocab.texts[id]!;
    },
    streamDecoder: (options = {}) => streamDecoder(pieces, options.special ?? false),
  };
}
