// writeSyntheticModel(path, opts): a GGUF model with random weights and a real vocabulary, for
// tests and the demo. llama.cpp loads it as it would a converted one (same keys, same types).
// Scales keep activations O(1) through the layers (norm weights ~1, matrices ~N(0, 1/n_in)·gain)
// and make the logits peaked (output gain), so greedy decoding is not decided by rounding noise
// and redblue's tokens can be compared with llama.cpp's.
import { gaussianFillF32, quantize, type WeightType } from '../native/kernels.js';
import type { Arch } from './arch.js';
import { gv, type GgufValue } from './gguf/value.js';
import { ggmlType, rowBytes, type GgmlTypeName } from './gguf/types.js';
import { writeGguf, writeGgufAsync, type GgufTensorInput, type GgufWriteInput } from './gguf/write.js';
import { loadVocab, vocabMetadata, type VocabKind } from './vocab.js';

/** The weight matrices whose type can be chosen (norms and biases are always f32). */
export type WeightRole =
  | 'token_embd'
  | 'output'
  | 'attn_q'
  | 'attn_k'
  | 'attn_v'
  | 'attn_output'
  | 'ffn_gate'
  | 'ffn_up'
  | 'ffn_down';

export type WeightTypes = Partial<Record<WeightRole, GgmlTypeName>> & { default: GgmlTypeName };

/**
 * What llama.cpp's quantizer writes instead of a 256-element type where a row does not hold whole
 * super-blocks (llama_tensor_get_type's "incompatible tensor" fallback): Qwen2.5-0.5B's rows of
 * 896 and SmolLM2's of 576 and 960 come out q5_0, q5_1 and q8_0 in Q4_K_M / Q5_K_M files, and
 * iq4_nl in Q2_K, Q3_K_M and IQ4_XS files.
 */
export const K_FALLBACK: Partial<Record<GgmlTypeName, GgmlTypeName>> = {
  q2_k: 'iq4_nl',
  q3_k: 'iq4_nl',
  q4_k: 'q5_0',
  q5_k: 'q5_1',
  q6_k: 'q8_0',
  iq4_xs: 'iq4_nl',
};

/** Like llama.cpp's Q4_K_M: q4_k for most matrices, q6_k where the error matters most. */
export const Q4_K_M_MIX: WeightTypes = { default: 'q4_k', attn_v: 'q6_k', ffn_down: 'q6_k', output: 'q6_k' };
/** Like llama.cpp's Q3_K_M: q3_k for most matrices, more bits where the error matters most. */
export const Q3_K_M_MIX: WeightTypes = {
  default: 'q3_k',
  attn_v: 'q5_k',
  attn_output: 'q4_k',
  ffn_down: 'q4_k',
  output: 'q6_k',
};

/**
 * Like llama.cpp's Q2_K: q2_k for most matrices, q3_k for attn_output and ffn_down, q4_k for attn_v
 * (what llama.cpp gives grouped-query models, 4 or more heads per KV head; q3_k otherwise), q6_k
 * for the output.
 */
export const Q2_K_MIX: WeightTypes = {
  default: 'q2_k',
  attn_v: 'q4_k',
  attn_output: 'q3_k',
  ffn_down: 'q3_k',
  output: 'q6_k',
};
/**
 * Like llama.cpp's IQ4_XS without an importance matrix: iq4_xs for most matrices, q5_k for attn_v
 * (grouped-query models) and q6_k for the output. llama.cpp also gives the first eighth of the
 * layers' ffn_down q5_k; roles here are per tensor kind, not per layer, so that is left out.
 */
export const IQ4_XS_MIX: WeightTypes = { default: 'iq4_xs', attn_v: 'q5_k', output: 'q6_k' };

