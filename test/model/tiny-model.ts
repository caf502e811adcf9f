// Tiny transformers for the model-shard tests: random weights written as a GGUF file (the
// shard is given the tensor table read back from it, as `redblue generate` does), the split of
// a model between ranks, and a plain f32 reference forward pass in TypeScript (straightforward
// loops; K and V rounded to f16 as the shard's cache stores them).
import { readGguf } from '../../model/gguf/read.js';
import { gv } from '../../model/gguf/value.js';
import { writeGguf, type GgufTensorInput } from '../../model/gguf/write.js';
import { executorAddon } from '../../native/steps.js';
import { dequantize, quantize, type WeightType } from '../../native/kernels.js';
import type { ModelShardConfig, ModelTensorRef } from '../../native/model.js';

export interface TinySpec extends Pick<
  ModelShardConfig,
  'arch' | 'nLayer' | 'nEmbd' | 'nHead' | 'nHeadKv' | 'headDim' | 'nFf' | 'nVocab' | 'nCtx'
> {
  /** Type of the weight matrices (token_embd and output included unless given). */
  matrixType: WeightType;
  embdType?: WeightType;
  outputType?: WeightType;
  /** Types of some layer matrices by their name in a block, e.g. { 'ffn_down.weight': 'q6_k' }. */
  layerTypes?: Record<string, WeightType>;
  /** Q/K/V and attn_output biases on a llama (as some files carry). */
  biases?: boolean;
  /** Tied embeddings: no output.weight. */
  tied?: boolean;
  ropeScale?: number;
  ropeFreqs?: boolean;
  seed: number;
}

export type ModelBase = Omit<ModelShardConfig, 'split' | 'node'>;

export interface TinyModel {
  spec: TinySpec;
  base: ModelBase;
  /** Every tensor's values as the file holds them (dequantized), by GGUF name. */
  weights: Map<string, Float32Array>;
}

/** Writes the model's tensors to `path` and returns its configuration and values. */
export function writeTinyModel(path: string, spec: TinySpec): TinyModel {
  // Values in [-1, 1) from the counter-based generator, a stream per tensor.
  let stream = 0;
  const uniform = (n: number) => {
    const a = new Float32Array(n);
    executorAddon().fillUniform(a.buffer, 0, n, spec.seed, stream++);
    return a;
  };
  const { nEmbd: E, nHead, nHeadKv, headDim: hd, nFf, nVocab } = spec;
  const inputs: GgufTensorInput[] = [];
  const weights = new Map<string, Float32Array>();
  const add = (name: string, type: WeightType, ne: number[], values: Float32Array) => {
    const rows = ne.length > 1 ? ne[1]! : 1;
    const data = quantize(type, values, rows, ne[0]!);
    inputs.push({ name, ne, type, data });
    weights.set(name, dequantize(type, data, rows, ne[0]!));
  };
  const matrix = (nOut: number, nIn: number, scale = 1) =>
    uniform(nOut * nIn).map((u) => (u * scale) / Math.sqrt(nIn));
  const vector = (n: number, centre: number, spread: number) => uniform(n).map((u) => centre + u * spread);
  const mt = spec.matrixType;
  const lt = (name: string) => spec.layerTypes?.[name] ?? mt;
  add('token_embd.weight', spec.embdType ?? mt, [E, nVocab], uniform(nVocab * E));
  for (let l = 0; l < spec.nLayer; l++) {
    const b = `blk.${l}.`;
    add(b + 'attn_norm.weight', 'f32', [E], vector(E, 1, 0.2));
    add(b + 'attn_q.weight', lt('attn_q.weight'), [E, nHead * hd], matrix(nHead * hd, E, 2));
    add(b + 'attn_k.weight', lt('attn_k.weight'), [E, nHeadKv * hd], matrix(nHeadKv * hd, E, 2));
    add(b + 'attn_v.weight', lt('attn_v.weight'), [E, nHeadKv * hd], matrix(nHeadKv * hd, E));
    if (spec.arch === 'qwen2' || spec.biases) {
      add(b + 'attn_q.bias', 'f32', [nHead * hd], vector(nHead * hd, 0, 0.3));
      add(b + 'attn_k.bias', 'f32', [nHeadKv * hd], vector(nHeadKv * hd, 0, 0.3));
      add(b + 'attn_v.bias', 'f32', [nHeadKv * hd], vector(nHeadKv * hd, 0, 0.3));
    }
    if (spec.arch === 'qwen3') {
      add(b + 'attn_q_norm.weight', 'f32', [hd], vector(hd, 1, 0.3));
      add(b + 'attn_k_norm.weight', 'f32', [hd], vector(hd, 1, 0.3));
    }
    add(b + 'attn_output.weight', lt('attn_output.weight'), [nHead * hd, E], matrix(E, nHead * hd));
    if (spec.biases) add(b + 'attn_output.bias', 'f32', [E], vector(E, 0, 0.3));
    add(b + 'ffn_norm.weight', 'f32', [E], vector(E, 1, 0.2));
    add(b + 'ffn_gate.weight', lt('ffn_gate.weight'), [E, nFf], matrix(nFf, E, 2));
    add(b + 'ffn_up.weight', lt('ffn_up.weight'), [E, nFf], matrix(nFf, E, 2));
    add(b + 'ffn_down.weight', lt('ffn_down.weight'), [nFf, E], matrix(E, nFf));
  }
  add('output_norm.weight', 'f32', [E], vector(E, 1, 0.2));
  if (spec.ropeFreqs) add('rope_freqs.weight', 'f32', [hd / 2], vector(hd / 2, 2, 1));
  if (!spec.tied) add('output.weight', spec.outputType ?? mt, [E, nVocab], matrix(nVocab, E, 4));
  writeGguf(path, {
    metadata: { 'general.architecture': gv.string(spec.arch) },
    tensors: inputs,
  });
  const tensors: ModelTensorRef[] = readGguf(path).tensors.map((t) => ({
    name: t.name,
    type: t.type.id,
    dims: t.ne,
    offset: t.offset,
  }));
  const base: ModelBase = {
    path,
    arch: spec.arch,
    nLayer: spec.nLayer,
    nEmbd: E,
    nHead,
    nHeadKv,
    headDim: hd,
    nFf,
    nVocab,
    nCtx: spec.nCtx,
    normEps: 1e-5,
    ropeBase: 10000,
    ropeScale: spec.ropeScale ?? 1,
    ropeNeox: spec.arch !== 'llama',
    tensors,
  };
  return { spec, base, weights };
}

