// llama.cpp as the reference for `redblue generate`: tokens, next-token scores, greedy text and
// speed, through node-llama-cpp 3.21.1 (its prebuilt linux-x64 binary, CPU only, never built).
//  1. tokenize/detokenize: llama.cpp's own tokenizer (common_tokenize with add_special = false:
//     BOS is never added for us; pass addBos or prepend `bos`).
//  2. logProbs: node-llama-cpp exposes no raw logits. controlledEvaluate with
//     generateNext.probabilities at a position, at temperature 0 (a chain of only llama.cpp's
//     greedy sampler, which reorders nothing), returns softmax(logits) over the whole vocabulary,
//     computed by the addon in f32 (expf(l − max) / sum). We return log(p) = logit − logsumexp:
//     the logits up to one constant per position, so differences, argmax and any softmax are
//     exact to f32 rounding. A probability below ~1e-45 underflows to 0 and reads −Infinity.
//  3. greedy: evaluate() at temperature 0, past end-of-generation tokens (yieldEogToken).
//     samplerDistribution: the same controlledEvaluate with llama.cpp's sampler options; the
//     candidates left after its chain and their probabilities (what model/sampling.ts must match).
//  4. bench: llama-bench's pp and tg on one sequence from an empty cache, a warm-up run first,
//     mean ± sd of per-run tokens/s. The context is made with the thread count given (exactly:
//     Llama maxThreads 0) and batch = ubatch (node-llama-cpp sets n_ubatch = n_batch).
//  5. settings: what llama.cpp resolved, read from its own log lines (flash attention "auto" →
//     enabled or disabled, K/V cache types, n_batch, n_ubatch, n_ctx), since the JS API reports
//     only what was asked for.
import type {
  GgmlType,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaModel,
  Token,
} from 'node-llama-cpp';
import { UsageError } from '../common/errors.js';
import { resolveSamplingParams, type SamplingParams } from '../model/sampling.js';

export type KvCacheType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0';

export interface ReferenceOptions {
  /** Threads for prompt and generation, used exactly. */
  threads: number;
  /** Context size in tokens (llama.cpp may round it up to a multiple of 256). */
  ctx: number;
  /** n_batch = n_ubatch; default min(512, ctx), as llama-bench's ubatch. */
  batch?: number;
  /** Default 'auto', which llama.cpp resolves (on CPU: enabled). */
  flashAttention?: boolean | 'auto';
  /** K and V cache type; default llama.cpp's f16. node-llama-cpp calls the option experimental. */
  kvCache?: KvCacheType;
}

/** What llama.cpp reports it is doing; undefined where its log did not say. */
export interface ReferenceSettings {
  threads: number;
  ctx: number | undefined;
  batch: number | undefined;
  ubatch: number | undefined;
  flashAttentionRequested: string | undefined;
  flashAttention: boolean | undefined;
  kvCacheK: string | undefined;
  kvCacheV: string | undefined;
  /** llama.cpp's system info line (CPU features it was built for). */
  system: string;
}

export interface Rate {
  /** Tokens per second, mean and sample standard deviation over the runs. */
  mean: number;
  sd: number;
  runs: number[];
}

