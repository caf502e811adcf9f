// Running a model on the executors: the coordinator reads the GGUF header, plans which rank
// computes which heads, FFN slice and vocabulary rows, has every executor load its part from
// the file into its own node's memory, then drives generation: one Forward call per executor
// per step (a prompt batch or one token; every layer and all-reduce runs natively inside it),
// sampling the next token from rank 0's logits here. The executors are a ModelRunner: one host's
// (a LocalCluster, localRunner below) or several hosts' (remote-generate.ts), so loading and
// generation are written once for both.
import { basename } from 'node:path';
import {
  DOORBELL_MAX_TOKENS,
  logitRows,
  MAX_SEQUENCES,
  modelAddon,
  type SeqRun,
  type StepTimes,
} from '../../native/model.js';
import { ChatTemplate } from '../../model/chat.js';
import { readGguf } from '../../model/gguf/read.js';
import { describeModel, type ModelInfo, type Pooling } from '../../model/arch.js';
import { createTokenizer, type Tokenizer } from '../../model/tokenizer/index.js';
import { Sampler, logprobsOf, type SamplingParams, type TokenLogprob } from '../../model/sampling.js';
import { JsonObjectPrefix, type JsonShape } from '../../model/json-constraint.js';
import { Drafter } from '../../model/lookup.js';
import {
  planModelSplit,
  ratesFromSpeeds,
  sharedNodeNotes,
  type EmbeddingPlacement,
  type ModelSplit,
  type OutputPlacement,
} from '../../planner/model-split.js';
import {
  memoryNeeds,
  memoryShortfall,
  type MemoryPlace,
  type NodeMemoryNeed,
} from '../../planner/model-memory.js';
import { availableOnNode } from '../../native/available-memory.js';
import { UsageError } from '../../common/errors.js';
import type {
  ForwardReply,
  LoadModelReply,
  LoadModelRequest,
  LoadProgressReply,
} from '../../transport/control.js';
import type { LocalCluster } from '../host/local-cluster.js';
import type { SharedArea } from '../../transport/shared-area.js';
import type { MachineTopology } from '../../native/topology.js';

/** Tokens per Forward call while processing a prompt (llama.cpp's default batch). */
export const PROMPT_BATCH = 512;

/** What a model step returns: rank 0's logits (f32, n_vocab per position) and every rank's reply. */
export interface ForwardResult {
  logits: Float32Array;
  replies: ForwardReply[];
}

/**
 * The executors a model runs on, whatever their kind: one host's (LocalCluster, localRunner) or
 * several hosts' (RemoteCluster, remote-generate.ts). Ranks are global and in order; loadModel,
 * forward and generate are written once against this.
 */
export interface ModelRunner {
  /** Executors, all hosts. */
  readonly ranks: number;
  /** Each rank's read bandwidth (GB/s) as it measured it on its node: the split follows it. */
  readonly speeds?: readonly number[];
  /** Where each rank runs (its host and memory node): token_embd's and the output's placement follow it. */
  readonly places?: readonly RankPlace[];
  /** Each rank loads its split (per rank, in rank order; `path` as the coordinator sees it). */
  load(reqs: LoadModelRequest[]): Promise<LoadModelReply[]>;
  /** How far each rank's load has come (a rank that does not answer in time is left out). */
  loadProgress(): Promise<(LoadProgressReply | undefined)[]>;
  /**
   * One step on every rank: `tokens` at positions pos…; rank 0's logits. `send` false: the
   * logits are computed (the vocabulary projection and its gather) but not sent back, as
   * llama-bench computes and does not read them. `into`: the logits are copied there and
   * returned as a view of its start, instead of in a new array (see copyLogits).
   */
  forward(
    tokens: number[],
    pos: number,
    logits: 'last' | 'all' | 'none',
    send?: boolean,
    into?: Float32Array,
  ): Promise<ForwardResult>;
  /**
   * One step of several sequences, each in its own KV slot (a server's batch): `tokens` holds
   * every run's tokens, run after run; logitRows(run) rows of logits per run (the last after its
   * last token), in run order. `into`: as forward's, the rows views of it.
   */
  step?(
    tokens: number[],
    runs: SeqRun[],
    into?: Float32Array,
  ): Promise<{ logits: Float32Array[]; replies: ForwardReply[] }>;
}

/**
 * A rank's host (index), memory node (-1: not known) and cpus, the memory its node has
 * (`memoryBytes`), and what the node can still give (MemoryPlace: read when the ranks were found).
 */
export interface RankPlace extends MemoryPlace {
  cpus?: number;
  memoryBytes?: number;
}

/** One host's ranks, one per node of its topology, with what each node can give now. */
export function localPlaces(topology: MachineTopology): RankPlace[] {
  const seen = new Map<number, ReturnType<typeof availableOnNode>>();
  return topology.nodes.map((n) => {
    if (!seen.has(n.physicalNode)) seen.set(n.physicalNode, availableOnNode(n.physicalNode));
    const a = seen.get(n.physicalNode);
    return {
      host: 0,
      memoryNode: n.physicalNode,
      cpus: n.cpus.length,
      memoryBytes: n.memoryBytes,
      ...(a
        ? { availableBytes: a.bytes, hugeFreeBytes: a.hugeFreeBytes, hugePageBytes: a.hugePageBytes }
        : {}),
    };
  });
}

/** The planner's placement choices a run may fix instead of leaving them to the cost model. */
export interface PlacementChoice {
  embeddings?: EmbeddingPlacement | 'auto';
  output?: OutputPlacement | 'auto';
}

