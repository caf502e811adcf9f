// JSON mode's automaton against JSON.parse: every prefix of a serialised object continues, the
// whole closes it; any text it takes in full and calls complete is an object JSON.parse reads,
// and any byte string it refuses is no prefix of one.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonObjectPrefix, MAX_WS } from '../../model/json-constraint.js';

const bytes = (s: string) => new TextEncoder().encode(s);

/** Feeds `text` in pieces of 1-3 bytes; how far it got, and whether it closed. */
function feed(text: string): { taken: number; complete: boolean } {
  const j = new JsonObjectPrefix();
  const b = bytes(text);
  let i = 0;
  while (i < b.length) {
    const piece = b.subarray(i, i + 1 + (i % 3));
    if (!j.allows(piece)) {
      // the longest byte-by-byte prefix it takes
      for (const x of piece) {
        if (!j.allows(Uint8Array.of(x))) return { taken: i, complete: j.complete };
        j.take(Uint8Array.of(x));
        i++;
      }
      continue;
    }
    j.take(piece);
    i += piece.length;
  }
  return { taken: i, complete: j.complete };
}

describe('JSON mode: a prefix of one JSON object', () => {
  it('takes every serialised object whole, compact or indented, and calls it complete', () => {
    fc.assert(
      // (Depth 4: indented, a line's blanks stay within MAX_WS.)
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })),
        fc.constantFrom(0, 2, '\t'),
        (o, indent) => {
          const text = ` ${JSON.stringify(o, null, indent)}\n`;
          const r = feed(text);
          expect(r.taken).toBe(bytes(text).length);
          expect(r.complete).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('what it takes whole and calls complete is an object; what it stops at is no JSON prefix', () => {
    const alphabet = fc.constantFrom(
      ...'{}[]",:0123456789-+.eEtrufalsn \\/u\n'.split(''),
      'true',
      'null',
      '"a"',
    );
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 30 }), (parts) => {
        const text = `{${parts.join('')}`;
        const r = feed(text);
        const taken = text.slice(0, r.taken); // ASCII: bytes are chars
        if (r.complete) expect(typeof JSON.parse(taken)).toBe('object');
        if (r.taken < text.length) {
          // The refused byte makes a text that no completion parses: check by the closers a
          // completion could add after it.
          const bad = text.slice(0, r.taken + 1);
          for (const tail of ['', '}', '"}', '"]}', ']}', '0}', '0]}', '"":0}', ':0}', 'e}'])
            expect(() => JSON.parse(bad + tail), bad + tail).toThrow();
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses what starts no object, empty pieces, and bytes after the close', () => {
    const j = new JsonObjectPrefix();
    for (const s of ['[', '"', '1', 'true', '}']) expect(j.allows(bytes(s)), s).toBe(false);
    expect(j.allows(new Uint8Array(0))).toBe(false);
    j.take(bytes(' {"a": [1, -2.5e+3, "x\\u00e9", null], "b": {}}'));
    expect(j.complete).toBe(true);
    expect(j.allows(bytes(' \n'))).toBe(true);
    expect(j.allows(bytes(','))).toBe(false);
    expect(() => j.take(bytes('x'))).toThrow(/does not continue the object/);
    const k = new JsonObjectPrefix();
    k.take(bytes('{"n": 0'));
    expect(k.allows(bytes('1'))).toBe(false); // no leading zeros
    expect(k.allows(bytes('.5}'))).toBe(true);
    expect(k.complete).toBe(false);
    // Blanks outside strings: MAX_WS in a row, then something else; inside a string any number.
    expect(k.allows(bytes(' '.repeat(MAX_WS)))).toBe(true);
    expect(k.allows(bytes(' '.repeat(MAX_WS + 1)))).toBe(false);
    expect(k.allows(bytes(`${' '.repeat(MAX_WS)},"${' '.repeat(100)}"`))).toBe(true);
  });
});
