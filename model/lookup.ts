// Prompt lookup: drafts of the next tokens copied from the context itself. Text that repeats
// what came before (a summary quoting its source, code edited in place, a list going on, a small
// model stuck in a loop) continues as it did the last time the same few tokens appeared; a step
// that feeds those drafts after the token just chosen checks them all at once, for about the
// weight reads of one token (decoding waits on memory, not arithmetic).

/**
 * Up to `max` tokens that followed the latest earlier occurrence of the context's last n tokens,
 * n from `longest` down to `shortest` (the longest n-gram found wins); [] when none is found.
 * The copy may run into the drafted tokens themselves (a loop shorter than `max` goes round).
 */
export function lookupDraft(context: readonly number[], max: number, longest = 3, shortest = 2): number[] {
  const len = context.length;
  if (max <= 0) return [];
  for (let n = Math.min(longest, len - 1); n >= shortest; n--) {
    // Occurrences ending before the last token, latest first.
    for (let i = len - n - 1; i >= 0; i--) {
      let k = 0;
      while (k < n && context[i + k] === context[len - n + k]) k++;
      if (k < n) continue;
      const draft: number[] = [];
      for (let j = i + n; draft.length < max; j++) draft.push(j < len ? context[j]! : draft[j - len]!);
      return draft;
    }
  }
  return [];
}

/** N-grams an NgramCache indexes at most (two a token: its 2-gram and its 3-gram). */
export const NGRAM_CACHE_ENTRIES = 1 << 18;

/**
 * Texts served before (a server's finished sequences, prompt and answer), indexed by their 2- and
 * 3-grams: where a sequence's own context has no earlier occurrence of its last tokens, what
 * followed them in an earlier text is the draft (the same request again, a schema's keys, a
 * template's boilerplate). The latest text wins; the oldest n-grams go first past the bound.
 */
export class NgramCache {
  /** "a,b" / "a,b,c" → the text it occurred in and where what followed it begins. */
  private readonly at = new Map<string, { text: readonly number[]; next: number }>();

  add(text: readonly number[]): void {
    for (const n of [2, 3])
      for (let i = 0; i + n < text.length; i++) {
        const key = text.slice(i, i + n).join(',');
        this.at.delete(key); // re-inserted last: the newest
        this.at.set(key, { text, next: i + n });
      }
    for (const key of this.at.keys()) {
      if (this.at.size <= NGRAM_CACHE_ENTRIES) break;
      this.at.delete(key);
    }
  }

  /** Up to `max` tokens that followed the context's last 3 (or 2) tokens in a text added; [] when none did. */
  draft(context: readonly number[], max: number): number[] {
    for (const n of [3, 2]) {
      if (context.length < n || max <= 0) continue;
      const hit = this.at.get(context.slice(-n).join(','));
      if (hit) return hit.text.slice(hit.next, hit.next + max) as number[];
    }
    return [];
  }
}

/** Drafted tokens a step may check at most (generate --lookup): 1 + 32 rows of logits a step. */
export const MAX_DRAFT = 32;

/**
 * Draft lengths a step checks: 1 + k tokens fill the matmul kernels' tiles of X rows (2, 4, 8, 16,
 * 32) whole; a step with 4 drafts costs about what one with 7 does.
 */
const LENGTHS = [1, 3, 7, 15, 31];

/**
 * How many tokens to draft, from how the last drafts fared: a draft taken whole doubles the next
 * (up the LENGTHS), one of which nothing was taken halves it, and at the shortest, failures
 * pause drafting for 1, 2, 4 … 32 tokens (text that does not repeat itself then costs almost
 * nothing: a step of two tokens takes ~1.15× one of one).
 */
export class Drafter {
  private length: number;
  private pause = 0;
  private misses = 0;
  drafted = 0;
  accepted = 0;

  /** `max`: drafted tokens a step may check at most (≥ 1); `cache`: earlier texts to draft from too. */
  constructor(
    private readonly max: number,
    private readonly cache?: NgramCache,
  ) {
    this.length = fitLength(3, max);
  }

  /** The draft to check after `context` (its last token the one just chosen), at most `room` tokens. */
  draft(context: readonly number[], room: number): number[] {
    if (this.pause > 0) {
      this.pause--;
      return [];
    }
    const n = fitLength(this.length, Math.min(this.max, room));
    if (n <= 0) return [];
    const own = lookupDraft(context, n);
    return own.length || !this.cache ? own : this.cache.draft(context, n);
  }

  /** How many of a draft's `drafted` tokens were the ones chosen. */
  taken(drafted: number, accepted: number): void {
    this.drafted += drafted;
    this.accepted += accepted;
    if (accepted === drafted) {
      this.length = fitLength(LENGTHS[LENGTHS.indexOf(this.length) + 1] ?? this.length, this.max);
      this.misses = 0;
    } else if (accepted === 0) {
      const i = LENGTHS.indexOf(this.length);
      if (i > 0) this.length = LENGTHS[i - 1]!;
      else this.pause = Math.min(32, 2 ** this.misses++);
    }
  }
}

/** The longest of LENGTHS up to `want` and `limit` (0 when even 1 does not fit). */
function fitLength(want: number, limit: number): number {
  let n = 0;
  for (const l of LENGTHS) if (l <= want && l <= limit) n = l;
  return n;
}