export interface SynthOptions {
  arch: Arch;
  /** Default: llama2 for llama, qwen2 for qwen2 and qwen3. */
  vocab?: VocabKind;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  /** Default nEmbd / nHead. */
  headDim?: number;
  nFf: number;
  nCtx: number;
  types: WeightTypes;
  seed?: number;
  /** No output.weight: the output projection is token_embd. */
  tied?: boolean;
  /** Writes a Llama 3 style rope_freqs.weight (llama only). */
  ropeFreqs?: boolean;
  ropeFreqBase?: number;
  rmsEps?: number;
  /**
   * Multiplies the output projection; default 8: logits' std ≈ 8, so the top logit usually leads
   * the second by > 0.5 (measured with gain 6 in llama.cpp: 10 of 12 greedy steps).
   */
  outputGain?: number;
  /**
   * Multiplies attn_output and ffn_down, the matrices that write into the residual stream;
   * default 2, so each layer moves the hidden state as much as the token embedding does and the
   * tokens depend on attention and the FFN, not on the last input token alone.
   */
  layerGain?: number;
  name?: string;
  /**
   * Keeps each tensor's random values (before encoding) by name, seed and shape, so that models
   * differing only in weight types share the cost of drawing them (tests write many such files).
   */
  cache?: Map<string, Float32Array>;
  /** Called after each tensor is encoded, with the bytes of tensor data done and in all. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** A small model for fast tests: two layers, every matrix a whole number of 256-blocks. */
export const TINY: Omit<SynthOptions, 'arch' | 'types'> = {
  nLayer: 2,
  nEmbd: 256,
  nHead: 4,
  nHeadKv: 2,
  nFf: 512,
  nCtx: 512,
};

/**
 * Deterministic normal numbers (xorshift32 + Box-Muller), seeded per tensor, drawn natively
 * (gaussian.cc), ~25% faster than the JS loop, whose draws were a third of writing a model with a
 * 128k-token vocabulary. The same numbers in the same order (test/kernels/gaussian.test.ts keeps
 * the JS loop and compares).
 */
class Gaussian {
  /** [xorshift32 state, 1 when Box-Muller's second value waits, that value] */
  private readonly state: Float64Array;
  constructor(seed: number) {
    this.state = new Float64Array([seed >>> 0 || 0x9e3779b9, 0, 0]);
  }
  /** x[i] = mean + std · N(0, 1), continuing the sequence where the last fill stopped. */
  fill(x: Float32Array, mean: number, std: number): void {
    gaussianFillF32(x, mean, std, this.state);
  }
}

function hash(seed: number, name: string): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** llama_ftype of the dominant weight type (general.file_type; llama.cpp only displays it). */
const FILE_TYPE: Record<GgmlTypeName, number> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q5_0: 8,
  q5_1: 9,
  q2_k: 10,
  q3_k: 12,
  q8_0: 7,
  q4_k: 15,
  q5_k: 17,
  q6_k: 18,
  iq4_nl: 25,
  iq4_xs: 30,
  q8_k: 7,
  bf16: 32,
};

const ROWS_PER_CHUNK = 256;

/** A tensor whose rows are mean + std·N(0, 1), encoded as `type` a chunk of rows at a time. */
function randomTensor(
  name: string,
  ne: number[],
  type: GgmlTypeName,
  seed: number,
  std: number,
  mean = 0,
  cache?: Map<string, Float32Array>,
): GgufTensorInput {
  const k = ne[0]!;
  const rows = ne.slice(1).reduce((a, b) => a * b, 1);
  return {
    name,
    ne,
    type,
    data: () => {
      // Drawn in row order either way, so a cached tensor has the same values as an uncached one.
      const key = `${seed}:${name}:${ne.join('x')}:${std}:${mean}`;
      const g = new Gaussian(hash(seed, name));
      const draw = (n: number): Float32Array => {
        const x = new Float32Array(n);
        g.fill(x, mean, std);
        return x;
      };
      let all = cache?.get(key);
      if (cache && !all) {
        all = draw(k * rows);
        cache.set(key, all);
      }
      const rb = rowBytes(ggmlType(type), k);
      const out = new Uint8Array(rb * rows);
      for (let r0 = 0; r0 < rows; r0 += ROWS_PER_CHUNK) {
        const n = Math.min(ROWS_PER_CHUNK, rows - r0);
        const x = all ? all.subarray(r0 * k, (r0 + n) * k) : draw(n * k);
        const bytes =
          type === 'f32'
            ? new Uint8Array(x.buffer, x.byteOffset, x.byteLength)
            : quantize(type as WeightType, x, n, k);
        out.set(bytes, r0 * rb);
      }
      return out;
    },
  };
}

