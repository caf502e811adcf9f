// Next-token sampling with the knobs and the order llama.cpp users know:
//  0. Logit biases (llama.cpp's `logit-bias` sampler, OpenAI's `logit_bias`): added to the
//     token's logit; -Infinity bans it.
//  1. Penalties over the last `repeatLastN` accepted tokens (llama.cpp's `penalties` sampler):
//     a positive logit is divided by `repeatPenalty`, a negative one multiplied (dividing would
//     make an unlikely token likelier), then count·frequencyPenalty + presencePenalty subtracted.
//  2. top-k, 3. top-p, 4. min-p, 5. temperature, 6. a draw from the softmax ("dist"): llama.cpp's
//     default chain. top-p and min-p use probabilities at temperature 1, as there.
//  7. Temperature 0 is greedy: the argmax of the penalised logits (lowest id on ties), no draw.
// One Sampler per generation owns its scratch buffers (vocabulary-sized, reused), its penalty
// window and its PRNG (xoshiro128**, seeded through splitmix32), so a seed gives the same tokens
// on every run and in every process; nothing here reads the clock or Math.random. The passes
// over the whole vocabulary that every token pays (argmax, top-k) are native vector passes
// (native/src/kernels/select.cc): the executors wait for them between two steps.
// Cost per call: greedy and top-k up to n/16 (llama.cpp's 40) take one pass over the logits,
// which also checks them; no copy unless a penalty applies. Larger top-k by quickselect of the
// k-th largest value, top-p by a mass histogram over the logit range that leaves one bucket to
// sort (never a sort of 150k).
import { argmaxF32, topKF32 } from '../native/kernels.js';

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** Keep the k most likely; 0 = off. */
  topK: number;
  /** Keep the smallest most-likely set whose probability reaches p; 1 = off. */
  topP: number;
  /** Drop tokens less likely than minP times the most likely; 0 = off. */
  minP: number;
  /** 1 = off. */
  repeatPenalty: number;
  /** How many of the last accepted tokens the penalties look at; 0 = off. */
  repeatLastN: number;
  frequencyPenalty: number;
  presencePenalty: number;
  /** [token, bias] pairs added to the logits before everything else; -Infinity bans a token. */
  logitBias: readonly (readonly [number, number])[];
  seed: number;
}

/** llama.cpp's defaults (common/common.h `common_params_sampling`), seed aside. */
export const LLAMA_CPP_SAMPLING_DEFAULTS: Readonly<Omit<SamplingParams, 'seed'>> = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  repeatLastN: 64,
  frequencyPenalty: 0,
  presencePenalty: 0,
  logitBias: [],
};

/** Fills in llama.cpp's defaults and rejects values llama.cpp would misuse; RangeError names the fix. */
export function resolveSamplingParams(given: Partial<SamplingParams> & { seed: number }): SamplingParams {
  const p: SamplingParams = { ...LLAMA_CPP_SAMPLING_DEFAULTS, ...given };
  const finite = (name: string, v: number): void => {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new RangeError(`${name} must be a finite number, got ${v}`);
  };
  finite('temperature', p.temperature);
  if (p.temperature < 0) {
    throw new RangeError(`temperature must be at least 0 (0 = greedy), got ${p.temperature}`);
  }
  if (!Number.isSafeInteger(p.topK) || p.topK < 0) {
    throw new RangeError(`top-k must be a whole number of at least 0 (0 = off), got ${p.topK}`);
  }
  finite('top-p', p.topP);
  if (!(p.topP > 0 && p.topP <= 1)) throw new RangeError(`top-p must be in (0, 1] (1 = off), got ${p.topP}`);
  finite('min-p', p.minP);
  if (!(p.minP >= 0 && p.minP <= 1)) throw new RangeError(`min-p must be in [0, 1] (0 = off), got ${p.minP}`);
  finite('repeat penalty', p.repeatPenalty);
  if (!(p.repeatPenalty > 0)) {
    throw new RangeError(`repeat penalty must be greater than 0 (1 = off), got ${p.repeatPenalty}`);
  }
  if (!Number.isSafeInteger(p.repeatLastN) || p.repeatLastN < 0) {
    throw new RangeError(
      `repeat-last-n must be a whole number of at least 0 (0 = off; give the context size for the whole history), got ${p.repeatLastN}`,
    );
  }
  finite('frequency penalty', p.frequencyPenalty);
  finite('presence penalty', p.presencePenalty);
  for (const [token, bias] of p.logitBias) {
    if (!Number.isSafeInteger(token) || token < 0)
      throw new RangeError(`a logit bias names token ${token}: token ids are whole numbers from 0`);
    if (typeof bias !== 'number' || Number.isNaN(bias) || bias === Infinity)
      throw new RangeError(`token ${token}'s logit bias must be a number or -Infinity (a ban), got ${bias}`);
  }
  if (!Number.isSafeInteger(p.seed) || p.seed < 0) {
    throw new RangeError(`seed must be a whole number from 0 to 2^53-1, got ${p.seed}`);
  }
  return p;
}

