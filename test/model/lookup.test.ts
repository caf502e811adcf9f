// Prompt lookup (generate --lookup): which tokens are drafted from the context, and how many.
// The steps that check them, on real executors: batch.test.ts.
import { describe, expect, it } from 'vitest';
import { Drafter, lookupDraft } from '../../model/lookup.js';

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
