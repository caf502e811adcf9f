// describeModel(gguf): what a GGUF file holds as a transformer redblue can run (llama, qwen2,
// qwen3): hyperparameters from the metadata with llama.cpp's defaults, and every tensor the step
// needs by role, each checked for presence, type and exact shape here, so the native side and
// the split planner can trust them. Figures for `bench model`: parameters, weight bytes read per
// token, bytes per ggml type.
import { shown } from '../common/format.js';
import { GgufError, type GgufFile, type GgufTensor } from './gguf/read.js';
import { rowBytes, type GgmlTypeName } from './gguf/types.js';

export type Arch = 'llama' | 'qwen2' | 'qwen3';
export const SUPPORTED_ARCHS: readonly Arch[] = ['llama', 'qwen2', 'qwen3'];

/** llama.cpp LLAMA_ROPE_TYPE_NORM pairs (2i, 2i+1); NEOX pairs (i, i + d/2). */
export type RopeOrdering = 'normal' | 'neox';

export interface LayerTensors {
  attnNorm: GgufTensor;
  attnQ: GgufTensor;
  attnK: GgufTensor;
  attnV: GgufTensor;
  attnOutput: GgufTensor;
  ffnNorm: GgufTensor;
  ffnGate: GgufTensor;
  ffnUp: GgufTensor;
  ffnDown: GgufTensor;
  /** qwen3: RMSNorm weights over each head's head_dim, before RoPE. */
  attnQNorm?: GgufTensor;
  attnKNorm?: GgufTensor;
  /** qwen2 (required) and llama (when present). */
  attnQBias?: GgufTensor;
  attnKBias?: GgufTensor;
  attnVBias?: GgufTensor;
  /** llama (when present). */
  attnOutputBias?: GgufTensor;
}

export interface TypeTotal {
  tensors: number;
  elements: number;
  bytes: number;
}

export interface ModelInfo {
  path: string;
  arch: Arch;
  name?: string;
  nLayer: number;
  /** Training context length. */
  nCtxTrain: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  /** Per-head dimension of Q and K (key_length). */
  headDim: number;
  /** Per-head dimension of V (value_length). */
  headDimV: number;
  rmsEps: number;
  ropeFreqBase: number;
  ropeDim: number;
  ropeOrdering: RopeOrdering;
  /** Positions are divided by `factor` (linear scaling); 'none' has factor 1. */
  ropeScaling: { type: 'none' | 'linear'; factor: number };
  nVocab: number;
  /** output.weight absent: the output projection is token_embd.weight. */
  tiedEmbeddings: boolean;
  qkvBias: boolean;
  qkNorm: boolean;
  tokenEmbd: GgufTensor;
  outputNorm: GgufTensor;
  /** output.weight, or token_embd.weight when tied. */
  output: GgufTensor;
  /** Llama 3: divides the RoPE frequencies. */
  ropeFreqs?: GgufTensor;
  layers: LayerTensors[];
  /** Elements of every tensor the model uses (token_embd counted once when tied). */
  parameterCount: number;
  /** Bytes of weights read per generated token: every layer, the output, one token_embd row. */
  weightBytesPerToken: number;
  /** Over the tensors the model uses. */
  bytesByType: Partial<Record<GgmlTypeName, TypeTotal>>;
  /**
   * How the file says its embeddings are pooled (`{arch}.pooling_type`, as llama.cpp numbers it:
   * 1 mean, 2 cls, 3 last); undefined when it does not say (a model made for generating text).
   */
  pooling?: Pooling;
}

/** An embedding from a sequence's hidden states: their mean, the first one's, or the last one's. */
export type Pooling = 'mean' | 'cls' | 'last';
const POOLING: Record<number, Pooling> = { 1: 'mean', 2: 'cls', 3: 'last' };

const ROPE_ORDERING: Record<Arch, RopeOrdering> = { llama: 'normal', qwen2: 'neox', qwen3: 'neox' };

