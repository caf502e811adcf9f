// JSON mode's automaton against JSON.parse: every prefix of a serialised object continues, the
// whole closes it; any text it takes in full and calls complete is an object JSON.parse reads,
// and any byte string it refuses is no prefix of one.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileJsonSchema,
  JsonObjectPrefix,
  type JsonShape,
  MAX_DIGITS,
  MAX_EXP_DIGITS,
  MAX_WS,
} from '../../model/json-constraint.js';
import { FORMATS } from '../../model/regex.js';

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
    // Digits: MAX_DIGITS in the integer part and in the fraction, MAX_EXP_DIGITS in the exponent.
    const d = new JsonObjectPrefix();
    d.take(bytes('{"n": -1'));
    expect(d.allows(bytes('7'.repeat(MAX_DIGITS - 1)))).toBe(true);
    expect(d.allows(bytes('7'.repeat(MAX_DIGITS)))).toBe(false);
    expect(d.allows(bytes(`.${'7'.repeat(MAX_DIGITS)}e-${'1'.repeat(MAX_EXP_DIGITS)}}`))).toBe(true);
    expect(d.allows(bytes(`.${'7'.repeat(MAX_DIGITS + 1)}`))).toBe(false);
    expect(d.allows(bytes(`e+${'1'.repeat(MAX_EXP_DIGITS + 1)}`))).toBe(false);
  });
});

// A schema of every supported keyword, values that keep to it, and an oracle (plain recursion
// over the schema) for what the automaton lets through.
const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'only describes' },
    age: { type: 'integer' },
    score: { type: 'number' },
    tags: { type: 'array', items: { enum: ['a', 'b', 'é"q'] }, maxItems: 3 },
    pair: { type: 'array', items: { type: 'boolean' }, minItems: 2, maxItems: 2 },
    pet: {
      type: ['object', 'null'],
      properties: { kind: { const: 'cat' }, lives: { enum: [1, 10, null] } },
      required: ['kind'],
      additionalProperties: false,
    },
    extra: true,
  },
  required: ['name', 'age', 'pair'],
  additionalProperties: false,
} as const;

type Schema = Record<string, unknown> | true;
/** Whether `v` keeps to `s` (plain recursion; `$ref`s resolve against `root`). */
function conforms(v: unknown, s: Schema, root: Schema = s): boolean {
  if (s === true) return true;
  if ('$ref' in s) {
    const path = (s.$ref as string).split('/').slice(1);
    const target = path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root);
    return conforms(v, target as Schema, root);
  }
  const alts = (k: string) => (s[k] as Schema[]).map((a) => conforms(v, a, root));
  if ('anyOf' in s) return alts('anyOf').some(Boolean);
  if ('oneOf' in s) return alts('oneOf').filter(Boolean).length === 1;
  if ('allOf' in s) return alts('allOf').every(Boolean);
  if ('const' in s) return JSON.stringify(v) === JSON.stringify(s.const);
  if ('enum' in s) return (s.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(v));
  const types = s.type === undefined ? undefined : ([] as string[]).concat(s.type as string);
  const typeOf =
    v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;
  if (types && !types.includes(typeOf) && !(typeOf === 'integer' && types.includes('number'))) return false;
  if (typeof v === 'number') {
    const b = s as Record<string, number | undefined>;
    const [lo, hi, xlo, xhi] = [b.minimum, b.maximum, b.exclusiveMinimum, b.exclusiveMaximum];
    const m = b.multipleOf;
    return (
      (m === undefined || Math.abs(Math.round(v / m) * m - v) <= 1e-9 * Math.max(1, Math.abs(v))) &&
      (lo === undefined || v >= lo) &&
      (hi === undefined || v <= hi) &&
      (xlo === undefined || v > xlo) &&
      (xhi === undefined || v < xhi)
    );
  }
  if (typeof v === 'string') {
    const { minLength = 0, maxLength = Infinity, pattern, format } = s as Record<string, never>;
    // JavaScript's own RegExp reads the pattern (the automaton has a reader of its own)
    const re = pattern ?? (format && FORMATS[format]);
    if (re !== undefined && !new RegExp(re, 'u').test(v)) return false;
    return [...v].length >= minLength && [...v].length <= maxLength;
  }
  if (Array.isArray(v)) {
    if (s.uniqueItems === true && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) return false;
    const { items = true, prefixItems = [], additionalItems = true } = s as Record<string, never>;
    const { minItems = 0, maxItems = Infinity } = s as Record<string, never>;
    const [first, rest] = Array.isArray(items) ? [items, additionalItems] : [prefixItems, items];
    const itemSchema = (i: number): Schema | false => (i < (first as Schema[]).length ? first[i]! : rest);
    return (
      v.length >= minItems &&
      v.length <= maxItems &&
      v.every((x, i) => itemSchema(i) !== false && conforms(x, itemSchema(i) as Schema, root))
    );
  }
  if (typeof v === 'object' && v !== null) {
    const props = (s.properties ?? {}) as Record<string, Schema>;
    const o = v as Record<string, unknown>;
    if (((s.required ?? []) as string[]).some((k) => !(k in o))) return false;
    const n = Object.keys(o).length;
    const { minProperties = 0, maxProperties = Infinity } = s as Record<string, never>;
    if (n < minProperties || n > maxProperties) return false;
    const others = (s.additionalProperties ?? true) as Schema | false;
    return Object.entries(o).every(([k, x]) =>
      Object.hasOwn(props, k) ? conforms(x, props[k]!, root) : others !== false && conforms(x, others, root),
    );
  }
  return true;
}

/** Whether the automaton of `shape` takes `text` whole and calls the object complete. */
const fitsTo = (shape: JsonShape) => (text: string) => {
  const j = new JsonObjectPrefix(shape);
  return j.allows(bytes(text)) ? (j.take(bytes(text)), j.complete) : false;
};

