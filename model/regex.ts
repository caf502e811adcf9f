// JSON Schema's `pattern` (ECMA-262 regular expressions, read as with the `u` flag) and the
// `format`s that are patterns (date-time, uuid, email, …), for the JSON automaton
// (json-constraint.ts). A pattern parses to a tree, the tree to a Thompson NFA over code points,
// and the automaton walks a DFA built from it lazily, one character at a time: each DFA state
// keeps only NFA states from which the pattern can still match, so a state that exists always
// has a way to the end, and generation never writes itself into a string it cannot close.
// As JSON Schema (and RegExp.test) reads them, patterns are not anchored: `^` and `$` say so.
// Lookaround, backreferences, \b and \p{…} are refused by name, as the schema compiler refuses
// keywords it cannot follow.

export class PatternError extends Error {
  override name = 'PatternError';
}

/** Code point ranges: sorted, disjoint, inclusive [lo, hi] pairs, flattened. */
type Ranges = readonly number[];

const MAX_CP = 0x10ffff;

function normalize(pairs: number[]): number[] {
  const ps: [number, number][] = [];
  for (let i = 0; i < pairs.length; i += 2) ps.push([pairs[i]!, pairs[i + 1]!]);
  ps.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of ps) {
    if (out.length && lo <= out[out.length - 1]! + 1) out[out.length - 1] = Math.max(out.at(-1)!, hi);
    else out.push(lo, hi);
  }
  return out;
}

function complement(r: Ranges): number[] {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < r.length; i += 2) {
    if (r[i]! > next) out.push(next, r[i]! - 1);
    next = r[i + 1]! + 1;
  }
  if (next <= MAX_CP) out.push(next, MAX_CP);
  return out;
}

function contains(r: Ranges, cp: number): boolean {
  for (let i = 0; i < r.length && r[i]! <= cp; i += 2) if (cp <= r[i + 1]!) return true;
  return false;
}

function meets(r: Ranges, lo: number, hi: number): boolean {
  for (let i = 0; i < r.length && r[i]! <= hi; i += 2) if (r[i + 1]! >= lo) return true;
  return false;
}

const cps = (s: string): number[] => [...s].map((c) => c.codePointAt(0)!);
const DIGIT: Ranges = [0x30, 0x39];
const WORD: Ranges = normalize([0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a]);
const SPACE: Ranges = normalize([
  ...[0x09, 0x0d, 0x20, 0x20, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029],
  ...[0x202f, 0x202f, 0x205f, 0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff],
]);
/** `.`: anything but a line terminator. */
const DOT: Ranges = complement(normalize([0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029]));
const ALL: Ranges = [0, MAX_CP];

type Node =
  | { k: 'chars'; r: Ranges }
  | { k: 'cat'; xs: Node[] }
  | { k: 'alt'; xs: Node[] }
  | { k: 'rep'; x: Node; min: number; max: number }
  | { k: 'bol' }
  | { k: 'eol' };

/** The largest count in {n,m}: beyond it a pattern's automaton grows past any use. */
export const MAX_REPEAT = 1000;
const MAX_GROUP_DEPTH = 64;

class Parser {
  private i = 0;
  private readonly cs: number[];

  constructor(private readonly src: string) {
    this.cs = cps(src);
  }

  fail(what: string): never {
    throw new PatternError(`${what} (at character ${this.i + 1} of ${JSON.stringify(this.src)})`);
  }

  private peek(): number | undefined {
    return this.cs[this.i];
  }

  private eat(c: string): boolean {
    if (this.cs[this.i] !== c.codePointAt(0)) return false;
    this.i++;
    return true;
  }

  parse(): Node {
    const n = this.alt(0);
    if (this.i < this.cs.length) this.fail("a ')' that closes no group");
    return n;
  }

  private alt(depth: number): Node {
    const xs = [this.cat(depth)];
    while (this.eat('|')) xs.push(this.cat(depth));
    return xs.length === 1 ? xs[0]! : { k: 'alt', xs };
  }

  private cat(depth: number): Node {
    const xs: Node[] = [];
    while (this.i < this.cs.length && this.peek() !== 0x7c /* | */ && this.peek() !== 0x29 /* ) */)
      xs.push(this.quantified(depth));
    return xs.length === 1 ? xs[0]! : { k: 'cat', xs };
  }