/**
 * Logits out of a step's buffer: into `into` (a view of its start) when given, else into a new
 * array. A decoding loop passes one buffer for all its steps: a new 128 KiB array a token (a
 * 32k vocabulary) lands on fresh heap pages until the GC has freed a few, and touching them
 * for the first time is slow on a VM (the JS time between two steps of a fresh process's first
 * 256 tokens: 410 µs at the median, against 130 µs with the heap's pages touched beforehand).
 */
export function copyLogits(src: Float32Array, into?: Float32Array): Float32Array {
  if (!into) return src.slice();
  const out = viewOf(into, src.length);
  out.set(src);
  return out;
}

/** The reply's bytes may sit unaligned inside a larger buffer: copied into an aligned array (or `into`). */
export function logitsOf(bytes: Uint8Array, into?: Float32Array): Float32Array {
  const out = into ? viewOf(into, bytes.byteLength / 4) : new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer, out.byteOffset, bytes.byteLength).set(bytes);
  return out;
}

/** The first `n` floats of a caller's logits buffer, which must hold them. */
function viewOf(into: Float32Array, n: number): Float32Array {
  if (into.length < n)
    throw new RangeError(`the logits buffer holds ${into.length} floats, not the ${n} of this step`);
  return into.subarray(0, n);
}

/**
 * One host's executors as a ModelRunner (every all-reduce in the host's shared memory). Steps of
 * up to 512 tokens go through the staging area's doorbell (native/src/model/step_doorbell.h: a
 * futex in shared memory each executor's loop thread waits on, no gRPC call per token), and one
 * row of logits comes back through the same area, which this process maps.
 */
export function localRunner(cluster: LocalCluster): ModelRunner {
  let staging: SharedArea | undefined;
  let nVocab = 0;
  let doorbell = false;
  const logitsAt = () => modelAddon().doorbellBytes;
  /** Posts a step in the doorbell; a lost executor ends the loops (and the native wait with them). */
  // The native wait of the step in flight: it reads the staging area, so the area must outlive it.
  let inflight: Promise<unknown> | undefined;
  const endWait = async (area: ArrayBuffer, wait: Promise<unknown>) => {
    modelAddon().stopDoorbell(area);
    doorbell = false;
    await wait.catch(() => undefined); // within 50 ms of the stop
  };
  // Stopping the cluster (Ctrl-C, a lost executor) ends a wait in flight before the unmapping.
  cluster.onStop(async () => {
    if (inflight && staging) await endWait(staging.buffer, inflight);
  });
  const ring = async (tokens: number[], runs: SeqRun[]): Promise<ForwardReply[]> => {
    // A step posted after the stop's hooks ran would still be read natively when the area is
    // unmapped (a draft model's steps go on while Ctrl-C stops both clusters).
    if (cluster.stopping) throw new Error('the executors are stopping');
    const area = staging!.buffer;
    let times: StepTimes[];
    const wait = modelAddon().ringDoorbell(
      area,
      Int32Array.from(tokens),
      runs,
      cluster.clients.length,
      600_000,
    );
    inflight = wait;
    try {
      times = await cluster.guard(wait);
    } catch (e) {
      // A step every rank refused (a bad position) leaves the loops running; anything else (a
      // lost executor, a step not finished in time) ends them, and the native wait with them,
      // before the error goes on (the cluster is stopped next, and its areas unmapped).
      if (!/^executor rank \d+: /.test(e instanceof Error ? e.message : '')) await endWait(area, wait);
      throw e;
    } finally {
      if (inflight === wait) inflight = undefined;
    }
    if (cluster.stopping) throw new Error('the executors are stopping'); // the logits may be unmapped
    return times.map((t) => ({ ...t, logits: new Uint8Array() }));
  };
  let slots = 1;
  /** Rows of logits a step may return: a row a slot, or a row a token of a step verifying drafts. */
  let rows = 1;
  return {
    ranks: cluster.clients.length,
    speeds: cluster.hellos.map((h) => h.readGbps),
    places: localPlaces(cluster.topology),
    async load(reqs) {
      // Joins every executor to the host's shared-memory group (the all-reduces run there); the
      // area holds the doorbell and a row of logits per KV slot (the cluster unmaps it when it stops).
      nVocab = reqs[0]!.vocabPerRank.reduce((a, b) => a + b, 0);
      slots = reqs[0]!.slots || 1;
      rows = logitRowsOf(slots, reqs[0]!.invariantTokens ?? 0);
      doorbell = false;
      staging = await cluster.stage('model', logitsAt() + Math.max(64, nVocab * 4 * rows));
      const replies = await cluster.guard(
        Promise.all(cluster.clients.map((c, rank) => c.loadModel(reqs[rank]!))),
      );
      await cluster.guard(Promise.all(cluster.clients.map((c) => c.startModelLoop({}))));
      doorbell = true;
      return replies;
    },
    loadProgress: () =>
      Promise.all(cluster.clients.map((c) => c.loadProgress({}, 5000).catch(() => undefined))),
    async forward(tokens, pos, logits, send = true, into) {
      if (doorbell && staging && logits !== 'all' && tokens.length <= DOORBELL_MAX_TOKENS) {
        const replies = await ring(tokens, [
          { slot: 0, pos, count: tokens.length, logits: logits === 'last' },
        ]);
        const out =
          logits === 'last' && send
            ? copyLogits(new Float32Array(staging.buffer, logitsAt(), nVocab), into)
            : new Float32Array();
        return { logits: out, replies };
      }
      const viaStaging = logits === 'last' && staging !== undefined;
      const replies = await cluster.guard(
        Promise.all(
          cluster.clients.map((c, rank) =>
            c.forward({ tokens, pos, logits, sendLogits: send && rank === 0, logitsToStaging: viaStaging }),
          ),
        ),
      );
      if (viaStaging && send) {
        if (cluster.stopping) throw new Error('the executors are stopping');
        return { logits: copyLogits(new Float32Array(staging!.buffer, logitsAt(), nVocab), into), replies };
      }
      return { logits: logitsOf(replies[0]!.logits, into), replies };
    },
    async step(tokens, runs, into) {
      if (!doorbell || !staging) throw new Error('the executors are not running a model: load one first');
      checkRuns(tokens, runs, slots, rows);
      const replies = await ring(tokens, runs);
      const n = runs.reduce((a, r) => a + logitRows(r), 0);
      const all = copyLogits(new Float32Array(staging.buffer, logitsAt(), n * nVocab), into);
      const logits = Array.from({ length: n }, (_, i) => all.subarray(i * nVocab, (i + 1) * nVocab));
      return { logits, replies };
    },
  };
}