/** Every value drawn keeps to the schema (the oracle says) and is taken whole, compact or indented. */
function takesAll(schema: Schema, value: fc.Arbitrary<unknown>): void {
  const fits = fitsTo(compileJsonSchema(schema));
  fc.assert(
    fc.property(value, fc.constantFrom(0, 2), (o, indent) => {
      expect(conforms(o, schema)).toBe(true);
      expect(fits(JSON.stringify(o, null, indent)), JSON.stringify(o)).toBe(true);
    }),
    { seed: 20261206, numRuns: 300 },
  );
}

/** Every byte a schema's texts need (or a random walk could end where the automaton does not). */
const ALPHABET = bytes(' {}[]",:-.+0123456789eEabcdefghijklmnopqrstuvwxyz\\é');

/**
 * Random byte walks through the automaton (each byte one it allows): it never dead-ends, and
 * every object it completes keeps to the schema. How many walks completed.
 */
function walk(schema: Schema, seed: number, runs: number, alphabet = ALPHABET): number {
  const shape = compileJsonSchema(schema);
  let completed = 0;
  fc.assert(
    fc.property(fc.infiniteStream(fc.nat()), (choices) => {
      const j = new JsonObjectPrefix(shape);
      const out: number[] = [];
      const it = choices[Symbol.iterator]();
      for (let step = 0; step < 400 && !j.complete; step++) {
        const ok = [...alphabet].filter((b) => j.allows(Uint8Array.of(b)));
        expect(ok.length, new TextDecoder().decode(Uint8Array.from(out))).toBeGreaterThan(0);
        const b = ok[it.next().value % ok.length]!;
        j.take(Uint8Array.of(b));
        out.push(b);
      }
      if (!j.complete) return;
      completed++;
      const v = JSON.parse(new TextDecoder().decode(Uint8Array.from(out))) as unknown;
      expect(conforms(v, schema), JSON.stringify(v)).toBe(true);
    }),
    { seed, numRuns: runs },
  );
  return completed;
}

describe('JSON mode with a schema', () => {
  const shape = compileJsonSchema(SCHEMA);
  const fits = fitsTo(shape);

  it('takes every object that keeps to it whole, and calls it complete', () => {
    const value = fc.record(
      {
        name: fc.string(),
        age: fc.integer(),
        score: fc.double({ noNaN: true, noDefaultInfinity: true }),
        tags: fc.array(fc.constantFrom('a', 'b', 'é"q'), { maxLength: 3 }),
        pair: fc.tuple(fc.boolean(), fc.boolean()),
        pet: fc.option(
          fc.record(
            { kind: fc.constant('cat'), lives: fc.constantFrom(1, 10, null) },
            { requiredKeys: ['kind'] },
          ),
        ),
        extra: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: ['name', 'age', 'pair'] },
    );
    takesAll(SCHEMA as Schema, value);
  });

  it('refuses what the schema does not allow, byte by byte', () => {
    const base = '{"name": "x", "age": 3, "pair": [true, false]';
    expect(fits(`${base}}`)).toBe(true);
    for (const bad of [
      '{"name": "x", "age": 3}', // a required key missing
      '{"nam": ', // no such key
      '{"name": 1', // wrong type
      '{"age": 3.5', // an integer has no fraction
      '{"age": 1e3', // nor an exponent
      '{"tags": ["c"', // not in the enum
      '{"tags": ["a", "a", "a", "a"', // past maxItems
      '{"pair": [true]', // one item, below minItems: refused at ']'
      '{"pet": {"kind": "dog"', // not the const
      '{"pet": {"kind": "cat", "x"', // no other key
      '{"name": "x", "name"', // a key given twice
    ]) {
      const j = new JsonObjectPrefix(shape);
      expect(j.allows(bytes(bad)), bad).toBe(false);
    }
    expect(fits('{"pet": {"kind": "cat", "lives": 10}, "name": "", "age": -0, "pair": [false, true]}')).toBe(
      true,
    );
    expect(fits('{"pet": {"kind": "cat", "lives": 1 }, "name": "", "age": 0, "pair": [false, true]}')).toBe(
      true,
    );
    expect(
      fits('{"pet": null, "extra": {"any": [1, "thing"]}, "name": "", "age": 0, "pair": [false, true]}'),
    ).toBe(true);
  });

  it('whatever it lets through, byte by byte at random, keeps to the schema', () => {
    expect(walk(SCHEMA as Schema, 7, 120)).toBeGreaterThan(10);
  });

  it('with ordered keys, takes the known keys only in the order properties lists them', () => {
    const ordered = compileJsonSchema(
      {
        type: 'object',
        properties: { a: { type: 'integer' }, b: { type: 'integer' }, c: { type: 'integer' } },
        required: ['a'],
        additionalProperties: false,
      },
      { ordered: true },
    );
    const fits = fitsTo(ordered);
    expect(fits('{"a": 1, "c": 2}')).toBe(true);
    expect(fits('{"a": 1, "b": 2, "c": 3}')).toBe(true);
    for (const bad of ['{"b": 1', '{"a": 1, "c": 2, "b"', '{"c"'])
      expect(new JsonObjectPrefix(ordered).allows(bytes(bad)), bad).toBe(false);
  });

  it('names what it does not support, and where', () => {
    expect(() =>
      compileJsonSchema({ type: 'object', properties: { a: { type: 'string', if: 'x' } } }),
    ).toThrow(/\$\.properties\.a: 'if' is not supported; supported: type, properties/);
    expect(() => compileJsonSchema({ type: 'object', not: {} })).toThrow(/'not' is not supported/);
    expect(() => compileJsonSchema({ anyOf: [] })).toThrow(/\$\.anyOf must be a non-empty array/);
    expect(() => compileJsonSchema({ type: 'array' })).toThrow(/must describe an object/);
    expect(() => compileJsonSchema({ type: 'object', properties: { a: { type: 'int' } } })).toThrow(
      /\$\.properties\.a\.type: "int" is not one of object, array/,
    );
    const keys = (o: object) => () => compileJsonSchema({ type: 'object', ...o });
    expect(keys({ minProperties: 3, maxProperties: 2 })).toThrow(/minProperties 3 > maxProperties 2/);
    expect(keys({ required: ['a', 'b'], maxProperties: 1 })).toThrow(
      /2 keys are required, maxProperties is 1/,
    );
    expect(keys({ properties: { a: true }, additionalProperties: false, minProperties: 2 })).toThrow(
      /minProperties 2, but only 1 keys are allowed/,
    );
    expect(keys({ maxProperties: -1 })).toThrow(/\.maxProperties must be a whole number/);
    expect(() => compileJsonSchema({ type: 'object', additionalProperties: 3 })).toThrow(
      /\$\.additionalProperties: a schema must be an object \(or true\)/,
    );
    expect(() =>
      compileJsonSchema({ type: 'object', properties: {}, required: ['a'], additionalProperties: false }),
    ).toThrow(/'a' is not in properties/);
    // A request's schema nested past any use is refused, not recursed into until the stack ends.
    let deep: object = { type: 'string' };
    for (let i = 0; i < 100_000; i++) deep = { type: 'array', items: deep };
    expect(() => compileJsonSchema({ type: 'object', properties: { a: deep } })).toThrow(
      /nested more than 64 deep/,
    );
  });
});