  private quantified(depth: number): Node {
    const x = this.atom(depth);
    let min: number, max: number;
    if (this.eat('*')) [min, max] = [0, Infinity];
    else if (this.eat('+')) [min, max] = [1, Infinity];
    else if (this.eat('?')) [min, max] = [0, 1];
    else if (this.peek() === 0x7b /* { */) [min, max] = this.braces();
    else return x;
    if (x.k === 'bol' || x.k === 'eol') this.fail('nothing to repeat');
    this.eat('?'); // lazy: the same strings
    if (max < min) this.fail(`{${min},${max}}: the numbers are out of order`);
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT))
      this.fail(`counts above ${MAX_REPEAT} in {n,m} are not supported`);
    const q = this.peek();
    if (q === 0x2a || q === 0x2b || q === 0x3f || q === 0x7b) this.fail('nothing to repeat');
    return { k: 'rep', x, min, max };
  }

  /** {n}, {n,}, {n,m}. */
  private braces(): [number, number] {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(String.fromCodePoint(...this.cs.slice(this.i, this.i + 24)));
    if (!m) this.fail("a '{' that begins no {n,m} (write \\{ for the character)");
    this.i += m[0].length;
    const min = Number(m[1]);
    return [min, m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3])];
  }

  private atom(depth: number): Node {
    const c = this.cs[this.i++]!;
    switch (c) {
      case 0x5e /* ^ */:
        return { k: 'bol' };
      case 0x24 /* $ */:
        return { k: 'eol' };
      case 0x2e /* . */:
        return { k: 'chars', r: DOT };
      case 0x5b /* [ */:
        return { k: 'chars', r: this.klass() };
      case 0x5c /* \ */: {
        const e = this.escape(false);
        return { k: 'chars', r: typeof e === 'number' ? [e, e] : e };
      }
      case 0x28 /* ( */: {
        if (depth >= MAX_GROUP_DEPTH) this.fail(`groups nested more than ${MAX_GROUP_DEPTH} deep`);
        if (this.eat('?')) {
          if (this.eat('=') || this.eat('!')) this.fail('lookahead (?= / ?!) is not supported');
          if (this.eat('<')) {
            if (this.eat('=') || this.eat('!')) this.fail('lookbehind (?<= / ?<!) is not supported');
            while (this.i < this.cs.length && this.peek() !== 0x3e /* > */) this.i++;
            if (!this.eat('>')) this.fail("a group name without its closing '>'");
          } else if (!this.eat(':')) this.fail("'(?' begins no group this reader knows ((?:, (?<name>)");
        }
        const x = this.alt(depth + 1);
        if (!this.eat(')')) this.fail("a '(' without its ')'");
        return x;
      }
      case 0x2a:
      case 0x2b:
      case 0x3f:
        this.i--;
        return this.fail('nothing to repeat');
      case 0x7b:
      case 0x7d:
      case 0x5d:
        this.i--;
        return this.fail(
          `a lone '${String.fromCharCode(c)}' (write \\${String.fromCharCode(c)} for the character)`,
        );
      default:
        return { k: 'chars', r: [c, c] };
    }
  }

  /** After '\': a code point, or a class (\d, \w, \s and their complements). */
  private escape(inClass: boolean): number | Ranges {
    const c = this.cs[this.i++];
    if (c === undefined) return this.fail('a pattern that ends in a lone \\');
    const ch = String.fromCodePoint(c);
    const classes: Record<string, Ranges> = { d: DIGIT, w: WORD, s: SPACE };
    if (ch in classes) return classes[ch]!;
    if (ch.toLowerCase() in classes && ch !== ch.toLowerCase()) return complement(classes[ch.toLowerCase()]!);
    const controls: Record<string, number> = { t: 9, n: 10, v: 11, f: 12, r: 13 };
    if (ch in controls) return controls[ch]!;
    if (ch === 'b' && inClass) return 8;
    if (ch === 'b' || ch === 'B') return this.fail('word boundaries (\\b, \\B) are not supported');
    if (ch === '0' && !(this.peek()! >= 0x30 && this.peek()! <= 0x39)) return 0;
    if (/[1-9]/.test(ch) || ch === 'k') return this.fail('backreferences are not supported');
    if (ch === 'p' || ch === 'P') return this.fail('Unicode property classes (\\p{…}) are not supported');
    if (ch === 'c') {
      const l = this.cs[this.i];
      if (l === undefined || !/[A-Za-z]/.test(String.fromCharCode(l)))
        this.fail('\\c must be followed by a letter');
      this.i++;
      return l % 32;
    }
    if (ch === 'x') return this.hex(2);
    if (ch === 'u') {
      if (this.eat('{')) {
        const m = /^([0-9A-Fa-f]{1,6})\}/.exec(String.fromCodePoint(...this.cs.slice(this.i, this.i + 7)));
        if (!m || parseInt(m[1]!, 16) > MAX_CP) this.fail('\\u{…} must hold a code point in hex');
        this.i += m[0].length;
        return parseInt(m[1]!, 16);
      }
      const u = this.hex(4);
      // A surrogate pair written as two escapes is one code point, as with the u flag.
      if (u >= 0xd800 && u <= 0xdbff && this.cs[this.i] === 0x5c && this.cs[this.i + 1] === 0x75) {
        const at = this.i;
        this.i += 2;
        const m = /^[0-9A-Fa-f]{4}/.exec(String.fromCodePoint(...this.cs.slice(this.i, this.i + 4)));
        const lo = m ? parseInt(m[0], 16) : -1;
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          this.i += 4;
          return 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        this.i = at;
      }
      return u;
    }
    // Any other letter or digit is an escape this reader does not know; punctuation stands for itself.
    if (/[\p{L}\p{N}]/u.test(ch))
      return this.fail(`the escape \\${ch} is not one ECMA-262 regular expressions have`);
    return c;
  }

  private hex(n: number): number {
    const s = String.fromCodePoint(...this.cs.slice(this.i, this.i + n));
    if (!new RegExp(`^[0-9A-Fa-f]{${n}}$`).test(s)) this.fail(`an escape needs ${n} hex digits`);
    this.i += n;
    return parseInt(s, 16);
  }

  /** After '[': a class, up to its ']'. */
  private klass(): Ranges {
    const negated = this.eat('^');
    const pairs: number[] = [];
    const item = (): number | Ranges => {
      const c = this.cs[this.i++]!;
      return c === 0x5c ? this.escape(true) : c;
    };
    while (!this.eat(']')) {
      if (this.i >= this.cs.length) this.fail("a '[' without its ']'");
      const a = item();
      if (typeof a !== 'number') {
        pairs.push(...a);
        continue;
      }
      if (this.peek() === 0x2d /* - */ && this.cs[this.i + 1] !== undefined && this.cs[this.i + 1] !== 0x5d) {
        this.i++;
        const b = item();
        if (typeof b !== 'number') this.fail('a range in a class must end in a character, not a class');
        if (b < a) this.fail('a range in a class is out of order');
        pairs.push(a, b);
      } else pairs.push(a, a);
    }
    const r = normalize(pairs);
    return negated ? complement(r) : r;
  }
}