function f32Tensor(name: string, values: number[]): GgufTensorInput {
  return { name, ne: [values.length], type: 'f32', data: new Uint8Array(new Float32Array(values).buffer) };
}

/** The file's metadata and tensors, before writing (tests inspect them). */
export function syntheticModel(opts: SynthOptions): {
  metadata: [string, GgufValue][];
  tensors: GgufTensorInput[];
} {
  const { arch, nLayer, nEmbd, nHead, nHeadKv, nFf, nCtx } = opts;
  const headDim = opts.headDim ?? nEmbd / nHead;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new RangeError(
      `head_dim ${headDim} must be an even integer (give headDim when nEmbd/nHead is not)`,
    );
  }
  if (nHead % nHeadKv !== 0) throw new RangeError(`nHeadKv ${nHeadKv} must divide nHead ${nHead}`);
  if (opts.ropeFreqs && arch !== 'llama')
    throw new RangeError('rope_freqs.weight is a llama (Llama 3) tensor');
  const vocab = loadVocab(opts.vocab ?? (arch === 'llama' ? 'llama2' : 'qwen2'));
  const nVocab = vocab.tokens.length;
  const seed = opts.seed ?? 1;
  /** The role's type for rows of nIn, with llama.cpp's fallback where a K type does not fit. */
  const type = (role: WeightRole, nIn: number): GgmlTypeName => {
    const t = opts.types[role] ?? opts.types.default;
    return nIn % ggmlType(t).blockElements !== 0 ? (K_FALLBACK[t] ?? t) : t;
  };
  const qDim = nHead * headDim;
  const kvDim = nHeadKv * headDim;
  const outputGain = opts.outputGain ?? 8;

  const tensors: GgufTensorInput[] = [];
  const layerGain = opts.layerGain ?? 2;
  const matrix = (name: string, role: WeightRole, nIn: number, nOut: number, g = 1): void => {
    tensors.push(randomTensor(name, [nIn, nOut], type(role, nIn), seed, g / Math.sqrt(nIn), 0, opts.cache));
  };
  const norm = (name: string, n: number): void => {
    tensors.push(randomTensor(name, [n], 'f32', seed, 0.1, 1, opts.cache));
  };
  const bias = (name: string, n: number): void => {
    tensors.push(randomTensor(name, [n], 'f32', seed, 0.1, 0, opts.cache));
  };
  // Tied: token_embd is also the output projection, and llama.cpp's quantizer gives it the
  // output's type (Q4_K_M: q6_k, or q8_0 where rows are not whole super-blocks).
  const embdType = type(opts.tied && opts.types.token_embd === undefined ? 'output' : 'token_embd', nEmbd);
  // Embedding rows ~N(0, 1): the first RMSNorm sees O(1) values whatever n_embd is.
  tensors.push(randomTensor('token_embd.weight', [nEmbd, nVocab], embdType, seed, 1, 0, opts.cache));
  if (opts.ropeFreqs) {
    // Llama 3's shape: 1 for high frequencies, rising to 8 for the lowest.
    const half = headDim / 2;
    tensors.push(
      f32Tensor(
        'rope_freqs.weight',
        Array.from({ length: half }, (_, i) => 1 + (7 * i) / (half - 1)),
      ),
    );
  }
  for (let i = 0; i < nLayer; i++) {
    const b = `blk.${i}.`;
    norm(`${b}attn_norm.weight`, nEmbd);
    matrix(`${b}attn_q.weight`, 'attn_q', nEmbd, qDim);
    matrix(`${b}attn_k.weight`, 'attn_k', nEmbd, kvDim);
    matrix(`${b}attn_v.weight`, 'attn_v', nEmbd, kvDim);
    if (arch === 'qwen2') {
      bias(`${b}attn_q.bias`, qDim);
      bias(`${b}attn_k.bias`, kvDim);
      bias(`${b}attn_v.bias`, kvDim);
    }
    if (arch === 'qwen3') {
      norm(`${b}attn_q_norm.weight`, headDim);
      norm(`${b}attn_k_norm.weight`, headDim);
    }
    matrix(`${b}attn_output.weight`, 'attn_output', qDim, nEmbd, layerGain);
    norm(`${b}ffn_norm.weight`, nEmbd);
    matrix(`${b}ffn_gate.weight`, 'ffn_gate', nEmbd, nFf);
    matrix(`${b}ffn_up.weight`, 'ffn_up', nEmbd, nFf);
    matrix(`${b}ffn_down.weight`, 'ffn_down', nFf, nEmbd, layerGain);
  }
  norm('output_norm.weight', nEmbd);
  if (!opts.tied) matrix('output.weight', 'output', nEmbd, nVocab, outputGain);

  const counts = new Map<GgmlTypeName, number>();
  for (const t of tensors) if (t.ne.length > 1) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
  const dominant = [...counts].sort((x, y) => y[1] - x[1])[0]?.[0] ?? 'f32';
  const k = (key: string): string => `${arch}.${key}`;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gv.string(arch)],
    ['general.name', gv.string(opts.name ?? `redblue synthetic ${arch} ${nLayer}x${nEmbd}`)],
    ['general.file_type', gv.u32(FILE_TYPE[dominant])],
    ['general.quantization_version', gv.u32(2)],
    [k('vocab_size'), gv.u32(nVocab)],
    [k('context_length'), gv.u32(nCtx)],
    [k('embedding_length'), gv.u32(nEmbd)],
    [k('block_count'), gv.u32(nLayer)],
    [k('feed_forward_length'), gv.u32(nFf)],
    [k('attention.head_count'), gv.u32(nHead)],
    [k('attention.head_count_kv'), gv.u32(nHeadKv)],
    [k('attention.key_length'), gv.u32(headDim)],
    [k('attention.value_length'), gv.u32(headDim)],
    [k('rope.dimension_count'), gv.u32(headDim)],
    [k('rope.freq_base'), gv.f32(opts.ropeFreqBase ?? (arch === 'llama' ? 10000 : 1000000))],
    [k('attention.layer_norm_rms_epsilon'), gv.f32(opts.rmsEps ?? 1e-5)],
    ...vocabMetadata(vocab),
  ];
  return { metadata, tensors };
}

