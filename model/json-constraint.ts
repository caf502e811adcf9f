import {
  FORMAT_MAX_LENGTH,
  FORMATS,
  type Lengths,
  MAX_LENGTH_WORK,
  Pattern,
  PatternError,
  type PatternState,
  type Room,
  compilePattern,
  formatPattern,
} from './regex.js';

// JSON mode (OpenAI's `response_format: { type: "json_object" }`): the generated text is kept a
// prefix of one JSON object (RFC 8259), byte by byte, and the sequence ends when the object
// closes. With a JSON schema (`json_schema`; compileJsonSchema below) the object also keeps to
// it: each value's type, an object's known keys and required ones, enums, an array's items and
// length, a string's length and pattern (or format), unions, references. A pushdown automaton over bytes: `stack` holds
// the open containers ('{' or '['), the mode says what may come next; where a union has several
// object (or array) alternatives, each is a reading of its own, and the text goes on while one
// does. Strings take any byte from 0x20 on (UTF-8 is not checked: the tokens' bytes are the
// tokenizer's), but where a pattern reads the characters (escapes decoded, UTF-8 well formed:
// regex.ts); numbers, literals and escapes follow the grammar exactly.
// Whitespace between tokens runs at most MAX_WS bytes and a number's digits MAX_DIGITS (as
// llama.cpp's json.gbnf bounds them): a model that favours blanks or repeats a digit would
// otherwise fill max_tokens with them, the known failure of JSON modes.

const enum Mode {
  Top, // nothing yet: whitespace or '{'
  Value, // a value (after ':' or ',' in an array)
  KeyOrEnd, // after '{': a key or '}'
  Key, // after ',' in an object: a key
  Colon, // after a key
  ValueOrEnd, // after '[': a value or ']'
  After, // after a value: ',' or the container's end
  Str, // in a string
  Esc, // after '\' in a string
  Hex, // in \uXXXX: `count` digits left
  Minus, // after '-'
  Zero, // a number's leading 0
  Int, // integer digits
  Dot, // after '.'
  Frac, // fraction digits
  E, // after 'e' / 'E'
  ESign, // after the exponent's sign
  Exp, // exponent digits
  Lit, // in true / false / null: `word`[`count`] next
  Enum, // in a value the schema lists (`acc` so far)
  Done, // the object closed: whitespace only
}

// --- JSON schema --------------------------------------------------------------------------

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';
const TYPES: readonly JsonType[] = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];

/** A schema as the automaton follows it. A value's shape `undefined`: any JSON value. */
export interface JsonShape {
  /** The types a value may take beyond `values` (each with the constraints below). */
  types: ReadonlySet<JsonType>;
  /** Known keys (as their JSON text between the quotes, UTF-8 bytes as latin1) → their shapes. */
  properties: ReadonlyMap<string, JsonShape | undefined>;
  required: ReadonlySet<string>;
  /** Keys beyond `properties` (any value). */
  additional: boolean;
  /** additionalProperties as a schema (Pydantic's `dict[str, X]`): the shape of those keys' values. */
  extra?: JsonShape;
  /** Known keys come in the order of `properties` (CompileOptions.ordered; where no other key may come). */
  ordered?: boolean;
  /** minProperties / maxProperties: keys an object holds at least / at most. */
  minProperties?: number;
  maxProperties?: number;
  items: JsonShape | undefined;
  /**
   * uniqueItems (Pydantic's `set[X]`, items of strings, numbers, booleans or null): no item equal to
   * an earlier one; `limit` the distinct items there can be (Infinity but for enums, booleans, null).
   */
  unique?: { limit: number };
  /** prefixItems (a tuple, as Pydantic's `tuple[int, str]`): the shapes of the first items; `items` the rest's. */
  prefix?: readonly (JsonShape | undefined)[];
  minItems: number;
  maxItems: number;
  /** A string's characters (code points; an escape counts as one). */
  minLength: number;
  maxLength: number;
  /** `pattern`, or the pattern of a `format` (regex.ts FORMATS): a string value matches it. */
  pattern?: Pattern;
  /** Beside a pattern, the lengths the bounds leave it (Pattern.lengths). */
  lengths?: Lengths;
  /**
   * A number's bounds, inclusive (minimum, maximum and their exclusive forms: whole numbers on
   * integers, the nearest doubles inside on numbers); none: ±Infinity.
   */
  minimum: number;
  maximum: number;
  /** multipleOf: a number is `m` × 10^-scale times a whole number (integers: scale 0). */
  multiple?: Multiple;
  /**
   * enum / const: the values' JSON texts (bytes as latin1). None starts as a value of one of
   * `types` does (compile-time rule), so a value's first byte says which of the two it is.
   */
  values: readonly string[] | undefined;
  /**
   * A union's object alternatives where there are several (anyOf of two models): an object
   * keeps to one of them, followed side by side from its '{' (the fields above then say nothing
   * of objects). `arrays` likewise.
   */
  objects?: readonly JsonShape[];
  arrays?: readonly JsonShape[];
}

/** A multipleOf as a decimal: m × 10^-scale. */
export interface Multiple {
  m: bigint;
  scale: number;
}

export class JsonSchemaError extends Error {
  override name = 'JsonSchemaError';
}

/** Keywords that only describe, and the definitions `$ref` points into. */
const NOTES = new Set([
  'title',
  'description',
  '$schema',
  '$id',
  '$comment',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  'discriminator', // OpenAPI's, beside oneOf: the alternatives are told apart whether it is there or not
  '$defs',
  'definitions',
]);
/** The keywords followed (anyOf/oneOf of alternatives of different types, allOf of one, local $ref). */
export const SUPPORTED = [
  'type',
  'properties',
  'required',
  'additionalProperties',
  'minProperties',
  'maxProperties',
  'items',
  'prefixItems',
  'additionalItems',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'enum',
  'const',
  'anyOf',
  'oneOf',
  'allOf',
  '$ref',
];
/** Keywords that stand alone: beside them only NOTES. */
const ALONE = ['anyOf', 'oneOf', 'allOf', '$ref'];

const bytesText = (v: string): string => Buffer.from(v, 'utf8').toString('latin1');

export interface CompileOptions {
  /**
   * Keys in the order `properties` lists them, in objects that take no other keys (as OpenAI's
   * structured outputs write them): a forced tool call's name then comes before its arguments,
   * which can then stream.
   */
  ordered?: boolean;
}

/**
 * A JSON schema (the subset above: type, properties, required, additionalProperties (a boolean or
 * the schema of the other keys' values), minProperties, maxProperties, items, prefixItems,
 * minItems, maxItems, uniqueItems, minLength, maxLength, pattern, format (regex.ts FORMATS), a
 * number's bounds and multipleOf (such a number without exponent), enum, const; anyOf, and oneOf
 * whose alternatives exclude each other, such as `Optional[X]` and unions of models; allOf of one
 * schema; `$ref` into the schema itself, recursive ones included: what Pydantic and zod write) as
 * the automaton follows it. Anything else (`not`, `if`, lookaround in a pattern, …) is refused by
 * name and place: followed loosely it would let through text the schema forbids. The top level
 * must be an object, as OpenAI's structured outputs.
 */
export function compileJsonSchema(schema: unknown, o: CompileOptions = {}): JsonShape {
  const root = new SchemaCompiler(schema, o.ordered ?? false).compile();
  if (!root || root.types.size !== 1 || !root.types.has('object') || root.values)
    throw new JsonSchemaError('the schema must describe an object ({ "type": "object", ... }) at the top');
  return root;
}

/** Schemas nested deeper are refused (a request's schema must not exhaust the stack). */
const MAX_SCHEMA_DEPTH = 64;

type Shape = { -readonly [K in keyof JsonShape]: JsonShape[K] };

/** The fields of a shape that allows any value (what `undefined` means), as an object. */
function anyShape(): Shape {
  return {
    types: new Set(TYPES),
    properties: new Map(),
    required: new Set(),
    additional: true,
    items: undefined,
    minItems: 0,
    maxItems: Number.MAX_SAFE_INTEGER,
    minLength: 0,
    maxLength: Number.MAX_SAFE_INTEGER,
    minimum: -Infinity,
    maximum: Infinity,
    values: undefined,
  };
}

