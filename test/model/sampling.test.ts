// The sampler against llama.cpp's semantics, checked by a literal re-statement of its chain
// (full sort, softmax, cumulative sums) and by drawing many times with fixed seeds: every draw
// here is deterministic, so the statistical checks cannot flake.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  argmax,
  logprobsOf,
  resolveSamplingParams,
  Rng,
  Sampler,
  type SamplingParams,
} from '../../model/sampling.js';

const OFF = { topK: 0, topP: 1, minP: 0, repeatPenalty: 1 } as const;

function randomLogits(n: number, seed: number, scale = 3): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rng.nextFloat() * 2 - 1) * scale;
  return x;
}

// llama.cpp's top-k → top-p → min-p, written the slow and obvious way.
function referenceSupport(logits: Float32Array, p: Pick<SamplingParams, 'topK' | 'topP' | 'minP'>): number[] {
  let ids = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (p.topK > 0) ids = ids.slice(0, p.topK);
  const probs = (list: number[]): number[] => {
    const max = logits[list[0]!]!;
    const e = list.map((id) => Math.exp(logits[id]! - max));
    const z = e.reduce((s, v) => s + v, 0);
    return e.map((v) => v / z);
  };
  if (p.topP < 1) {
    const pr = probs(ids);
    let cum = 0;
    let keep = ids.length;
    for (let i = 0; i < pr.length; i++) {
      cum += pr[i]!;
      if (cum >= p.topP) {
        keep = i + 1;
        break;
      }
    }
    ids = ids.slice(0, keep);
  }
  if (p.minP > 0) {
    const pr = probs(ids);
    ids = ids.filter((_, i) => pr[i]! >= p.minP * pr[0]!);
  }
  return ids.sort((a, b) => a - b);
}

function draw(sampler: Sampler, logits: Float32Array, times: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < times; i++) {
    const t = sampler.sample(logits);
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  return counts;
}

describe('Rng (xoshiro128** seeded by splitmix32)', () => {
  it('gives the same stream in every process: the first outputs are pinned', () => {
    // Computed independently (Python, the reference C algorithm on 32-bit words).
    const golden: [number, number[]][] = [
      [0, [3809008728, 1133695204, 53579671, 2891528803]],
      [42, [2837322924, 544945897, 479756282, 3500138142]],
      [2 ** 40 + 7, [3221471587, 49821721, 1718060151, 164894849]],
    ];
    for (const [seed, want] of golden) {
      const r = new Rng(seed);
      expect(want.map(() => r.nextU32())).toEqual(want);
    }
  });

  it('nextFloat stays in [0, 1) with a mean near 1/2', () => {
    const r = new Rng(7);
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const u = r.nextFloat();
      if (!(u >= 0 && u < 1)) outside++;
      sum += u;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / 100_000 - 0.5)).toBeLessThan(0.005);
  });
});