export interface LlamaReference {
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly settings: ReferenceSettings;
  /** `special`: text like "<s>" becomes the special token. `addBos`: prepend BOS if the model wants it. */
  tokenize(text: string, special: boolean, addBos?: boolean): number[];
  /** `special`: special tokens are written out ("<s>") rather than dropped. */
  detokenize(ids: readonly number[], special?: boolean): string;
  /**
   * Full-vocabulary log-probabilities of the next token after each position of `tokens`
   * (`positions: 'last'`: the last only). From a cleared sequence, or, with `append`, after the
   * tokens already evaluated (the KV cache is reused).
   */
  logProbs(
    tokens: readonly number[],
    opts?: { positions?: 'all' | 'last'; append?: boolean },
  ): Promise<Float32Array[]>;
  /**
   * llama.cpp's own sampler chain (top-k → top-p → min-p → temperature → dist, penalties first)
   * at the last position: the tokens it may draw and their probabilities, from a cleared
   * sequence. `penaltyTokens`: the history the penalties see (the last repeatLastN are used).
   * temperature must be > 0 (at 0 llama.cpp's chain is greedy alone and returns every token).
   */
  samplerDistribution(
    tokens: readonly number[],
    params: Partial<SamplingParams> & { seed: number },
    penaltyTokens?: readonly number[],
  ): Promise<Map<number, number>>;
  /** `n` tokens continuing `tokens` by argmax, from a cleared sequence. */
  greedy(tokens: readonly number[], n: number): Promise<number[]>;
  /**
   * llama.cpp's embedding of `tokens` (node-llama-cpp's embedding context, one of its own made at
   * the first call and kept): pooled as the file's pooling_type says, the last position's hidden state when it says
   * none; not normalized. node-llama-cpp prepends BOS when `tokens` do not begin with it.
   */
  embedding(tokens: readonly number[]): Promise<Float32Array>;
  /**
   * llama-bench's ppN and tgN: `reps` timed runs after one warm-up; with `depth`, both from a
   * context of that many tokens (llama-bench's -d), evaluated once, untimed.
   */
  bench(opts: { pp: number; tg: number; reps: number; depth?: number }): Promise<{ pp: Rate; tg: Rate }>;
  close(): Promise<void>;
}

// node-llama-cpp is loaded when a reference is first opened, not with the module: every
// `redblue` command imports the bench commands, and loading llama.cpp's bindings took about half
// of the CLI's start-up.
type NodeLlamaCpp = typeof import('node-llama-cpp');
let nodeLlamaCpp: Promise<NodeLlamaCpp> | undefined;
const loadNodeLlamaCpp = (): Promise<NodeLlamaCpp> => (nodeLlamaCpp ??= import('node-llama-cpp'));

function kvType(nlc: NodeLlamaCpp, t: KvCacheType): GgmlType {
  const types: Record<KvCacheType, GgmlType> = {
    f32: nlc.GgmlType.F32,
    f16: nlc.GgmlType.F16,
    bf16: nlc.GgmlType.BF16,
    q8_0: nlc.GgmlType.Q8_0,
    q4_0: nlc.GgmlType.Q4_0,
  };
  return types[t];
}

function positiveInt(name: string, v: number, fix: string): void {
  if (!Number.isSafeInteger(v) || v < 1)
    throw new UsageError(`${name} must be a whole number of at least 1, got ${v}; ${fix}`);
}

// One Llama per process, shared by every opening: the addon's logger is process-wide, and a
// second Llama alongside the first leaves llama.cpp logging to the console.
let shared: { llama: Promise<Llama>; users: number } | undefined;
let logSink: string[] | undefined;
let openQueue: Promise<unknown> = Promise.resolve();

async function acquireLlama(): Promise<Llama> {
  const { getLlama, LlamaLogLevel } = await loadNodeLlamaCpp();
  shared ??= {
    users: 0,
    llama: getLlama({
      gpu: false,
      build: 'never',
      progressLogs: false,
      maxThreads: 0, // a context's thread count is then used exactly, not as a hint
      // Info lines are kept only while opening, to read the settings llama.cpp resolved.
      logLevel: LlamaLogLevel.info,
      logger: (level, message) => {
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) {
          process.stderr.write(`llama.cpp: ${message}\n`);
        } else if (logSink && /llama_context:|llama_kv_cache:|Flash Attention/.test(message)) {
          logSink.push(message);
        }
      },
    }),
  };
  const s = shared;
  s.users++;
  try {
    return await s.llama;
  } catch (err) {
    if (--s.users === 0 && shared === s) shared = undefined;
    throw err;
  }
}

/**
 * Whether to keep the Llama once loaded until the process ends, instead of disposing it when its
 * last reference closes: loading it costs about 0.5 s, and a test file opens dozens of references
 * one after another. The tests' setup file (test/helpers/keep-llama.ts) asks for it with a mark on
 * the global object rather than a call, so that it need not import this module (its imports cost
 * each of 87 test files 0.2 s).
 */
function keptLoaded(): boolean {
  return (globalThis as Record<symbol, unknown>)[Symbol.for('redblue.keepLlamaLoaded')] === true;
}

async function releaseLlama(): Promise<void> {
  const s = shared;
  if (s === undefined || --s.users > 0 || keptLoaded()) return;
  shared = undefined;
  await (await s.llama).dispose();
}

