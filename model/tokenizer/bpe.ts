// Byte-level BPE as llama.cpp runs it (llm_tokenizer_bpe_session): the pre-tokenizer regex of
// `tokenizer.ggml.pre` cuts the text into words; each word's UTF-8 bytes become GPT-2's printable
// characters; adjacent symbols merge by the lowest merge rank (leftmost on ties) until none
// merges; a leftover symbol that is not a token goes out byte by byte.
//
// The regexes are llama.cpp's (which are Hugging Face's with the case-insensitive contractions
// spelled out); llama.cpp runs hand-written scanners for them (unicode.cpp), whose classes are
// Unicode's: \p{L}, \p{N} and White_Space for \s. JavaScript's \s differs from White_Space (it
// has U+FEFF, lacks U+0085), so \s is written as \p{White_Space} here.
import {
  TokenizerError,
  DEFAULT_PRE,
  GPT2_PRE,
  LLAMA3_PRE,
  QWEN2_PRE,
  SMOLLM_PRE,
  TEKKEN_PRE,
  type Vocab,
} from './vocab.js';
import { Heap } from './heap.js';
import { shown } from '../../common/format.js';

const S = '\\p{White_Space}';
const NOT_S = '\\P{White_Space}';
const CONTRACTIONS_CI = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/** llama3 (and llama-bpe): digits in runs of up to three. */
export const LLAMA3_REGEX =
  `${CONTRACTIONS_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${S}\\p{L}\\p{N}]+[\\r\\n]*` +
  `|${S}*[\\r\\n]+|${S}+(?!${NOT_S})|${S}+`;
/** qwen2: as llama3 but every digit alone. */
export const QWEN2_REGEX =
  `${CONTRACTIONS_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^${S}\\p{L}\\p{N}]+[\\r\\n]*` +
  `|${S}*[\\r\\n]+|${S}+(?!${NOT_S})|${S}+`;
/** GPT-2: case-sensitive contractions, an optional space before each run. */
export const GPT2_REGEX = `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${S}\\p{L}\\p{N}]+|${S}+(?!${NOT_S})|${S}+`;

/**
 * tekken (Mistral): words split where lower case turns upper, digits alone, '/' kept after
 * punctuation. Written as llama.cpp runs it, which is not tokenizer.json's: there upper and lower
 * case are \p{Lu} / \p{Ll}; llama.cpp only tells ASCII letters apart ([^a-z] / [^A-Z] among
 * letters), so a non-ASCII letter counts as either case.
 */
export const TEKKEN_REGEX =
  `[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])*(?:(?=\\p{L})[^A-Z])+` +
  `|[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])+(?:(?=\\p{L})[^A-Z])*` +
  `|\\p{N}| ?[^${S}\\p{L}\\p{N}]+[\\r\\n/]*|${S}*[\\r\\n]+|${S}+(?!${NOT_S})|${S}+`;

/** smollm: every digit split off first, then the GPT-2 regex over what is left. */
export const SMOLLM_REGEXES = ['\\p{N}', GPT2_REGEX];
/** No `tokenizer.ggml.pre` (or 'default'): llama.cpp's four passes. */
export const DEFAULT_REGEXES = ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_REGEX, '\\p{N}+', '[0-9][0-9][0-9]'];

/**
 * The pre-tokenizer's regexes, applied one after another as llama.cpp's unicode_regex_split does:
 * each cuts every piece the one before left into its matches and the text between them.
 */
export function preTokenizerRegexes(pre: string): RegExp[] {
  const table: [readonly string[], readonly string[]][] = [
    [LLAMA3_PRE, [LLAMA3_REGEX]],
    [QWEN2_PRE, [QWEN2_REGEX]],
    [GPT2_PRE, [GPT2_REGEX]],
    [TEKKEN_PRE, [TEKKEN_REGEX]],
    [SMOLLM_PRE, SMOLLM_REGEXES],
    [DEFAULT_PRE, DEFAULT_REGEXES],
  ];
  const sources = table.find(([names]) => names.includes(pre))?.[1];
  if (!sources) throw new TokenizerError(`pre-tokenizer '${shown(pre)}' is not supported`);
  return sources.map((r) => new RegExp(r, 'gu'));
}

