// Texts the tokenizers are compared on: every script and whitespace case the pre-tokenizers and
// SentencePiece treat differently, and deterministic random mixes of the awkward characters.

export const CORPUS: readonly string[] = [
  '',
  'Hello world',
  ' Hello world',
  '  Hello  world  ',
  'Hello\nworld\n',
  'The quick brown fox jumps over the lazy dog.',
  'Привет, мир! Как дела?',
  '你好世界，这是一个测试。日本語のテキストも。',
  '한국어 텍스트',
  'café naïve résumé Ångström façade',
  'e\u0301 combining acute, n\u0303',
  'العربية والعبرية עברית',
  'ελληνικά κείμενο',
  '🎉 party 🎉🎉',
  '👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs',
  'emoji glued👍to words',
  '   leading spaces',
  'trailing spaces   ',
  'tabs\tand\t\tmore\ttabs',
  'new\n\nlines\n\n\n',
  'windows\r\nline\r\nends\r\n',
  ' \n \n  \t\n',
  '\u00a0non-breaking\u00a0space and\u3000ideographic space',
  'next line\u0085and bom\ufeffinside',
  '1234567890',
  '3.14159265358979 and 2,718,281',
  'year 2024, 100000 items, 7 days',
  '12345678901234567890',
  'function add(a, b) {\n  return a + b; // sum\n}\n',
  'def f(x):\n    if x > 0:\n        return x ** 2\n    return -x\n',
  '<div class="x">a &amp; b</div>',
  'const re = /^[a-z]+$/gi; x !== y && z ?? w;',
  "I'm sure you're right, they've gone, we'll see, he'd know, it's done",
  "SHOUTING: I'M, YOU'RE, THEY'VE, WE'LL, HE'D, IT'S",
  "rock 'n' roll, 'quoted', ''double''",
  'a ? b ! c . d , e',
  "don 't and won 's",
  '<s>looks special</s>',
  '<|begin_of_text|>Hello<|eot_id|>',
  '<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>',
  'text<|eot_id|>text<|end_of_text|>',
  '<unk> token text',
  '<0x41> looks like a byte token',
  '▁ already escaped ▁▁ spaces',
  '\u0000 nul and \u0007 bell and \u001b escape',
  'mixed: Hello, 世界! 123 🎉 Ωμέγα\n\tend',
];

// mulberry32: a small seeded generator, so the random mixes are the same on every run.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const POOL = [
  'a',
  'b',
  'Z',
  'the',
  ' the',
  'ing',
  ' ',
  ' ',
  '  ',
  '\t',
  '\n',
  '\r\n',
  '\r',
  '0',
  '7',
  '42',
  '123456',
  "'s",
  "'S",
  "'ll",
  "'re",
  "'",
  '"',
  '.',
  ',',
  '?',
  '!',
  '(',
  ')',
  '{',
  '}',
  '<',
  '>',
  '|',
  '_',
  '-',
  '=',
  'é',
  'ß',
  'Ж',
  'я',
  '中',
  '文',
  'の',
  '한',
  'ع',
  '\u0301',
  '\u00a0',
  '\u3000',
  '\u0085',
  '\ufeff',
  '\u2028',
  '🎉',
  '👍🏽',
  '\u200d',
  '👨',
  '𝔘',
  '½',
  '²',
  'Ⅻ',
  '▁',
  '<s>',
  '<|eot_id|>',
  '<|begin_of_text|>',
];

/** `count` random strings of 1 to 24 pieces from POOL, the same every run for a seed. */
export function randomTexts(count: number, seed: number): string[] {
  const next = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(next() * 24);
    let s = '';
    for (let j = 0; j < n; j++) s += POOL[Math.floor(next() * POOL.length)];
    out.push(s);
  }
  return out;
}
