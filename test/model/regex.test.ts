// JSON Schema patterns: the same strings as JavaScript's own RegExp (u flag) matches, the
// formats against independent readers (node:net, Date), and no walk through a pattern's
// automaton that cannot end.
import fc from 'fast-check';
import { isIPv4, isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FORMATS, MAX_REPEAT, compilePattern, formatPattern, type Pattern } from '../../model/regex.js';

const PATTERNS = [
  '^\\d{3}-\\d{4}$',
  'abc',
  '^(a|b)*c$',
  '[^a-z]+',
  '^$',
  'x?',
  '(^a|b$)',
  '^[\\w.-]+@\\w+$',
  'a{2,3}',
  'b{2,}',
  '^a{0,2}?$',
  '\\u00e9+',
  '^.{2}$',
  '^[\\s\\S]$',
  '\\$\\^',
  '^(?:foo|bar)(?<n>baz)?$',
  '^(a|)+$',
  '[-a]|[a-]',
  '^\\D\\W\\S$',
  '^[\\u{1F600}-\\u{1F64F}]$',
  '^\\uD83D\\uDE00$',
  '^[^]$',
  '(?:)',
  '^\\x41\\0\\t$',
  '^[\\d-]+$',
];
const PIECES = [
  'a',
  'b',
  'c',
  '1',
  '2',
  '-',
  '@',
  '.',
  'é',
  '\n',
  '$',
  '^',
  'x',
  ' ',
  'foo',
  'bar',
  'baz',
  '😀',
  '\0',
  'A',
  '\t',
];

describe('patterns', () => {
  it('match what RegExp with the u flag matches', () => {
    for (const src of PATTERNS) {
      const [re, ours] = [new RegExp(src, 'u'), compilePattern(src)];
      fc.assert(
        fc.property(fc.array(fc.constantFrom(...PIECES), { maxLength: 6 }), (parts) => {
          const s = parts.join('');
          expect(ours.test(s), `${src} on ${JSON.stringify(s)}`).toBe(re.test(s));
        }),
        { seed: 20261206, numRuns: 400 },
      );
    }
  });

  it('never leads into a string that cannot end: every state on the way has an end ahead', () => {
    // Walks that take only characters the automaton allows; each must be able to stop or go on,
    // and a stop must be a match RegExp agrees with.
    const ALPHA = [...new Set([...PIECES.join('')])].map((c) => c.codePointAt(0)!);
    for (const src of [...PATTERNS, '(?:^x|y)z', '(a|^b)c', 'x$|y', '^a|b']) {
      const p = compilePattern(src);
      const re = new RegExp(src, 'u');
      fc.assert(
        fc.property(fc.array(fc.nat(), { minLength: 8, maxLength: 8 }), (choices) => {
          let st = p.start;
          let text = '';
          for (const c of choices) {
            const ok = ALPHA.filter((cp) => p.next(st, cp));
            expect(ok.length > 0 || p.accepts(st), `${src} stuck after ${JSON.stringify(text)}`).toBe(true);
            if (ok.length === 0 || c % 5 === 0) break;
            const cp = ok[c % ok.length]!;
            text += String.fromCodePoint(cp);
            st = p.next(st, cp)!;
          }
          if (p.accepts(st)) expect(re.test(text), `${src} on ${JSON.stringify(text)}`).toBe(true);
        }),
        { seed: 7, numRuns: 200 },
      );
    }
  });

  it('a pattern no string matches, and syntax it does not follow, are named', () => {
    expect(() => compilePattern('a^b')).toThrow(/matches no string/);
    expect(() => compilePattern('[]')).toThrow(/matches no string/);
    expect(() => compilePattern('^a$b')).toThrow(/matches no string/);
    for (const [src, why] of [
      ['(?=a)', /lookahead/],
      ['(?<!a)b', /lookbehind/],
      ['\\bword', /word boundaries/],
      ['(a)\\1', /backreferences/],
      ['\\p{L}', /Unicode property classes/],
      ['a**', /nothing to repeat/],
      ['*a', /nothing to repeat/],
      ['(ab', /without its '\)'/],
      ['ab)', /closes no group/],
      ['[ab', /without its '\]'/],
      ['a{3,2}', /out of order/],
      [`a{${MAX_REPEAT + 1}}`, /above 1000/],
      ['(a{1000}){1000}', /more than 20000 states/],
      ['\\q', /escape \\q/],
      ['x{', /begins no \{n,m\}/],
    ] as const)
      expect(() => compilePattern(src), src).toThrow(why);
  });
});