/**
 * Rows of logits a step may return on a model loaded with `slots` and `invariantTokens`: a row a
 * slot, or a row a token of a step that checks drafts, whichever is more.
 */
export function logitRowsOf(slots: number, invariantTokens: number): number {
  return Math.max(slots, invariantTokens);
}

/**
 * A step's runs against the shard's slots, the staging area's `maxRows` rows of logits and the
 * doorbell's limits (positions are checked natively).
 */
function checkRuns(tokens: readonly number[], runs: readonly SeqRun[], slots: number, maxRows: number): void {
  if (runs.length < 1 || runs.length > Math.min(slots, MAX_SEQUENCES))
    throw new Error(`a step carries 1-${Math.min(slots, MAX_SEQUENCES)} sequences, not ${runs.length}`);
  const seen = new Set<number>();
  let total = 0;
  let rows = 0;
  for (const r of runs) {
    if (!Number.isInteger(r.slot) || r.slot < 0 || r.slot >= slots)
      throw new Error(`KV slot ${r.slot} does not exist: the model was loaded with slots 0-${slots - 1}`);
    if (seen.has(r.slot)) throw new Error(`KV slot ${r.slot} appears twice in one step`);
    seen.add(r.slot);
    if (!Number.isInteger(r.count) || r.count < 1) throw new Error(`slot ${r.slot}'s run carries no tokens`);
    if (
      r.from !== undefined &&
      (!Number.isInteger(r.from) || r.from < 0 || r.from >= slots || r.from === r.slot)
    )
      throw new Error(`slot ${r.slot}'s run copies from slot ${r.from}: not another of slots 0-${slots - 1}`);
    const n = logitRows(r);
    if (!Number.isInteger(n) || n < 0 || n > r.count)
      throw new Error(`slot ${r.slot}'s run asks for ${n} rows of logits but carries ${r.count} tokens`);
    rows += n;
    total += r.count;
  }
  if (rows > maxRows) throw new Error(`a step returns at most ${maxRows} rows of logits, not ${rows}`);
  if (total !== tokens.length)
    throw new Error(`the runs hold ${total} tokens but the step has ${tokens.length}`);
  if (total > DOORBELL_MAX_TOKENS)
    throw new Error(`a step carries at most ${DOORBELL_MAX_TOKENS} tokens, not ${total}: split the prompts`);
}

// One runner per cluster: the runner that loaded the model holds its doorbell, and a second one
// would send every token as a gRPC call (4.7 ms a token against 1.0 on a two-layer model).
const runners = new WeakMap<LocalCluster, ModelRunner>();
export function runnerOf(c: LocalCluster | ModelRunner): ModelRunner {
  if ('forward' in c) return c;
  let r = runners.get(c);
  if (!r) runners.set(c, (r = localRunner(c)));
  return r;
}

/**
 * The coordinator's part of a model file: its header, and its tokenizer and chat template, built
 * on first use. The header is read at once (a missing, damaged or unsupported file fails before
 * any executor starts); the tokenizer of a large vocabulary takes ~0.3 s (Qwen's 151k tokens; far
 * longer on a slow machine), which a local run spends while its executors start (prepare() as
 * LocalClusterOptions.whileStarting). Across hosts it is prepared before the hosts are reached: a
 * host connection's keepalive must not wait on it.
 */
export interface ModelFile {
  path: string;
  info: ModelInfo;
  tokenizer: Tokenizer;
  /** Chat prompts as the file's template renders them (ChatML without one). */
  chat: ChatTemplate;
  /** Builds the tokenizer and the chat template now (a throw names what the file lacks). */
  prepare(): void;
}

export function readModelFile(path: string): ModelFile {
  const gguf = readGguf(path);
  let tokenizer: Tokenizer | undefined;
  let chat: ChatTemplate | undefined;
  return {
    path,
    info: describeModel(gguf),
    get tokenizer() {
      return (tokenizer ??= createTokenizer(gguf.metadata));
    },
    get chat() {
      return (chat ??= ChatTemplate.fromMetadata(gguf.metadata, this.tokenizer));
    },
    prepare() {
      void this.chat;
    },
  };
}