/** xoshiro128** (Blackman and Vigna), state from splitmix32 of the seed's two 32-bit halves. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x1_0000_0000) >>> 0, 0x85ebca6b);
    const splitmix = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1; // the one state xoshiro cannot leave
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Sampler {
  readonly params: SamplingParams;
  readonly vocabSize: number;
  private readonly rng: Rng;
  // Scratch, reused by every call: the penalised logits, the candidate ids (ids[0, m)), their
  // weights, a copy of the values for selection, the top-p histogram; the top candidate logit.
  // Vocabulary-sized (3 MB for Qwen's 152k), so made at the first call: a server's queued
  // sequences hold none.
  private work = new Float32Array(0);
  private ids = new Int32Array(0);
  private weights = new Float64Array(0);
  private vals = new Float32Array(0);
  private readonly hist = new Float64Array(1024);
  private maxLogit = 0;
  // Penalty window: a ring of the last repeatLastN accepted tokens (growing to that size as
  // tokens come, however large the window asked) and their counts.
  private readonly ring: number[] = [];
  private ringHead = 0;
  private readonly counts = new Map<number, number>();

  constructor(vocabSize: number, params: Partial<SamplingParams> & { seed: number }) {
    if (!Number.isSafeInteger(vocabSize) || vocabSize < 1) {
      throw new RangeError(`vocabulary size must be a whole number of at least 1, got ${vocabSize}`);
    }
    this.vocabSize = vocabSize;
    this.params = resolveSamplingParams(params);
    const outside = this.params.logitBias.find(([t]) => t >= vocabSize);
    if (outside)
      throw new RangeError(
        `a logit bias names token ${outside[0]}, outside the vocabulary (ids 0-${vocabSize - 1})`,
      );
    this.rng = new Rng(this.params.seed);
  }

  /** Records a token for the penalties (prompt tokens too, as llama-cli does). */
  accept(token: number): void {
    const n = this.params.repeatLastN;
    if (n === 0) return;
    if (this.ring.length < n) this.ring.push(token);
    else {
      const old = this.ring[this.ringHead]!;
      const c = this.counts.get(old)! - 1;
      if (c === 0) this.counts.delete(old);
      else this.counts.set(old, c);
      this.ring[this.ringHead] = token;
      this.ringHead = (this.ringHead + 1) % n;
    }
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
  }

  /** Picks the next token from one position's logits (not modified). Call accept() with it after. */
  sample(logits: Float32Array, allow?: (token: number) => boolean): number {
    if (!allow) return this.draw(this.prepare(logits));
    // A constraint (JSON mode): the token drawn, unless refused; then the draw again without it,
    // and after a few refusals every token refused at once (one pass over the vocabulary), as
    // llama.cpp applies a grammar.
    const w = this.prepare(logits, true);
    for (let tries = 0; tries < 8; tries++) {
      const t = this.draw(w);
      if (allow(t)) return t;
      w[t] = -Infinity;
    }
    for (let t = 0; t < w.length; t++) if (w[t] !== -Infinity && !allow(t)) w[t] = -Infinity;
    const t = this.draw(w);
    if (!allow(t)) throw new RangeError('no token of the vocabulary continues the constrained text');
    return t;
  }

  private draw(w: Float32Array): number {
    if (this.params.temperature === 0) return argmax(w);
    const m = this.filter(w);
    const ids = this.ids;
    const maxLogit = this.maxLogit;
    const invT = 1 / this.params.temperature;
    const e = this.weights;
    let sum = 0;
    for (let i = 0; i < m; i++) sum += e[i] = Math.exp((w[ids[i]!]! - maxLogit) * invT);
    const u = this.rng.nextFloat() * sum;
    let cum = 0;
    for (let i = 0; i < m; i++) {
      cum += e[i]!;
      if (u < cum) return ids[i]!;
    }
    return ids[m - 1]!; // u at the very top of the range, after rounding
  }

  /**
   * What sample() draws from for these logits: token → probability, ascending ids (temperature 0:
   * the argmax, certain). Allocates: for tests and tools, not the generation loop.
   */
  distribution(logits: Float32Array): Map<number, number> {
    const w = this.prepare(logits);
    if (this.params.temperature === 0) return new Map([[argmax(w), 1]]);
    const m = this.filter(w);
    const ids = Array.from(this.ids.subarray(0, m)).sort((a, b) => a - b);
    const invT = 1 / this.params.temperature;
    const weights = ids.map((id) => Math.exp((w[id]! - this.maxLogit) * invT));
    const sum = weights.reduce((a, b) => a + b, 0);
    return new Map(ids.map((id, i) => [id, weights[i]! / sum]));
  }

  /** The tokens sample() could return for these logits, ascending. Allocates, as distribution(). */
  support(logits: Float32Array): number[] {
    const w = this.prepare(logits);
    if (this.params.temperature === 0) return [argmax(w)];
    const m = this.filter(w);
    return Array.from(this.ids.subarray(0, m)).sort((a, b) => a - b);
  }

  // The logits to sample from: `logits` itself when no penalty applies (read, never written),
  // else a penalised copy in `work`. Not yet checked for NaN and +Infinity: the first pass over
  // them (argmax, top-k, the candidate list) does that, so a token costs one pass fewer.
  private prepare(logits: Float32Array, copy = false): Float32Array {
    const n = this.vocabSize;
    if (logits.length !== n) {
      throw new RangeError(`logits have ${logits.length} entries but the vocabulary has ${n}`);
    }
    if (this.ids.length !== n) {
      this.work = new Float32Array(n);
      this.ids = new Int32Array(n);
      this.vals = new Float32Array(n);
      this.weights = new Float64Array(n);
    }
    const biased = this.params.logitBias.length > 0;
    if (!biased && !copy && !this.penalised()) return logits;
    const w = this.work;
    w.set(logits);
    for (const [token, bias] of this.params.logitBias) w[token] = w[token]! + bias;
    if (this.penalised()) this.applyPenalties(w);
    return w;
  }

  private penalised(): boolean {
    const p = this.params;
    return (
      this.counts.size > 0 && !(p.repeatPenalty === 1 && p.frequencyPenalty === 0 && p.presencePenalty === 0)
    );
  }

  // top-k, top-p, min-p: leaves the candidates in ids[0, m), returns m, sets maxLogit.
  private filter(w: Float32Array): number {
    const p = this.params;
    const n = this.vocabSize;
    const ids = this.ids;
    let m = n;
    if (p.topK > 0 && p.topK < m) {
      keepTopK(ids, w, this.vals, p.topK);
      m = p.topK;
    } else {
      for (let i = 0; i < n; i++) {
        if (!(w[i]! < Infinity)) throw invalidLogit(i, w[i]!);
        ids[i] = i;
      }
    }
    let maxLogit = -Infinity;
    for (let i = 0; i < m; i++) {
      const l = w[ids[i]!]!;
      if (l > maxLogit) maxLogit = l;
    }
    if (maxLogit === -Infinity) {
      throw new RangeError('every logit is -Infinity: no token can be sampled');
    }
    this.maxLogit = maxLogit;
    // top-p's normaliser is over the candidates top-k left, before min-p. The masses are kept
    // beside the ids (weights[i] for ids[i]) so that top-p needs no second exp pass.
    const e = this.weights;
    let z = 0;
    if (p.topP < 1) for (let i = 0; i < m; i++) z += e[i] = Math.exp(w[ids[i]!]! - maxLogit);
    // min-p before top-p gives llama.cpp's top-p-then-min-p set: both keep a prefix of the
    // candidates by logit (min-p's threshold is relative to the top logit, which top-p keeps),
    // so the result is the shorter prefix either way, and min-p first leaves less to sort.
    if (p.minP > 0) {
      const threshold = maxLogit + Math.log(p.minP);
      let kept = 0;
      for (let i = 0; i < m; i++) {
        const id = ids[i]!;
        if (w[id]! >= threshold) {
          e[kept] = e[i]!;
          ids[kept++] = id;
        }
      }
      m = kept;
    }
    if (p.topP < 1) m = nucleus(ids, e, w, this.hist, m, maxLogit, p.topP * z);
    return m;
  }

  private applyPenalties(w: Float32Array): void {
    const p = this.params;
    for (const [token, count] of this.counts) {
      if (token < 0 || token >= w.length) continue;
      let l = w[token]!;
      l = l <= 0 ? l * p.repeatPenalty : l / p.repeatPenalty;
      w[token] = l - count * p.frequencyPenalty - p.presencePenalty;
    }
  }
}