const sample = (p: Pattern, seed: number): string => {
  // A random string the automaton allows, from a pool of the characters formats use.
  const POOL = [..."0123456789abcdefABCDEFxyz-:.@/?#%TZPYMWDHS+_~!$&'()*,;=[]"].map((c) => c.codePointAt(0)!);
  let st = p.start;
  let text = '';
  let r = seed >>> 0;
  const rand = (n: number): number => {
    // mulberry32: the low bits of a plain LCG cycle too short to ever pick some characters
    r = (r + 0x6d2b79f5) >>> 0;
    let t = Math.imul(r ^ (r >>> 15), r | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  for (let i = 0; i < 2000; i++) {
    const ok = POOL.filter((cp) => p.next(st, cp));
    if (ok.length === 0 || (p.accepts(st) && rand(4) === 0)) break;
    const cp = ok[rand(ok.length)]!;
    text += String.fromCodePoint(cp);
    st = p.next(st, cp)!;
  }
  expect(p.accepts(st), `${p.source} stopped at ${JSON.stringify(text)}`).toBe(true);
  return text;
};

/** Independent readers of each format (not the patterns under test). */
const READERS: Record<keyof typeof FORMATS, (s: string) => boolean> = {
  date: (s) => /^\d{4}-\d\d-\d\d$/.test(s) && new Date(`${s}T00:00:00Z`).toISOString().slice(0, 10) === s,
  'date-time': (s) => {
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(s);
    return (
      !!m && READERS.date!(m[1]!) && !Number.isNaN(Date.parse(s)) && +m[2]! < 24 && +m[3]! < 60 && +m[4]! < 60
    );
  },
  time: (s) => READERS['date-time']!(`2000-01-01T${s}`),
  duration: (s) => /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/.test(s),
  email: (s) => {
    const [local, domain, more] = s.split('@');
    return (
      more === undefined &&
      !!local &&
      !!domain &&
      domain.includes('.') &&
      !local.startsWith('.') &&
      !local.endsWith('.') &&
      !local.includes('..') &&
      URL.canParse(`http://${domain}`) &&
      new URL(`http://${domain}`).hostname === domain.toLowerCase()
    );
  },
  hostname: (s) =>
    s.split('.').every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/.test(l) && l.length <= 63),
  ipv4: (s) => isIPv4(s),
  ipv6: (s) => isIPv6(s),
  uuid: (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
  uri: (s) => {
    try {
      return new URL(s).protocol.length > 1;
    } catch {
      return false;
    }
  },
};

describe('formats', () => {
  it('every string a format lets through is one its own reader takes', () => {
    for (const name of Object.keys(FORMATS)) {
      const p = formatPattern(name)!;
      for (let seed = 1; seed <= 150; seed++) {
        const s = sample(p, seed);
        expect(READERS[name]!(s), `${name}: ${JSON.stringify(s)}`).toBe(true);
      }
    }
  });

  it('takes the usual forms, and refuses near misses', () => {
    const takes: Record<string, string[]> = {
      date: ['2024-02-29', '2000-02-29', '1999-12-31'],
      'date-time': ['2024-05-01T13:45:00Z', '2024-05-01T13:45:00.123456+02:00'],
      time: ['23:59:59Z', '00:00:00-05:30'],
      duration: ['P1D', 'PT1H30M', 'P1Y2M3DT4H5M6.5S', 'P2W'],
      email: ['a.b+c@example.co.uk'],
      hostname: ['localhost', 'a-b.example.org'],
      ipv4: ['192.168.0.1', '0.0.0.0'],
      ipv6: ['::1', '2001:db8::8a2e:370:7334', 'fe80::', '1:2:3:4:5:6:7:8'],
      uuid: ['123e4567-e89b-12d3-a456-426614174000'],
      uri: ['https://user@example.com:8080/a/b?c=d#e', 'mailto:x@y.org', 'urn:isbn:0451450523'],
    };
    const refuses: Record<string, string[]> = {
      date: ['2023-02-29', '1900-02-29', '2024-04-31', '2024-13-01', '24-01-01'],
      'date-time': ['2024-05-01 13:45:00Z', '2024-05-01T24:00:00Z', '2024-05-01T13:45:00'],
      time: ['12:00', '12:60:00Z'],
      duration: ['P', 'PT', 'P1H', '1D'],
      email: ['a@b', '@b.co', 'a@-b.co', 'a..b@c.org'],
      hostname: ['-a', 'a..b', 'a_b'],
      ipv4: ['256.0.0.1', '1.2.3', '01.2.3.4'],
      ipv6: [':::', '1:2:3:4:5:6:7:8:9', '12345::'],
      uuid: ['123e4567e89b12d3a456426614174000'],
      uri: ['//no-scheme', 'http://a b', '1http://x'],
    };
    for (const [name, list] of Object.entries(takes))
      for (const s of list) expect(formatPattern(name)!.test(s), `${name} ${s}`).toBe(true);
    for (const [name, list] of Object.entries(refuses))
      for (const s of list) expect(formatPattern(name)!.test(s), `${name} ${s}`).toBe(false);
  });
});