/** Near-even split of n into `ranks` parts, cut on multiples of `align` (rank order). */
export function evenCuts(n: number, ranks: number, align = 1): number[] {
  const blocks = n / align;
  return Array.from({ length: ranks + 1 }, (_, i) => Math.round((blocks * i) / ranks) * align);
}

export function splitFor(
  base: ModelBase,
  rank: number,
  ranks: number,
  ffAlign = 1,
): ModelShardConfig['split'] {
  const kv = evenCuts(base.nHeadKv, ranks);
  const ff = evenCuts(base.nFf, ranks, ffAlign);
  const vocab = evenCuts(base.nVocab, ranks);
  return {
    rank,
    ranks,
    kvHeads: [kv[rank]!, kv[rank + 1]!],
    ff: [ff[rank]!, ff[rank + 1]!],
    vocab: [vocab[rank]!, vocab[rank + 1]!],
    vocabPerRank: Array.from({ length: ranks }, (_, i) => vocab[i + 1]! - vocab[i]!),
  };
}

/** f32 → nearest f16 (ties to even), back in f32; ±Infinity beyond the f16 range. */
export function roundF16(x: number): number {
  const f = Math.fround(x);
  if (!Number.isFinite(f) || f === 0) return f;
  const a = Math.abs(f);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const quantum = 2 ** (Math.max(e, -14) - 10);
  const q = a / quantum; // exact: a power-of-two scaling
  let n = Math.floor(q);
  const rest = q - n;
  if (rest > 0.5 || (rest === 0.5 && n % 2 === 1)) n++;
  const v = n * quantum;
  return Math.sign(f) * (v > 65504 ? Infinity : v);
}

/** The reference model's state: one sequence's KV cache (f16-rounded values). */
export class ReferenceModel {
  private readonly k: Float32Array[];
  private readonly v: Float32Array[];
  constructor(private readonly m: TinyModel) {
    const { nLayer, nCtx, nHeadKv, headDim } = m.base;
    this.k = Array.from({ length: nLayer }, () => new Float32Array(nCtx * nHeadKv * headDim));
    this.v = Array.from({ length: nLayer }, () => new Float32Array(nCtx * nHeadKv * headDim));
  }

