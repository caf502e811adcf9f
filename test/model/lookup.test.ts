// Prompt lookup (generate --lookup): which tokens are drafted from the context, and how many.
// The steps that check them, on real executors: batch.test.ts.
import { describe, expect, it } from 'vitest';
import { Drafter, lookupDraft, NGRAM_CACHE_ENTRIES, NgramCache } from '../../model/lookup.js';

describe('lookupDraft', () => {
  it('copies what followed the latest earlier occurrence of the last tokens, the longest n-gram first', () => {
    // "5 6" occurs at 1 (then 7 8) and at 6 (then 9); the 3-gram "4 5 6" only at 0.
    expect(lookupDraft([4, 5, 6, 7, 8, 2, 5, 6, 9, 3, 4, 5, 6], 2)).toEqual([7, 8]);
    expect(lookupDraft([1, 5, 6, 7, 8, 2, 5, 6, 9, 3, 0, 5, 6], 3)).toEqual([9, 3, 0]);
    expect(lookupDraft([1, 2, 3, 4], 4)).toEqual([]); // nothing repeats
    expect(lookupDraft([1, 2, 3, 1], 4)).toEqual([]); // one token is not enough (shortest 2)
    expect(lookupDraft([1, 2, 1, 2], 0)).toEqual([]);
  });

  it('goes round a loop shorter than the draft', () => {
    expect(lookupDraft([9, 1, 2, 3, 1, 2, 3, 1, 2], 7)).toEqual([3, 1, 2, 3, 1, 2, 3]);
  });
});

describe('Drafter', () => {
  const loop = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2];
  it('lengthens drafts taken whole, shortens missed ones, then pauses', () => {
    const d = new Drafter(31);
    expect(d.draft(loop, 100)).toHaveLength(3);
    d.taken(3, 3);
    expect(d.draft(loop, 100)).toHaveLength(7);
    expect(d.draft(loop, 5)).toHaveLength(3); // the room left
    d.taken(7, 0);
    expect(d.draft(loop, 100)).toHaveLength(3);
    d.taken(3, 0);
    d.taken(1, 0); // at the shortest: a pause of 1 step, then 2
    expect(d.draft(loop, 100)).toEqual([]);
    expect(d.draft(loop, 100)).toHaveLength(1);
    d.taken(1, 0);
    expect([d.draft(loop, 100), d.draft(loop, 100), d.draft(loop, 100)].map((x) => x.length)).toEqual([
      0, 0, 1,
    ]);
    expect([d.drafted, d.accepted]).toEqual([15, 3]);
  });

  it('keeps to its maximum', () => {
    const d = new Drafter(2);
    for (let i = 0; i < 4; i++) {
      expect(d.draft(loop, 100)).toHaveLength(1);
      d.taken(1, 1);
    }
  });
});

describe('NgramCache', () => {
  it('drafts what followed the context’s last tokens in a text served before, the latest text first', () => {
    const c = new NgramCache();
    c.add([1, 2, 3, 4, 5, 6]);
    expect(c.draft([9, 2, 3], 3)).toEqual([4, 5, 6]); // the 3-gram 9,2,3 is unknown: the 2-gram 2,3
    expect(c.draft([3, 4], 1)).toEqual([5]);
    expect(c.draft([7, 8], 4)).toEqual([]);
    c.add([7, 2, 3, 9]);
    expect(c.draft([2, 3], 4)).toEqual([9]); // the newer text wins
    expect(c.draft([1, 2, 3], 4)).toEqual([4, 5, 6]); // its 3-gram still the older text's
    // A Drafter drafts from it where the context has no earlier occurrence of its own.
    const d = new Drafter(3, c);
    expect(d.draft([5, 1, 2, 3], 8)).toEqual([4, 5, 6]);
    expect(d.draft([1, 2, 5, 1, 2], 8)).toEqual([5, 1, 2]); // its own context first
    expect(new Drafter(3).draft([5, 1, 2, 3], 8)).toEqual([]);
  });

  it('keeps the newest n-grams within its bound', () => {
    const c = new NgramCache();
    const text = Array.from({ length: NGRAM_CACHE_ENTRIES / 2 + 1000 }, (_, i) => i);
    c.add(text);
    expect(c.draft([0, 1], 1)).toEqual([]); // the oldest went
    expect(c.draft([text.length - 3, text.length - 2], 1)).toEqual([text.length - 1]);
  });
});