function isAny(s: JsonShape): boolean {
  const a = anyShape();
  return (
    s.types.size === TYPES.length &&
    !s.values &&
    !s.objects &&
    !s.arrays &&
    s.additional &&
    !s.extra &&
    s.minProperties === undefined &&
    s.maxProperties === undefined &&
    s.properties.size === 0 &&
    s.required.size === 0 &&
    !s.items &&
    !s.prefix &&
    !s.unique &&
    s.minItems === a.minItems &&
    s.maxItems === a.maxItems &&
    s.minLength === a.minLength &&
    s.maxLength === a.maxLength &&
    !s.pattern &&
    s.minimum === a.minimum &&
    s.maximum === a.maximum
  );
}

/** The type a value's first byte starts ('number' for integers too). */
function typeAt(b: number): JsonType | undefined {
  if (b === 0x7b) return 'object';
  if (b === 0x5b) return 'array';
  if (b === 0x22) return 'string';
  if (b === 0x2d || (b >= 0x30 && b <= 0x39)) return 'number';
  if (b === 0x74 || b === 0x66) return 'boolean';
  if (b === 0x6e) return 'null';
  return undefined;
}

/** Whether values of `t` (by their first byte) may start as an open type of `s`. */
function opens(s: JsonShape, t: JsonType | undefined): boolean {
  return !!t && (s.types.has(t) || (t === 'number' && s.types.has('integer')));
}

/** The largest bound taken: integers up to it are exact in a double, as the automaton reads the digits into one. */
const MAX_BOUND = Number.MAX_SAFE_INTEGER;

/** The doubles next above and below `x` (an exclusive bound on a number, made inclusive). */
function nextDouble(x: number, up: boolean): number {
  if (x === 0) return up ? Number.MIN_VALUE : -Number.MIN_VALUE;
  const b = new Float64Array([x]);
  const i = new BigInt64Array(b.buffer);
  i[0] = i[0]! + (x > 0 === up ? 1n : -1n);
  return b[0]!;
}

/**
 * minimum / maximum / exclusiveMinimum / exclusiveMaximum as inclusive bounds: whole numbers on
 * integers, the nearest doubles inside on numbers (read as doubles, as JSON.parse reads them).
 * Bounds apply to numbers only; a bounded number is written without an exponent, so that its
 * digits can be bounded as they come (numberViable).
 */
function bounds(o: Record<string, unknown>, types: ReadonlySet<JsonType>, at: string): [number, number] {
  let [lo, hi] = [-Infinity, Infinity];
  const integer = types.has('integer') && !types.has('number');
  for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > MAX_BOUND)
      throw new JsonSchemaError(`${at}.${k} must be a number within ±${MAX_BOUND}`);
    if (k === 'minimum') lo = Math.max(lo, integer ? Math.ceil(v) : v);
    if (k === 'exclusiveMinimum') lo = Math.max(lo, integer ? Math.floor(v) + 1 : nextDouble(v, true));
    if (k === 'maximum') hi = Math.min(hi, integer ? Math.floor(v) : v);
    if (k === 'exclusiveMaximum') hi = Math.min(hi, integer ? Math.ceil(v) - 1 : nextDouble(v, false));
  }
  if (lo > hi)
    throw new JsonSchemaError(`${at}: no ${integer ? 'integer' : 'number'} lies within its bounds`);
  return [lo, hi];
}

/** minProperties / maxProperties, checked against the keys the object must and may hold. */
function objectCounts(
  o: Record<string, unknown>,
  at: string,
  required: number,
  possible: number,
): { minProperties?: number; maxProperties?: number } {
  const out: { minProperties?: number; maxProperties?: number } = {};
  for (const k of ['minProperties', 'maxProperties'] as const) {
    const n = o[k];
    if (n === undefined) continue;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
      throw new JsonSchemaError(`${at}.${k} must be a whole number ≥ 0`);
    out[k] = n;
  }
  const [min, max] = [out.minProperties ?? 0, out.maxProperties ?? Infinity];
  if (min > max) throw new JsonSchemaError(`${at}: minProperties ${min} > maxProperties ${max}`);
  if (required > max)
    throw new JsonSchemaError(`${at}: ${required} keys are required, maxProperties is ${max}`);
  if (min > possible)
    throw new JsonSchemaError(`${at}: minProperties ${min}, but only ${possible} keys are allowed`);
  return out;
}

/** Decimals a multipleOf may have (0.01 for cents has 2). */
const MAX_MULTIPLE_SCALE = 12;

/**
 * multipleOf as a decimal m × 10^-scale (0.25 → 25 × 10^-2). On integers, the whole multiple
 * that both it and 1 divide (0.5 → every integer, 2.5 → multiples of 5), scale 0.
 */
function multipleOf(
  o: Record<string, unknown>,
  types: ReadonlySet<JsonType>,
  at: string,
): Multiple | undefined {
  const v = o.multipleOf;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new JsonSchemaError(`${at}.multipleOf must be a number above 0`);
  const [mantissa, exp = '0'] = String(v).split('e');
  const [int, frac = ''] = mantissa!.split('.');
  let [m, scale] = [BigInt(int! + frac), frac.length - Number(exp)];
  if (scale < 0) [m, scale] = [m * 10n ** BigInt(-scale), 0];
  if (scale > MAX_MULTIPLE_SCALE)
    throw new JsonSchemaError(`${at}.multipleOf: at most ${MAX_MULTIPLE_SCALE} decimals are supported`);
  if (types.has('integer') && !types.has('number')) {
    // n × 10^scale ≡ 0 (mod m) ⟺ n ≡ 0 (mod m / gcd(m, 10^scale))
    const p = 10n ** BigInt(scale);
    let [x, y] = [m, p];
    while (y) [x, y] = [y, x % y];
    [m, scale] = [m / x, 0];
  }
  return m === 1n && scale === 0 && types.has('integer') && !types.has('number') ? undefined : { m, scale };
}

/** A string's `pattern` or `format` (one of FORMATS), compiled; errors name the place. */
function stringPattern(o: Record<string, unknown>, at: string): Pattern | undefined {
  if ('pattern' in o && 'format' in o)
    throw new JsonSchemaError(`${at}: 'pattern' beside 'format' is not supported (one of them)`);
  if ('format' in o) {
    const p = typeof o.format === 'string' ? formatPattern(o.format) : undefined;
    if (!p)
      throw new JsonSchemaError(
        `${at}.format: ${JSON.stringify(o.format)} is not supported; supported: ${Object.keys(FORMATS).join(', ')}`,
      );
    return p;
  }
  if (!('pattern' in o)) return undefined;
  if (typeof o.pattern !== 'string') throw new JsonSchemaError(`${at}.pattern must be a string`);
  try {
    return compilePattern(o.pattern);
  } catch (e) {
    if (e instanceof PatternError) throw new JsonSchemaError(`${at}.pattern: ${e.message}`);
    throw e;
  }
}

/**
 * Compiles a schema in two passes. The first builds the shapes; a `$ref` and an anyOf get an
 * empty shape at once (a recursive schema meets its own reference before it is compiled, and
 * `Optional` of a recursive model puts that reference in an anyOf), with what fills it in later.
 * The second fills them in, each after the shapes it reads.
 */
class SchemaCompiler {
  /** `$ref` target → its shape. */
  private readonly refs = new Map<string, Shape>();
  /** Shapes filled in by the second pass: the shapes each reads, and how it is filled. */
  private readonly later = new Map<JsonShape, { reads: (JsonShape | undefined)[]; fill: () => void }>();
  private readonly filling = new Set<JsonShape>();
  /** Where each shape of the second pass came from, for its errors. */
  private readonly where = new Map<JsonShape, string>();

  constructor(
    private readonly root: unknown,
    private readonly ordered: boolean,
  ) {}

  /** The patterns' states and length-table cells so far (Pattern.cost). */
  private work = 0;
  /** Checks of what the second pass fills in (a uniqueItems array's items may be a $ref). */
  private readonly checks: (() => void)[] = [];

  compile(): JsonShape | undefined {
    const root = this.shape(this.root, '$');
    for (const s of this.later.keys()) this.fill(s);
    for (const check of this.checks) check();
    return root;
  }

