// Typed access to a rank's transformer shard (native/src/model, bindings/model_bindings.cc): its
// slices of a GGUF model's weights in node-local memory, its KV cache, and the whole forward
// pass as one native step whose collectives run through the shm communicator or a cross-host
// collective. Every field is checked natively; this file only gives the calls types.
import { loadAddon, type NativeThreadPool } from './addon.js';
import type { KernelPath } from './kernels.js';

export interface ModelTensorRef {
  name: string;
  /** ggml type id (GGUF tensor `type`). */
  type: number;
  /** ggml ne: dims[0] is the row length. */
  dims: number[];
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
}

export interface ModelShardConfig {
  path: string;
  node: number;
  arch: 'llama' | 'qwen2' | 'qwen3';
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  nVocab: number;
  nCtx: number;
  normEps: number;
  ropeBase: number;
  /** Linear RoPE scaling factor; 1 = none. */
  ropeScale: number;
  ropeNeox: boolean;
  tensors: ModelTensorRef[];
  split: {
    rank: number;
    ranks: number;
    kvHeads: [number, number];
    ff: [number, number];
    vocab: [number, number];
    vocabPerRank: number[];
  };
  /** Instruction-set path of the matmuls and the attention; default 'auto' (tests force 'scalar'). */
  kernelPath?: KernelPath;
  /** Sequences whose KV caches the shard holds (nCtx positions each); default 1. */
  slots?: number;
  /** Matmul rows through the row-invariant kernels: a sequence's tokens do not depend on its batch. */
  batchInvariant?: boolean;
  /**
   * Steps of at most this many tokens also take the row-invariant kernels: a step verifying
   * drafted tokens gives each row the logits a step of its own would (generate --lookup).
   */
  invariantTokens?: number;
  /** Copy token_embd into the node's memory instead of reading rows from the file's pages. */
  mirrorEmbeddings?: boolean;
}

/** One sequence of a step: `count` tokens at positions pos.. of KV slot `slot`. */
export interface SeqRun {
  slot: number;
  pos: number;
  count: number;
  /**
   * Rows of logits to return: true (or 1) after the run's last token, false (0) none, a number n
   * after each of its last n tokens (a prompt scored token by token).
   */
  logits: boolean | number;
  /**
   * Before the step, the run's slot takes positions 0…pos-1 of slot `from`'s KV cache (a prompt's
   * beginning another sequence computed); the run then goes on from pos.
   */
  from?: number;
  /**
   * Its rows are the final hidden states (after output_norm: the embeddings), nEmbd floats at the
   * start of each row of logits, instead of logits.
   */
  hidden?: boolean;
}

/** How many rows of logits a run asks for. */
export function logitRows(r: Pick<SeqRun, 'logits'>): number {
  return r.logits === true ? 1 : r.logits === false ? 0 : r.logits;
}

export interface ModelLoadResult {
  weightBytes: number;
  kvBytes: number;
  backing: string;
  seconds: number;
}

/**
 * How many all-reduces a step ran by algorithm (native/src/executor/collective.h): inside a host
 * `shm-flat` (small: one sync) and `shm-split` (large: reduce-scatter, all-gather); across hosts
 * `hosts-direct` (small, or one rank per host: every rank's vector to every host) and
 * `hosts-chain` (large: summed inside each host, the running sum passed from host to host).
 */
export type AllReduceCounts = Partial<
  Record<'shm-flat' | 'shm-split' | 'hosts-direct' | 'hosts-chain', number>
>;

export interface ModelForwardResult {
  /** nVocab floats per token asked for (the last, or every one), identical on every rank. */
  logits?: Float32Array;
  computeSeconds: number;
  exchangeSeconds: number;
  allReduces: AllReduceCounts;
  seconds: number;
}

export interface NativeModelShard {
  load(pool: NativeThreadPool, onProgress?: (done: number, total: number) => void): Promise<ModelLoadResult>;
  /**
   * Runs `tokens` at positions pos.. through every layer. Every rank of `peers` (the shm
   * communicator's handle or a cross-host collective) makes the same call. pos may be at most
   * the number of positions already cached; an earlier pos rewinds the sequence there.
   */
  forward(
    pool: NativeThreadPool,
    peers: unknown,
    tokens: Int32Array,
    pos: number,
    logits: 'last' | 'all' | 'none',
    /**
     * Where to write the logits instead of returning them (shared memory the coordinator maps):
     * no array per step for the garbage collector. At least the positions' n_vocab floats.
     */
    into?: Float32Array,
  ): Promise<ModelForwardResult>;
  /** One step of several sequences (see SeqRun): logits holds nVocab floats per row the runs ask for. */
  forwardRuns(
    pool: NativeThreadPool,
    peers: unknown,
    tokens: Int32Array,
    runs: SeqRun[],
  ): Promise<ModelForwardResult>;
  /**
   * A thread that runs the steps the coordinator posts in `area`'s doorbell (a staging area
   * every executor and the coordinator map: native/src/model/step_doorbell.h) until stopped.
   */
  startStepLoop(pool: NativeThreadPool, peers: unknown, area: ArrayBuffer, rank: number): void;
  stopStepLoop(): void;
  release(): void;
}

export interface StepTimes {
  seconds: number;
  computeSeconds: number;
  exchangeSeconds: number;
  allReduces: AllReduceCounts;
}

interface ModelAddon {
  ModelShard: new (cfg: ModelShardConfig) => NativeModelShard;
  /**
   * Posts a step in the area's doorbell and waits for `ranks` executors: their times. `tokens`
   * holds every run's tokens, run after run; the rows of logits the runs ask for, in run order,
   * land after the doorbell.
   */
  ringDoorbell(
    area: ArrayBuffer,
    tokens: Int32Array,
    runs: SeqRun[],
    ranks: number,
    timeoutMs: number,
  ): Promise<StepTimes[]>;
  /** Ends the loops on the area; a ring waiting on it fails. */
  stopDoorbell(area: ArrayBuffer): void;
  /** Bytes the doorbell takes at the start of the area; rank 0's logits follow. */
  doorbellBytes: number;
  /**
   * One KV cache's causal attention on its own (native/src/model/attention.h), for the kernel's
   * tests and benches: k and v hold (qHeads / group) × nCtx × headDim f16 values, as a shard's
   * cache does; the result has q's shape.
   */
  causalAttention(pool: NativeThreadPool, args: AttentionCall): Float32Array;
}

export interface AttentionCall {
  /** nTokens × qHeads × headDim queries of positions pos0 … pos0 + nTokens − 1. */
  q: Float32Array;
  k: Uint16Array;
  v: Uint16Array;
  nTokens: number;
  pos0: number;
  qHeads: number;
  /** Query heads per KV head. */
  group: number;
  headDim: number;
  nCtx: number;
  path?: KernelPath;
}

/** Tokens one doorbell step carries at most (step_doorbell.h kDoorbellMaxTokens). */
export const DOORBELL_MAX_TOKENS = 512;
/** Sequences one step (and one shard's KV slots) holds at most (model_config.h kMaxModelSlots). */
export const MAX_SEQUENCES = 64;

export function modelAddon(): ModelAddon {
  return loadAddon<ModelAddon>();
}