/**
 * The split over `ranks` executors (one host's nodes, or every host's): shares in proportion to
 * their measured read bandwidth (`speeds`, GB/s per rank; equal without).
 */
export function planGenerateOn(o: {
  info: ModelInfo;
  ranks: number;
  speeds?: readonly number[] | undefined;
  places?: readonly RankPlace[] | undefined;
  placement?: PlacementChoice;
  ctx?: number;
  /** Sequences held side by side (KV slots), for `memory`; default 1. */
  slots?: number;
}): {
  info: ModelInfo;
  split: ModelSplit;
  /** Each memory node's part against what it can give (empty where the places do not say). */
  memory: NodeMemoryNeed[];
  /** Why `memory` cannot hold it, and the fix; absent when it can. */
  memoryShortfall?: string;
} {
  const ctx = o.ctx ?? Math.min(o.info.nCtxTrain, 4096);
  const speeds = o.speeds?.length === o.ranks && o.speeds.every((v) => v > 0) ? o.speeds : undefined;
  const places = o.places?.length === o.ranks ? o.places : undefined;
  const rates = speeds ? ratesFromSpeeds(speeds, places) : undefined;
  const split = planModelSplit(
    o.info,
    Array.from({ length: o.ranks }, (_, i) =>
      speeds ? { rate: rates![i]!, speed: speeds[i]! } : { rate: 1 },
    ),
    {
      context: ctx,
      ...(places ? { places } : {}),
      ...(o.placement?.embeddings ? { embeddings: o.placement.embeddings } : {}),
      ...(o.placement?.output ? { output: o.placement.output } : {}),
    },
  );
  if (speeds) split.notes.push(...sharedNodeNotes(places));
  const memory = places ? memoryNeeds(split, places, o.slots ?? 1) : [];
  const short = places && memoryShortfall(split, places, o.slots ?? 1);
  return { info: o.info, split, memory, ...(short ? { memoryShortfall: short } : {}) };
}

export interface ModelLoadOptions {
  path: string;
  /** The file's header and tokenizer when already read (readModelFile of `path`). */
  file?: ModelFile;
  /** Positions of KV cache (default: the model's context length, at most 4096), per sequence. */
  ctx?: number;
  /** Sequences held side by side (KV slots; a server's --parallel); default 1. */
  slots?: number;
  /** Each sequence's tokens independent of what shares its steps (a batching server). */
  batchInvariant?: boolean;
  /**
   * Drafted tokens a step may verify (generate's lookup): steps of up to 1 + draftTokens tokens
   * take the row-invariant kernels and return a row of logits a token, each row the one a step
   * of its own would give. Default 0.
   */
  draftTokens?: number;
  /** token_embd's and the output's placement, when not the planner's choice. */
  placement?: PlacementChoice;
  onProgress?: (done: number, total: number) => void;
}

export interface RankTimings {
  rank: number;
  computeSeconds: number;
  exchangeSeconds: number;
  /** The all-reduces this rank ran, by algorithm (AllReduceCounts in native/model.ts). */
  allReduces: Record<string, number>;
}

export interface LoadedModel {
  info: ModelInfo;
  tokenizer: Tokenizer;
  /** The file's chat template (ChatML without one). */
  chat: ChatTemplate;
  split: ModelSplit;
  ctx: number;
  /** KV slots: sequences that may run side by side. */
  slots: number;
  /** Drafted tokens a step may verify (ModelLoadOptions.draftTokens). */
  draftTokens: number;
  /** Rows of logits a step may return (logitRowsOf). */
  logitRows: number;
  perRank: (LoadModelReply & { rank: number })[];
  seconds: number;
}

/** Reads the header, plans the split and loads every executor's part. */
export async function loadModel(
  cluster: LocalCluster | ModelRunner,
  o: ModelLoadOptions,
): Promise<LoadedModel> {
  const runner = runnerOf(cluster);
  const started = performance.now();
  const { info, tokenizer, chat } = o.file ?? readModelFile(o.path);
  const ctx = o.ctx ?? Math.min(info.nCtxTrain, 4096);
  // The executors refuse it too (model-steps.ts); here it is the user's flag, named, exit 2.
  if (!Number.isSafeInteger(ctx) || ctx < 1 || ctx > info.nCtxTrain)
    throw new UsageError(
      `a context of ${ctx} positions: ${basename(o.path)} was trained for ${info.nCtxTrain}; use --ctx ${info.nCtxTrain} or less`,
    );
  const slots = o.slots ?? 1;
  const { split, memoryShortfall: short } = planGenerateOn({
    info,
    ranks: runner.ranks,
    speeds: runner.speeds,
    places: runner.places,
    ...(o.placement ? { placement: o.placement } : {}),
    ctx,
    slots,
  });
  // An executor that populates more than its node can give is killed by the kernel (SIGKILL,
  // nothing to report): refuse before, with the figures and the fix. After a loss too: the
  // executors left were started again (their earlier parts freed) before this load.
  if (short) throw new UsageError(short);
  const vocabPerRank = split.ranks.map((r) => r.vocab[1] - r.vocab[0]);
  // A step that checks n drafts runs 1 + n tokens through the row-invariant kernels.
  const invariantTokens = o.draftTokens ? o.draftTokens + 1 : 0;
  let polling = true;
  // The wait between polls ends early when the load does: awaiting a full 200 ms sleep added up
  // to 0.2 s to every load (a small model's whole load took 0.17 s).
  let wake = () => {};
  const poll = (async () => {
    while (polling) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      if (!polling) break;
      const ps = await runner.loadProgress().catch(() => []);
      // Executors report bytes copied of their own totals; the slowest one is shown, in layers.
      const frac = ps.length ? Math.min(...ps.map((p) => (p && p.total > 0 ? p.done / p.total : 0))) : 0;
      o.onProgress?.(Math.floor(frac * info.nLayer), info.nLayer);
    }
  })();
  try {
    const replies = await runner.load(
      split.ranks.map((r) => ({
        path: o.path,
        ctx,
        kvHeads: { lo: r.kvHeads[0], hi: r.kvHeads[1] },
        ff: { lo: r.ff[0], hi: r.ff[1] },
        vocab: { lo: r.vocab[0], hi: r.vocab[1] },
        vocabPerRank,
        slots: o.slots ?? 1,
        batchInvariant: o.batchInvariant ?? false,
        invariantTokens,
        mirrorEmbeddings: split.tokenEmbd.placement === 'mirrored',
      })),
    );
    o.onProgress?.(info.nLayer, info.nLayer);
    return {
      info,
      tokenizer,
      chat,
      split,
      ctx,
      slots: o.slots ?? 1,
      draftTokens: o.draftTokens ?? 0,
      logitRows: logitRowsOf(o.slots ?? 1, invariantTokens),
      perRank: replies.map((r, rank) => ({ ...r, rank })),
      seconds: (performance.now() - started) / 1e3,
    };
  } finally {
    polling = false;
    wake();
    await poll;
  }
}