/** The largest NFA a pattern may build (its {n,m} copies included). */
export const MAX_STATES = 20000;

/** For each state, the states with an edge into it (`edges(s)`: where s's edges go). */
function edgesInto(n: number, edges: (s: number) => readonly number[]): number[][] {
  const into: number[][] = Array.from({ length: n }, () => []);
  for (let s = 0; s < n; s++) for (const t of edges(s)) into[t]!.push(s);
  return into;
}

/** `seed` (changed in place) and every state with a path into it over the edges `into` lists. */
function reachBack(into: readonly number[][], seed: Uint8Array): Uint8Array {
  const stack = [...seed.keys()].filter((s) => seed[s]);
  while (stack.length) {
    for (const p of into[stack.pop()!]!) {
      if (seed[p]) continue;
      seed[p] = 1;
      stack.push(p);
    }
  }
  return seed;
}

/** A Thompson NFA: each state has ε edges, `^`/`$` edges (ε where at the start / end), at most one character edge. */
class Nfa {
  readonly eps: number[][] = [];
  readonly bol: number[][] = [];
  readonly eol: number[][] = [];
  readonly chars: (Ranges | undefined)[] = [];
  readonly to: number[] = [];

  add(): number {
    if (this.to.length >= MAX_STATES)
      throw new PatternError(
        `the pattern needs more than ${MAX_STATES} states (smaller {n,m} counts would fit)`,
      );
    this.eps.push([]);
    this.bol.push([]);
    this.eol.push([]);
    this.chars.push(undefined);
    this.to.push(-1);
    return this.to.length - 1;
  }