  private fill(s: JsonShape | undefined, why = ''): void {
    const job = s && this.later.get(s);
    if (!job) return;
    if (this.filling.has(s)) throw new JsonSchemaError(why);
    this.filling.add(s);
    for (const r of job.reads)
      this.fill(r, why || `${this.where.get(s)}: refers back to itself before any object or array does`);
    job.fill();
    this.filling.delete(s);
    this.later.delete(s);
  }

  shape(v: unknown, at: string, depth = 0): JsonShape | undefined {
    if (depth > MAX_SCHEMA_DEPTH)
      throw new JsonSchemaError(`${at}: schemas nested more than ${MAX_SCHEMA_DEPTH} deep are not supported`);
    if (v === true) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new JsonSchemaError(`${at}: a schema must be an object (or true)`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o))
      if (!NOTES.has(k) && !SUPPORTED.includes(k))
        throw new JsonSchemaError(`${at}: '${k}' is not supported; supported: ${SUPPORTED.join(', ')}`);
    const alone = ALONE.filter((k) => k in o);
    if (alone.length) {
      const k = alone[0]!;
      const beside = Object.keys(o).filter((x) => x !== k && !NOTES.has(x));
      if (beside.length)
        throw new JsonSchemaError(
          `${at}: '${k}' beside '${beside[0]}' is not supported (only beside notes such as title)`,
        );
      if (k === '$ref') return this.ref(o.$ref, at, depth);
      const list = o[k];
      if (!Array.isArray(list) || list.length === 0)
        throw new JsonSchemaError(`${at}.${k} must be a non-empty array of schemas`);
      if (k === 'allOf') {
        if (list.length !== 1)
          throw new JsonSchemaError(`${at}.allOf: only one schema is supported, not ${list.length}`);
        return this.shape(list[0], `${at}.allOf[0]`, depth + 1);
      }
      return this.union(
        list.map((s, i) => this.shape(s, `${at}.${k}[${i}]`, depth + 1)),
        `${at}.${k}`,
        k === 'oneOf',
      );
    }
    return this.plain(o, at, depth);
  }

  private plain(o: Record<string, unknown>, at: string, depth: number): JsonShape | undefined {
    const given = o.type === undefined ? [] : Array.isArray(o.type) ? o.type : [o.type];
    for (const t of given)
      if (!TYPES.includes(t as JsonType))
        throw new JsonSchemaError(`${at}.type: ${JSON.stringify(t)} is not one of ${TYPES.join(', ')}`);
    let values: string[] | undefined;
    if ('enum' in o) {
      if (!Array.isArray(o.enum) || o.enum.length === 0)
        throw new JsonSchemaError(`${at}.enum must be a non-empty array`);
      values = o.enum.map((x) => bytesText(JSON.stringify(x)));
    }
    if ('const' in o) values = [bytesText(JSON.stringify(o.const))];
    const constrains = [
      ...['properties', 'items', 'prefixItems', 'minLength', 'maxLength', 'minItems', 'maxItems', 'required'],
      ...['minProperties', 'maxProperties'],
      ...['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'pattern', 'format'],
    ];
    if (given.length === 0 && !values && !constrains.some((k) => k in o)) return undefined;
    const types = new Set<JsonType>(
      given.length
        ? (given as JsonType[])
        : 'properties' in o
          ? ['object']
          : 'items' in o || 'prefixItems' in o
            ? ['array']
            : TYPES,
    );
    const [minimum, maximum] = bounds(o, types, at);
    const multiple = multipleOf(o, types, at);
    const pattern = stringPattern(o, at);
    if (values) {
      // The listed values of the types given (all without `type`) and bounds, and no open type beside them.
      if (given.length)
        values = values.filter(
          (t) => types.has(typeAt(t.charCodeAt(0))!) || (/^-?\d+$/.test(t) && types.has('integer')),
        );
      values = values.filter(
        (t) =>
          typeAt(t.charCodeAt(0)) !== 'number' ||
          (Number(t) >= minimum &&
            Number(t) <= maximum &&
            (!multiple || /[eE]/.test(t) || multipleViable(t, minimum, maximum, multiple, true))),
      );
      if (pattern)
        values = values.filter(
          (t) =>
            !t.startsWith('"') ||
            pattern.test(JSON.parse(Buffer.from(t, 'latin1').toString('utf8')) as string),
        );
      if (values.length === 0)
        throw new JsonSchemaError(`${at}: no value of enum/const is of the type given`);
      types.clear();
    }
    const props = new Map<string, JsonShape | undefined>();
    if ('properties' in o) {
      const p = o.properties;
      if (typeof p !== 'object' || p === null || Array.isArray(p))
        throw new JsonSchemaError(`${at}.properties must be an object`);
      for (const [k, sub] of Object.entries(p as Record<string, unknown>))
        props.set(
          bytesText(JSON.stringify(k).slice(1, -1)),
          this.shape(sub, `${at}.properties.${k}`, depth + 1),
        );
    }
    const required = new Set<string>();
    if ('required' in o) {
      if (!Array.isArray(o.required) || o.required.some((k) => typeof k !== 'string'))
        throw new JsonSchemaError(`${at}.required must be an array of names`);
      for (const k of o.required as string[]) {
        const key = bytesText(JSON.stringify(k).slice(1, -1));
        if (!props.has(key) && o.additionalProperties === false)
          throw new JsonSchemaError(
            `${at}.required: '${k}' is not in properties, and no other key is allowed`,
          );
        required.add(key);
      }
    }
    const ap = o.additionalProperties ?? true;
    const extra =
      typeof ap === 'boolean' ? undefined : this.shape(ap, `${at}.additionalProperties`, depth + 1);
    const count = (k: 'minItems' | 'maxItems' | 'minLength' | 'maxLength', dflt: number): number => {
      const n = o[k] ?? dflt;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
        throw new JsonSchemaError(`${at}.${k} must be a whole number ≥ 0`);
      return n;
    };
    // A tuple: 2020-12's prefixItems and items, or drafts 4-2019's items as an array and additionalItems
    const tuple = Array.isArray(o.items);
    const [first, firstAt] = tuple ? [o.items, 'items'] : [o.prefixItems, 'prefixItems'];
    const rest: unknown = tuple ? (o.additionalItems ?? true) : o.items;
    let prefix: (JsonShape | undefined)[] | undefined;
    if (first !== undefined) {
      if (!Array.isArray(first) || first.length === 0)
        throw new JsonSchemaError(`${at}.${firstAt} must be a non-empty array of schemas`);
      prefix = first.map((x, i) => this.shape(x, `${at}.${firstAt}[${i}]`, depth + 1));
    }
    // `items: false` after prefixItems: nothing past them
    const [minItems, maxItems] = [
      count('minItems', 0),
      rest === false
        ? Math.min(count('maxItems', Number.MAX_SAFE_INTEGER), prefix?.length ?? 0)
        : count('maxItems', Number.MAX_SAFE_INTEGER),
    ];
    if (minItems > maxItems) throw new JsonSchemaError(`${at}: minItems ${minItems} > maxItems ${maxItems}`);
    const longest =
      typeof o.format === 'string' && Object.hasOwn(FORMAT_MAX_LENGTH, o.format)
        ? FORMAT_MAX_LENGTH[o.format]!
        : Number.MAX_SAFE_INTEGER;
    const [minLength, maxLength] = [count('minLength', 0), Math.min(count('maxLength', longest), longest)];
    if (minLength > maxLength)
      throw new JsonSchemaError(`${at}: minLength ${minLength} > maxLength ${maxLength}`);
    if (pattern) {
      // A request's schema must not make the server build patterns and tables without end
      this.work += pattern.cost(minLength, maxLength);
      if (this.work > MAX_LENGTH_WORK)
        throw new JsonSchemaError(
          `${at}: the schema's patterns and their length bounds need more than ${MAX_LENGTH_WORK} states and table cells in all`,
        );
    }
    const lengths = pattern?.lengths(minLength, maxLength);
    if (pattern && lengths && !pattern.fits(pattern.start, { lengths, lo: minLength, hi: maxLength }))
      throw new JsonSchemaError(
        `${at}: no string of ${minLength} to ${maxLength} characters matches ${'pattern' in o ? 'the pattern' : 'the format'}`,
      );
    const keys = objectCounts(o, at, required.size, ap === false ? props.size : Infinity);
    const out: Shape = {
      types,
      properties: props,
      required,
      additional: ap !== false,
      ...(extra && { extra }),
      ...keys,
      ...(this.ordered && { ordered: true }),
      items:
        rest !== undefined && rest !== false
          ? this.shape(rest, `${at}.${tuple ? 'additionalItems' : 'items'}`, depth + 1)
          : undefined,
      ...(prefix && { prefix }),
      minItems,
      maxItems,
      minLength,
      maxLength,
      minimum,
      maximum,
      ...(multiple && { multiple }),
      values,
      ...(pattern && { pattern }),
      ...(lengths && { lengths }),
    };
    if (o.uniqueItems === true) this.checks.push(() => uniqueOf(out, at));
    else if (o.uniqueItems !== undefined && o.uniqueItems !== false)
      throw new JsonSchemaError(`${at}.uniqueItems must be true or false`);
    return out;
  }

  /** `$ref`: a JSON pointer into the schema ("#", "#/$defs/Name"), compiled once. */
  private ref(p: unknown, at: string, depth: number): JsonShape | undefined {
    if (typeof p !== 'string' || !p.startsWith('#'))
      throw new JsonSchemaError(
        `${at}.$ref: only references inside the schema ("#/$defs/Name") are supported, not ${JSON.stringify(p)}`,
      );
    const known = this.refs.get(p);
    if (known) return known;
    let target: unknown = this.root;
    for (const raw of p.slice(1).split('/').slice(1)) {
      let part: string;
      try {
        part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      } catch {
        throw new JsonSchemaError(`${at}.$ref: ${JSON.stringify(p)} is not a valid JSON pointer`);
      }
      const next =
        typeof target === 'object' && target !== null && Object.hasOwn(target, part)
          ? (target as Record<string, unknown>)[part]
          : undefined;
      if (next === undefined)
        throw new JsonSchemaError(`${at}.$ref: ${JSON.stringify(p)} points at nothing in the schema`);
      target = next;
    }
    const s = anyShape();
    this.refs.set(p, s);
    const compiled = this.shape(target, p, depth + 1);
    this.where.set(s, `${at}.$ref ${JSON.stringify(p)}`);
    this.later.set(s, { reads: [compiled], fill: () => Object.assign(s, compiled ?? anyShape()) });
    return s;
  }

  /**
   * anyOf / oneOf as one shape: a value's first byte picks its alternative (a string or null, an
   * object or null, …); several object (or array) alternatives are followed side by side
   * (JsonShape.objects). Two alternatives that are both strings of other lengths are refused,
   * and a oneOf whose alternatives one value could match together.
   */
  private union(alts: (JsonShape | undefined)[], at: string, exclusive: boolean): JsonShape {
    const out = anyShape();
    this.where.set(out, at);
    this.later.set(out, {
      reads: alts,
      fill: () =>
        Object.assign(
          out,
          merge(
            alts.map((a) => a ?? anyShape()),
            at,
            exclusive,
          ),
        ),
    });
    return out;
  }
}