/** One step on every executor: `tokens` at positions pos…; returns rank 0's logits. */
export async function forward(
  cluster: LocalCluster | ModelRunner,
  tokens: number[],
  pos: number,
  logits: 'last' | 'all' | 'none' = 'last',
  send = true,
  into?: Float32Array,
): Promise<ForwardResult> {
  return runnerOf(cluster).forward(tokens, pos, logits, send, into);
}

export interface GenerateOptions {
  prompt: string;
  /** Tokens to generate at most. */
  maxTokens: number;
  sampling: Partial<SamplingParams> & { seed: number };
  /** Add the model's BOS token (default: as the file says). */
  addBos?: boolean;
  /** Stop at end-of-generation tokens (default true). */
  stopAtEog?: boolean;
  /** Called with each piece of text as soon as it is complete UTF-8 (and cannot begin a stop string). */
  onText?: (text: string) => void;
  /** Texts that end the generation where they appear; the text returned stops before them. */
  stop?: readonly string[];
  /** Ends the generation between two tokens (a client that went away). */
  signal?: AbortSignal;
  /** Prompt tokens to use as they are instead of encoding `prompt` (a server's chat prompt). */
  promptTokens?: readonly number[];
  /**
   * `prompt` is a user's message: rendered with the file's chat template (after `system`, when
   * given), ready for the assistant's answer.
   */
  chat?: { system?: string };
  /**
   * The first `reuse` prompt tokens are already in the KV cache at positions 0… (a chat's earlier
   * turns): processing starts after them. Ignored when a lost sequence is resumed on new executors.
   */
  reuse?: number;
  /**
   * Record each generated token's log-probability and the `top` most likely at its position,
   * appended to `into` as the tokens are picked (a server streams them from there). `prompt`:
   * the prompt's tokens after the first scored the same way, in order (a batching server's
   * `echo`; it feeds the rows through scorePrompt).
   */
  logprobs?: { top: number; into: TokenLogprob[]; prompt?: TokenLogprob[] };
  /**
   * JSON mode: only tokens that keep the text a prefix of one JSON object (keeping to the
   * schema, when one is given: compileJsonSchema) are drawn, and the sequence ends ('stop') when
   * the object closes.
   */
  json?: true | JsonShape;
  /**
   * Prompt lookup: up to this many tokens drafted from the context (model/lookup.ts) are fed
   * after each chosen token and verified in the same step; every token is still sampled from its
   * own row of logits, in order, so the text is the one generated without it. Needs a model loaded
   * with draftTokens ≥ this (the smaller is used) and a runner that steps runs; 0: off.
   */
  lookup?: number;
  /**
   * Drafts from elsewhere (a draft model: coordinator/draft.ts), checked as lookup's are; takes
   * the place of `lookup`. Needs a model loaded with draftTokens ≥ its drafts.
   */
  drafter?: TokenDrafter;
  /**
   * An embedding instead of text (maxTokens 0): the prompt's final hidden states (after
   * output_norm), pooled into `into` (nEmbd floats): the last position's, the first's, or the
   * mean of all. Needs a runner that steps runs (its rows come back as hidden states).
   */
  embed?: { pooling: Pooling; into: Float32Array };
}

/** Guesses of the tokens after a context, checked by the target model in one step. */
export interface TokenDrafter {
  /** The draft to check after `context` (its last token the one just chosen), at most `room` tokens. */
  draft(context: readonly number[], room: number): number[] | Promise<number[]>;
  /** How many of a draft's `drafted` tokens were the ones chosen. */
  taken(drafted: number, accepted: number): void;
  readonly drafted: number;
  readonly accepted: number;
  /** A draft model's own figures (absent for prompt lookup). */
  modelTimings?(): DraftModelTimings;
}

/** A draft model's part of a generation. */
export interface DraftModelTimings {
  /** Its file, its load (on its executors), and how many executors run it. */
  path: string;
  loadSeconds: number;
  executors: number;
  /** Its steps (prompt batches and one a drafted token), and the time they took. */
  steps: number;
  seconds: number;
  /** Why it was dropped on the way (its executors failed); the text went on without drafts. */
  lost?: string;
}