describe('Sampler', () => {
  it('temperature 0 is the argmax, lowest id among ties, whatever the other filters', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 1e9 }), (n, seed) => {
        const logits = randomLogits(n, seed);
        const s = new Sampler(n, { temperature: 0, seed, topK: 3, topP: 0.5, minP: 0.2 });
        expect(s.sample(logits)).toBe(argmax(logits));
      }),
    );
    const ties = Float32Array.from([0, 2, 1, 2, 2]);
    expect(new Sampler(5, { temperature: 0, seed: 1 }).sample(ties)).toBe(1);
  });

  it('top-k = 1 is greedy at any temperature', () => {
    for (let seed = 0; seed < 50; seed++) {
      const logits = randomLogits(1000, seed, 0.1); // flat: only top-k keeps it greedy
      const s = new Sampler(1000, { ...OFF, temperature: 5, topK: 1, seed });
      expect(s.sample(logits)).toBe(argmax(logits));
    }
  });

  it('the same seed gives the same tokens, another seed other tokens', () => {
    const n = 2000;
    const run = (seed: number): number[] => {
      const s = new Sampler(n, { temperature: 1.2, seed, repeatPenalty: 1.3 });
      const out: number[] = [];
      for (let step = 0; step < 200; step++) {
        const t = s.sample(randomLogits(n, step));
        s.accept(t);
        out.push(t);
      }
      return out;
    };
    expect(run(1234)).toEqual(run(1234));
    expect(run(1234)).not.toEqual(run(1235));
  });

  it('top-k, top-p and min-p keep exactly the set llama.cpp keeps', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.integer({ min: 0, max: 1e9 }),
        fc.integer({ min: 0, max: 100 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.constantFrom(0, 0, 0.01, 0.05, 0.3, 1),
        fc.constantFrom(0.5, 3, 10, -4),
        (n, seed, topK, topP, minP, scale) => {
          // scale -4: whole numbers in [-4, 4], so many ties (lowest id first, as the reference).
          const logits =
            scale < 0 ? randomLogits(n, seed, 4.5).map(Math.round) : randomLogits(n, seed, scale);
          const s = new Sampler(n, { temperature: 1, seed, topK, topP, minP });
          expect(s.support(logits)).toEqual(referenceSupport(logits, { topK, topP, minP }));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('on a 151936-token vocabulary, top-p alone and top-k alone match the full sort', () => {
    const n = 151_936;
    const logits = randomLogits(n, 99, 12);
    for (const p of [
      { topK: 0, topP: 0.9, minP: 0 },
      { topK: 40, topP: 1, minP: 0 },
      { topK: 0, topP: 0.999, minP: 0 },
    ]) {
      const s = new Sampler(n, { temperature: 1, seed: 5, ...p });
      const got = s.support(logits);
      const want = referenceSupport(logits, p);
      // Compared as one string: toEqual on 40k-element arrays is slow.
      expect(got.length).toBe(want.length);
      expect(got.join()).toBe(want.join());
      const allowed = new Set(want);
      const drawn = draw(s, logits, 30);
      expect([...drawn.keys()].filter((t) => !allowed.has(t))).toEqual([]);
    }
  });

  it('draws only inside the top-p and min-p support, and reach all of a small one', () => {
    const logits = Float32Array.from([4, 3.5, 3, 1, 0, -1, -2, 2.5]);
    for (const p of [
      { topK: 0, topP: 0.8, minP: 0 },
      { topK: 0, topP: 1, minP: 0.3 },
      { topK: 5, topP: 0.95, minP: 0.1 },
    ]) {
      const want = referenceSupport(logits, p);
      expect(want.length).toBeLessThan(8);
      const s = new Sampler(8, { temperature: 1, seed: 3, ...p });
      const drawn = draw(s, logits, 5000);
      expect([...drawn.keys()].sort((a, b) => a - b)).toEqual(want);
    }
  });

  it('draws follow softmax(logits / T): chi-square with a fixed seed', () => {
    const logits = Float32Array.from([1.0, 0.2, -0.5, 2.0, 0.0, -1.5, 1.3, 0.7, -0.2, 0.4]);
    for (const [T, topK] of [
      [1, 0],
      [0.7, 0],
      [1.5, 4],
    ] as const) {
      const s = new Sampler(10, { ...OFF, temperature: T, topK, seed: 2024 });
      const kept = topK > 0 ? referenceSupport(logits, { topK, topP: 1, minP: 0 }) : [...logits.keys()];
      const weights = kept.map((id) => Math.exp(logits[id]! / T));
      const z = weights.reduce((a, b) => a + b, 0);
      const N = 20_000;
      const counts = draw(s, logits, N);
      let chi2 = 0;
      kept.forEach((id, i) => {
        const expected = (N * weights[i]!) / z;
        chi2 += ((counts.get(id) ?? 0) - expected) ** 2 / expected;
      });
      for (const id of counts.keys()) expect(kept).toContain(id);
      // 99.9% points of chi-square: 27.88 for 9 degrees of freedom, 16.27 for 3.
      expect(chi2).toBeLessThan(kept.length === 10 ? 27.88 : 16.27);
    }
  });

  it('repeat penalty divides positive logits and multiplies negative ones, over the last N tokens', () => {
    const greedy = (logits: number[], accepted: number[], p: Partial<SamplingParams>): number => {
      const s = new Sampler(logits.length, { temperature: 0, seed: 0, ...p });
      for (const t of accepted) s.accept(t);
      return s.sample(Float32Array.from(logits));
    };
    // 2 / 2 = 1 < 1.5: the repeated token loses.
    expect(greedy([2, 1.5], [0], { repeatPenalty: 2 })).toBe(1);
    expect(greedy([2, 1.5], [], { repeatPenalty: 2 })).toBe(0);
    // -1 · 2 = -2 < -1.5 (dividing would give -0.5 and make it win).
    expect(greedy([-1, -1.5], [0], { repeatPenalty: 2 })).toBe(1);
    // 0 is "not positive": multiplied, stays 0.
    expect(greedy([0, -0.1], [0], { repeatPenalty: 2 })).toBe(0);
    // Out of the window of the last 2: no penalty.
    expect(greedy([2, 1.5, 0, 0], [0, 2, 3], { repeatPenalty: 2, repeatLastN: 2 })).toBe(0);
    expect(greedy([2, 1.5, 0, 0], [0, 2, 3], { repeatPenalty: 2, repeatLastN: 3 })).toBe(1);
    // repeatLastN 0 turns penalties off.
    expect(greedy([2, 1.5], [0], { repeatPenalty: 2, repeatLastN: 0 })).toBe(0);
    // Frequency: count · 0.3 (3 − 0.3 > 2.5 > 3 − 0.6); presence: once, whatever the count.
    expect(greedy([3, 2.5], [0], { frequencyPenalty: 0.3 })).toBe(0);
    expect(greedy([3, 2.5], [0, 0], { frequencyPenalty: 0.3 })).toBe(1);
    expect(greedy([3, 2.5], [0, 0, 0], { presencePenalty: 0.4 })).toBe(0);
    expect(greedy([3, 2.5], [0], { presencePenalty: 0.6 })).toBe(1);
  });

  it('logit biases come first: added to the logit, -Infinity bans, penalties after', () => {
    const greedy = (logits: number[], p: Partial<SamplingParams>, accepted: number[] = []): number => {
      const s = new Sampler(logits.length, { temperature: 0, seed: 0, ...p });
      for (const t of accepted) s.accept(t);
      return s.sample(Float32Array.from(logits));
    };
    expect(greedy([1, 2, 3], {})).toBe(2);
    expect(greedy([1, 2, 3], { logitBias: [[0, 2.5]] })).toBe(0); // 3.5 > 3
    expect(greedy([1, 2, 3], { logitBias: [[0, 1.5]] })).toBe(2); // 2.5 < 3
    expect(greedy([1, 2, 3], { logitBias: [[2, -Infinity]] })).toBe(1);
    // Bias, then the repeat penalty on the biased logit (llama.cpp's chain): (2 + 4) / 2 = 3 > 2.5.
    expect(greedy([2, 2.5], { logitBias: [[0, 4]], repeatPenalty: 2 }, [0])).toBe(0);
    expect(greedy([2, 2.5], { logitBias: [[0, 2]], repeatPenalty: 2 }, [0])).toBe(1); // 2 < 2.5
    // Sampled at temperature 1: a banned token is never drawn, and the draws follow the biased odds.
    const s = new Sampler(3, {
      ...OFF,
      temperature: 1,
      seed: 4,
      logitBias: [
        [1, -Infinity],
        [2, Math.log(3)],
      ],
    });
    const c = draw(s, Float32Array.from([0, 5, 0]), 20_000);
    expect(c.get(1)).toBeUndefined();
    expect(Math.abs((c.get(2) ?? 0) / 20_000 - 0.75)).toBeLessThan(0.015);
    expect(() => new Sampler(3, { seed: 1, logitBias: [[3, 1]] })).toThrow(
      /logit bias names token 3, outside the vocabulary \(ids 0-2\)/,
    );
    expect(() => new Sampler(3, { seed: 1, logitBias: [[0, NaN]] })).toThrow(/logit bias must be a number/);
    expect(() => new Sampler(3, { seed: 1, logitBias: [[0, Infinity]] })).toThrow(/logit bias/);
    expect(() => new Sampler(3, { seed: 1, logitBias: [[-1, 1]] })).toThrow(/whole numbers from 0/);
  });

  it('the penalty changes the draw distribution by exactly the penalised logit', () => {
    // Token 0 at logit 2 penalised by 2 → logit 1: same odds as an unpenalised logit of 1.
    const s = new Sampler(2, { ...OFF, temperature: 1, repeatPenalty: 2, seed: 11 });
    s.accept(0);
    const N = 20_000;
    const c0 = draw(s, Float32Array.from([2, 1]), N).get(0) ?? 0;
    expect(Math.abs(c0 / N - 0.5)).toBeLessThan(0.015);
  });

  it('logprobsOf: log softmax of the logits at the token, and the most likely tokens in order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat({ max: 8 }), (n, seed, top) => {
        const x = randomLogits(n, seed, 8);
        if (n > 3) x[n - 1] = x[0]!; // a tie: the lower id first
        const token = seed % n;
        const r = logprobsOf(x, token, top);
        // The definition, in doubles: log(exp(x_t) / Σ exp(x_i)).
        const denom = Array.from(x).reduce((a, v) => a + Math.exp(v), 0);
        expect(r.token).toBe(token);
        expect(r.logprob).toBeCloseTo(Math.log(Math.exp(x[token]!) / denom), 9);
        const order = Array.from(x.keys()).sort((a, b) => x[b]! - x[a]! || a - b);
        expect(r.top.map((e) => e.token)).toEqual(order.slice(0, Math.min(top, n)));
        for (const e of r.top) expect(e.logprob).toBeCloseTo(Math.log(Math.exp(x[e.token]!) / denom), 9);
      }),
    );
    expect(() => logprobsOf(new Float32Array([0, NaN]), 0, 1)).toThrow(/logit 1 is NaN/);
  });

  it('does not modify the logits it is given', () => {
    const logits = randomLogits(100, 1);
    const copy = logits.slice();
    const s = new Sampler(100, { temperature: 1, seed: 1, repeatPenalty: 1.5 });
    s.accept(3);
    s.sample(logits);
    expect(logits).toEqual(copy);
  });

  it('rejects bad parameters and inputs, naming the fix', () => {
    const bad: [Partial<SamplingParams>, RegExp][] = [
      [{ temperature: -0.1 }, /temperature must be at least 0/],
      [{ temperature: NaN }, /temperature must be a finite number/],
      [{ topK: -1 }, /top-k must be a whole number of at least 0/],
      [{ topK: 1.5 }, /top-k/],
      [{ topP: 0 }, /top-p must be in \(0, 1\]/],
      [{ topP: 1.01 }, /top-p must be in \(0, 1\]/],
      [{ minP: -0.1 }, /min-p must be in \[0, 1\]/],
      [{ minP: 2 }, /min-p/],
      [{ repeatPenalty: 0 }, /repeat penalty must be greater than 0/],
      [{ repeatLastN: -1 }, /repeat-last-n must be a whole number/],
      [{ seed: -1 }, /seed must be a whole number/],
      [{ seed: 0.5 }, /seed/],
    ];
    for (const [p, msg] of bad) {
      expect(() => resolveSamplingParams({ seed: 1, ...p })).toThrow(msg);
      expect(() => new Sampler(10, { seed: 1, ...p })).toThrow(RangeError);
    }
    expect(() => new Sampler(0, { seed: 1 })).toThrow(/vocabulary size/);
    const s = new Sampler(4, { seed: 1, temperature: 1 });
    expect(() => s.sample(new Float32Array(3))).toThrow(/3 entries but the vocabulary has 4/);
    expect(() => s.sample(Float32Array.from([0, NaN, 0, 0]))).toThrow(/logit 1 is NaN: the model/);
    // Every path checks every logit on its first pass: greedy, top-k by heap (k below n/16), top-k
    // by quickselect, no top-k; with and without a penalty (which samples from a copy).
    const n = 1000;
    for (const p of [
      { temperature: 0 },
      { temperature: 1, topK: 40 },
      { temperature: 1, topK: 600 },
      { temperature: 1, topK: 0 },
      { temperature: 1, topK: 40, repeatPenalty: 1.3 },
    ])
      for (const at of [0, 39, 40, 999])
        for (const bad of [NaN, Infinity]) {
          const sp = new Sampler(n, { seed: 1, ...p });
          sp.accept(7);
          const logits = randomLogits(n, at);
          logits[at] = bad;
          expect(() => sp.sample(logits), `${JSON.stringify(p)} at ${at}`).toThrow(
            new RegExp(`logit ${at} is ${bad}: the model`),
          );
        }
    expect(() => s.sample(new Float32Array(4).fill(-Infinity))).toThrow(/every logit is -Infinity/);
    expect(resolveSamplingParams({ seed: 9 })).toMatchObject({
      temperature: 0.8,
      topK: 40,
      topP: 0.95,
      minP: 0.05,
    });
  });
});