/**
 * uniqueItems on `a` (its items filled in): items of strings, numbers, booleans or null only
 * (each compared as JSON.parse reads it), and as many distinct ones as minItems asks.
 */
function uniqueOf(a: Shape, at: string): void {
  const it = a.items;
  const scalar = (t: JsonType) => t !== 'object' && t !== 'array';
  if (
    a.prefix ||
    !it ||
    it.objects ||
    it.arrays ||
    ![...it.types].every(scalar) ||
    it.values?.some((v) => !scalar(typeAt(v.charCodeAt(0))!))
  )
    throw new JsonSchemaError(
      `${at}.uniqueItems: supported on arrays whose items are strings, numbers, booleans or null (no tuples)`,
    );
  const numeric = it.types.has('number') || it.types.has('integer');
  if (numeric && (it.minimum > -Infinity || it.maximum < Infinity || it.multiple))
    throw new JsonSchemaError(
      `${at}.uniqueItems: numbers with bounds or multipleOf as items are not supported (numbers without them are)`,
    );
  const open = it.types.has('string') || numeric;
  const limit = open
    ? Infinity
    : (it.values?.length ?? 0) + (it.types.has('boolean') ? 2 : 0) + (it.types.has('null') ? 1 : 0);
  if (a.minItems > limit)
    throw new JsonSchemaError(
      `${at}: minItems ${a.minItems} distinct items, but only ${limit} values may be items`,
    );
  a.unique = { limit };
}

/**
 * The fields of a shape that constrain each kind of value: a union takes them from the
 * alternative of that kind (merge), so a field added to JsonShape is listed here once.
 */
const FIELDS = {
  object: ['properties', 'required', 'additional', 'extra', 'minProperties', 'maxProperties', 'ordered'],
  array: ['items', 'prefix', 'unique', 'minItems', 'maxItems'],
  string: ['minLength', 'maxLength', 'pattern', 'lengths'],
  number: ['minimum', 'maximum', 'multiple'],
} as const satisfies Record<string, readonly (keyof JsonShape)[]>;

function fieldsOf(s: JsonShape, kind: keyof typeof FIELDS): Partial<Shape> {
  return Object.fromEntries(FIELDS[kind].map((k) => [k, s[k]])) as Partial<Shape>;
}

/** The fields of anyOf's shape, from its alternatives' (SchemaCompiler.union). */
function merge(alts: JsonShape[], at: string, exclusive: boolean): Shape {
  const out = anyShape();
  if (alts.some(isAny)) {
    if (exclusive && alts.length > 1)
      throw new JsonSchemaError(`${at}: an alternative that allows anything matches whatever another does`);
    return out;
  }
  const types = new Set<JsonType>();
  out.types = types;
  const values: string[] = [];
  const owner = new Map<JsonType, JsonShape>();
  // Object and array alternatives, those of nested unions spread.
  const objects = new Set<JsonShape>(),
    arrays = new Set<JsonShape>();
  for (const a of alts) {
    for (const t of a.types) {
      const prev = owner.get(t);
      const clash = prev && prev !== a;
      if (
        clash &&
        t === 'string' &&
        (exclusive ||
          prev.minLength !== a.minLength ||
          prev.maxLength !== a.maxLength ||
          prev.pattern !== a.pattern)
      )
        throw new JsonSchemaError(
          `${at}: two alternatives are strings; only one string alternative is supported`,
        );
      const num = owner.get('integer') ?? owner.get('number');
      if (
        (t === 'integer' || t === 'number') &&
        num &&
        num !== a &&
        (num.minimum !== a.minimum ||
          num.maximum !== a.maximum ||
          num.multiple?.m !== a.multiple?.m ||
          num.multiple?.scale !== a.multiple?.scale)
      )
        throw new JsonSchemaError(
          `${at}: two number alternatives with other bounds or multipleOf are not supported`,
        );
      if (clash && exclusive && t !== 'object')
        throw new JsonSchemaError(`${at}: two alternatives of oneOf allow ${t}s: one value could match both`);
      owner.set(t, a);
      types.add(t);
    }
    if (exclusive && a.types.has('integer') && alts.some((b) => b !== a && b.types.has('number')))
      throw new JsonSchemaError(
        `${at}: an integer and a number alternative of oneOf: one value could match both`,
      );
    for (const [t, into, spread] of [
      ['object', objects, a.objects],
      ['array', arrays, a.arrays],
    ] as const)
      if (a.types.has(t)) for (const x of spread ?? [a]) into.add(x);
    values.push(...(a.values ?? []));
  }
  if (exclusive && objects.size > 1) discriminated([...objects], at);
  const obj = owner.get('object'),
    arr = owner.get('array'),
    str = owner.get('string');
  if (objects.size > 1) out.objects = [...objects];
  else if (obj) Object.assign(out, fieldsOf(obj, 'object'));
  if (arrays.size > 1) out.arrays = [...arrays];
  else if (arr) Object.assign(out, fieldsOf(arr, 'array'));
  if (str) Object.assign(out, fieldsOf(str, 'string'));
  const num = owner.get('integer') ?? owner.get('number');
  if (num) Object.assign(out, fieldsOf(num, 'number'));
  // A listed value of an open type is that type's already (strings of any length, null, …), or
  // would need both readings of its first byte at once: refused.
  const kept: string[] = [];
  for (const v of new Set(values)) {
    const t = typeAt(v.charCodeAt(0))!;
    if (!opens(out, t)) kept.push(v);
    else if (
      t === 'number'
        ? !types.has('number') && !/^-?\d+$/.test(v)
        : t !== 'boolean' &&
          t !== 'null' &&
          (t !== 'string' || str!.minLength > 0 || str!.maxLength < Number.MAX_SAFE_INTEGER || str!.pattern)
    )
      throw new JsonSchemaError(
        `${at}: the value ${Buffer.from(v, 'latin1').toString('utf8')} is listed beside an alternative of its type; such unions are not supported`,
      );
  }
  out.values = kept.length ? kept : undefined;
  return out;
}

