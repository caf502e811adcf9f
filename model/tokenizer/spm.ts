// SentencePiece as llama.cpp runs it (llm_tokenizer_spm_session): the text, spaces already
// escaped to '▁', is split into code points; every adjacent pair whose concatenation is a token is
// queued by that token's score; the best pair (highest score, then leftmost) merges and its new
// neighbours are queued, until nothing merges. A final symbol that is not a token goes out as its
// UTF-8 bytes through the <0xNN> byte tokens. (llama.cpp's rev_merge re-segmentation only matters
// for symbols that are not tokens, and those are single code points here, so it never applies.)
//
// Speed: the queue spans the whole text in llama.cpp. When no token holds '▁' after another
// character (SentencePiece's split_by_whitespace vocabularies, Llama 2's among them), no merge can
// cross the start of a run of '▁' that follows a character, so the text is cut there and each
// piece merged alone (and cached): the same merges, in the same relative order, as one queue.
import { Heap } from './heap.js';
import { TokenizerError, type Vocab } from './vocab.js';

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

const before = (a: Bigram, b: Bigram): boolean =>
  a.score > b.score || (a.score === b.score && a.left < b.left);

const utf8 = new TextEncoder();

export function byteToken(vocab: Vocab, byte: number): number {
  const hex = byte.toString(16).toUpperCase().padStart(2, '0');
  const id = vocab.textToId.get(`<0x${hex}>`) ?? vocab.textToId.get(String.fromCharCode(byte));
  if (id === undefined) {
    throw new TokenizerError(
      `the vocabulary has no byte token <0x${hex}> for byte fallback; it cannot encode this text (a SentencePiece vocabulary needs the 256 <0xNN> tokens)`,
    );
  }
  return id;
}

const SPACE = '\u2581';
const CACHE_LIMIT = 50_000;

export class SpmTokenizer {
  private readonly cutAtSpaces: boolean;
  private readonly cache = new Map<string, readonly number[]>();

  constructor(private readonly vocab: Vocab) {
    this.cutAtSpaces = !vocab.texts.some((t) => /[^\u2581]\u2581/u.test(t));
  }

  /** Appends the tokens of `text` (spaces already '▁', prefix already added) to `out`. */
  tokenize(text: string, out: number[]): void {
    if (!this.cutAtSpaces) {
      mergeText(this.vocab, text, out);
      return;
    }
    let from = 0;
    for (let i = 1; i <= text.length; i++) {
      if (i < text.length && !(text[i] === SPACE && text[i - 1] !== SPACE)) continue;
      const piece = text.slice(from, i);
      let ids = this.cache.get(piece);
      if (ids === undefined) {
        const fresh: number[] = [];
        mergeText(this.vocab, piece, fresh);
        ids = fresh;
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(piece, ids);
      }
      for (const id of ids) out.push(id);
      from = i;
    }
  }
}

function mergeText(vocab: Vocab, text: string, out: number[]): void {
  // Symbols in code units of `text`: start, length, and the doubly linked chain.
  const start: number[] = [];
  const len: number[] = [];
  for (let i = 0; i < text.length;) {
    const cp = text.codePointAt(i)!;
    const n = cp > 0xffff ? 2 : 1;
    start.push(i);
    len.push(n);
    i += n;
  }
  const count = start.length;
  if (count === 0) return;
  const prev = Array.from({ length: count }, (_, i) => i - 1);
  const next = Array.from({ length: count }, (_, i) => (i + 1 < count ? i + 1 : -1));

  const queue = new Heap<Bigram>(before);
  const tryAdd = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const size = len[left]! + len[right]!;
    const id = vocab.textToId.get(text.substr(start[left]!, size));
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.scores[id]!, size });
  };
  for (let i = 1; i < count; i++) tryAdd(i - 1, i);

  while (queue.size > 0) {
    const b = queue.pop()!;
    const l = b.left;
    const r = b.right;
    // A pair one of whose sides already merged elsewhere is stale.
    if (len[l] === 0 || len[r] === 0 || len[l]! + len[r]! !== b.size) continue;
    len[l]! += len[r]!;
    len[r] = 0;
    next[l] = next[r]!;
    if (next[r]! >= 0) prev[next[r]!] = l;
    tryAdd(prev[l]!, l);
    tryAdd(l, next[l]!);
  }

  for (let i = 0; i !== -1; i = next[i]!) {
    const piece = text.substr(start[i]!, len[i]!);
    const id = vocab.textToId.get(piece);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    for (const byte of utf8.encode(piece)) out.push(byteToken(vocab, byte));
  }
}