// GPT-2's byte ↔ character map: printable Latin-1 bytes stand for themselves, the other 68 bytes
// take the characters from U+0100 on, in byte order.
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const map = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return map;
})();

export const CHAR_TO_BYTE: ReadonlyMap<number, number> = new Map(
  BYTE_TO_CHAR.map((c, b) => [c.charCodeAt(0), b] as const),
);

interface Bigram {
  rank: number;
  left: number;
  right: number;
  /** The symbols' ids when queued: the pair is stale once either changed. */
  leftId: number;
  rightId: number;
  merged: number;
}

const before = (a: Bigram, b: Bigram): boolean => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

const utf8 = new TextEncoder();

/**
 * The merges by pair of symbol ids: (left, right) → (rank, merged symbol), open addressing over
 * typed arrays. A Map keyed by left·n + right held ~280k keys past the small-integer range
 * (a heap number each) and took most of a Llama 3 tokenizer's construction.
 */
class PairTable {
  /** left, right per slot; left = -1: empty. */
  private readonly keys: Int32Array;
  /** rank, merged per slot. */
  private readonly values: Int32Array;
  private readonly mask: number;
  private readonly shift: number;

  constructor(count: number) {
    let bits = 4;
    while (1 << bits < count * 2) bits++; // at most half full
    this.keys = new Int32Array(2 << bits).fill(-1);
    this.values = new Int32Array(2 << bits);
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
  }

  /** Multiplicative hashing: the top bits of the mixed product. */
  private start(left: number, right: number): number {
    return (Math.imul(left, 0x9e3779b1) + Math.imul(right, 0x85ebca77)) >>> this.shift;
  }

  /** The slot of (left, right), or -1. */
  find(left: number, right: number): number {
    const keys = this.keys;
    for (let i = this.start(left, right); ; i = (i + 1) & this.mask) {
      const k = keys[2 * i]!;
      if (k === -1) return -1;
      if (k === left && keys[2 * i + 1] === right) return i;
    }
  }

  /** Adds the pair unless it is there already (the first rank wins). */
  addFirst(left: number, right: number, rank: number, merged: number): void {
    const keys = this.keys;
    let i = this.start(left, right);
    for (; keys[2 * i] !== -1; i = (i + 1) & this.mask) {
      if (keys[2 * i] === left && keys[2 * i + 1] === right) return;
    }
    keys[2 * i] = left;
    keys[2 * i + 1] = right;
    this.values[2 * i] = rank;
    this.values[2 * i + 1] = merged;
  }

  rank(slot: number): number {
    return this.values[2 * slot]!;
  }

  merged(slot: number): number {
    return this.values[2 * slot + 1]!;
  }
}

// Words repeat (" the", "\n", ...): their tokens are kept, up to a bound so memory stays flat.
const WORD_CACHE_LIMIT = 50_000;

export class BpeTokenizer {
  private readonly regexes: RegExp[];
  private readonly cache = new Map<string, readonly number[]>();
  // Symbols are numbered: a token's id, or for a text that is not a token (a merge's parts or
  // result can be one) an id from vocabSize on. Texts and numbers correspond one to one, so
  // comparing ids is llama.cpp's comparing of texts, without building strings per pair.
  private readonly extraIds = new Map<string, number>();
  private readonly extraTexts: string[] = [];
  private readonly byteSymbol: Int32Array;
  private readonly pairs: PairTable;