/**
 * oneOf's object alternatives must exclude each other: some key that every one requires takes
 * values listed by each (enum / const) that no two share, as a discriminator does.
 */
function discriminated(objects: JsonShape[], at: string): void {
  const keys = [...objects[0]!.required].filter((k) =>
    objects.every(
      (o) => o.required.has(k) && o.properties.get(k)?.values && !o.properties.get(k)!.types.size,
    ),
  );
  for (const k of keys) {
    const lists = objects.map((o) => o.properties.get(k)!.values!);
    const all = lists.flat();
    if (new Set(all).size === all.length) return;
  }
  throw new JsonSchemaError(
    `${at}: several object alternatives of oneOf must be told apart by a key each requires with its own const or enum values (a discriminator); or use anyOf`,
  );
}

/** An open container and the shape it keeps to. */
interface Frame {
  shape: JsonShape | undefined;
  /** Keys given so far (objects); a uniqueItems array's items so far (as JSON.stringify writes them). */
  seen: readonly string[];
  count: number;
}

/** The shape of an array's item `i` (from 0): its prefixItems' where there is one. */
function itemShape(s: JsonShape | undefined, i: number): JsonShape | undefined {
  return s?.prefix && i < s.prefix.length ? s.prefix[i] : s?.items;
}

/** Keys that may still come in an object (undefined: any key). */
function keysLeft(f: Frame): string[] | undefined {
  if (f.shape?.maxProperties !== undefined && f.seen.length >= f.shape.maxProperties) return [];
  if (!f.shape || f.shape.additional) return undefined;
  const keys = [...f.shape.properties.keys()];
  if (f.shape.ordered) {
    // After the last key given, up to the first required one (no required key skipped)
    const rest = keys.slice(Math.max(-1, ...f.seen.map((k) => keys.indexOf(k))) + 1);
    const req = rest.findIndex((k) => f.shape!.required.has(k));
    return req < 0 ? rest : rest.slice(0, req + 1);
  }
  return keys.filter((k) => !f.seen.includes(k));
}

/** Whitespace bytes in a row outside strings. */
export const MAX_WS = 20;
/**
 * Digits of a number's integer part and of its fraction, and of its exponent: as many as
 * JSON.stringify writes for any double (1e20 has 21, 1.2345678901234567e-7 is written with an
 * exponent), and no more: a model that repeats a digit would otherwise fill max_tokens with one
 * number (llama.cpp's json.gbnf bounds the integer part the same way).
 */
export const MAX_DIGITS = 24;
export const MAX_EXP_DIGITS = 3;

interface State {
  mode: Mode;
  /** Whitespace bytes in a row so far. */
  ws: number;
  stack: string;
  /** A string is a key (Colon follows it), not a value. */
  key: boolean;
  count: number;
  word: string;
  /** Shapes of the open containers, innermost last (copied, never changed in place). */
  frames: readonly Frame[];
  /** The shape of the value that may start next (undefined: any). */
  next: JsonShape | undefined;
  /** A key's bytes so far, or an enum value's. */
  acc: string;
  /** The number in progress must be an integer. */
  integer: boolean;
  /** The string value in progress: its characters so far, and how many it takes. */
  chars: number;
  /** UTF-8 continuation bytes the last lead byte promised and that have not come yet. */
  utf8Left: number;
  /** The number in progress where it has bounds (lo ≤ it ≤ hi): its text so far ('-', digits, '.'). */
  num: string;
  lo: number;
  hi: number;
  /** The string value's bounds, and whether it has any or a pattern (its characters are then decoded). */
  minLength: number;
  maxLength: number;
  counting: boolean;
  /** Where the string value has a pattern: its state after the characters so far. */
  re: PatternState | null;
  /** The code point being read (a UTF-8 sequence's bits so far, a \u escape's digits). */
  code: number;
  /** The value in progress is an item of a uniqueItems array: a string's text so far in `item`. */
  collect: boolean;
  item: string;
}

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

/** After a value ends: its container's next, or Done when it was the top object. */
function afterValue(s: State): void {
  s.mode = s.stack.length === 0 ? Mode.Done : Mode.After;
}

/** A value's first byte (the mode expected one); false where none starts so, or the schema refuses it. */
function startValue(s: State, b: number): boolean {
  s.key = false;
  const want = s.next;
  const top = s.frames.at(-1);
  s.collect = false;
  if (top && s.stack.endsWith('[')) {
    s.frames = [...s.frames.slice(0, -1), { ...top, count: top.count + 1 }];
    s.collect = !!top.shape?.unique;
    s.item = '"';
  }
  if (want?.values && !opens(want, typeAt(b))) {
    const acc = String.fromCharCode(b);
    if (!valuesLeft(s).some((v) => v.startsWith(acc))) return false;
    [s.mode, s.acc] = [Mode.Enum, acc];
    return enumMaybeDone(s);
  }
  const is = (t: JsonType) => !want || want.types.has(t);
  if (b === 0x7b /* { */) {
    if (!is('object')) return false;
    [s.stack, s.mode] = [s.stack + '{', Mode.KeyOrEnd];
    s.frames = [...s.frames, { shape: want, seen: [], count: 0 }];
  } else if (b === 0x5b /* [ */) {
    if (!is('array')) return false;
    [s.stack, s.mode] = [s.stack + '[', Mode.ValueOrEnd];
    s.frames = [...s.frames, { shape: want, seen: [], count: 0 }];
    s.next = itemShape(want, 0);
  } else if (b === 0x22 /* " */) {
    if (!is('string')) return false;
    [s.mode, s.chars, s.utf8Left] = [Mode.Str, 0, 0];
    [s.minLength, s.maxLength] = [want?.minLength ?? 0, want?.maxLength ?? Infinity];
    s.re = want?.pattern?.start ?? null;
    // Decoded only where bounded or matched: a test of one boolean a byte (a comparison of the
    // two bounds measured ~5 % slower over a vocabulary pass, scripts/json-scan.mjs)
    s.counting = s.minLength > 0 || s.maxLength < Number.MAX_SAFE_INTEGER || s.re !== null || s.collect;
  } else if (b === 0x2d /* - */ || isDigit(b)) {
    if (!is('number') && !is('integer')) return false;
    s.integer = !!want && !want.types.has('number');
    [s.lo, s.hi, s.num] = [want?.minimum ?? -Infinity, want?.maximum ?? Infinity, String.fromCharCode(b)];
    if (!inBounds(s) || (b === 0x30 && zeroSeen(s))) return false;
    [s.mode, s.count] = [b === 0x2d ? Mode.Minus : b === 0x30 ? Mode.Zero : Mode.Int, b === 0x2d ? 0 : 1];
  } else if (b === 0x74 || b === 0x66) {
    if (!is('boolean')) return false;
    [s.mode, s.word, s.count] = [Mode.Lit, b === 0x74 ? 'true' : 'false', 1];
    if (s.collect && seenItem(s, s.word)) return false;
  } else if (b === 0x6e) {
    if (!is('null') || (s.collect && seenItem(s, 'null'))) return false;
    [s.mode, s.word, s.count] = [Mode.Lit, 'null', 1];
  } else return false;
  return true;
}

/** An integer item of a uniqueItems array that would begin with 0 (or -0) when 0 was an item: nothing may follow it. */
const zeroSeen = (s: State): boolean => s.collect && s.integer && seenItem(s, '0');

/** The number in progress has bounds or a multipleOf (its digits are checked as they come). */
const bounded = (s: State): boolean => s.lo > -Infinity || s.hi < Infinity || !!s.next?.multiple;

