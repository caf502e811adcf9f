// Tokens back to text, as llama.cpp's token_to_piece and detokenize: a piece is bytes (a byte
// token is one byte of a character), so text is only made from whole UTF-8 sequences; the
// streaming decoder holds back an incomplete tail until the next token completes it.
import { TextDecoder, TextEncoder } from 'node:util';
import { CHAR_TO_BYTE } from './bpe.js';
import { ATTR, TokenizerError, type Vocab } from './vocab.js';

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

function hexByte(text: string): number {
  return parseInt(text.substr(3, 2), 16) & 0xff; // "<0xNN>"
}

// A BPE token's characters back to its bytes; a character outside GPT-2's map is shown as
// llama.cpp shows it.
function bpeBytes(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const ch of text) {
    const b = CHAR_TO_BYTE.get(ch.codePointAt(0)!);
    if (b !== undefined) {
      bytes.push(b);
      continue;
    }
    const hex = [...utf8.encode(ch)].map((x) => x.toString(16).padStart(2, '0')).join('');
    bytes.push(...utf8.encode(`[UNK_BYTE_0x${hex}${text}]`));
  }
  return Uint8Array.from(bytes);
}

export class Pieces {
  // The pieces of every token as llama.cpp caches them (special = true), made on first use.
  private readonly cache: (Uint8Array | undefined)[];

  constructor(private readonly vocab: Vocab) {
    this.cache = new Array<Uint8Array | undefined>(vocab.texts.length);
  }

  /** token_to_piece: control and unknown tokens are empty unless `special`. */
  bytes(id: number, special: boolean): Uint8Array {
    const attr = this.vocab.attrs[id];
    if (attr === undefined || !Number.isInteger(id)) {
      throw new TokenizerError(
        `token id ${id} is outside the vocabulary (0..${this.vocab.texts.length - 1})`,
      );
    }
    if (!special && attr & (ATTR.unknown | ATTR.control)) return EMPTY;
    let piece = this.cache[id];
    if (piece === undefined) {
      piece = this.make(id, attr);
      this.cache[id] = piece;
    }
    return piece;
  }

  private make(id: number, attr: number): Uint8Array {
    const text = this.vocab.texts[id]!;
    if (attr & (ATTR.unknown | ATTR.control | ATTR.userDefined)) return utf8.encode(text);
    if (attr & ATTR.normal) {
      return this.vocab.kind === 'spm' ? utf8.encode(text.replaceAll('\u2581', ' ')) : bpeBytes(text);
    }
    if (attr & ATTR.byte) return Uint8Array.of(hexByte(text));
    return EMPTY; // unused and undefined tokens render as nothing
  }
}

// llama.cpp's clean_spaces passes over the detokenized bytes, byte for byte: a space before
// ? ! . , goes; " ' " loses both spaces; a space before 's 'm 're 've goes.
function cleanSpaces(text: number[]): number[] {
  const SP = 0x20;
  const QUOTE = 0x27;
  if (text.length === 0) return text;
  // pass 1
  let a: number[] = [text[0]!];
  for (let i = 1; i < text.length; i++) {
    const x = text[i]!;
    if (text[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) a.pop();
    a.push(x);
  }
  // pass 2: the space after the quote is replaced by NUL in place and skipped, so the character
  // after it sees a NUL, not a space, as its predecessor.
  const src = a.slice();
  a = [src[0]!];
  for (let i = 1; i < src.length; i++) {
    const x = src[i]!;
    if (x === QUOTE && i + 1 < src.length && src[i - 1] === SP && src[i + 1] === SP) {
      a.pop();
      src[++i] = 0;
    }
    a.push(x);
  }
  // pass 3
  const t = a;
  const b: number[] = [t[0]!];
  for (let i = 1; i < t.length; i++) {
    const x = t[i]!;
    if (t[i - 1] === SP && x === QUOTE && i + 1 < t.length) {
      const x1 = t[i + 1]!;
      if (x1 === 0x74 || x1 === 0x64) {
        // " 't", " 'd" keep their space
      } else if (x1 === 0x73 || x1 === 0x6d) {
        b.pop(); // " 's", " 'm"
      } else if (i + 2 < t.length) {
        const x2 = t[i + 2]!;
        if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) b.pop(); // " 're", " 've"
      }
    }
    b.push(x);
  }
  return b;
}

/** llama_detokenize(tokens, remove_special = false, unparse_special = special) as bytes. */
export function detokenizeBytes(
  vocab: Vocab,
  pieces: Pieces,
  ids: readonly number[],
  special: boolean,
): Uint8Array {
  const out: number[] = [];
  // The first token loses one leading space when the tokenizer adds one (add_space_prefix).
  let removeSpace = vocab.addSpacePrefix;
  for (const id of ids) {
    const p = pieces.bytes(id, special);
    let from = 0;
    if (removeSpace && p.length > 0 && p[0] === 0x20) from = 1;
    removeSpace = false;
    for (let i = from; i < p.length; i++) out.push(p[i]!);
  }
  return Uint8Array.from(vocab.cleanSpaces ? cleanSpaces(out) : out);
}

/** How many bytes at the end of `b` begin a UTF-8 sequence that is not complete yet. */
export function incompleteTail(b: Uint8Array, end: number): number {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  for (let k = 1; k <= 3 && k <= end; k++) {
    const c = b[end - k]!;
    if ((c & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = c < 0xc2 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c <= 0xf4 ? 4 : 1;
    return need > k ? k : 0;
  }
  return 0;
}

/** UTF-8 to text with U+FFFD for bad sequences; a leading U+FEFF is text, not a byte-order mark. */
export function textDecoder(): TextDecoder {
  return new TextDecoder('utf-8', { ignoreBOM: true });
}

export interface StreamDecoder {
  /** The text that `id` completes: whole characters only; an incomplete tail waits. */
  push(id: number): string;
  /** What is still held back (an incomplete sequence decodes to U+FFFD). */
  flush(): string;
}

export function streamDecoder(pieces: Pieces, special: boolean): StreamDecoder {
  const decoder = textDecoder();
  let pending = new Uint8Array(0);
  return {
    push(id: number): string {
      const p = pieces.bytes(id, special);
      const all = new Uint8Array(pending.length + p.length);
      all.set(pending, 0);
      all.set(p, pending.length);
      const keep = incompleteTail(all, all.length);
      pending = all.slice(all.length - keep);
      return decoder.decode(all.subarray(0, all.length - keep));
    },
    flush(): string {
      const rest = decoder.decode(pending);
      pending = new Uint8Array(0);
      return rest;
    },
  };
}
