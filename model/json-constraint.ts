// JSON mode (OpenAI's `response_format: { type: "json_object" }`): the generated text is kept a
// prefix of one JSON object (RFC 8259), byte by byte, and the sequence ends when the object
// closes. A pushdown automaton over bytes: `stack` holds the open containers ('{' or '['), the
// mode says what may come next. Strings take any byte from 0x20 on (UTF-8 is not checked: the
// tokens' bytes are the tokenizer's); numbers, literals and escapes follow the grammar exactly.
// Whitespace between tokens runs at most MAX_WS bytes (as llama.cpp's json.gbnf bounds it): a
// model that favours blanks would otherwise fill max_tokens with them, the known failure of JSON
// modes.

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
  Done, // the object closed: whitespace only
}

/** Whitespace bytes in a row outside strings. */
export const MAX_WS = 20;

interface State {
  mode: Mode;
  /** Whitespace bytes in a row so far. */
  ws: number;
  stack: string;
  /** A string is a key (Colon follows it), not a value. */
  key: boolean;
  count: number;
  word: string;
}

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

/** After a value ends: its container's next, or Done when it was the top object. */
function afterValue(s: State): void {
  s.mode = s.stack.length === 0 ? Mode.Done : Mode.After;
}

/** A value's first byte (the mode expected one); false where none starts so. */
function startValue(s: State, b: number): boolean {
  s.key = false;
  if (b === 0x7b /* { */) [s.stack, s.mode] = [s.stack + '{', Mode.KeyOrEnd];
  else if (b === 0x5b /* [ */) [s.stack, s.mode] = [s.stack + '[', Mode.ValueOrEnd];
  else if (b === 0x22 /* " */) s.mode = Mode.Str;
  else if (b === 0x2d /* - */) s.mode = Mode.Minus;
  else if (b === 0x30) s.mode = Mode.Zero;
  else if (isDigit(b)) s.mode = Mode.Int;
  else if (b === 0x74 || b === 0x66 || b === 0x6e) {
    [s.mode, s.word, s.count] = [Mode.Lit, b === 0x74 ? 'true' : b === 0x66 ? 'false' : 'null', 1];
  } else return false;
  return true;
}

/** Closes the innermost container with `b` (']' or '}') when it is that container's end. */
function close(s: State, b: number): boolean {
  const want = b === 0x7d ? '{' : b === 0x5d ? '[' : '';
  if (!want || !s.stack.endsWith(want)) return false;
  s.stack = s.stack.slice(0, -1);
  afterValue(s);
  return true;
}

/** One byte; false (the state then undefined) where no JSON object continues so. */
function step(s: State, b: number): boolean {
  const inText = s.mode === Mode.Str || s.mode === Mode.Esc || s.mode === Mode.Hex;
  if (!inText && isWs(b) && s.mode !== Mode.Lit) {
    if (s.ws === MAX_WS) return false;
    s.ws++;
  } else s.ws = 0;
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
      if (b !== 0x22) return false;
      [s.mode, s.key] = [Mode.Str, true];
      return true;
    case Mode.Colon:
      if (isWs(b)) return true;
      if (b !== 0x3a) return false;
      s.mode = Mode.Value;
      return true;
    case Mode.After:
      if (isWs(b)) return true;
      if (b === 0x2c) {
        s.mode = s.stack.endsWith('{') ? Mode.Key : Mode.Value;
        return true;
      }
      return close(s, b);
    case Mode.Str:
      if (b === 0x22) {
        if (s.key) [s.mode, s.key] = [Mode.Colon, false];
        else afterValue(s);
        return true;
      }
      if (b === 0x5c) s.mode = Mode.Esc;
      return b >= 0x20;
    case Mode.Esc:
      if (b === 0x75 /* u */) [s.mode, s.count] = [Mode.Hex, 4];
      else if ('"\\/bfnrt'.includes(String.fromCharCode(b))) s.mode = Mode.Str;
      else return false;
      return true;
    case Mode.Hex:
      if (!isHex(b)) return false;
      if (--s.count === 0) s.mode = Mode.Str;
      return true;
    case Mode.Minus:
      if (!isDigit(b)) return false;
      s.mode = b === 0x30 ? Mode.Zero : Mode.Int;
      return true;
    case Mode.Dot:
      if (!isDigit(b)) return false;
      s.mode = Mode.Frac;
      return true;
    case Mode.E:
      if (b === 0x2b || b === 0x2d) s.mode = Mode.ESign;
      else if (isDigit(b)) s.mode = Mode.Exp;
      else return false;
      return true;
    case Mode.ESign:
      if (!isDigit(b)) return false;
      s.mode = Mode.Exp;
      return true;
    case Mode.Zero:
    case Mode.Int:
    case Mode.Frac:
    case Mode.Exp:
      if (isDigit(b) && s.mode !== Mode.Zero) return true;
      if (b === 0x2e && s.mode !== Mode.Frac && s.mode !== Mode.Exp) {
        s.mode = Mode.Dot;
        return true;
      }
      if ((b === 0x65 || b === 0x45) && s.mode !== Mode.Exp) {
        s.mode = Mode.E;
        return true;
      }
      // The number ended: this byte is the container's.
      afterValue(s);
      return move(s, b);
    case Mode.Lit:
      if (b !== s.word.charCodeAt(s.count)) return false;
      if (++s.count === s.word.length) afterValue(s);
      return true;
  }
}

/**
 * One sequence's JSON object so far. allows(bytes): whether the bytes continue it (without
 * taking them); take(bytes): takes them; complete: the object has closed.
 */
export class JsonObjectPrefix {
  private s: State = { mode: Mode.Top, ws: 0, stack: '', key: false, count: 0, word: '' };

  allows(bytes: Uint8Array): boolean {
    if (bytes.length === 0) return false; // nothing to show for a step
    const t = { ...this.s };
    for (const b of bytes) if (!step(t, b)) return false;
    return true;
  }

  take(bytes: Uint8Array): void {
    const t = { ...this.s };
    for (const b of bytes)
      if (!step(t, b)) throw new Error(`JSON mode: byte ${b} does not continue the object`);
    this.s = t;
  }

  get complete(): boolean {
    return this.s.mode === Mode.Done;
  }
}