function invalidLogit(i: number, l: number): RangeError {
  return new RangeError(`logit ${i} is ${l}: the model produced an invalid score`);
}

/**
 * Index of the largest logit, the lowest index among equals. The logits must be finite or
 * -Infinity: NaN and +Infinity throw (one pass: the check and the search).
 */
export function argmax(x: Float32Array): number {
  const r = argmaxF32(x);
  if (r < 0) throw invalidLogit(-1 - r, x[-1 - r]!);
  return r;
}

/** A chosen token's log-probability and the most likely tokens' at its position. */
export interface TokenLogprob {
  token: number;
  logprob: number;
  /** The `top` most likely tokens, most likely first (lower id among equals). */
  top: { token: number; logprob: number }[];
}

/**
 * log softmax of the model's own logits (before penalties and temperature, as OpenAI's logprobs)
 * at `token` and at the `top` most likely tokens. Two passes over the logits and an insertion
 * list of `top`: for the tokens a client asked logprobs of, not every token of every run.
 */
export function logprobsOf(logits: Float32Array, token: number, top: number): TokenLogprob {
  const best: number[] = [];
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (!(v < Infinity)) throw invalidLogit(i, v);
    if (v > max) max = v;
    if (top > 0 && (best.length < top || v > logits[best[best.length - 1]!]!)) {
      let j = Math.min(best.length, top - 1);
      best[j] = i;
      while (j > 0 && v > logits[best[j - 1]!]!) {
        best[j] = best[j - 1]!;
        best[--j] = i;
      }
    }
  }
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const z = max + Math.log(sum);
  return {
    token,
    logprob: logits[token]! - z,
    top: best.map((t) => ({ token: t, logprob: logits[t]! - z })),
  };
}