// What Pydantic writes for nested models, Optional fields, enums and recursive models (and zod
// with zod-to-json-schema alike): $defs and $ref, anyOf with null, allOf of one, string lengths.
const PYDANTIC = {
  $defs: {
    Color: { enum: ['red', 'green'], title: 'Color', type: 'string' },
    Node: {
      type: 'object',
      properties: {
        label: { type: 'string', minLength: 1, maxLength: 3 },
        children: { type: 'array', items: { $ref: '#/$defs/Node' }, maxItems: 2 },
      },
      required: ['label'],
      additionalProperties: false,
    },
  },
  type: 'object',
  properties: {
    color: { $ref: '#/$defs/Color' },
    maybe: { anyOf: [{ $ref: '#/$defs/Color' }, { type: 'null' }], default: null, title: 'Maybe' },
    count: { oneOf: [{ type: 'integer' }, { type: 'string', maxLength: 2 }] },
    tree: { allOf: [{ $ref: '#/$defs/Node' }], description: 'Pydantic v1 wraps a described $ref so' },
    flag: { anyOf: [{ type: 'boolean' }, { const: 'auto' }] },
    scores: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } }, // dict[str, NonNegativeInt]
    meta: { type: 'object', properties: { v: { const: 1 } }, additionalProperties: { type: 'string' } },
    pair: {
      type: 'array',
      prefixItems: [{ type: 'integer' }, { $ref: '#/$defs/Color' }],
      minItems: 2,
      maxItems: 2,
    }, // tuple[int, Color]
    head: { type: 'array', prefixItems: [{ type: 'string' }], items: { type: 'boolean' } }, // tuple[str, *bool]
    only: { prefixItems: [{ type: 'null' }], items: false },
    old: { items: [{ type: 'boolean' }], additionalItems: { type: 'integer' } }, // zod's z.tuple, draft 7
    labels: { type: 'object', additionalProperties: { type: 'string' }, minProperties: 1, maxProperties: 2 },
  },
  required: ['color', 'tree'],
  additionalProperties: false,
} as const;

