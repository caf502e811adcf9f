// Stop strings over streamed text: nothing that may still begin a stop string is passed on, and
// the text ends right before the first stop string, however the pieces fall.
import { describe, expect, it } from 'vitest';
import { StopStrings } from '../../executor/coordinator/generate.js';

function stream(pieces: string[], stops: string[]): { out: string[]; stopped: boolean } {
  const s = new StopStrings(stops);
  const out: string[] = [];
  for (const p of pieces) {
    const r = s.push(p);
    if (r.text) out.push(r.text);
    if (r.stopped) return { out, stopped: true };
  }
  const r = s.push('', true);
  if (r.text) out.push(r.text);
  return { out, stopped: false };
}

describe('StopStrings', () => {
  it('cuts before a stop string split over pieces, holding back only what could begin one', () => {
    const r = stream(['Hello wo', 'rld, E', 'N', 'D here'], ['END']);
    expect(r).toEqual({ out: ['Hello wo', 'rld, '], stopped: true });
    // "E" is held back after the second piece ("rld, " passes), then released as it is not END.
    expect(stream(['ab E', 'x'], ['END'])).toEqual({ out: ['ab ', 'Ex'], stopped: false });
  });
  it('takes the earliest of several stop strings, and passes everything on without any', () => {
    expect(stream(['one two three'], ['three', 'two'])).toEqual({ out: ['one '], stopped: true });
    expect(stream(['a', 'b', 'c'], [])).toEqual({ out: ['a', 'b', 'c'], stopped: false });
    // a held-back prefix is released at the end
    expect(stream(['tail <'], ['<stop>'])).toEqual({ out: ['tail ', '<'], stopped: false });
  });
});