// "a before b": larger logit first, lower id among equals (a total order, so runs are repeatable).
function before(w: Float32Array, a: number, b: number): boolean {
  const wa = w[a]!;
  const wb = w[b]!;
  return wa > wb || (wa === wb && a < b);
}

/**
 * Writes the ids of the k best logits of the whole vocabulary to ids[0, k), ascending: finds the
 * k-th largest value, then keeps what is above it and, of the tokens equal to it, the lowest ids.
 */
function keepTopK(ids: Int32Array, w: Float32Array, scratch: Float32Array, k: number): void {
  const n = w.length;
  // Small k (llama.cpp's default is 40): natively, a heap of the best k seen (by value, then lower
  // id) in one vector pass that almost every block leaves with one compare, the logits checked on
  // the way. Large k: quickselect over a copy of the values.
  if (k <= n >>> 4) {
    const bad = topKF32(w, k, ids);
    if (bad >= 0) throw invalidLogit(bad, w[bad]!);
    return;
  }
  for (let i = 0; i < n; i++) if (!(w[i]! < Infinity)) throw invalidLogit(i, w[i]!);
  const t = kthLargest(scratch, w, k);
  let ties = k;
  for (let i = 0; i < n; i++) if (w[i]! > t) ties--;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const l = w[i]!;
    if (l < t) continue;
    if (l > t) ids[kept++] = i;
    else if (ties > 0) {
      ties--;
      ids[kept++] = i;
    }
  }
}