export function describeModel(f: GgufFile): ModelInfo {
  const fail = (message: string): never => {
    throw new GgufError(`${f.path}: ${message}`);
  };
  const arch = f.getString('general.architecture');
  if (!(SUPPORTED_ARCHS as readonly string[]).includes(arch)) {
    fail(`architecture '${shown(arch)}' is not supported; redblue runs ${SUPPORTED_ARCHS.join(', ')}`);
  }
  const a = arch as Arch;
  const key = (k: string): string => `${a}.${k}`;
  const expertCount = f.getU32Opt(key('expert_count')) ?? 0;
  if (expertCount > 0)
    fail(`'${key('expert_count')}' is ${expertCount}: mixture-of-experts models are not supported`);

  const nLayer = f.getU32(key('block_count'));
  const nCtxTrain = f.getU32(key('context_length'));
  const nEmbd = f.getU32(key('embedding_length'));
  const nFf = f.getU32(key('feed_forward_length'));
  const nHead = f.getU32(key('attention.head_count'));
  const nHeadKv = f.getU32Opt(key('attention.head_count_kv')) ?? nHead;
  if (nLayer < 1 || nEmbd < 1 || nFf < 1 || nHead < 1) {
    fail(
      `block_count ${nLayer}, embedding_length ${nEmbd}, feed_forward_length ${nFf} and head_count ${nHead} must all be positive`,
    );
  }
  if (nHeadKv < 1 || nHead % nHeadKv !== 0) {
    fail(`'${key('attention.head_count_kv')}' is ${nHeadKv}; it must divide head_count ${nHead}`);
  }
  if (f.getU32Opt(key('attention.key_length')) === undefined && nEmbd % nHead !== 0) {
    fail(
      `embedding_length ${nEmbd} is not a multiple of head_count ${nHead} and '${key('attention.key_length')}' is absent`,
    );
  }
  const headDim = f.getU32Opt(key('attention.key_length')) ?? nEmbd / nHead;
  const headDimV = f.getU32Opt(key('attention.value_length')) ?? headDim;
  if (headDimV !== headDim)
    fail(`key_length ${headDim} and value_length ${headDimV} differ; redblue needs them equal`);
  const rmsEps = f.getF32(key('attention.layer_norm_rms_epsilon'));
  const ropeFreqBase = f.getF32Opt(key('rope.freq_base')) ?? 10000;
  const ropeDim = f.getU32Opt(key('rope.dimension_count')) ?? headDim;
  if (ropeDim !== headDim)
    fail(`'${key('rope.dimension_count')}' is ${ropeDim}; redblue rotates whole heads (${headDim})`);
  const scalingType = (f.getStringOpt(key('rope.scaling.type')) ?? 'none') as 'none' | 'linear';
  let factor = f.getF32Opt(key('rope.scaling.factor')) ?? 1;
  if (scalingType !== 'none' && scalingType !== 'linear') {
    fail(`'${key('rope.scaling.type')}' is '${shown(scalingType)}'; redblue supports none and linear`);
  }
  if (scalingType === 'none' || factor === 0) factor = 1;
  if (!(factor > 0)) fail(`'${key('rope.scaling.factor')}' is ${factor}; it must be positive`);

  const tokenEmbd = f.tensorByName.get('token_embd.weight') ?? fail(`tensor 'token_embd.weight' is missing`);
  const tokens = f.getArrayOpt('tokenizer.ggml.tokens', 'string');
  const nVocab = tokens?.value.length ?? tokenEmbd.ne[1] ?? 0;

  const used: GgufTensor[] = [];
  const need = (name: string, shape: number[], what: string, optional = false): GgufTensor | undefined => {
    const t = f.tensorByName.get(name);
    if (t === undefined) {
      if (optional) return undefined;
      return fail(`tensor '${name}' (${what}, shape [${shape.join(', ')}]) is missing`);
    }
    if (t.ne.length !== shape.length || t.ne.some((n, i) => n !== shape[i])) {
      fail(`tensor '${name}' has shape [${t.ne.join(', ')}], expected [${shape.join(', ')}] (${what})`);
    }
    if (!t.type.weight) fail(`tensor '${name}' has type ${t.typeName}, which is not a weight type`);
    if (shape.length === 1 && t.typeName !== 'f32') {
      fail(
        `tensor '${name}' (${what}) is ${t.typeName}; norms and biases must be f32 as llama.cpp writes them`,
      );
    }
    used.push(t);
    return t;
  };
  const req = (name: string, shape: number[], what: string): GgufTensor => need(name, shape, what)!;

  const qDim = nHead * headDim;
  const kvDim = nHeadKv * headDim;
  req('token_embd.weight', [nEmbd, nVocab], 'n_embd × n_vocab');
  const outputNorm = req('output_norm.weight', [nEmbd], 'n_embd');
  const outputOwn = need('output.weight', [nEmbd, nVocab], 'n_embd × n_vocab', true);
  const ropeFreqs = need('rope_freqs.weight', [ropeDim / 2], 'rope_dim / 2', true);
  const qwen2 = a === 'qwen2';
  const qwen3 = a === 'qwen3';
  const layers: LayerTensors[] = [];
  for (let i = 0; i < nLayer; i++) {
    const b = `blk.${i}.`;
    const layer: LayerTensors = {
      attnNorm: req(`${b}attn_norm.weight`, [nEmbd], 'n_embd'),
      attnQ: req(`${b}attn_q.weight`, [nEmbd, qDim], 'n_embd × n_head·head_dim'),
      attnK: req(`${b}attn_k.weight`, [nEmbd, kvDim], 'n_embd × n_head_kv·head_dim'),
      attnV: req(`${b}attn_v.weight`, [nEmbd, kvDim], 'n_embd × n_head_kv·head_dim'),
      attnOutput: req(`${b}attn_output.weight`, [qDim, nEmbd], 'n_head·head_dim × n_embd'),
      ffnNorm: req(`${b}ffn_norm.weight`, [nEmbd], 'n_embd'),
      ffnGate: req(`${b}ffn_gate.weight`, [nEmbd, nFf], 'n_embd × n_ff'),
      ffnUp: req(`${b}ffn_up.weight`, [nEmbd, nFf], 'n_embd × n_ff'),
      ffnDown: req(`${b}ffn_down.weight`, [nFf, nEmbd], 'n_ff × n_embd'),
    };
    if (qwen3) {
      layer.attnQNorm = req(`${b}attn_q_norm.weight`, [headDim], 'head_dim');
      layer.attnKNorm = req(`${b}attn_k_norm.weight`, [headDim], 'head_dim');
    }
    if (!qwen3) {
      // qwen2 always has Q/K/V biases; llama models may (llama.cpp loads them when present).
      const optional = !qwen2;
      const q = need(`${b}attn_q.bias`, [qDim], 'n_head·head_dim', optional);
      const k = need(`${b}attn_k.bias`, [kvDim], 'n_head_kv·head_dim', optional);
      const v = need(`${b}attn_v.bias`, [kvDim], 'n_head_kv·head_dim', optional);
      if (q) layer.attnQBias = q;
      if (k) layer.attnKBias = k;
      if (v) layer.attnVBias = v;
      if (a === 'llama') {
        const o = need(`${b}attn_output.bias`, [nEmbd], 'n_embd', true);
        if (o) layer.attnOutputBias = o;
      }
    }
    layers.push(layer);
  }
  const output = outputOwn ?? tokenEmbd;

  const bytesByType: Partial<Record<GgmlTypeName, TypeTotal>> = {};
  let parameterCount = 0;
  let weightBytesPerToken = 0;
  for (const t of used) {
    const total = (bytesByType[t.typeName] ??= { tensors: 0, elements: 0, bytes: 0 });
    total.tensors++;
    total.elements += t.elements;
    total.bytes += t.bytes;
    parameterCount += t.elements;
    if (t !== tokenEmbd) weightBytesPerToken += t.bytes;
  }
  // The lookup reads one row of token_embd; a tied output projection reads all of it.
  weightBytesPerToken += outputOwn ? rowBytes(tokenEmbd.type, nEmbd) : tokenEmbd.bytes;

  const name = f.getStringOpt('general.name');
  // 0 (none) and 4 (rank, a reranker's head, which these architectures do not have) pool nothing.
  const pooling = POOLING[f.getU32Opt(key('pooling_type')) ?? 0];
  return {
    path: f.path,
    arch: a,
    ...(name !== undefined ? { name } : {}),
    nLayer,
    nCtxTrain,
    nEmbd,
    nFf,
    nHead,
    nHeadKv,
    headDim,
    headDimV,
    rmsEps,
    ropeFreqBase,
    ropeDim,
    ropeOrdering: ROPE_ORDERING[a],
    ropeScaling: { type: scalingType, factor },
    nVocab,
    tiedEmbeddings: outputOwn === undefined,
    qkvBias: layers[0]?.attnQBias !== undefined,
    qkNorm: qwen3,
    tokenEmbd,
    outputNorm,
    output,
    ...(ropeFreqs ? { ropeFreqs } : {}),
    layers,
    parameterCount,
    weightBytesPerToken,
    bytesByType,
    ...(pooling ? { pooling } : {}),
  };
}
