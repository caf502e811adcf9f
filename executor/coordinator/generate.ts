// Running a model on the executors: the coordinator reads the GGUF header, plans which rank
// computes which heads, FFN slice and vocabulary rows, has every executor load its part from
// the file into its own node's memory, then drives generation: one Forward call per executor
// per step (a prompt batch or one token; every layer and all-reduce runs natively inside it),
// sampling the next token from rank 0's logits here.
import { readGguf } from '../../model/gguf/read.js';
import { describeModel, type ModelInfo } from '../../model/arch.js';
import { createTokenizer, type Tokenizer } from '../../model/tokenizer/index.js';
import { Sampler, type SamplingParams } from '../../model/sampling.js';
import { planModelSplit, type ModelSplit } from '../../planner/model-split.js';
import type { ForwardReply, LoadModelReply } from '../../transport/control.js';
import type { LocalCluster } from '../host/local-cluster.js';

/** Tokens per Forward call while processing a prompt (llama.cpp's default batch). */
export const PROMPT_BATCH = 512;

export interface ModelLoadOptions {
  path: string;
  /** Positions of KV cache (default: the model's context length, at most 4096). */
  ctx?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface RankTimings {
  rank: number;
  computeSeconds: number;
  exchangeSeconds: number;
}

export interface LoadedModel {
  info: ModelInfo;
  tokenizer: Tokenizer;
  split: ModelSplit;
  ctx: number;
  perRank: (LoadModelReply & { rank: number })[];
  seconds: number;
}

/** Reads the header, plans the split and loads every executor's part. */
export async function loadModel(cluster: LocalCluster, o: ModelLoadOptions): Promise<LoadedModel> {
  const started = performance.now();
  const gguf = readGguf(o.path);
  const info = describeModel(gguf);
  const tokenizer = createTokenizer(gguf.metadata);
  const ctx = o.ctx ?? Math.min(info.nCtxTrain, 4096);
  const split = planModelSplit(
    info,
    cluster.hellos.map(() => ({ rate: 1 })),
    { context: ctx },
  );
  // Joins every executor to the host's shared-memory group (the all-reduces run there).
  (await cluster.stage('model', 64)).close();
  const vocabPerRank = split.ranks.map((r) => r.vocab[1] - r.vocab[0]);
  let polling = true;
  const poll = (async () => {
    while (polling) {
      await new Promise((r) => setTimeout(r, 200));
      if (!polling) break;
      const ps = await Promise.all(
        cluster.clients.map((c) => c.loadProgress({}, 5000).catch(() => undefined)),
      );
      const done = Math.min(...ps.map((p) => p?.done ?? 0));
      o.onProgress?.(done, info.nLayer);
    }
  })();
  try {
    const replies = await cluster.guard(
      Promise.all(
        cluster.clients.map((c, rank) => {
          const r = split.ranks[rank]!;
          return c.loadModel({
            path: o.path,
            ctx,
            kvHeads: { lo: r.kvHeads[0], hi: r.kvHeads[1] },
            ff: { lo: r.ff[0], hi: r.ff[1] },
            vocab: { lo: r.vocab[0], hi: r.vocab[1] },
            vocabPerRank,
          });
        }),
      ),
    );
    o.onProgress?.(info.nLayer, info.nLayer);
    return {
      info,
      tokenizer,
      split,
      ctx,
      perRank: replies.map((r, rank) => ({ ...r, rank })),
      seconds: (performance.now() - started) / 1e3,
    };
  } finally {
    polling = false;
    await poll;
  }
}

/** One step on every executor: `tokens` at positions pos…; returns rank 0's logits. */
export async function forward(
  cluster: LocalCluster,
  tokens: number[],
  pos: number,
  logits: 'last' | 'all' | 'none' = 'last',
): Promise<{ logits: Float32Array; replies: ForwardReply[] }> {
  const replies = await cluster.guard(
    Promise.all(cluster.clients.map((c, rank) => c.forward({ tokens, pos, logits, sendLogits: rank === 0 }))),
  );
  const bytes = replies[0]!.logits;
  // The reply's bytes may sit unaligned inside a larger buffer: copy into an aligned one.
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return { logits: out, replies };
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
  /** Called with each piece of text as soon as it is complete UTF-8. */
  onText?: (text: string) => void;
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
}

export interface GenerateResult {
  promptTokens: number[];
  generatedTokens: number[];
  text: string;
  stoppedBy: 'eog' | 'length' | 'context';
  timings: GenerateTimings;
}

/** The prompt's tokens; throws when they are none or do not fit the context. */
export function encodePrompt(model: LoadedModel, o: Pick<GenerateOptions, 'prompt' | 'addBos'>): number[] {
  const { tokenizer } = model;
  const tokens = tokenizer.encode(o.prompt, { addBos: o.addBos ?? tokenizer.addBos, parseSpecial: true });
  if (tokens.length === 0) throw new Error('the prompt is empty: give at least one token of text');
  if (tokens.length >= model.ctx) {
    throw new Error(
      `the prompt is ${tokens.length} tokens but the context holds ${model.ctx}: use a larger --ctx or a shorter prompt`,
    );
  }
  return tokens;
}

/** Processes the prompt in batches, then samples one token at a time. */
export async function generate(
  cluster: LocalCluster,
  model: LoadedModel,
  o: GenerateOptions,
): Promise<GenerateResult> {
  const { tokenizer } = model;
  const promptTokens = encodePrompt(model, o);
  const perRank: RankTimings[] = cluster.clients.map((_, rank) => ({
    rank,
    computeSeconds: 0,
    exchangeSeconds: 0,
  }));
  const account = (replies: ForwardReply[]) =>
    replies.forEach((r, rank) => {
      perRank[rank]!.computeSeconds += r.computeSeconds;
      perRank[rank]!.exchangeSeconds += r.exchangeSeconds;
    });

  const t0 = performance.now();
  let logits: Float32Array = new Float32Array();
  for (let i = 0; i < promptTokens.length; i += PROMPT_BATCH) {
    const batch = promptTokens.slice(i, i + PROMPT_BATCH);
    const last = i + PROMPT_BATCH >= promptTokens.length;
    const r = await forward(cluster, batch, i, last ? 'last' : 'none');
    account(r.replies);
    if (last) logits = r.logits;
  }
  const t1 = performance.now();

  const sampler = new Sampler(model.info.nVocab, o.sampling);
  for (const t of promptTokens) sampler.accept(t);
  const generated: number[] = [];
  const decoder = tokenizer.streamDecoder();
  let text = '';
  const emit = (s: string) => {
    if (!s) return;
    text += s;
    o.onText?.(s);
  };
  let stoppedBy: GenerateResult['stoppedBy'] = 'length';
  let pos = promptTokens.length;
  while (generated.length < o.maxTokens) {
    const next = sampler.sample(logits);
    sampler.accept(next);
    if ((o.stopAtEog ?? true) && tokenizer.isEog(next)) {
      stoppedBy = 'eog';
      break;
    }
    generated.push(next);
    emit(decoder.push(next));
    if (generated.length >= o.maxTokens) break;
    if (pos >= model.ctx) {
      stoppedBy = 'context';
      break;
    }
    const r = await forward(cluster, [next], pos, 'last');
    account(r.replies);
    logits = r.logits;
    pos++;
  }
  emit(decoder.flush());
  const t2 = performance.now();
  const promptSeconds = (t1 - t0) / 1e3;
  const generateSeconds = (t2 - t1) / 1e3;
  return {
    promptTokens,
    generatedTokens: generated,
    text,
    stoppedBy,
    timings: {
      promptTokens: promptTokens.length,
      promptSeconds,
      promptTokensPerSecond: promptTokens.length / promptSeconds,
      generatedTokens: generated.length,
      generateSeconds,
      generateTokensPerSecond: generated.length / generateSeconds,
      perRank,
    },
  };
}