/** The k-th largest of w (k ≥ 1), by Hoare quickselect (median of three) on v, a copy of w. */
function kthLargest(v: Float32Array, w: Float32Array, k: number): number {
  v.set(w);
  let lo = 0;
  let hi = w.length - 1;
  const target = k - 1; // position in descending order
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const a = v[lo]!;
    const b = v[mid]!;
    const c = v[hi]!;
    const pivot = a > b ? (b > c ? b : a > c ? c : a) : a > c ? a : b > c ? c : b;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (v[i]! > pivot) i++;
      while (v[j]! < pivot) j--;
      if (i <= j) {
        const x = v[i]!;
        v[i++] = v[j]!;
        v[j--] = x;
      }
    }
    // Now v[lo, j] ≥ pivot ≥ v[i, hi], and anything strictly between equals the pivot.
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return pivot;
  }
  return v[target]!;
}

/**
 * How many candidates top-p keeps, moving them to ids[0, count): the shortest prefix in logit
 * order whose mass (mass[i] = exp(w[ids[i]] − maxLogit), unnormalised) reaches `target`. A mass
 * histogram over the logit range finds the bucket where the prefix ends; only that bucket's tokens
 * are sorted.
 */
function nucleus(
  ids: Int32Array,
  mass: Float64Array,
  w: Float32Array,
  hist: Float64Array,
  m: number,
  maxLogit: number,
  target: number,
): number {
  const buckets = hist.length;
  let minLogit = maxLogit;
  for (let i = 0; i < m; i++) {
    const l = w[ids[i]!]!;
    if (l < minLogit && l !== -Infinity) minLogit = l;
  }
  const scale = maxLogit > minLogit ? buckets / (maxLogit - minLogit) : 0;
  // -Infinity (no mass) lands past the last bucket and is never kept by the walk.
  const bucketOf = (l: number): number =>
    l === -Infinity ? buckets : Math.min(buckets - 1, Math.floor((maxLogit - l) * scale));
  hist.fill(0);
  for (let i = 0; i < m; i++) {
    const b = bucketOf(w[ids[i]!]!);
    if (b < buckets) hist[b]! += mass[i]!;
  }
  let edge = 0;
  let cum = 0;
  for (; edge < buckets; edge++) {
    const next = cum + hist[edge]!;
    if (next >= target) break;
    cum = next;
  }
  if (edge === buckets) return m; // rounding left the sum a hair short: keep them all
  // Buckets above the edge to the front (order free), then the edge bucket, sorted.
  let front = 0;
  for (let i = 0; i < m; i++) {
    const id = ids[i]!;
    if (bucketOf(w[id]!) < edge) {
      ids[i] = ids[front]!;
      ids[front++] = id;
    }
  }
  let end = front;
  for (let i = front; i < m; i++) {
    const id = ids[i]!;
    if (bucketOf(w[id]!) === edge) {
      ids[i] = ids[end]!;
      ids[end++] = id;
    }
  }
  ids.subarray(front, end).sort((a, b) => (before(w, a, b) ? -1 : 1));
  for (let i = front; i < end; i++) {
    cum += Math.exp(w[ids[i]!]! - maxLogit);
    if (cum >= target) return i + 1;
  }
  return end;
}