/** The model's metadata and tensors, each tensor reporting to opts.onProgress once encoded. */
function prepared(opts: SynthOptions): GgufWriteInput {
  const { metadata, tensors } = syntheticModel(opts);
  const report = opts.onProgress;
  if (!report) return { metadata: new Map(metadata), tensors };
  const sizeOf = (t: GgufTensorInput) =>
    rowBytes(ggmlType(t.type), t.ne[0]!) * t.ne.slice(1).reduce((a, b) => a * b, 1);
  const total = tensors.reduce((s, t) => s + sizeOf(t), 0);
  let done = 0;
  const counted = tensors.map((t): GgufTensorInput => {
    const data = t.data;
    return {
      ...t,
      data: () => {
        const d = typeof data === 'function' ? data() : data;
        report((done += sizeOf(t)), total);
        return d;
      },
    };
  });
  return { metadata: new Map(metadata), tensors: counted };
}

/** Writes the model; returns the file size in bytes. */
export function writeSyntheticModel(path: string, opts: SynthOptions): number {
  return writeGguf(path, prepared(opts));
}

/** As writeSyntheticModel, stoppable through `signal` between tensors (nothing is left written). */
export function writeSyntheticModelAsync(
  path: string,
  opts: SynthOptions,
  signal?: AbortSignal,
): Promise<number> {
  return writeGgufAsync(path, prepared(opts), signal);
}