export interface GenerateTimings {
  promptTokens: number;
  promptSeconds: number;
  promptTokensPerSecond: number;
  generatedTokens: number;
  generateSeconds: number;
  generateTokensPerSecond: number;
  /** Per executor, over the whole run: seconds in kernels and in exchanges. */
  perRank: RankTimings[];
  /** With lookup or a draft model: tokens drafted, and of those the ones that were the tokens chosen. */
  drafted?: number;
  accepted?: number;
  draftModel?: DraftModelTimings;
}

export interface GenerateResult {
  promptTokens: number[];
  /** Of promptTokens, how many were found in the KV cache and not processed (a server's slot). */
  cachedPromptTokens?: number;
  generatedTokens: number[];
  text: string;
  stoppedBy: 'eog' | 'length' | 'context' | 'stop' | 'aborted';
  timings: GenerateTimings;
}

/** The prompt's tokens; throws when they are none or do not fit the context. */
export function encodePrompt(
  model: LoadedModel,
  o: Pick<GenerateOptions, 'prompt' | 'addBos' | 'chat'>,
): number[] {
  const { tokenizer } = model;
  const tokens = o.chat
    ? model.chat.tokens(
        [
          ...(o.chat.system !== undefined ? [{ role: 'system', content: o.chat.system }] : []),
          { role: 'user', content: o.prompt },
        ],
        o.addBos,
      )
    : tokenizer.encode(o.prompt, { addBos: o.addBos ?? tokenizer.addBos, parseSpecial: true });
  if (tokens.length === 0) throw new Error('the prompt is empty: give at least one token of text');
  if (tokens.length >= model.ctx) throw promptTooLong(tokens.length, model.ctx);
  return tokens;
}

/** Prompt tokens given as ids: inside the vocabulary, at least one, and room left to generate. */
function checkPromptTokens(model: LoadedModel, tokens: readonly number[]): number[] {
  if (tokens.length === 0) throw new Error('the prompt is empty: give at least one token of text');
  for (const t of tokens)
    if (!Number.isInteger(t) || t < 0 || t >= model.info.nVocab)
      throw new Error(`token id ${t} is outside the vocabulary of ${model.info.nVocab} tokens`);
  if (tokens.length >= model.ctx) throw promptTooLong(tokens.length, model.ctx);
  return [...tokens];
}

/** A prompt that leaves no position to generate into: the user's --ctx or prompt to change. */
function promptTooLong(prompt: number, ctx: number): UsageError {
  return new UsageError(
    prompt === ctx
      ? `the prompt is ${prompt} tokens and the context holds ${ctx}, leaving no room for a generated token: use --ctx ${ctx + 1} or more, or a shorter prompt`
      : `the prompt is ${prompt} tokens but the context holds ${ctx}: use --ctx ${prompt + 1} or more, or a shorter prompt`,
  );
}

/**
 * Stop strings over streamed text: `push` returns what may be passed on now (everything that can
 * no longer be the start of a stop string), and whether a stop string ended the text; `final`
 * releases what was held back.
 */
export class StopStrings {
  private held = '';
  constructor(private readonly stops: readonly string[]) {}
  push(s: string, final = false): { text: string; stopped: boolean } {
    this.held += s;
    let cut = -1;
    for (const stop of this.stops) {
      if (!stop) continue;
      const i = this.held.indexOf(stop);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const text = this.held.slice(0, cut);
      this.held = '';
      return { text, stopped: true };
    }
    if (final) {
      const text = this.held;
      this.held = '';
      return { text, stopped: false };
    }
    // Hold back the longest tail that is a proper prefix of some stop string.
    let keep = 0;
    for (const stop of this.stops)
      for (let n = Math.min(stop.length - 1, this.held.length); n > keep; n--)
        if (this.held.endsWith(stop.slice(0, n))) {
          keep = n;
          break;
        }
    const text = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return { text, stopped: false };
  }
}

/**
 * One sequence's life after its prompt: sampling each next token from the logits, end-of-
 * generation and stop strings, streamed text, the length and context limits. generate() drives
 * one; a batching server drives many, each from its own rows of a shared step.
 */
export class Sequence {
  readonly prompt: number[];
  readonly generated: number[] = [];
  text = '';
  stoppedBy: GenerateResult['stoppedBy'] = 'length';
  private readonly sampler: Sampler;
  private readonly decoder;
  private readonly stops: StopStrings;
  private readonly json: JsonObjectPrefix | undefined;
  private stopped = false;
  private ended = false;

  constructor(
    private readonly model: LoadedModel,
    private readonly o: GenerateOptions,
  ) {
    this.prompt = o.promptTokens ? checkPromptTokens(model, o.promptTokens) : encodePrompt(model, o);
    this.sampler = new Sampler(model.info.nVocab, o.sampling);
    for (const t of this.prompt) this.sampler.accept(t);
    this.decoder = model.tokenizer.streamDecoder();
    this.stops = new StopStrings(o.stop ?? []);
    this.json = o.json ? new JsonObjectPrefix(o.json === true ? undefined : o.json) : undefined;
  }

  /** Where the next token goes in the KV cache (the one next() returned). */
  get position(): number {
    return this.prompt.length + this.generated.length - 1;
  }