  /** Logits (nVocab per token) of every token of `tokens` at positions pos... */
  forward(tokens: number[], pos: number): Float32Array[] {
    const c = this.m.base;
    const W = (n: string) => this.m.weights.get(n)!;
    const E = c.nEmbd;
    const hd = c.headDim;
    const group = c.nHead / c.nHeadKv;
    const out: Float32Array[] = [];
    const xs = tokens.map((t) => W('token_embd.weight').slice(t * E, (t + 1) * E));
    for (let l = 0; l < c.nLayer; l++) {
      const b = `blk.${l}.`;
      const qs: Float32Array[] = [];
      tokens.forEach((_, t) => {
        const xn = rmsNorm(xs[t]!, W(b + 'attn_norm.weight'), c.normEps);
        const q = matVec(W(b + 'attn_q.weight'), xn, c.nHead * hd);
        const k = matVec(W(b + 'attn_k.weight'), xn, c.nHeadKv * hd);
        const v = matVec(W(b + 'attn_v.weight'), xn, c.nHeadKv * hd);
        if (this.m.weights.has(b + 'attn_q.bias')) {
          addInto(q, W(b + 'attn_q.bias'));
          addInto(k, W(b + 'attn_k.bias'));
          addInto(v, W(b + 'attn_v.bias'));
        }
        for (let h = 0; h < c.nHead; h++) this.headOps(q, h, l, pos + t, 'q');
        for (let h = 0; h < c.nHeadKv; h++) this.headOps(k, h, l, pos + t, 'k');
        const p = pos + t;
        for (let i = 0; i < c.nHeadKv * hd; i++) {
          this.k[l]![p * c.nHeadKv * hd + i] = roundF16(k[i]!);
          this.v[l]![p * c.nHeadKv * hd + i] = roundF16(v[i]!);
        }
        qs.push(q);
      });
      tokens.forEach((_, t) => {
        const q = qs[t]!;
        const att = new Float32Array(c.nHead * hd);
        const len = pos + t + 1;
        for (let h = 0; h < c.nHead; h++) {
          const kv = Math.floor(h / group);
          const scores = new Float64Array(len);
          let mx = -Infinity;
          for (let j = 0; j < len; j++) {
            let d = 0;
            for (let i = 0; i < hd; i++) d += q[h * hd + i]! * this.k[l]![(j * c.nHeadKv + kv) * hd + i]!;
            scores[j] = d / Math.sqrt(hd);
            mx = Math.max(mx, scores[j]!);
          }
          let sum = 0;
          for (let j = 0; j < len; j++) sum += scores[j] = Math.exp(scores[j]! - mx);
          for (let j = 0; j < len; j++)
            for (let i = 0; i < hd; i++)
              att[h * hd + i]! += (scores[j]! / sum) * this.v[l]![(j * c.nHeadKv + kv) * hd + i]!;
        }
        const x = xs[t]!;
        addInto(x, matVec(W(b + 'attn_output.weight'), att, E));
        if (this.m.weights.has(b + 'attn_output.bias')) addInto(x, W(b + 'attn_output.bias'));
        const xn = rmsNorm(x, W(b + 'ffn_norm.weight'), c.normEps);
        const g = matVec(W(b + 'ffn_gate.weight'), xn, c.nFf);
        const u = matVec(W(b + 'ffn_up.weight'), xn, c.nFf);
        for (let i = 0; i < c.nFf; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
        addInto(x, matVec(W(b + 'ffn_down.weight'), g, E));
      });
    }
    const output = this.m.weights.get('output.weight') ?? W('token_embd.weight');
    for (const x of xs) out.push(matVec(output, rmsNorm(x, W('output_norm.weight'), c.normEps), c.nVocab));
    return out;
  }

  // qwen3's per-head RMSNorm, then RoPE, on head h of q or k (in place).
  private headOps(a: Float32Array, h: number, l: number, pos: number, which: 'q' | 'k') {
    const c = this.m.base;
    const hd = c.headDim;
    const head = a.subarray(h * hd, (h + 1) * hd);
    if (c.arch === 'qwen3')
      head.set(rmsNorm(head, this.m.weights.get(`blk.${l}.attn_${which}_norm.weight`)!, c.normEps));
    const freqs = this.m.weights.get('rope_freqs.weight');
    const half = hd / 2;
    for (let i = 0; i < half; i++) {
      let theta = (pos / c.ropeScale) * c.ropeBase ** ((-2 * i) / hd);
      if (freqs) theta /= freqs[i]!;
      const [ia, ib] = c.ropeNeox ? [i, i + half] : [2 * i, 2 * i + 1];
      const x0 = head[ia]!;
      const x1 = head[ib]!;
      head[ia] = x0 * Math.cos(theta) - x1 * Math.sin(theta);
      head[ib] = x0 * Math.sin(theta) + x1 * Math.cos(theta);
    }
  }
}

function rmsNorm(x: Float32Array, w: Float32Array, eps: number): Float32Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const s = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * s * w[i]!);
}

// W is nOut rows of x.length elements.
function matVec(w: Float32Array, x: Float32Array, nOut: number): Float32Array {
  const k = x.length;
  const y = new Float32Array(nOut);
  for (let r = 0; r < nOut; r++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += w[r * k + i]! * x[i]!;
    y[r] = s;
  }
  return y;
}

function addInto(a: Float32Array, b: Float32Array) {
  for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}