describe('JSON schemas with $ref, anyOf and string lengths', () => {
  const shape = compileJsonSchema(PYDANTIC);
  const fits = fitsTo(shape);
  // Trees 4 objects deep at most: indented deeper, a line's blanks would pass MAX_WS.
  type Tree = { label: string; children?: Tree[] };
  const treeOf = (depth: number): fc.Arbitrary<Tree> =>
    fc.record(
      {
        label: fc.string({ minLength: 1, maxLength: 3 }),
        children: fc.array(depth ? treeOf(depth - 1) : fc.constant({ label: 'x' }), { maxLength: 2 }),
      },
      { requiredKeys: ['label'] },
    );
  const tree = treeOf(2);

  it('takes every object that keeps to it whole, and calls it complete', () => {
    const value = fc.record(
      {
        color: fc.constantFrom('red', 'green'),
        maybe: fc.constantFrom('red', 'green', null),
        count: fc.oneof(fc.integer(), fc.string({ maxLength: 2 })),
        tree: tree,
        flag: fc.constantFrom(true, false, 'auto'),
        scores: fc.dictionary(fc.stringMatching(/^[a-z]{1,3}$/), fc.nat()),
        pair: fc.tuple(fc.integer(), fc.constantFrom('red', 'green')),
        head: fc.tuple(fc.string(), fc.array(fc.boolean(), { maxLength: 3 })).map(([a, b]) => [a, ...b]),
        only: fc.constantFrom([], [null]),
        labels: fc.dictionary(fc.stringMatching(/^[a-z]{1,3}$/), fc.string(), { minKeys: 1, maxKeys: 2 }),
        old: fc.tuple(fc.boolean(), fc.array(fc.integer(), { maxLength: 2 })).map(([a, b]) => [a, ...b]),
        meta: fc
          .tuple(fc.dictionary(fc.stringMatching(/^[a-u]{1,3}$/), fc.string()), fc.boolean())
          .map(([o, v]) => (v ? { ...o, v: 1 } : o)),
      },
      { requiredKeys: ['color', 'tree'] },
    );
    takesAll(PYDANTIC as Schema, value);
  });

  it('refuses what the schema does not allow, byte by byte', () => {
    const base = '{"color": "red", "tree": {"label": "é", "children": [{"label": "abc"}]}';
    expect(fits(`${base}}`)).toBe(true);
    expect(fits(`${base}, "maybe": null, "count": "12", "flag": "auto"}`)).toBe(true);
    expect(fits(`${base}, "maybe": "green", "count": -7, "flag": false}`)).toBe(true);
    for (const bad of [
      '{"color": "blue"', // not in the referenced enum
      '{"color": null', // the enum alone, not its Optional
      '{"maybe": "blue"', // not in the enum the anyOf names
      '{"count": 1.5', // oneOf: an integer or a string
      '{"count": "123"', // past the string alternative's maxLength
      '{"flag": "on"', // only true, false or "auto"
      '{"scores": {"a": -1', // each value a non-negative integer
      '{"scores": {"a": "x"',
      '{"meta": {"v": 2', // a named key keeps its own schema
      '{"meta": {"x": 1', // the others are strings
      '{"pair": ["red"', // an integer first
      '{"pair": [1, 2', // then a Color
      '{"pair": [1, "red",', // and nothing more
      '{"head": [true', // a string first
      '{"head": ["a", "b"', // booleans after it
      '{"only": [null,', // nothing past the prefix
      '{"old": [1', // a boolean first
      '{"old": [true, false', // integers after it
      '{"labels": {}', // one key at least
      '{"labels": {"a": "x", "b": "y",', // two at most
      '{"tree": {"label": ""}', // below minLength
      '{"tree": {"label": "abcd"', // past maxLength
      '{"tree": {"label": "\\n\\t\\u0041\\"', // four characters, each an escape
      '{"tree": {"label": "x", "children": [{"label": "x", "other"', // the recursive Node's keys
      '{"tree": {"label": "x", "children": [{}', // its required label
      '{"color": "red", "tree": {"label": "x"}}x',
    ]) {
      const j = new JsonObjectPrefix(shape);
      expect(j.allows(bytes(bad)), bad).toBe(false);
    }
    expect(fits('{"color": "red", "tree": {"label": "\\n\\t\\u0041"}}')).toBe(true);
    expect(fits('{"color": "red", "tree": {"label": "日本語"}}')).toBe(true);
  });

  it('whatever it lets through, byte by byte at random, keeps to the schema', () => {
    expect(walk(PYDANTIC as Schema, 11, 80)).toBeGreaterThan(10);
  });

  it('refuses the unions and references it cannot follow exactly, by name and place', () => {
    const obj = (properties: object) => ({ type: 'object', properties });
    const refuse = (s: object, why: RegExp) => expect(() => compileJsonSchema(s)).toThrow(why);
    refuse(
      obj({ a: { oneOf: [obj({ x: true }), obj({ y: true })] } }),
      /\$\.properties\.a\.oneOf: several object alternatives of oneOf must be told apart by a key/,
    );
    refuse(
      obj({ a: { oneOf: [{ type: 'integer' }, { type: 'number' }] } }),
      /an integer and a number alternative of oneOf/,
    );
    refuse(obj({ a: { oneOf: [{ type: 'string' }, { type: 'string' }] } }), /two alternatives are strings/);
    refuse(
      obj({ a: { oneOf: [{ type: 'array' }, { type: 'array' }] } }),
      /two alternatives of oneOf allow arrays/,
    );
    refuse(obj({ a: { oneOf: [true, { type: 'string' }] } }), /an alternative that allows anything/);
    refuse(
      obj({ a: { anyOf: [{ type: 'string', maxLength: 2 }, { enum: ['abc'] }] } }),
      /the value "abc" is listed beside an alternative of its type/,
    );
    refuse(obj({ a: { anyOf: [{ type: 'integer' }, { const: 1.5 }] } }), /the value 1.5 is listed beside/);
    refuse(
      obj({ a: { anyOf: [{ type: 'string' }], type: 'string' } }),
      /'anyOf' beside 'type' is not supported/,
    );
    refuse(
      obj({ a: { allOf: [{ type: 'string' }, { maxLength: 3 }] } }),
      /allOf: only one schema is supported, not 2/,
    );
    refuse(obj({ a: { $ref: 'https://example.com/s.json' } }), /only references inside the schema/);
    refuse(obj({ a: { $ref: '#/$defs/Missing' } }), /"#\/\$defs\/Missing" points at nothing/);
    refuse(
      {
        ...obj({ a: { $ref: '#/$defs/A' } }),
        $defs: { A: { $ref: '#/$defs/B' }, B: { allOf: [{ $ref: '#/$defs/A' }] } },
      },
      /refers back to itself before any object or array does/,
    );
    refuse(
      {
        ...obj({ a: { $ref: '#/$defs/A' } }),
        $defs: { A: { anyOf: [{ $ref: '#/$defs/A' }, { type: 'null' }] } },
      },
      /refers back to itself before any object or array does/,
    );
    refuse(obj({ a: { type: 'string', minLength: 3, maxLength: 2 } }), /minLength 3 > maxLength 2/);
    // the root through a reference, and a reference to the root itself, are fine
    const root = {
      $ref: '#/$defs/R',
      $defs: { R: obj({ again: { anyOf: [{ $ref: '#' }, { type: 'null' }] } }) },
    };
    const j = new JsonObjectPrefix(compileJsonSchema(root));
    const text = '{"again": {"again": {"again": null}}}';
    expect(j.allows(bytes(text))).toBe(true);
    j.take(bytes(text));
    expect(j.complete).toBe(true);
  });
});