  /** The states that `n` runs from and to. */
  build(n: Node): [number, number] {
    const [s, e] = [this.add(), this.add()];
    switch (n.k) {
      case 'chars':
        [this.chars[s], this.to[s]] = [n.r, e];
        break;
      case 'bol':
        this.bol[s]!.push(e);
        break;
      case 'eol':
        this.eol[s]!.push(e);
        break;
      case 'cat': {
        let at = s;
        for (const x of n.xs) {
          const [a, b] = this.build(x);
          this.eps[at]!.push(a);
          at = b;
        }
        this.eps[at]!.push(e);
        break;
      }
      case 'alt':
        for (const x of n.xs) {
          const [a, b] = this.build(x);
          this.eps[s]!.push(a);
          this.eps[b]!.push(e);
        }
        break;
      case 'rep': {
        let at = s;
        for (let i = 0; i < n.min; i++) {
          const [a, b] = this.build(n.x);
          this.eps[at]!.push(a);
          at = b;
        }
        if (n.max === Infinity) {
          const [a, b] = this.build(n.x);
          this.eps[at]!.push(a, e);
          this.eps[b]!.push(at);
        } else {
          for (let i = n.min; i < n.max; i++) {
            const [a, b] = this.build(n.x);
            this.eps[at]!.push(a, e);
            at = b;
          }
          this.eps[at]!.push(e);
        }
        break;
      }
    }
    return [s, e];
  }
}

/** A DFA state: the live NFA states after the characters so far (ε-closed), and its way on, cached. */
export interface PatternState {
  readonly id: number;
  readonly set: Int32Array;
  readonly initial: boolean;
  readonly next: Map<number, PatternState | null>;
  accepts?: boolean;
}

/** Length bounds past this are not planned for (a string that long is bounded by its count alone). */
export const MAX_LENGTH_CAP = 4096;
/**
 * The patterns' NFA states and length-table cells (Pattern.cost) a schema may need in all, ~0.5 s
 * of work at the worst: a request cannot make the server build without end.
 */
export const MAX_LENGTH_WORK = 8_000_000;
/** Length tables kept per pattern (distinct minLength / maxLength pairs). */
const MAX_LENGTH_TABLES = 16;

/** The characters a string may still take, counted after the one in progress: [lo, hi]. */
export interface Room {
  lengths: Lengths;
  lo: number;
  hi: number;
}

/** Pattern.lengths: per NFA state, a bit per number of characters to go (0..cap; open: bit cap is "cap or more"). */
export class Lengths {
  private readonly byState = new WeakMap<PatternState, Uint32Array>();

  constructor(
    readonly cap: number,
    readonly open: boolean,
    readonly bits: readonly Uint32Array[],
  ) {}

  /** A DFA state's bits: those of its NFA states together. */
  of(st: PatternState): Uint32Array {
    let b = this.byState.get(st);
    if (!b) {
      b = new Uint32Array(this.bits[0]!.length);
      for (const s of st.set) {
        const x = this.bits[s]!;
        for (let i = 0; i < b.length; i++) b[i]! |= x[i]!;
      }
      this.byState.set(st, b);
    }
    return b;
  }

  /** Whether `b` has a number of characters to go within [room.lo, room.hi]. */
  has(b: Uint32Array, room: { lo: number; hi: number }): boolean {
    // Open: bit `cap` stands for every count from cap on, so a room past it asks that bit
    const lo = this.open ? Math.min(Math.max(room.lo, 0), this.cap) : Math.max(room.lo, 0);
    const hi = this.open ? this.cap : Math.min(room.hi, this.cap);
    for (let l = lo; l <= hi; l++) if (b[l >> 5]! & (1 << (l & 31))) return true;
    return false;
  }
}