  /**
   * Given the logits after the last token fed: samples the next token and passes its text on.
   * Returns the token to feed at `position`, or undefined when the sequence has ended (end of
   * generation, a stop string, the length or the context reached, or its signal aborted).
   */
  next(logits: Float32Array): number | undefined {
    const next = this.pick(logits);
    return next === undefined ? undefined : this.deliver(next);
  }

  /**
   * next()'s first half: samples the next token and records it (`position` moves on), without
   * its text. Undefined when the sequence has ended (end of generation, the length reached
   * before, its signal aborted). A server posts the next step between the halves, so the text
   * and its writes to the client are not on the step's path.
   */
  pick(logits: Float32Array): number | undefined {
    const o = this.o;
    if (this.ended) return undefined;
    if (o.embed) {
      // The prompt's last row: the embedding is complete.
      const { pooling, into } = o.embed;
      if (pooling === 'last') into.set(logits.subarray(0, into.length));
      if (pooling === 'mean') for (let i = 0; i < into.length; i++) into[i]! /= this.prompt.length;
      return this.end('length');
    }
    if (this.generated.length >= o.maxTokens) return this.end('length');
    if (o.signal?.aborted) return this.end('aborted');
    const { tokenizer } = this.model;
    const json = this.json;
    // JSON mode: never an end-of-generation token (the object's close ends the sequence).
    const next = json
      ? this.sampler.sample(logits, (t) => !tokenizer.isEog(t) && json.allows(tokenizer.pieceBytes(t)))
      : this.sampler.sample(logits);
    json?.take(tokenizer.pieceBytes(next));
    this.sampler.accept(next);
    if ((o.stopAtEog ?? true) && this.model.tokenizer.isEog(next)) return this.end('eog');
    this.generated.push(next);
    if (o.logprobs) o.logprobs.into.push(logprobsOf(logits, next, o.logprobs.top));
    return next;
  }

  /**
   * Tokens that may be drafted after the one pick() returned (prompt lookup): as many as fit the
   * context after it and fall short of the length asked, so none is computed in vain.
   */
  get draftRoom(): number {
    return Math.min(this.model.ctx - 1 - this.position, this.o.maxTokens - this.generated.length - 1);
  }

  /** Whether the prompt's tokens are scored (logprobs.prompt): its steps return every row. */
  get scoresPrompt(): boolean {
    return (
      this.o.logprobs?.prompt !== undefined || (this.o.embed !== undefined && this.o.embed.pooling !== 'last')
    );
  }

  /** Whether its rows are hidden states (GenerateOptions.embed), not logits. */
  get embeds(): boolean {
    return this.o.embed !== undefined;
  }

  /**
   * The logits after prompt positions from, from + 1, …: each scores the prompt token that
   * follows it (the last position's row, if among them, is pick()'s and scores nothing here).
   */
  scorePrompt(rows: readonly Float32Array[], from: number): void {
    const embed = this.o.embed;
    if (embed) {
      // Hidden states of positions from…: the first one's (cls), or summed for the mean.
      const { into } = embed;
      for (let j = 0; j < rows.length && from + j < this.prompt.length; j++) {
        const row = rows[j]!;
        if (embed.pooling === 'cls') {
          if (from + j === 0) into.set(row.subarray(0, into.length));
        } else if (embed.pooling === 'mean') for (let i = 0; i < into.length; i++) into[i]! += row[i]!;
      }
      return;
    }
    const lp = this.o.logprobs;
    if (!lp?.prompt) return;
    for (let j = 0; j < rows.length && from + j + 1 < this.prompt.length; j++)
      lp.prompt.push(logprobsOf(rows[j]!, this.prompt[from + j + 1]!, lp.top));
  }

  /**
   * pick() after a step that fed drafted tokens behind the last one (prompt lookup): row i follows
   * the fed token and drafts 0…i-1, so it is this sequence's own while each draft before it was
   * the token chosen. Each pick that was its draft is delivered at once (the next row depends on
   * it, and its text may end the sequence). Returns the last pick, not yet delivered (undefined:
   * the sequence ended), and how many drafts were the tokens chosen (their KV positions now hold
   * this sequence's tokens).
   */
  pickDrafted(
    rows: readonly Float32Array[],
    draft: readonly number[],
  ): { token: number | undefined; taken: number } {
    let taken = 0;
    let token = this.pick(rows[0]!);
    while (token !== undefined && taken < draft.length && token === draft[taken] && !this.pickedLast) {
      taken++;
      if (this.deliver(token) === undefined) return { token: undefined, taken };
      token = this.pick(rows[taken]!);
    }
    return { token, taken };
  }

  /** Whether the token pick() returned ends the sequence whatever its text (length, context). */
  get pickedLast(): boolean {
    return (
      this.generated.length >= this.o.maxTokens || this.position >= this.model.ctx || !!this.json?.complete
    );
  }

  /**
   * next()'s second half: passes the picked token's text on. Returns it, or undefined when the
   * sequence has ended (a stop string, the length or the context reached).
   */
  deliver(token: number): number | undefined {
    if (this.ended) return undefined;
    this.emit(this.decoder.push(token));
    if (this.stopped || this.json?.complete) return this.end('stop');
    if (this.generated.length >= this.o.maxTokens) return this.end('length');
    if (this.position >= this.model.ctx) return this.end('context');
    return token;
  }

  /** Ends the sequence now (a client gone between two steps: 'aborted'). */
  end(why: GenerateResult['stoppedBy']): undefined {
    if (this.ended) return undefined;
    this.ended = true;
    this.stoppedBy = why;
    if (!this.stopped) this.emit(this.decoder.flush(), true);
    if (this.stopped) this.stoppedBy = 'stop'; // a stop string completed by the flush
    return undefined;
  }