export async function openReference(modelPath: string, options: ReferenceOptions): Promise<LlamaReference> {
  positiveInt('threads', options.threads, 'give --threads');
  positiveInt('ctx', options.ctx, 'give the context size in tokens');
  const batch = options.batch ?? Math.min(512, options.ctx);
  positiveInt('batch', batch, 'give the batch size in tokens');

  const llama = await acquireLlama();
  const log: string[] = [];
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  let sequence: LlamaContextSequence | undefined;
  const closeAll = async (): Promise<void> => {
    await sequence?.dispose();
    await context?.dispose();
    await model?.dispose();
    await releaseLlama();
  };
  // One opening at a time, so that the log lines read for `settings` are this opening's.
  const opened = openQueue.then(async () => {
    logSink = log;
    try {
      model = await llama.loadModel({ modelPath, gpuLayers: 0 });
      context = await model.createContext({
        contextSize: options.ctx,
        batchSize: batch,
        sequences: 1,
        threads: { ideal: options.threads, min: options.threads },
        flashAttention: options.flashAttention ?? 'auto',
        ...(options.kvCache === undefined
          ? {}
          : {
              experimentalKvCacheKeyType: kvType(await loadNodeLlamaCpp(), options.kvCache),
              experimentalKvCacheValueType: kvType(await loadNodeLlamaCpp(), options.kvCache),
            }),
      });
      sequence = context.getSequence();
      // The addon delivers log lines to JS asynchronously (a thread-safe function), so the last
      // ones may come after createContext resolves: wait for them, briefly.
      const complete = (): boolean =>
        log.some((l) => /Flash Attention (enabled|disabled)|flash_attn\s+=\s+(enabled|disabled)/i.test(l)) &&
        log.some((l) => /llama_kv_cache: size/.test(l));
      for (let waited = 0; !complete() && waited < 2000; waited += 10) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      logSink = undefined;
    }
  });
  openQueue = opened.catch(() => undefined);
  try {
    await opened;
  } catch (err) {
    await closeAll();
    throw err;
  }
  if (model === undefined || sequence === undefined)
    throw new Error('unreachable: opened without a sequence');
  const m = model;
  const seq = sequence;
  // llama.cpp's n_vocab is the tokenizer's token count (the rows of token_embd).
  const tokenList = (m.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: readonly string[] } } })
    .tokenizer?.ggml?.tokens;
  const embd = m.fileInfo.tensorInfo?.find((t) => t.name === 'token_embd.weight');
  const vocabSize = tokenList?.length ?? Number(embd?.dimensions[1] ?? 0);
  if (!(vocabSize > 0)) {
    await closeAll();
    throw new Error(`${modelPath}: llama.cpp reports no vocabulary size`);
  }

  const settings = readSettings(log, seq.context.currentThreads, llama.systemInfo);

  const checkTokens = (tokens: readonly number[]): void => {
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
        throw new RangeError(`token ${t} is outside the vocabulary (0..${vocabSize - 1})`);
      }
    }
  };
  const checkFits = (n: number): void => {
    if (n > seq.contextSize) {
      throw new RangeError(
        `${n} tokens do not fit the context of ${seq.contextSize}; open with a larger ctx`,
      );
    }
  };

  const logProbs = async (
    tokens: readonly number[],
    opts: { positions?: 'all' | 'last'; append?: boolean } = {},
  ): Promise<Float32Array[]> => {
    if (tokens.length === 0) throw new RangeError('logProbs needs at least one token');
    checkTokens(tokens);
    if (!opts.append) await seq.clearHistory();
    const at = seq.nextTokenIndex;
    checkFits(at + tokens.length);
    const all = (opts.positions ?? 'all') === 'all';
    const input = tokens.map((t, i) =>
      all || i === tokens.length - 1
        ? ([t as Token, { generateNext: { probabilities: true } }] as const)
        : (t as Token),
    );
    const out = await seq.controlledEvaluate(
      input as Parameters<LlamaContextSequence['controlledEvaluate']>[0],
    );
    const result: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i++) {
      if (!all && i < tokens.length - 1) continue;
      const probs = out[i]?.next.probabilities;
      if (probs === undefined || probs.size !== vocabSize) {
        throw new Error(
          `llama.cpp returned ${probs?.size ?? 'no'} probabilities at position ${at + i}, not ${vocabSize}`,
        );
      }
      const lp = new Float32Array(vocabSize);
      for (const [id, p] of probs) lp[id] = Math.log(p);
      result.push(lp);
    }
    return result;
  };

  const samplerDistribution = async (
    tokens: readonly number[],
    given: Partial<SamplingParams> & { seed: number },
    penaltyTokens: readonly number[] = [],
  ): Promise<Map<number, number>> => {
    const p = resolveSamplingParams(given);
    if (p.temperature === 0) throw new RangeError('samplerDistribution needs temperature > 0');
    if (tokens.length === 0) throw new RangeError('samplerDistribution needs at least one token');
    checkTokens(tokens);
    checkTokens(penaltyTokens);
    checkFits(tokens.length);
    await seq.clearHistory();
    // node-llama-cpp widens the penalty window to the tokens given: give it only the last N.
    const window = p.repeatLastN > 0 ? penaltyTokens.slice(-p.repeatLastN) : [];
    const options = {
      temperature: p.temperature,
      topK: p.topK,
      topP: p.topP,
      minP: p.minP,
      seed: p.seed,
      ...(window.length > 0
        ? {
            repeatPenalty: {
              punishTokens: window as Token[],
              maxPunishTokens: p.repeatLastN,
              penalty: p.repeatPenalty,
              frequencyPenalty: p.frequencyPenalty,
              presencePenalty: p.presencePenalty,
            },
          }
        : {}),
    };
    const input = [
      ...(tokens.slice(0, -1) as Token[]),
      [tokens.at(-1) as Token, { generateNext: { probabilities: true, options } }] as const,
    ];
    const out = await seq.controlledEvaluate(
      input as Parameters<LlamaContextSequence['controlledEvaluate']>[0],
    );
    const probs = out.at(-1)?.next.probabilities;
    if (probs === undefined) throw new Error('llama.cpp returned no probabilities');
    return new Map([...probs].sort((a, b) => a[0] - b[0]));
  };

  const greedy = async (tokens: readonly number[], n: number): Promise<number[]> => {
    if (tokens.length === 0) throw new RangeError('greedy needs at least one prompt token (BOS will do)');
    positiveInt('n', n, 'ask for at least one token');
    checkTokens(tokens);
    checkFits(tokens.length + n);
    await seq.clearHistory();
    const out: number[] = [];
    for await (const t of seq.evaluate(tokens as Token[], { temperature: 0, yieldEogToken: true })) {
      out.push(t);
      if (out.length === n) break;
    }
    return out;
  };

  // Made at the first embedding and kept (a bench times the calls after it), closed with the rest.
  let embedder: Promise<LlamaEmbeddingContext> | undefined;
  const embedding = async (tokens: readonly number[]): Promise<Float32Array> => {
    if (tokens.length === 0) throw new RangeError('an embedding needs at least one token');
    checkTokens(tokens);
    checkFits(tokens.length + 1);
    embedder ??= m.createEmbeddingContext({
      contextSize: options.ctx,
      batchSize: batch,
      threads: options.threads,
    });
    const ec = await embedder;
    return Float32Array.from((await ec.getEmbeddingFor(tokens as Token[])).vector);
  };

  const bench = async (opts: {
    pp: number;
    tg: number;
    reps: number;
    depth?: number;
  }): Promise<{ pp: Rate; tg: Rate }> => {
    positiveInt('pp', opts.pp, 'give the prompt length to time');
    positiveInt('tg', opts.tg, 'give the number of tokens to generate');
    positiveInt('reps', opts.reps, 'give the number of timed runs');
    const depth = opts.depth ?? 0;
    if (!Number.isSafeInteger(depth) || depth < 0)
      throw new UsageError(`depth must be a whole number of at least 0, got ${depth}`);
    checkFits(depth + Math.max(opts.pp, opts.tg + 1));
    // llama-bench's prompt: BOS, then arbitrary tokens (fixed here, so every run is the same work).
    const arbitrary = (n: number, seed: number, bos: boolean): Token[] => {
      const out: Token[] = [];
      let x = seed;
      for (let i = 0; i < n; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        out.push((i === 0 && bos && m.tokens.bos !== null ? m.tokens.bos : x % vocabSize) as Token);
      }
      return out;
    };
    const context = arbitrary(depth, 54321, true);
    const prompt = arbitrary(opts.pp, 12345, depth === 0);
    const start = (m.tokens.bos ?? prompt[1] ?? 0) as Token;
    // Back to the context at depth: everything after it dropped (the cache's first `depth`
    // positions are kept, so the context is evaluated once).
    const reset = async () => {
      if (depth === 0) await seq.clearHistory();
      else await seq.eraseContextTokenRanges([{ start: depth, end: seq.nextTokenIndex }]);
    };
    await seq.clearHistory();
    if (depth) await seq.evaluateWithoutGeneratingNewTokens(context);
    const ppRuns: number[] = [];
    const tgRuns: number[] = [];
    for (let r = 0; r <= opts.reps; r++) {
      await reset();
      let t0 = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(prompt);
      const ppSeconds = (performance.now() - t0) / 1000;
      // tg: one token per step after the context, each step's logits computed and argmax'd.
      await reset();
      let made = 0;
      t0 = performance.now();
      for await (const _ of seq.evaluate([start], { temperature: 0, yieldEogToken: true })) {
        if (++made === opts.tg) break;
      }
      const tgSeconds = (performance.now() - t0) / 1000;
      if (r === 0) continue; // warm-up, as llama-bench
      ppRuns.push(opts.pp / ppSeconds);
      tgRuns.push(opts.tg / tgSeconds);
    }
    await seq.clearHistory();
    return { pp: rate(ppRuns), tg: rate(tgRuns) };
  };

  let closed = false;
  return {
    vocabSize,
    bos: m.tokens.bos ?? undefined,
    eos: m.tokens.eos ?? undefined,
    settings,
    tokenize: (text, special, addBos = false) => {
      const ids = m.tokenize(text, special) as number[];
      return addBos && m.tokens.bos !== null && m.tokens.shouldPrependBosToken ? [m.tokens.bos, ...ids] : ids;
    },
    detokenize: (ids, special = false) => m.detokenize(ids as Token[], special),
    logProbs,
    samplerDistribution,
    greedy,
    embedding,
    bench,
    close: async () => {
      if (closed) return;
      closed = true;
      await (await embedder?.catch(() => undefined))?.dispose();
      await closeAll();
    },
  };
}