/** DFA states kept for reuse at most; past it, new ones are built afresh (correct, slower). */
const MAX_DFA = 10000;
/**
 * Ways on cached per DFA state at most. A vocabulary pass steps each token's first character,
 * thousands of distinct ones in a 150k vocabulary; the formats' patterns live as long as the
 * process, so their caches are bounded (past it, a way on is found afresh: correct, slower).
 */
const MAX_NEXT = 1024;

/** A compiled pattern: start, then next(cp) per character; accepts() says whether the string may end. */
export class Pattern {
  private readonly nfa = new Nfa();
  private readonly accept: number;
  /** States from which the pattern can still match, with no `^` ahead and `$` only at the end. */
  private readonly live: Uint8Array;
  /** States from which the match may end with no more characters (ε and `$` edges). */
  private ends: Uint8Array = new Uint8Array(0);
  private readonly interned = new Map<string, PatternState>();
  private ids = 0;
  private readonly mark: Int32Array;
  private epoch = 0;
  readonly start: PatternState;

  constructor(readonly source: string) {
    const tree = new Parser(source).parse();
    const nfa = this.nfa;
    // Unanchored, as RegExp.test: any text before and after the match.
    const [pre, post] = [nfa.add(), nfa.add()];
    const [a, b] = nfa.build(tree);
    [nfa.chars[pre], nfa.to[pre]] = [ALL, pre];
    nfa.eps[pre]!.push(a);
    nfa.eps[b]!.push(post);
    [nfa.chars[post], nfa.to[post]] = [ALL, post];
    this.accept = post;
    this.mark = new Int32Array(nfa.to.length);
    this.live = this.liveStates();
    const set = this.closure([pre], true, false);
    this.start = this.intern(set, true) ?? this.fail();
  }

  private fail(): never {
    throw new PatternError(`${JSON.stringify(this.source)} matches no string`);
  }

  /**
   * Backward reachability: the states that reach the end through ε and `$` edges, then those
   * that reach them through ε and character edges.
   */
  private liveStates(): Uint8Array {
    const { eps, eol, chars, to } = this.nfa;
    const end = new Uint8Array(to.length);
    end[this.accept] = 1;
    this.ends = reachBack(
      edgesInto(to.length, (s) => [...eps[s]!, ...eol[s]!]),
      end,
    );
    const takes = (s: number) => (chars[s]?.length ?? 0) > 0;
    return reachBack(
      edgesInto(to.length, (s) => [...eps[s]!, ...(takes(s) ? [to[s]!] : [])]),
      Uint8Array.from(this.ends),
    );
  }

  /** The ε-closure of `from` (`^` edges taken at the start only, `$` at the end only). */
  private closure(from: Iterable<number>, atStart: boolean, atEnd: boolean): number[] {
    const e = ++this.epoch;
    const out: number[] = [];
    const stack = [...from];
    while (stack.length) {
      const s = stack.pop()!;
      if (this.mark[s] === e) continue;
      this.mark[s] = e;
      out.push(s);
      stack.push(...this.nfa.eps[s]!);
      if (atStart) stack.push(...this.nfa.bol[s]!);
      if (atEnd) stack.push(...this.nfa.eol[s]!);
    }
    return out;
  }

  private intern(states: number[], initial: boolean): PatternState | null {
    const set = Int32Array.from(states.filter((s) => this.live[s])).sort();
    if (set.length === 0) return null;
    const key = `${initial ? 'i' : ''}${set.join(',')}`;
    const known = this.interned.get(key);
    if (known) return known;
    const st: PatternState = { id: ++this.ids, set, initial, next: new Map() };
    if (this.interned.size < MAX_DFA) this.interned.set(key, st);
    return st;
  }

  /** The state after one more character; null where no match goes on so. */
  next(st: PatternState, cp: number): PatternState | null {
    let to = st.next.get(cp);
    if (to !== undefined) return to;
    const targets: number[] = [];
    for (const s of st.set) {
      const r = this.nfa.chars[s];
      if (r && contains(r, cp)) targets.push(this.nfa.to[s]!);
    }
    to = targets.length ? this.intern(this.closure(targets, false, false), false) : null;
    if (st.next.size < MAX_NEXT) st.next.set(cp, to);
    return to;
  }