// Unions of several object (or array) schemas, followed side by side: a tagged union as Pydantic
// writes it (oneOf with a discriminator), an untagged one (anyOf), arrays of two item types.
const UNIONS = {
  type: 'object',
  properties: {
    pet: {
      oneOf: [
        {
          type: 'object',
          properties: { kind: { const: 'cat' }, lives: { type: 'integer' } },
          required: ['kind', 'lives'],
          additionalProperties: false,
        },
        {
          type: 'object',
          properties: { kind: { const: 'dog' }, good: { type: 'boolean' } },
          required: ['kind'],
          additionalProperties: false,
        },
      ],
      discriminator: { propertyName: 'kind' },
    },
    shape: {
      anyOf: [
        {
          type: 'object',
          properties: { r: { type: 'number' } },
          required: ['r'],
          additionalProperties: false,
        },
        {
          type: 'object',
          properties: { w: { type: 'number' }, h: { type: 'number' } },
          required: ['w', 'h'],
          additionalProperties: false,
        },
        { type: 'null' },
      ],
    },
    list: {
      anyOf: [
        { type: 'array', items: { type: 'integer' }, maxItems: 2 },
        { type: 'array', items: { enum: ['x', 'y'] } },
      ],
    },
  },
  required: ['pet'],
  additionalProperties: false,
} as const;

describe('JSON schemas with unions of objects and of arrays', () => {
  const fits = fitsTo(compileJsonSchema(UNIONS));

  it('takes every object that keeps to it whole, and calls it complete', () => {
    const num = fc.double({ noNaN: true, noDefaultInfinity: true });
    takesAll(
      UNIONS as Schema,
      fc.record(
        {
          pet: fc.oneof(
            fc.record({ kind: fc.constant('cat'), lives: fc.integer() }),
            fc.record({ kind: fc.constant('dog'), good: fc.boolean() }, { requiredKeys: ['kind'] }),
          ),
          shape: fc.oneof(fc.record({ r: num }), fc.record({ w: num, h: num }), fc.constant(null)),
          list: fc.oneof(fc.array(fc.integer(), { maxLength: 2 }), fc.array(fc.constantFrom('x', 'y'))),
        },
        { requiredKeys: ['pet'] },
      ),
    );
  });

  it('refuses what no alternative allows, byte by byte', () => {
    expect(fits('{"pet": {"lives": 9, "kind": "cat"}, "shape": {"h": 2, "w": 1}, "list": ["y"]}')).toBe(true);
    expect(fits('{"pet": {"kind": "dog"}, "list": [], "shape": {"r": -1}}')).toBe(true);
    for (const bad of [
      '{"pet": {"kind": "cat"}', // the cat's lives missing
      '{"pet": {"kind": "dog", "lives"', // a dog has no lives
      '{"pet": {"kind": "cat", "good"',
      '{"pet": {"kind": "cow"',
      '{"shape": {"r": 1, "w"', // a circle has no width
      '{"shape": {"w": 1}', // a rectangle's height missing
      '{"list": [1, "x"', // one item type per list
      '{"list": [1, 2, 3', // the integer list holds 2
    ]) {
      const j = new JsonObjectPrefix(compileJsonSchema(UNIONS));
      expect(j.allows(bytes(bad)), bad).toBe(false);
    }
  });

  it('whatever it lets through, byte by byte at random, keeps to the schema', () => {
    expect(walk(UNIONS as Schema, 5, 120)).toBeGreaterThan(10);
  });
});

// Integers with bounds (Pydantic's conint / Field(ge=…, le=…, gt=…, lt=…)): a digit is taken only
// where some integer within them still begins so.
const BOUNDED = {
  type: 'object',
  properties: {
    age: { type: 'integer', minimum: 0, maximum: 120 },
    delta: { type: 'integer', exclusiveMinimum: -10, exclusiveMaximum: 10 },
    big: { type: 'integer', minimum: 1000 },
    neg: { type: 'integer', maximum: -5 },
    level: { type: 'integer', enum: [1, 5, 50], minimum: 2 },
    ratio: { type: 'number', minimum: 0, maximum: 1 },
    kelvin: { type: 'number', exclusiveMinimum: -273.15, exclusiveMaximum: 0.5 },
    price: { type: ['number', 'null'], minimum: 0.25, exclusiveMaximum: 10 },
    size: { enum: [0.5, 2.5, 'big'], maximum: 1 }, // the bounds leave 0.5 and 'big'
    cents: { type: 'number', multipleOf: 0.01, minimum: 0 },
    even: { type: 'integer', multipleOf: 2, maximum: 100 },
    quarter: { type: 'number', multipleOf: 0.25, exclusiveMinimum: -1, maximum: 1 },
    five: { type: 'integer', multipleOf: 2.5 }, // integers: multiples of 5
  },
  required: ['age'],
  additionalProperties: false,
} as const;

/** Numbers JSON.stringify writes without an exponent (a bounded number is written so). */
const plain = (a: fc.Arbitrary<number>) => a.filter((x) => !/e/.test(JSON.stringify(x)));