  get done(): boolean {
    return this.ended;
  }

  result(promptSeconds: number, generateSeconds: number, perRank: RankTimings[]): GenerateResult {
    this.end(this.stoppedBy);
    return {
      promptTokens: this.prompt,
      generatedTokens: this.generated,
      text: this.text,
      stoppedBy: this.stoppedBy,
      timings: {
        promptTokens: this.prompt.length,
        promptSeconds,
        promptTokensPerSecond: this.prompt.length / promptSeconds,
        generatedTokens: this.generated.length,
        generateSeconds,
        generateTokensPerSecond: this.generated.length / generateSeconds,
        perRank,
      },
    };
  }

  // Text is passed on once no stop string can still begin in it; a stop string ends it there.
  private emit(s: string, final = false): void {
    if (this.stopped || (!s && !final)) return;
    const r = this.stops.push(s, final);
    if (r.text) {
      this.text += r.text;
      this.o.onText?.(r.text);
    }
    if (r.stopped) this.stopped = true;
  }
}

/**
 * Processes the prompt in batches, then samples one token at a time. `resume`: a sequence begun
 * on executors that were lost: its prompt and the tokens it has chosen so far are processed
 * again (rebuilding the KV cache), and it goes on from there.
 */
export async function generate(
  cluster: LocalCluster | ModelRunner,
  model: LoadedModel,
  o: GenerateOptions,
  resume?: Sequence,
): Promise<GenerateResult> {
  const runner = runnerOf(cluster);
  const seq = resume ?? new Sequence(model, o);
  const prompt = [...seq.prompt, ...seq.generated];
  const before = seq.generated.length;
  const perRank: RankTimings[] = Array.from({ length: runner.ranks }, (_, rank) => ({
    rank,
    computeSeconds: 0,
    exchangeSeconds: 0,
    allReduces: {},
  }));
  const account = (replies: ForwardReply[]) =>
    replies.forEach((r, rank) => {
      const p = perRank[rank]!;
      p.computeSeconds += r.computeSeconds;
      p.exchangeSeconds += r.exchangeSeconds;
      for (const [algo, n] of Object.entries(r.allReduces ?? {}))
        p.allReduces[algo] = (p.allReduces[algo] ?? 0) + n;
    });

  // At least the last prompt token is processed: its logits choose the first new token.
  const from = resume ? 0 : Math.max(0, Math.min(o.reuse ?? 0, prompt.length - 1));
  const t0 = performance.now();
  // One buffer for every step's logits (each is sampled before the next step).
  const row = new Float32Array(model.info.nVocab);
  let logits: Float32Array = new Float32Array();
  for (let i = from; i < prompt.length; i += PROMPT_BATCH) {
    const batch = prompt.slice(i, i + PROMPT_BATCH);
    const last = i + PROMPT_BATCH >= prompt.length;
    const r = await runner.forward(batch, i, last ? 'last' : 'none', true, row);
    account(r.replies);
    if (last) logits = r.logits;
  }
  const t1 = performance.now();
  const most = runner.step ? model.draftTokens : 0;
  const lookup = Math.max(0, Math.min(o.lookup ?? 0, most));
  const drafter: TokenDrafter | undefined =
    most && o.drafter ? o.drafter : lookup ? new Drafter(lookup) : undefined;
  const rows = drafter ? new Float32Array((most + 1) * model.info.nVocab) : row;
  // A drafter may outlive this call (a draft model's, across a conversation's turns): its counts
  // are reported from here on.
  const before0 = drafter && {
    drafted: drafter.drafted,
    accepted: drafter.accepted,
    model: drafter.modelTimings?.(),
  };
  let next = seq.next(logits);
  while (next !== undefined) {
    const room = Math.min(seq.draftRoom, most);
    const draft = (await drafter?.draft([...seq.prompt, ...seq.generated], room)) ?? [];
    if (!draft.length) {
      const r = await runner.forward([next], seq.position, 'last', true, row);
      account(r.replies);
      next = seq.next(r.logits);
      continue;
    }
    const count = 1 + draft.length;
    const r = await runner.step!(
      [next, ...draft],
      [{ slot: 0, pos: seq.position, count, logits: count }],
      rows,
    );
    account(r.replies);
    const { token, taken } = seq.pickDrafted(r.logits, draft);
    next = token === undefined ? undefined : seq.deliver(token);
    drafter!.taken(draft.length, taken);
  }
  const t2 = performance.now();
  const r = seq.result((t1 - t0) / 1e3, (t2 - t1) / 1e3, perRank);
  if (drafter && before0) {
    const now = drafter.modelTimings?.();
    Object.assign(r.timings, {
      drafted: drafter.drafted - before0.drafted,
      accepted: drafter.accepted - before0.accepted,
      ...(now && before0.model
        ? {
            draftModel: {
              ...now,
              steps: now.steps - before0.model.steps,
              seconds: now.seconds - before0.model.seconds,
            },
          }
        : {}),
    });
  }
  // This call's work: the tokens it processed and generated (a resumed one re-processes more).
  const t = r.timings;
  t.promptTokens = prompt.length - from;
  t.promptTokensPerSecond = t.promptTokens / t.promptSeconds;
  t.generateTokensPerSecond = (seq.generated.length - before) / t.generateSeconds;
  return r;
}