  /**
   * Whether some character in [lo, hi] may come next (a UTF-8 sequence or \u escape begun);
   * with `room`, one after which the match may end within so many more characters.
   */
  canTake(st: PatternState, lo: number, hi: number, room?: Room): boolean {
    for (const s of st.set) {
      const r = this.nfa.chars[s];
      const to = this.nfa.to[s]!;
      if (r && meets(r, lo, hi) && this.live[to] && (!room || room.lengths.has(room.lengths.bits[to]!, room)))
        return true;
    }
    return false;
  }

  /** Whether the match may end after a number of further characters within `room`. */
  fits(st: PatternState, room: Room): boolean {
    return room.lengths.has(room.lengths.of(st), room);
  }

  private readonly lengthTables = new Map<string, Lengths>();

  /**
   * The numbers of characters that may still come before a match ends, from each NFA state, as
   * far as a string's length bounds need them (undefined: no bounds): with minLength and
   * maxLength beside a pattern, the automaton takes a character only where some match fits the
   * length left, so that neither bound strands it ('é' within 4 characters: the fourth must be é).
   */
  lengths(minLength: number, maxLength: number): Lengths | undefined {
    if (minLength === 0 && maxLength >= MAX_LENGTH_CAP) return undefined;
    const key = `${minLength},${maxLength}`;
    let t = this.lengthTables.get(key);
    if (!t) {
      // The formats' patterns live as long as the server: a few tables kept, the oldest dropped
      if (this.lengthTables.size >= MAX_LENGTH_TABLES)
        this.lengthTables.delete(this.lengthTables.keys().next().value!);
      this.lengthTables.set(key, (t = this.lengthTable(minLength, maxLength)));
    }
    return t;
  }

  /** The work of this pattern within a schema: its NFA states, and the cells of the length table bounds would need. */
  cost(minLength: number, maxLength: number): number {
    const n = this.nfa.to.length;
    if (minLength === 0 && maxLength >= MAX_LENGTH_CAP) return n;
    const cap = maxLength >= MAX_LENGTH_CAP ? Math.min(minLength, MAX_LENGTH_CAP) : maxLength;
    return n + n * (cap + 1);
  }

  private lengthTable(minLength: number, maxLength: number): Lengths {
    const open = maxLength >= MAX_LENGTH_CAP;
    const cap = open ? Math.min(minLength, MAX_LENGTH_CAP) : maxLength;
    const { eps, chars, to } = this.nfa;
    const n = to.length;
    const words = (cap >> 5) + 1;
    const bits = Array.from({ length: n }, () => new Uint32Array(words));
    const epsInto = edgesInto(n, (s) => eps[s]!);
    const charInto = edgesInto(n, (s) => (chars[s]?.length ? [to[s]!] : []));
    // One character more: the states with a character edge into `x`, and those ε edges lead there from.
    const before = (x: Uint8Array): Uint8Array => {
      const out = new Uint8Array(n);
      for (let t = 0; t < n; t++) if (x[t]) for (const p of charInto[t]!) out[p] = 1;
      return reachBack(epsInto, out);
    };
    const mark = (x: Uint8Array, l: number) => {
      for (let s = 0; s < n; s++) if (x[s]) bits[s]![l >> 5]! |= 1 << (l & 31);
    };
    // Exactly l characters to go: back from the states that end with none ($ edges at the end only).
    let exact: Uint8Array = Uint8Array.from(this.ends);
    for (let l = 0; l < (open ? cap : cap + 1); l++) {
      mark(exact, l);
      exact = before(exact);
    }
    if (open) {
      // `cap` or more characters to go: `cap` steps back from every live state.
      let atLeast: Uint8Array = Uint8Array.from(this.live);
      for (let l = 0; l < cap; l++) atLeast = before(atLeast);
      mark(atLeast, cap);
    }
    return new Lengths(cap, open, bits);
  }

  /** Whether the string may end here. */
  accepts(st: PatternState): boolean {
    st.accepts ??= this.closure(st.set, st.initial, true).includes(this.accept);
    return st.accepts;
  }