/** A bounded number's next byte (a digit or '.'): whether it may still end within its bounds. */
function goesOn(s: State, b: number): boolean {
  if (!bounded(s) && !s.collect) return true;
  s.num += String.fromCharCode(b);
  return inBounds(s);
}

/** The number in progress (`num`) may still end within its bounds, if it has any. */
const inBounds = (s: State): boolean =>
  !bounded(s) ||
  (s.next?.multiple
    ? multipleViable(s.num, s.lo, s.hi, s.next.multiple)
    : s.integer
      ? viable(s.num, s.lo, s.hi)
      : numberViable(s.num, s.lo, s.hi));

/**
 * Whether some multiple of `mul` in [lo, hi] has the text `num` so far (as numberViable), or is
 * the text where it is `complete`. In units of 10^-scale, as big integers: the text reaches
 * [A, B] for its value and the fraction digits still free (none on integers, whose scale is 0),
 * and for each count of integer digits still to come; digits past the scale must be zeros.
 */
function multipleViable(num: string, lo: number, hi: number, mul: Multiple, complete = false): boolean {
  const neg = num.startsWith('-');
  const d = neg ? num.slice(1) : num;
  const unit = 10 ** mul.scale;
  const [loS, hiS] = [
    lo === -Infinity ? undefined : BigInt(Math.ceil(lo * unit)),
    hi === Infinity ? undefined : BigInt(Math.floor(hi * unit)),
  ];
  // A multiple of m within [a, b] (signed, and within the bounds)
  const has = (a: bigint, b: bigint): boolean => {
    if (loS !== undefined && a < loS) a = loS;
    if (hiS !== undefined && b > hiS) b = hiS;
    if (a > b) return false;
    const q = a >= 0n ? (a + mul.m - 1n) / mul.m : -(-a / mul.m);
    return q * mul.m <= b;
  };
  const span = (a: bigint, b: bigint): boolean => (neg ? has(-b, -a) : has(a, b));
  if (d === '') return has(-(1n << 200n), 0n); // '-': any negative multiple, or -0
  const dot = d.indexOf('.');
  const [int, frac] = dot < 0 ? [d, ''] : [d.slice(0, dot), d.slice(dot + 1)];
  if (frac.length > mul.scale) {
    if (/[^0]/.test(frac.slice(mul.scale))) return false;
    const v = BigInt(int + frac.slice(0, mul.scale));
    return span(v, v);
  }
  const left = 10n ** BigInt(mul.scale - frac.length);
  const base = BigInt(int + frac) * left;
  if (complete) return span(base, base);
  if (span(base, base + left - 1n)) return true;
  if (dot >= 0 || int === '0') return false;
  const far =
    (loS !== undefined && loS < 0n ? -loS : (loS ?? 0n)) +
    (hiS !== undefined && hiS < 0n ? -hiS : (hiS ?? 0n));
  for (let j = 1; int.length + j <= MAX_DIGITS; j++) {
    const p = 10n ** BigInt(j) * 10n ** BigInt(mul.scale);
    const a = BigInt(int) * p;
    if (span(a, a + p - 1n)) return true;
    if ((loS !== undefined || hiS !== undefined) && a > far) break;
  }
  return false;
}

/**
 * Whether some number in [lo, hi] has the text `num` so far ('-', digits, maybe '.' and more
 * digits: no exponent; MAX_DIGITS on each side of the point at most). The text reaches the
 * magnitudes [a, b) for a few spans: its value and its fraction to come, [v, v + 10^-f), and
 * each count of integer digits still to come.
 */
function numberViable(num: string, lo: number, hi: number): boolean {
  const neg = num.startsWith('-');
  const d = neg ? num.slice(1) : num;
  if (d === '') return lo <= Math.min(hi, 0);
  const meets = (a: number, b: number): boolean =>
    neg ? -a >= lo && (a === b ? -a <= hi : -b < hi) : a <= hi && (a === b ? a >= lo : b > lo);
  const dot = d.indexOf('.');
  if (dot >= 0) {
    const [int, frac] = [d.slice(0, dot), d.slice(dot + 1)];
    const a = Number(`${int}.${frac}0`);
    if (frac.length === MAX_DIGITS) return meets(a, a);
    // The next value at this scale, exactly: 0.49 → 0.5, 9.9 → 10
    return meets(a, Number(`${BigInt(int + frac) + 1n}e-${frac.length}`));
  }
  const v = Number(d);
  if (meets(v, v + 1)) return true;
  if (d === '0') return false;
  const far = Math.max(Math.abs(lo), Math.abs(hi));
  for (let j = 1, m = 10; d.length + j <= MAX_DIGITS; j++, m *= 10) {
    if (meets(v * m, (v + 1) * m)) return true;
    if (v * m > far) break;
  }
  return false;
}

/**
 * Whether some integer in [lo, hi] has the text `num` so far ('-' and digits, at most MAX_DIGITS
 * of them, no leading zero): it is one already, or digits may follow that reach one.
 */
function viable(num: string, lo: number, hi: number): boolean {
  const neg = num.startsWith('-');
  const d = neg ? num.slice(1) : num;
  if (d === '') return lo <= Math.min(hi, 0);
  const p = Number(d);
  const v = neg ? -p : p;
  if (v >= lo && v <= hi) return true;
  if (d === '0') return false;
  const far = Math.max(Math.abs(lo), Math.abs(hi));
  for (let j = 1, m = 10; d.length + j <= MAX_DIGITS; j++, m *= 10) {
    const [a, b] = [p * m, p * m + m - 1]; // the magnitudes with j more digits
    if (neg ? -b <= hi && -a >= lo : b >= lo && a <= hi) return true;
    if (a > far) break;
  }
  return false;
}

/** In an enum value: it ends as soon as it is one of the values and no longer one goes on from it. */
function enumMaybeDone(s: State): boolean {
  const values = valuesLeft(s);
  if (values.includes(s.acc) && !values.some((v) => v.length > s.acc.length && v.startsWith(s.acc)))
    return ends(s, s.acc);
  return true;
}

/**
 * A scalar value ended as the JSON text `text` (UTF-8 bytes as latin1): where it is an item of a
 * uniqueItems array, false if an earlier item was the same value (as JSON.parse reads both).
 */
function ends(s: State, text: string): boolean {
  if (s.collect) {
    s.collect = false;
    const value = canonical(text);
    const f = s.frames.at(-1)!;
    if (f.seen.includes(value)) return false;
    s.frames = [...s.frames.slice(0, -1), { ...f, seen: [...f.seen, value] }];
  }
  afterValue(s);
  return true;
}

/** Closes the innermost container with `b` (']' or '}') when it is that container's end. */
function close(s: State, b: number): boolean {
  const want = b === 0x7d ? '{' : b === 0x5d ? '[' : '';
  if (!want || !s.stack.endsWith(want)) return false;
  const f = s.frames.at(-1)!;
  if (f.shape && want === '{' && [...f.shape.required].some((k) => !f.seen.includes(k))) return false;
  if (f.shape && want === '{' && f.seen.length < (f.shape.minProperties ?? 0)) return false;
  if (f.shape && want === '[' && f.count < f.shape.minItems) return false;
  s.frames = s.frames.slice(0, -1);
  s.stack = s.stack.slice(0, -1);
  afterValue(s);
  return true;
}

/** One byte; false (the state then undefined) where no JSON object continues so. */
function step(s: State, b: number): boolean {
  const inText = s.mode === Mode.Str || s.mode === Mode.Esc || s.mode === Mode.Hex || s.mode === Mode.Enum;
  if (!inText && isWs(b) && s.mode !== Mode.Lit) {
    if (s.ws === MAX_WS) return false;
    s.ws++;
  } else s.ws = 0;
  if (s.collect && inText) s.item += String.fromCharCode(b);
  return move(s, b);
}