describe('JSON schemas with number bounds', () => {
  const fits = fitsTo(compileJsonSchema(BOUNDED));

  it('takes every object that keeps to it whole, and calls it complete', () => {
    takesAll(
      BOUNDED as Schema,
      fc.record(
        {
          age: fc.integer({ min: 0, max: 120 }),
          delta: fc.integer({ min: -9, max: 9 }),
          big: fc.integer({ min: 1000 }),
          neg: fc.integer({ max: -5 }),
          level: fc.constantFrom(5, 50),
          ratio: plain(fc.double({ min: 0, max: 1, noNaN: true })),
          kelvin: plain(
            fc.double({ min: -273.15, max: 0.5, minExcluded: true, maxExcluded: true, noNaN: true }),
          ),
          price: fc.option(plain(fc.double({ min: 0.25, max: 10, maxExcluded: true, noNaN: true }))),
          size: fc.constantFrom(0.5, 'big'),
          cents: plain(fc.nat(1_000_000).map((n) => n / 100)),
          even: fc.integer({ min: -1000, max: 50 }).map((k) => 2 * k),
          quarter: fc.integer({ min: -3, max: 4 }).map((k) => k / 4),
          five: fc.integer({ min: -1000, max: 1000 }).map((k) => 5 * k),
        },
        { requiredKeys: ['age'] },
      ),
    );
  });

  it('refuses a digit no integer within the bounds begins with, and a number that ends outside them', () => {
    expect(fits('{"age": 120, "delta": -9, "big": 1000, "neg": -5, "level": 50}')).toBe(true);
    for (const bad of [
      '{"age": -1', // no negative age (-0 is 0)
      '{"age": 121', // 12 may go on to 120, not to 121
      '{"age": 1200',
      '{"age": 01', // no leading zero
      '{"delta": 10',
      '{"delta": -10',
      '{"big": 999}', // 999 may go on (9990), but ends below 1000
      '{"neg": -4}', // -4 may go on (-40), but ends above -5
      '{"neg": 0',
      '{"neg": -0',
      '{"level": 1', // the enum less what the bounds leave out
    ]) {
      const j = new JsonObjectPrefix(compileJsonSchema(BOUNDED));
      expect(j.allows(bytes(bad)), bad).toBe(false);
    }
    expect(fits('{"neg": -4000000000000000, "age": 0}')).toBe(true);
    expect(fits('{"age": 1, "ratio": 0.25, "kelvin": -273.1499, "price": 9.999, "size": "big"}')).toBe(true);
    expect(fits('{"age": 1, "ratio": 1, "kelvin": 0.4999999, "price": 0.25}')).toBe(true);
    expect(fits('{"age": 1, "ratio": 1.0000, "price": null, "size": 0.5}')).toBe(true);
    expect(fits('{"age": 1, "cents": 12.5, "even": -4, "quarter": -0.75, "five": -15}')).toBe(true);
    expect(fits('{"age": 1, "cents": 3.100, "quarter": 0.50000, "five": 30}')).toBe(true);
    for (const bad of [
      '{"ratio": 2', // no number in [0, 1] starts with 2
      '{"ratio": 1.1', // 1.x is past 1 unless x is zeros
      '{"ratio": 0.5e', // no exponent on a bounded number
      '{"ratio": -0.1',
      '{"kelvin": -273.15}', // exclusive
      '{"kelvin": -274', // -274 or longer: past the bound
      '{"kelvin": 0.5}',
      '{"kelvin": 0.6',
      '{"price": 0.2}', // 0.2 may go on (0.25), but ends below 0.25
      '{"price": 10}',
      '{"price": 10.', // 10.x ≥ 10
      '{"size": 2.5', // listed, but past the bound
      '{"cents": 0.001', // a third decimal
      '{"cents": 1.234',
      '{"cents": -1',
      '{"even": 3}',
      '{"even": 102',
      '{"quarter": 0.3', // 0.30-0.39: no quarter
      '{"quarter": -1}',
      '{"quarter": 1.25',
      '{"five": 7}',
      '{"five": 3}', // 3 may go on (30), not end
    ]) {
      const j = new JsonObjectPrefix(compileJsonSchema(BOUNDED));
      expect(j.allows(bytes(bad)), bad).toBe(false);
    }
  });

  it('whatever it lets through, byte by byte at random, keeps to the schema', () => {
    expect(walk(BOUNDED as Schema, 9, 80)).toBeGreaterThan(10);
  });

  it('names the bounds it cannot follow', () => {
    const refuse = (s: object, why: RegExp) =>
      expect(() => compileJsonSchema({ type: 'object', properties: { a: s } })).toThrow(why);
    refuse({ type: 'number', minimum: 1, exclusiveMaximum: 1 }, /no number lies within its bounds/);
    refuse({ type: 'number', multipleOf: 0 }, /\.multipleOf must be a number above 0/);
    refuse({ type: 'number', multipleOf: 1e-13 }, /at most 12 decimals/);
    refuse({ type: 'integer', minimum: 5, maximum: 4 }, /no integer lies within its bounds/);
    refuse(
      { type: 'integer', exclusiveMinimum: 4, exclusiveMaximum: 5 },
      /no integer lies within its bounds/,
    );
    refuse({ type: 'integer', maximum: 1e300 }, /must be a number within/);
    refuse(
      {
        anyOf: [
          { type: 'integer', minimum: 0 },
          { type: 'integer', maximum: -1 },
        ],
      },
      /two number alternatives with other bounds or multipleOf/,
    );
  });
});

const PATTERNED = {
  type: 'object',
  properties: {
    code: { type: 'string', pattern: '^[A-Z]{2}\\d{1,3}$' },
    when: { type: 'string', format: 'date' },
    word: { type: 'string', pattern: 'é', maxLength: 4 }, // an é somewhere, 4 characters at most
    quote: { type: 'string', pattern: '^"\\\\?\\n?$' }, // '"', then maybe '\\', then maybe a newline
    id: { anyOf: [{ type: 'string', format: 'uuid' }, { type: 'null' }] },
    tags: { type: 'array', items: { type: 'string', pattern: '^#[a-z]+$' }, maxItems: 2 },
    kind: { enum: ['AB1', 'x', 3], pattern: '^[A-Z]' }, // the pattern leaves AB1 and 3
    even: { type: 'string', pattern: '^(ab)+$', minLength: 3, maxLength: 5 }, // abab alone
    long: { type: 'string', pattern: '^[a-z]+$', minLength: 3 },
    mail: { type: 'string', format: 'email', maxLength: 300 }, // an address is 254 at most
  },
  required: ['code'],
  additionalProperties: false,
} as const;