  constructor(private readonly vocab: Vocab) {
    this.regexes = preTokenizerRegexes(vocab.pre);
    this.byteSymbol = Int32Array.from(BYTE_TO_CHAR, (c) => this.symbolOf(c));
    this.pairs = new PairTable(vocab.merges.length);
    for (let rank = 0; rank < vocab.merges.length; rank++) {
      const merge = vocab.merges[rank]!;
      // Split at the first space after the first character, as llama.cpp; byte-level tokens
      // never hold a raw space (it is 'Ġ'). A merge without one can never apply.
      const pos = merge.indexOf(' ', 1);
      if (pos < 0) continue;
      const a = merge.slice(0, pos);
      const b = merge.slice(pos + 1);
      // The first rank of a pair wins, as in llama.cpp's bpe_ranks.emplace.
      this.pairs.addFirst(this.symbolOf(a), this.symbolOf(b), rank, this.symbolOf(a + b));
    }
  }

  private symbolOf(text: string): number {
    const id = this.vocab.textToId.get(text) ?? this.extraIds.get(text);
    if (id !== undefined) return id;
    const extra = this.vocab.texts.length + this.extraTexts.length;
    this.extraIds.set(text, extra);
    this.extraTexts.push(text);
    return extra;
  }

  /** Appends the tokens of one text fragment (no special tokens inside) to `out`. */
  tokenize(text: string, out: number[]): void {
    this.split(text, 0, out);
  }

  /** Cuts `text` by regex `level` (matches, and any text between them), then by the next ones. */
  private split(text: string, level: number, out: number[]): void {
    if (level === this.regexes.length) {
      this.word(text, out);
      return;
    }
    const regex = this.regexes[level]!;
    regex.lastIndex = 0;
    let last = 0;
    for (const m of text.matchAll(regex)) {
      if (m.index > last) this.split(text.slice(last, m.index), level + 1, out);
      if (m[0].length > 0) this.split(m[0], level + 1, out);
      last = m.index + m[0].length;
    }
    if (last < text.length) this.split(text.slice(last), level + 1, out);
  }

  private word(word: string, out: number[]): void {
    let ids = this.cache.get(word);
    if (ids === undefined) {
      ids = this.encodeWord(word);
      if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, ids);
    }
    for (const id of ids) out.push(id);
  }

  private encodeWord(word: string): number[] {
    const { textToId } = this.vocab;
    const bytes = utf8.encode(word);
    if (this.vocab.ignoreMerges) {
      let enc = '';
      for (const b of bytes) enc += BYTE_TO_CHAR[b];
      const whole = textToId.get(enc);
      if (whole !== undefined) return [whole];
    }
    // One symbol per byte, chained; a merged-away symbol gets id -1.
    const count = bytes.length;
    const sym = new Int32Array(count);
    const prev = new Int32Array(count);
    const next = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      sym[i] = this.byteSymbol[bytes[i]!]!;
      prev[i] = i - 1;
      next[i] = i + 1 < count ? i + 1 : -1;
    }
    const pairs = this.pairs;
    const queue = new Heap<Bigram>(before);
    const tryAdd = (left: number, right: number): void => {
      if (left === -1 || right === -1) return;
      const leftId = sym[left]!;
      const rightId = sym[right]!;
      const slot = pairs.find(leftId, rightId);
      if (slot < 0) return;
      queue.push({ rank: pairs.rank(slot), left, right, leftId, rightId, merged: pairs.merged(slot) });
    };
    for (let i = 1; i < count; i++) tryAdd(i - 1, i);
    while (queue.size > 0) {
      const b = queue.pop()!;
      const l = b.left;
      const r = b.right;
      if (sym[l] !== b.leftId || sym[r] !== b.rightId) continue; // stale: a side merged since
      sym[l] = b.merged;
      sym[r] = -1;
      next[l] = next[r]!;
      if (next[r]! >= 0) prev[next[r]!] = l;
      tryAdd(prev[l]!, l);
      tryAdd(l, next[l]!);
    }
    const out: number[] = [];
    const n = this.vocab.texts.length;
    for (let i = count > 0 ? 0 : -1; i !== -1; i = next[i]!) {
      const id = sym[i]!;
      if (id < n) {
        out.push(id);
        continue;
      }
      // Not a token: byte by byte, each byte's character if it is one.
      for (const ch of this.extraTexts[id - n]!) {
        const byteId = textToId.get(ch);
        if (byteId !== undefined) out.push(byteId);
      }
    }
    return out;
  }
}