function move(s: State, b: number): boolean {
  switch (s.mode) {
    case Mode.Top:
      if (isWs(b)) return true;
      return b === 0x7b && startValue(s, b);
    case Mode.Done:
      return isWs(b);
    case Mode.Value:
      return isWs(b) || startValue(s, b);
    case Mode.ValueOrEnd:
      if (isWs(b)) return true;
      return b === 0x5d ? close(s, b) : startValue(s, b);
    case Mode.KeyOrEnd:
    case Mode.Key:
      if (isWs(b)) return true;
      if (b === 0x7d && s.mode === Mode.KeyOrEnd) return close(s, b);
      if (b !== 0x22 || keysLeft(s.frames.at(-1)!)?.length === 0) return false;
      [s.mode, s.key, s.acc, s.re] = [Mode.Str, true, '', null];
      return true;
    case Mode.Colon:
      if (isWs(b)) return true;
      if (b !== 0x3a) return false;
      s.mode = Mode.Value;
      return true;
    case Mode.After:
      if (isWs(b)) return true;
      if (b === 0x2c) {
        const f = s.frames.at(-1)!;
        if (s.stack.endsWith('{')) {
          if (keysLeft(f)?.length === 0) return false;
          s.mode = Mode.Key;
        } else {
          if (f.shape && f.count >= f.shape.maxItems) return false;
          if (f.shape?.unique && f.seen.length >= f.shape.unique.limit) return false;
          [s.mode, s.next] = [Mode.Value, itemShape(f.shape, f.count)];
        }
        return true;
      }
      return close(s, b);
    case Mode.Str:
      if (b === 0x22) {
        if (s.key) return endKey(s);
        if (s.chars < s.minLength) return false;
        if (s.re && (s.utf8Left > 0 || !s.next!.pattern!.accepts(s.re))) return false;
        return ends(s, s.item);
      }
      if (s.key && !keyGoesOn(s, b)) return false;
      if (b < 0x20 || (s.counting && !s.key && !strByte(s, b))) return false;
      if (b === 0x5c) s.mode = Mode.Esc;
      return true;
    case Mode.Esc: {
      if (s.key && !keyGoesOn(s, b)) return false;
      if (b === 0x75 /* u */) {
        [s.mode, s.count, s.code] = [Mode.Hex, 4, 0];
        return !s.re || s.key || canTakeEscape(s);
      }
      const i = '"\\/bfnrt'.indexOf(String.fromCharCode(b));
      if (i < 0) return false;
      s.mode = Mode.Str;
      return (!s.re || s.key || take(s, ESCAPED[i]!)) && charDone(s);
    }
    case Mode.Hex:
      if (!isHex(b) || (s.key && !keyGoesOn(s, b))) return false;
      s.code = s.code * 16 + parseInt(String.fromCharCode(b), 16);
      if (--s.count === 0) s.mode = Mode.Str;
      if (!s.re || s.key) return s.count > 0 || charDone(s);
      // A surrogate escape: refused where a pattern reads the characters (write the character itself)
      if (s.count === 0) return !(s.code >= 0xd800 && s.code <= 0xdfff) && take(s, s.code) && charDone(s);
      return s.next!.pattern!.canTake(
        s.re,
        s.code << (4 * s.count),
        ((s.code + 1) << (4 * s.count)) - 1,
        roomOf(s),
      );
    case Mode.Minus:
      if (!isDigit(b) || !goesOn(s, b) || (b === 0x30 && zeroSeen(s))) return false;
      [s.mode, s.count] = [b === 0x30 ? Mode.Zero : Mode.Int, 1];
      return true;
    case Mode.Dot:
      if (!isDigit(b)) return false;
      [s.mode, s.count] = [Mode.Frac, 1];
      return goesOn(s, b);
    case Mode.E:
      if (b === 0x2b || b === 0x2d) s.mode = Mode.ESign;
      else if (isDigit(b)) [s.mode, s.count] = [Mode.Exp, 1];
      else return false;
      return true;
    case Mode.ESign:
      if (!isDigit(b)) return false;
      [s.mode, s.count] = [Mode.Exp, 1];
      return true;
    case Mode.Zero:
    case Mode.Int:
    case Mode.Frac:
    case Mode.Exp:
      if (isDigit(b) && s.mode !== Mode.Zero) {
        if (!goesOn(s, b)) return false;
        return ++s.count <= (s.mode === Mode.Exp ? MAX_EXP_DIGITS : MAX_DIGITS);
      }
      if (b === 0x2e && s.mode !== Mode.Frac && s.mode !== Mode.Exp && !s.integer) {
        s.mode = Mode.Dot;
        return goesOn(s, b);
      }
      if ((b === 0x65 || b === 0x45) && s.mode !== Mode.Exp && !s.integer && !bounded(s) && !s.collect) {
        s.mode = Mode.E;
        return true;
      }
      // The number ended: this byte is the container's.
      if (bounded(s) && !(Number(s.num) >= s.lo && Number(s.num) <= s.hi)) return false;
      if (s.next?.multiple && !multipleViable(s.num, s.lo, s.hi, s.next.multiple, true)) return false;
      if (!ends(s, s.num)) return false;
      return move(s, b);
    case Mode.Lit:
      if (b !== s.word.charCodeAt(s.count)) return false;
      return ++s.count < s.word.length || ends(s, s.word);
    case Mode.Enum: {
      const acc = s.acc + String.fromCharCode(b);
      const values = valuesLeft(s);
      if (values.some((v) => v.startsWith(acc))) {
        s.acc = acc;
        return enumMaybeDone(s);
      }
      // A value that a longer one also starts (1 and 10): it ends at the byte after it.
      if (!values.includes(s.acc) || !ends(s, s.acc)) return false;
      return move(s, b);
    }
  }
}

/** The characters the escapes \" \\ \/ \b \f \n \r \t stand for. */
const ESCAPED = [0x22, 0x5c, 0x2f, 0x08, 0x0c, 0x0a, 0x0d, 0x09];

/**
 * One more byte of a string value (not of an escape's tail) whose characters are counted or
 * matched: false where it starts a character past maxLength, or one the pattern refuses. A
 * character is an escape (at its '\\'; matched at its end), a UTF-8 sequence, or a byte that
 * continues none, as a decoder counts a replacement character for it (refused where a pattern
 * reads the characters, as is a sequence cut short).
 */
function strByte(s: State, b: number): boolean {
  if (b < 0x80 || (b & 0xc0) !== 0x80 || s.utf8Left === 0) {
    if (s.re && s.utf8Left > 0) return false;
    if (++s.chars > s.maxLength) return false;
    if (b < 0x80) {
      s.utf8Left = 0;
      if (b === 0x5c) return !s.re || canTakeEscape(s);
      return (!s.re || take(s, b)) && charDone(s);
    }
    s.utf8Left = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc0 ? 1 : 0;
    if (!s.re) return s.utf8Left > 0 || charDone(s);
    if (s.utf8Left === 0 || b < 0xc2 || b > 0xf4) return false; // no UTF-8 sequence begins so
    // The lead's bits under a marker bit, which says the sequence's length when it ends
    s.code = (b & ((0x40 >> s.utf8Left) - 1)) | (0x40 >> s.utf8Left);
    return canTakeSequence(s);
  }
  s.utf8Left--;
  if (!s.re) return s.utf8Left > 0 || charDone(s);
  s.code = (s.code << 6) | (b & 0x3f);
  if (s.utf8Left > 0) return canTakeSequence(s);
  const [lo, hi] = sequenceRange(s);
  return lo === hi && take(s, lo) && charDone(s);
}

/**
 * A character of a uniqueItems array's string item has come: where the string can now only
 * close (maxLength reached, or the pattern at its end), false if it would close as an earlier
 * item (the closing quote refused then, the string would be stranded).
 */
function charDone(s: State): boolean {
  if (!s.collect) return true;
  const closes = s.chars >= s.maxLength || (s.re !== null && !s.next!.pattern!.canTake(s.re, 0, 0x10ffff));
  return !closes || !seenItem(s, `${s.item}"`);
}

/** The JSON text `text` (UTF-8 bytes as latin1) as JSON.stringify writes its value, bytes as latin1. */
function canonical(text: string): string {
  try {
    return bytesText(JSON.stringify(JSON.parse(Buffer.from(text, 'latin1').toString('utf8'))));
  } catch {
    return text;
  }
}

/** Whether an earlier item of the uniqueItems array being written is the value `text`. */
const seenItem = (s: State, text: string): boolean => s.frames.at(-1)!.seen.includes(canonical(text));

/** The listed values the value in progress may still be: in a uniqueItems array, none seen before. */
function valuesLeft(s: State): readonly string[] {
  const values = s.next!.values!;
  if (!s.collect) return values;
  const seen = s.frames.at(-1)!.seen;
  return values.filter((v) => !seen.includes(v));
}