  /** Whether `text` matches (as RegExp.test does): for tests and checks. */
  test(text: string): boolean {
    let st: PatternState | null = this.start;
    for (const c of cps(text)) if (!(st = this.next(st, c))) return false;
    return this.accepts(st);
  }
}

export function compilePattern(source: string): Pattern {
  return new Pattern(source);
}

// --- formats ------------------------------------------------------------------------------

const YEAR = '\\d{4}';
const LEAP = '(\\d\\d(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)';
/** A calendar date: each month's days, 29 February in leap years only. */
const DATE =
  `(${YEAR}-(0[13578]|1[02])-(0[1-9]|[12]\\d|3[01])|${YEAR}-(0[469]|11)-(0[1-9]|[12]\\d|30)` +
  `|${YEAR}-02-(0[1-9]|1\\d|2[0-8])|${LEAP}-02-29)`;
/** RFC 3339's full-time, with at most microseconds (what Python reads) and no leap second. */
const TIME = '([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,6})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)';
const NUM = '\\d{1,9}';
const DTIME = `T(${NUM}H(${NUM}M)?(${NUM}(\\.\\d{1,6})?S)?|${NUM}M(${NUM}(\\.\\d{1,6})?S)?|${NUM}(\\.\\d{1,6})?S)`;
const LABEL = '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
/** A top-level domain starts with a letter (a numeric one reads as an IPv4 address to URL parsers). */
const TLD = '[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const H16 = '[0-9A-Fa-f]{1,4}';
const IPV6 = [
  `(${H16}:){7}${H16}`,
  `(${H16}:){1,7}:`,
  `(${H16}:){1,6}:${H16}`,
  ...[5, 4, 3, 2].map((n) => `(${H16}:){1,${n}}(:${H16}){1,${7 - n}}`),
  `${H16}:(:${H16}){1,6}`,
  `:((:${H16}){1,7}|:)`,
].join('|');
const PCT = '%[0-9A-Fa-f]{2}';
const UNRESERVED_SUB = "A-Za-z0-9\\-._~!$&'()*+,;=";
const PCHAR = `([${UNRESERVED_SUB}:@]|${PCT})`;
const SEG = `${PCHAR}*`;
const AUTHORITY = `(([${UNRESERVED_SUB}:]|${PCT})*@)?([${UNRESERVED_SUB}]|${PCT})*(:\\d{0,5})?`;
const QUERY = `(${PCHAR}|[/?])*`;

/** The formats followed, as anchored patterns. */
export const FORMATS: Readonly<Record<string, string>> = {
  'date-time': `^${DATE}T${TIME}$`,
  date: `^${DATE}$`,
  time: `^${TIME}$`,
  duration: `^P((${NUM}Y(${NUM}M)?(${NUM}D)?|${NUM}M(${NUM}D)?|${NUM}D)(${DTIME})?|${DTIME}|${NUM}W)$`,
  email: `^${ATEXT}+(\\.${ATEXT}+)*@(${LABEL}\\.)+${TLD}$`,
  hostname: `^${LABEL}(\\.${LABEL})*$`,
  ipv4: `^(${OCTET}\\.){3}${OCTET}$`,
  ipv6: `^(${IPV6})$`,
  uuid: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$',
  uri: `^[A-Za-z][A-Za-z0-9+.\\-]*:(//${AUTHORITY}(/${SEG})*|/(${PCHAR}+(/${SEG})*)?|${PCHAR}+(/${SEG})*)?(\\?${QUERY})?(#${QUERY})?$`,
};

/**
 * The longest strings of the formats whose patterns repeat without end: RFC 5321's 254 for an
 * address, RFC 1035's 253 for a name. A model that repeats a character stops there, as JSON
 * mode bounds its blank runs.
 */
export const FORMAT_MAX_LENGTH: Readonly<Record<string, number>> = { email: 254, hostname: 253 };

const formats = new Map<string, Pattern>();
/** A format's pattern, compiled once per process. */
export function formatPattern(name: string): Pattern | undefined {
  if (!Object.hasOwn(FORMATS, name)) return undefined;
  const src = FORMATS[name]!;
  let p = formats.get(name);
  if (!p) formats.set(name, (p = new Pattern(src)));
  return p;
}