describe('JSON schemas with patterns and formats', () => {
  const fits = fitsTo(compileJsonSchema(PATTERNED));

  it('takes every object that keeps to it whole, and calls it complete', () => {
    takesAll(
      PATTERNED as Schema,
      fc.record(
        {
          code: fc.stringMatching(/^[A-Z]{2}\d{1,3}$/),
          when: fc
            .date({ min: new Date('1600-01-01'), max: new Date('2400-12-31'), noInvalidDate: true })
            .map((d) => d.toISOString().slice(0, 10)),
          word: fc
            .tuple(fc.string({ maxLength: 1 }), fc.string({ maxLength: 2 }))
            .map(([a, b]) => `${a}é${b}`),
          quote: fc.constantFrom('"', '"\\', '"\n', '"\\\n'),
          id: fc.option(fc.uuid()),
          tags: fc.array(fc.stringMatching(/^#[a-z]+$/), { maxLength: 2 }),
          kind: fc.constantFrom('AB1', 3),
          even: fc.constant('abab'),
          long: fc.stringMatching(/^[a-z]{3,}$/),
          mail: fc.constantFrom('a@b.co', 'x.y+z@mail.example.org', `${'a'.repeat(250)}@b.c`),
        },
        { requiredKeys: ['code'] },
      ),
    );
  });

  it('refuses a character the pattern cannot go on with, and an end it does not allow', () => {
    expect(
      fits('{"code": "\\u0041B1", "word": "\\u00e9", "quote": "\\"\\\\\\n", "when": "2024-02-29"}'),
    ).toBe(true);
    expect(fits('{"code": "ZZ999", "id": "123e4567-e89b-12d3-a456-426614174000", "tags": ["#a"]}')).toBe(
      true,
    );
    for (const bad of [
      '{"code": "A1', // two capitals first
      '{"code": "AB1234', // three digits at most
      '{"code": "AB"', // a digit before the end
      '{"code": "AB\\u0031\\u004', // 1 as an escape, then one that ends as no digit (\u004x)
      '{"when": "2023-02-29', // no 29 February in 2023
      '{"when": "2024-13', // no month 13
      '{"word": "abcd', // the fourth character must be the é
      '{"word": "ab"', // no é at all
      '{"quote": "x',
      '{"quote": "\\"\\n\\n', // one newline at most
      '{"id": "xyz',
      '{"tags": ["#A',
      '{"kind": "x"', // in the enum, but not the pattern's
      '{"even": "ab"', // the pattern's, but shorter than minLength
      '{"even": "ababa', // no match ends within maxLength after it
      '{"long": "ab"',
      `{"mail": "${'a'.repeat(250)}@b.co`, // 255 characters
      `{"mail": "${'a'.repeat(251)}`, // no address fits after it
    ]) {
      const j = new JsonObjectPrefix(compileJsonSchema(PATTERNED));
      expect(j.allows(bytes(bad)), bad).toBe(false);
    }
    // The escape \u0 may still end as a digit (0030-0039), \u00 too; \u01 never does.
    const j = new JsonObjectPrefix(compileJsonSchema(PATTERNED));
    expect(j.allows(bytes('{"code": "AB\\u003'))).toBe(true);
    expect(j.allows(bytes('{"code": "AB\\u01'))).toBe(false);
    // UTF-8: é's lead byte is taken where an é may come, not where only ASCII may.
    expect(j.allows(Uint8Array.of(...bytes('{"word": "a'), 0xc3))).toBe(true);
    expect(j.allows(Uint8Array.of(...bytes('{"code": "'), 0xc3))).toBe(false);
    // Only well-formed UTF-8 where a pattern reads the characters: E0 80 B0 would be an overlong
    // '0' (a decoder reads it as replacement characters), ED A0 80 a surrogate, F4 90 past U+10FFFF.
    expect(j.allows(Uint8Array.of(...bytes('{"code": "AB'), 0xe0, 0x80, 0xb0))).toBe(false);
    expect(j.allows(Uint8Array.of(...bytes('{"word": "'), 0xed, 0xa0, 0x80))).toBe(false);
    expect(j.allows(Uint8Array.of(...bytes('{"word": "'), 0xf4, 0x90))).toBe(false);
    expect(j.allows(Uint8Array.of(...bytes('{"word": "'), 0xf4, 0x8f, 0xbf, 0xbf))).toBe(true);
  });

  it('whatever it lets through, byte by byte at random, keeps to the schema', () => {
    const alphabet = Uint8Array.from([...ALPHABET, ...bytes('ABZ#')]);
    expect(walk(PATTERNED as Schema, 13, 100, alphabet)).toBeGreaterThan(10);
  });

  it('names the patterns and formats it cannot follow, and where', () => {
    const refuse = (s: object, why: RegExp) =>
      expect(() => compileJsonSchema({ type: 'object', properties: { a: s } })).toThrow(why);
    refuse(
      { type: 'string', pattern: '(?=x)y' },
      /\$\.properties\.a\.pattern: lookahead \(\?= \/ \?!\) is not supported/,
    );
    refuse({ type: 'string', pattern: '[a' }, /\.pattern: a '\[' without its '\]'/);
    refuse({ type: 'string', pattern: 3 }, /\.pattern must be a string/);
    refuse(
      { type: 'string', format: 'color' },
      /\.format: "color" is not supported; supported: date-time, date, time/,
    );
    refuse({ type: 'string', pattern: 'x', format: 'date' }, /'pattern' beside 'format' is not supported/);
    refuse(
      { type: 'string', pattern: '^\\d{3}$', minLength: 4 },
      /no string of 4 to \d+ characters matches the pattern/,
    );
    refuse(
      { type: 'string', pattern: '^(a{1000}|b{1000}|c{1000})$', maxLength: 3000 },
      /the schema's patterns and their length bounds need more than 8000000/,
    );
    // Many patterns: the schema's budget of states and table cells in all, not each alone.
    const many = Object.fromEntries(
      Array.from({ length: 400 }, (_, i) => [`p${i}`, { type: 'string', pattern: '^x+$', maxLength: 4000 }]),
    );
    expect(() => compileJsonSchema({ type: 'object', properties: many })).toThrow(
      /\$\.properties\.p\d+: the schema's patterns and their length bounds need more than 8000000/,
    );
    refuse(
      { type: 'string', format: 'uuid', maxLength: 35 },
      /no string of 0 to 35 characters matches the format/,
    );
    refuse(
      {
        anyOf: [
          { type: 'string', format: 'date' },
          { type: 'string', format: 'uuid' },
        ],
      },
      /two alternatives are strings/,
    );
  });
});

const UNIQUE = {
  $defs: { Color: { enum: ['red', 'green', 'blue'] } },
  type: 'object',
  properties: {
    tags: { type: 'array', items: { type: 'string', maxLength: 2 }, uniqueItems: true }, // set[str]
    nums: { type: 'array', items: { type: 'number' }, uniqueItems: true },
    colors: { type: 'array', items: { $ref: '#/$defs/Color' }, uniqueItems: true, minItems: 1 },
    flags: { type: 'array', items: { type: ['boolean', 'null'] }, uniqueItems: true },
    ints: { type: 'array', items: { type: 'integer' }, uniqueItems: true },
  },
  required: ['tags'],
  additionalProperties: false,
} as const;

describe('JSON schemas with uniqueItems', () => {
  const fits = fitsTo(compileJsonSchema(UNIQUE));
  const distinctBy =
    <T>(key: (x: T) => string) =>
    (xs: T[]) =>
      new Set(xs.map(key)).size === xs.length;

  it('takes every object that keeps to it whole, and calls it complete', () => {
    takesAll(
      UNIQUE as Schema,
      fc.record(
        {
          tags: fc.uniqueArray(fc.string({ maxLength: 2 }), { maxLength: 4 }),
          nums: fc
            .uniqueArray(plain(fc.double({ noNaN: true, noDefaultInfinity: true })), { maxLength: 4 })
            .filter(distinctBy((x) => JSON.stringify(x))),
          colors: fc.shuffledSubarray(['red', 'green', 'blue'], { minLength: 1 }),
          flags: fc.shuffledSubarray([true, false, null]),
          ints: fc.uniqueArray(fc.integer(), { maxLength: 4 }),
        },
        { requiredKeys: ['tags'] },
      ),
    );
  });

  it('refuses an item equal to an earlier one, however it is written', () => {
    expect(fits('{"tags": ["a", "b", "ab"], "nums": [1, 1.5, -0.5], "colors": ["blue", "red"]}')).toBe(true);
    for (const bad of [
      '{"tags": ["a", "a"', // the same string
      '{"tags": ["a", "\\u0061"', // the same string, escaped
      '{"nums": [1, 1.0,', // the same number
      '{"nums": [0, -0]', // -0 is 0
      '{"colors": ["red", "red"',
      '{"colors": []', // minItems
      '{"colors": ["red", "green", "blue",', // no fourth color: no ',' once all are used
      '{"flags": [true, null, true',
      '{"flags": [true, false, null,',
      '{"nums": [1e5', // items compared as numbers are written without an exponent
      '{"tags": ["ab", "ab', // at maxLength the string could only close as a repeat
      '{"tags": ["ab", "a\\u0062', // the same, escaped
      '{"ints": [0, -0', // nothing follows 0 in an integer
      '{"ints": [0, 0',
      '{"flags": [null, n',
    ]) {
      const j = new JsonObjectPrefix(compileJsonSchema(UNIQUE));
      expect(j.allows(bytes(bad)), bad).toBe(false);
    }
    expect(fits('{"tags": ["ab", "a"], "flags": [null, false, true]}')).toBe(true);
    // A string whose pattern ends it: refused where it would close as a repeat. (A pattern of a
    // few strings may still run out of new ones after a ',': such sets are not counted.)
    const codes = compileJsonSchema({
      type: 'object',
      properties: {
        codes: { type: 'array', items: { type: 'string', pattern: '^[ab]$' }, uniqueItems: true },
      },
    });
    expect(new JsonObjectPrefix(codes).allows(bytes('{"codes": ["a", "a'))).toBe(false);
    expect(new JsonObjectPrefix(codes).allows(bytes('{"codes": ["a", "b"]'))).toBe(true);
  });

  it('whatever it lets through, byte by byte at random, keeps to the schema', () => {
    expect(walk(UNIQUE as Schema, 17, 100)).toBeGreaterThan(10);
  });

  it('names what it cannot follow', () => {
    const refuse = (s: object, why: RegExp) =>
      expect(() => compileJsonSchema({ type: 'object', properties: { a: s } })).toThrow(why);
    refuse(
      { type: 'array', items: { type: 'object' }, uniqueItems: true },
      /uniqueItems: supported on arrays whose items are strings/,
    );
    refuse({ type: 'array', uniqueItems: true }, /uniqueItems: supported on arrays/);
    refuse(
      { type: 'array', items: { type: 'boolean' }, uniqueItems: true, minItems: 3 },
      /minItems 3 distinct items, but only 2/,
    );
    refuse(
      { type: 'array', items: { type: 'string' }, uniqueItems: 'yes' },
      /uniqueItems must be true or false/,
    );
    refuse(
      { type: 'array', items: { type: 'integer', maximum: 3 }, uniqueItems: true },
      /numbers with bounds or multipleOf as items/,
    );
  });
});