function rate(runs: number[]): Rate {
  const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
  const sd =
    runs.length > 1 ? Math.sqrt(runs.reduce((a, b) => a + (b - mean) ** 2, 0) / (runs.length - 1)) : 0;
  return { mean, sd, runs };
}

// llama.cpp's info lines, e.g. "llama_context: n_ubatch = 512", "llama_context: flash_attn = auto",
// "resolve_fused_ops: Flash Attention enabled", "llama_kv_cache: size = ... K (f16): ..., V (f16): ...".
function readSettings(log: string[], threads: number, system: string): ReferenceSettings {
  const num = (key: string): number | undefined => {
    for (const line of log) {
      const m = new RegExp(`llama_context:\\s+${key}\\s+=\\s+(\\d+)`).exec(line);
      if (m) return Number(m[1]);
    }
    return undefined;
  };
  let flashAttention: boolean | undefined;
  let flashAttentionRequested: string | undefined;
  let kvCacheK: string | undefined;
  let kvCacheV: string | undefined;
  for (const line of log) {
    const fa = /Flash Attention (enabled|disabled)/i.exec(line);
    if (fa) flashAttention = fa[1]!.toLowerCase() === 'enabled';
    const req = /llama_context:\s+flash_attn\s+=\s+(\S+)/.exec(line);
    if (req) flashAttentionRequested = req[1];
    // An explicit setting is not "resolved" again in the log.
    if (req?.[1] === 'enabled' || req?.[1] === 'disabled') flashAttention ??= req[1] === 'enabled';
    const kv = /K \((\w+)\):.*V \((\w+)\):/.exec(line);
    if (kv) {
      kvCacheK = kv[1];
      kvCacheV = kv[2];
    }
  }
  return {
    threads,
    ctx: num('n_ctx'),
    batch: num('n_batch'),
    ubatch: num('n_ubatch'),
    flashAttentionRequested,
    flashAttention,
    kvCacheK,
    kvCacheV,
    system: system.trim(),
  };
}