/** The pattern goes on with one more character (and may end within the length left). */
function take(s: State, cp: number): boolean {
  const p = s.next!.pattern!;
  s.re = p.next(s.re!, cp);
  const room = roomOf(s);
  return s.re !== null && (!room || p.fits(s.re, room));
}

/** Where lengths bound the pattern: the characters still to come after those counted. */
function roomOf(s: State): Room | undefined {
  const lengths = s.next!.lengths;
  return lengths && { lengths, lo: s.minLength - s.chars, hi: s.maxLength - s.chars };
}

/** Some character an escape may write (\\uXXXX: any but a surrogate) goes on in the pattern. */
function canTakeEscape(s: State): boolean {
  const p = s.next!.pattern!;
  const room = roomOf(s);
  return p.canTake(s.re!, 0, 0xd7ff, room) || p.canTake(s.re!, 0xe000, 0xffff, room);
}

/** Some character that the UTF-8 sequence begun may end as goes on in the pattern. */
function canTakeSequence(s: State): boolean {
  const [lo, hi] = sequenceRange(s);
  const [p, room] = [s.next!.pattern!, roomOf(s)];
  return p.canTake(s.re!, lo, Math.min(hi, 0xd7ff), room) || p.canTake(s.re!, Math.max(lo, 0xe000), hi, room);
}

/**
 * The code points the UTF-8 sequence begun may still end as (`code`: its bits so far under a
 * marker bit): none overlong (E0 80 B0 is no '0'), none past U+10FFFF; lo > hi where none.
 * A surrogate may be in the range (callers leave it out).
 */
function sequenceRange(s: State): [number, number] {
  const shift = 6 * s.utf8Left;
  const full = s.code << shift;
  const marker = 31 - Math.clz32(full); // 11, 16 or 21 bits: a sequence of 2, 3 or 4 bytes
  const lo = full ^ (1 << marker);
  const hi = lo + (1 << shift) - 1;
  const least = marker === 11 ? 0x80 : marker === 16 ? 0x800 : 0x10000;
  const [a, b] = [Math.max(lo, least), Math.min(hi, 0x10ffff)];
  if (s.utf8Left === 0 && a >= 0xd800 && a <= 0xdfff) return [1, 0];
  return [a, b];
}

/** One more byte of a key: false where no key the object may still take goes on so. */
function keyGoesOn(s: State, b: number): boolean {
  const acc = s.acc + String.fromCharCode(b);
  const left = keysLeft(s.frames.at(-1)!);
  if (left && !left.some((k) => k.startsWith(acc))) return false;
  s.acc = acc;
  return true;
}

/** A key's closing quote: it must be one the object may still take; its value's shape is next. */
function endKey(s: State): boolean {
  const f = s.frames.at(-1)!;
  const left = keysLeft(f);
  if (left && !left.includes(s.acc)) return false;
  s.frames = [...s.frames.slice(0, -1), { ...f, seen: [...f.seen, s.acc] }];
  const props = f.shape?.properties;
  [s.mode, s.key, s.next] = [Mode.Colon, false, props?.has(s.acc) ? props.get(s.acc) : f.shape?.extra];
  return true;
}

/**
 * One sequence's JSON object so far. allows(bytes): whether the bytes continue it (without
 * taking them); take(bytes): takes them; complete: the object has closed.
 */
export class JsonObjectPrefix {
  /** The readings of the text so far: one, but where a union's object alternatives go side by side. */
  private states: State[];

  /** `schema`: compileJsonSchema's; without, any JSON object. */
  constructor(schema?: JsonShape) {
    this.states = [
      {
        mode: Mode.Top,
        ws: 0,
        stack: '',
        key: false,
        count: 0,
        word: '',
        frames: [],
        next: schema,
        acc: '',
        integer: false,
        chars: 0,
        utf8Left: 0,
        num: '',
        lo: -Infinity,
        hi: Infinity,
        minLength: 0,
        maxLength: Infinity,
        counting: false,
        re: null,
        code: 0,
        collect: false,
        item: '',
      },
    ];
  }

  /**
   * Whether each first byte continues the state (1), does not (-1), or is not known yet (0): a
   * byte refused refuses every token that starts with it, which turns most of a full pass over
   * the vocabulary (a constrained draw's last resort) into one lookup a token.
   */
  private readonly first = new Int8Array(256);

  allows(bytes: Uint8Array): boolean {
    if (bytes.length === 0) return false; // nothing to show for a step
    const b0 = bytes[0]!;
    if (this.first[b0] === 0) this.first[b0] = advance(copies(this.states), b0).length ? 1 : -1;
    if (this.first[b0] === -1) return false;
    return run(copies(this.states), bytes).length > 0;
  }

  take(bytes: Uint8Array): void {
    const t = run(copies(this.states), bytes);
    if (t.length === 0)
      throw new Error(
        `JSON mode: the piece ${JSON.stringify(Buffer.from(bytes).toString('latin1'))} does not continue the object`,
      );
    this.states = t;
    this.first.fill(0);
  }

  get complete(): boolean {
    return this.states.some((s) => s.mode === Mode.Done);
  }
}

/** Readings kept at most (a schema whose unions keep more open is followed in the first ones). */
export const MAX_READINGS = 64;

const copies = (states: readonly State[]): State[] =>
  states.length === 1 ? [{ ...states[0]! }] : states.map((s) => ({ ...s }));

/** The readings after `bytes` (`states` stepped in place); none where the bytes continue none. */
function run(states: State[], bytes: Uint8Array): State[] {
  // One reading (the common case): stepped byte by byte, no allocation, until a union forks it.
  let i = 0;
  if (states.length === 1) {
    const t = states[0]!;
    while (i < bytes.length) {
      if (!step(t, bytes[i++]!)) return [];
      const f = forks(t);
      if (f) {
        states = f;
        break;
      }
    }
  }
  for (; i < bytes.length && states.length; i++) states = advance(states, bytes[i]!);
  return states;
}

/**
 * The readings after one more byte (`states`: the caller's copies, stepped in place): each that
 * takes it, forked at a union's '{' or '['.
 */
function advance(states: State[], b: number): State[] {
  // One reading: stepped in place, no allocation unless a union's container opens.
  if (states.length === 1) return step(states[0]!, b) ? (forks(states[0]!) ?? states) : [];
  const out: State[] = [];
  for (const t of states) if (step(t, b)) out.push(...(forks(t) ?? [t]));
  return out.length > 1 ? distinct(out) : out;
}

/** Where `t` has just opened a container whose shape has several alternatives: a reading for each. */
function forks(t: State): State[] | undefined {
  if (t.mode !== Mode.KeyOrEnd && t.mode !== Mode.ValueOrEnd) return undefined;
  const f = t.frames.at(-1);
  const alts = f?.shape ? (t.mode === Mode.KeyOrEnd ? f.shape.objects : f.shape.arrays) : undefined;
  return alts?.map((shape) => {
    const u = { ...t, frames: [...t.frames.slice(0, -1), { ...f!, shape }] };
    if (t.mode === Mode.ValueOrEnd) u.next = itemShape(shape, 0);
    return u;
  });
}

const shapeIds = new WeakMap<JsonShape, number>();
let shapeCount = 0;
function idOf(s: JsonShape | undefined): number {
  if (!s) return 0;
  let id = shapeIds.get(s);
  if (id === undefined) shapeIds.set(s, (id = ++shapeCount));
  return id;
}

/** The readings less repeats (alternatives that took the same text to the same place), at most MAX_READINGS. */
function distinct(states: State[]): State[] {
  const seen = new Set<string>();
  const out: State[] = [];
  for (const s of states) {
    const key = [
      s.mode,
      s.ws,
      s.stack,
      s.key,
      s.count,
      s.word,
      s.acc,
      s.integer,
      s.chars,
      s.utf8Left,
      s.minLength,
      s.maxLength,
      s.re?.id ?? 0,
      s.code,
      s.collect,
      s.item,
      idOf(s.next),
      ...s.frames.map((f) => `${idOf(f.shape)}/${f.count}/${f.seen.join('\u0000')}`),
    ].join('\u0001');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(s);
    if (out.length === MAX_READINGS) break;
  }
  return out;
}
