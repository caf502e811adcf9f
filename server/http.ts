// The HTTP side of `redblue serve`: the OpenAI routes, server-sent events, the API key, the
// metrics, and the batcher in front of the model (batcher.ts): each request takes a KV slot and
// is decoded together with the others; one whose client goes away leaves the queue, or frees its
// slot before the next step.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ChatTemplate } from '../model/chat.js';
import type { LoadedModel, ModelRunner, TokenDrafter } from '../executor/coordinator/generate.js';
import { UsageError } from '../common/errors.js';
import { Batcher } from './batcher.js';
import {
  ApiError,
  chatJob,
  chatLogprobs,
  chatReply,
  chunk,
  completionJob,
  completionLogprobs,
  completionReply,
  detokenizeJob,
  echoLogprobs,
  embeddingJob,
  type EmbeddingJob,
  endOffset,
  usage,
  type FinishReason,
  type Job,
  type Logprobs,
  type ReplyIds,
  tokenizeJob,
  usageChunk,
} from './openai.js';
import type { TokenLogprob } from '../model/sampling.js';
import {
  ForcedCallStream,
  parseToolCalls,
  ToolCallHoldback,
  type ParsedCall,
  type ToolCall,
} from '../model/tool-calls.js';
import { Metrics } from './metrics.js';

export interface ServeOptions {
  runner: ModelRunner;
  model: LoadedModel;
  chat: ChatTemplate;
  /** The name /v1/models lists and replies carry. */
  modelName: string;
  host: string;
  port: number;
  /** A server already listening (listenWhileLoading): it takes over its requests. */
  listening?: Server;
  apiKey?: string;
  /** Prompt tokens per step while other streams decode (default 64). */
  prefillChunk?: number;
  /** Prompt lookup: tokens a decoding stream may draft a step (the model loaded with as many). */
  lookup?: number;
  /** With lookup: draft from earlier requests' texts too (BatcherOptions.lookupShared). */
  lookupShared?: boolean;
  /** A draft model's drafter for a stream decoding alone (BatcherOptions.modelDrafter). */
  modelDrafter?: TokenDrafter;
  log?: (line: string) => void;
}

export interface RunningServer {
  server: Server;
  port: number;
  metrics: Metrics;
  /** Stops taking requests, lets the running and queued ones finish, then resolves. */
  drain(): Promise<void>;
}

const MAX_BODY = 4 << 20;

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, `the request body is over ${MAX_BODY >> 20} MiB`));
        req.destroy();
        return;
      }
      parts.push(d);
    });
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      try {
        resolve(text ? JSON.parse(text) : {});
      } catch (e) {
        reject(
          new ApiError(400, `the request body is not JSON: ${e instanceof Error ? e.message : String(e)}`),
        );
      }
    });
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

/**
 * An HTTP server listening on host:port with no routes yet. A port that cannot be had is a usage
 * error naming the fix (EADDRINUSE: another server; EACCES: a port below 1024).
 */
export async function listen(host: string, port: number): Promise<Server> {
  const server = createServer();
  // Clients (the OpenAI SDKs, undici) keep a connection open for the server's advertised
  // Keep-Alive timeout less a margin. Node's 5 s default lets a client that paused a few seconds
  // between requests send into a socket the server is closing ("other side closed"); a minute
  // covers a script's pauses, and idle connections still close at once on shutdown.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000; // must exceed keepAliveTimeout
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const at = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      const why: Record<string, string> = {
        EADDRINUSE: `${at} is in use (another server, or another redblue serve): choose another --port, or --port 0 for any free one`,
        EACCES: `${at}: this user may not listen on port ${port} (ports below 1024 need root): choose a --port of 1024 or more`,
        EADDRNOTAVAIL: `${host} is not an address of this machine: give one of its addresses to --host, or 127.0.0.1`,
      };
      reject(e.code && why[e.code] ? new UsageError(why[e.code]) : e);
    });
    server.listen(port, host, () => resolve());
  });
  return server;
}

/**
 * listen(), answering while the model loads: GET /health 503 {"status":"loading"} (as
 * llama-server does, so a supervisor can wait on it), any other route 503 with an OpenAI-style
 * error. A port that cannot be had fails before anything loads; startServer takes the server over.
 */
export async function listenWhileLoading(host: string, port: number): Promise<Server> {
  const server = await listen(host, port);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if ((req.url ?? '/').split('?')[0] === '/health') return sendJson(res, 503, { status: 'loading' });
    const loading = new ApiError(
      503,
      'the model is loading: try again when GET /health says ok',
      null,
      'unavailable_error',
    );
    sendJson(res, 503, loading.body());
  });
  return server;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const metrics = new Metrics(o.runner.ranks);
  const log = o.log ?? (() => undefined);
  const batcher = new Batcher({
    runner: o.runner,
    model: o.model,
    ...(o.prefillChunk ? { prefillChunk: o.prefillChunk } : {}),
    onStep: (replies, tokens, sequences) => metrics.step(replies, tokens, sequences),
    ...(o.lookup ? { lookup: o.lookup } : {}),
    ...(o.lookup || o.modelDrafter ? { onDrafts: (d: number, a: number) => metrics.drafts(d, a) } : {}),
    ...(o.lookupShared ? { lookupShared: true } : {}),
    ...(o.modelDrafter ? { modelDrafter: o.modelDrafter } : {}),
  });
  metrics.slots = batcher.slots;
  let draining = false;
  const want = o.apiKey ? Buffer.from(`Bearer ${o.apiKey}`) : undefined;

  const authorised = (req: IncomingMessage): boolean => {
    if (!want) return true;
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  };

  /**
   * One prompt's or input's tokens (text tokenized with BOS where the model asks; ids as they
   * are), checked against the vocabulary and the context: a 400 naming `which` and `param`.
   */
  const checkedTokens = (src: string | number[], which: string, param: string, parseSpecial: boolean) => {
    const { tokenizer } = o.model;
    const tokens =
      typeof src === 'string' ? tokenizer.encode(src, { addBos: tokenizer.addBos, parseSpecial }) : src;
    const outside = tokens.find((t) => t >= o.model.info.nVocab);
    if (outside !== undefined)
      throw new ApiError(
        400,
        `${which}: token ${outside} is outside the vocabulary (ids 0-${o.model.info.nVocab - 1})`,
        param,
      );
    if (tokens.length === 0) throw new ApiError(400, `${which} is empty`, param);
    if (tokens.length >= o.model.ctx)
      throw new ApiError(
        400,
        `${which} is ${tokens.length} tokens but the context holds ${o.model.ctx} (serve --ctx sets it)`,
        param,
      );
    return tokens;
  };

  /** Each prompt's tokens, checked against the vocabulary and the context (chat: one prompt). */
  const promptsOf = (job: Job): number[][] => {
    const param = job.kind === 'chat' ? 'messages' : 'prompt';
    // A chat template writes BOS itself when the model wants it; a plain prompt gets the file's default.
    const sources =
      job.kind === 'chat' ? [o.chat.tokens(job.messages!, undefined, job.tools?.specs)] : job.prompts!;
    return sources.map((src, p) => {
      const which = sources.length > 1 ? `prompt ${p}` : 'the prompt';
      const tokens = checkedTokens(src, which, param, true);
      if (job.maxTokens !== undefined && tokens.length + job.maxTokens > o.model.ctx)
        throw new ApiError(
          400,
          `${which} (${tokens.length} tokens) and max_tokens (${job.maxTokens}) exceed the context of ${o.model.ctx} tokens`,
          'max_tokens',
        );
      return tokens;
    });
  };

  const complete = async (res: ServerResponse, job: Job, endpoint: string) => {
    const prompts = promptsOf(job);
    const biased = job.sampling.logitBias?.find(([t]) => t >= o.model.info.nVocab);
    if (biased)
      throw new ApiError(
        400,
        `logit_bias names token ${biased[0]}, outside the vocabulary (ids 0-${o.model.info.nVocab - 1})`,
        'logit_bias',
      );
    const ids: ReplyIds = {
      id: `${job.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`,
      created: Math.floor(Date.now() / 1000),
      model: o.modelName,
    };
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const sse = (body: unknown) => res.write(`data: ${JSON.stringify(body)}\n\n`);
    if (job.stream) {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        // No connection header of our own: Node keeps HTTP/1.1 connections alive by default and
        // closes them after the stream when the client asked for that (`connection: close`).
      });
      if (job.kind === 'chat')
        for (let i = 0; i < job.n; i++) sse(chunk('chat', ids, { first: true }, null, i));
    }
    // Choice i samples with seed + i (past 2^53 - 1 from 0 again): a seeded request gives the
    // same choices every time, and its choice i is the same request's with seed + i and n = 1.
    const seed = job.sampling.seed ?? Math.floor(Math.random() * 2 ** 32);
    const seedOf = (i: number) =>
      i <= Number.MAX_SAFE_INTEGER - seed ? seed + i : i - (Number.MAX_SAFE_INTEGER - seed) - 1;
    // Prompt p's choice j is choice p·k + j (k = n, or best_of candidates). A prompt's choices
    // after its first join once that one's prompt is in, and take its slot's cache of the prompt
    // instead of computing it again (Batcher.admit); the prompts run side by side.
    const n = job.n;
    const k = job.bestOf ?? n;
    const choice = (p: number, j: number, promptIn?: () => void) => {
      const index = p * k + j;
      const prompt = prompts[p]!;
      // Log-probabilities: the sequence appends one entry a token it picks; each chunk takes
      // those not sent yet (a token's entry may precede its text, which a stop string can hold
      // back). An echoed prompt is scored once, by its first choice. best_of ranks candidates
      // by them, asked for or not.
      const lp =
        job.logprobs !== undefined || job.bestOf !== undefined
          ? {
              top: job.logprobs ?? 0,
              into: [] as TokenLogprob[],
              ...(job.echo && j === 0 ? { prompt: [] as TokenLogprob[] } : {}),
            }
          : undefined;
      let sent = 0;
      let offset = 0;
      // With tools, what may begin a call is held until the answer ends (then: its calls); a
      // forced call (the answer is the call, valid JSON, its name first) streams its arguments
      // as they come.
      const forced = job.tools?.forced && job.stream ? new ForcedCallStream() : undefined;
      const held = job.tools && job.stream && !forced ? new ToolCallHoldback() : undefined;
      const callId = forced ? `call_${randomBytes(12).toString('hex')}` : '';
      const onText = (text: string) => {
        if (forced) {
          for (const p of forced.push(text))
            sse(
              chunk(
                job.kind,
                ids,
                { call: { ...p, ...(p.name !== undefined ? { id: callId } : {}) } },
                logprobs(),
                index,
              ),
            );
          return;
        }
        const out = held ? held.push(text) : text;
        if (out) sse(chunk(job.kind, ids, { text: out }, logprobs(), index));
      };
      const logprobs = (): Logprobs => {
        if (!lp) return null;
        const part = lp.into.slice(sent);
        sent = lp.into.length;
        if (job.kind === 'chat') return chatLogprobs(part, o.model.tokenizer);
        const r = completionLogprobs(part, o.model.tokenizer, offset);
        offset = endOffset(r, offset);
        return r;
      };
      return batcher
        .submit(
          {
            prompt: '',
            promptTokens: prompt,
            maxTokens: job.maxTokens ?? o.model.ctx - prompt.length,
            sampling: { ...job.sampling, seed: seedOf(j) },
            stop: job.stop,
            stopAtEog: !job.ignoreEos,
            signal: gone.signal,
            ...(job.json ? { json: job.json } : {}),
            ...(lp ? { logprobs: lp } : {}),
            ...(job.stream ? { onText } : {}),
          },
          promptIn,
        )
        .then((r) => {
          metrics.record(r);
          let finish: FinishReason =
            r.stoppedBy === 'length' || r.stoppedBy === 'context' ? 'length' : 'stop';
          let calls: ToolCall[] | undefined;
          let text = r.text;
          if (job.tools) {
            const names = new Set(job.tools.specs.map((t) => t.name));
            const max = job.tools.maxCalls;
            let found: ParsedCall[] = [];
            if (held) {
              const end = held.end(names, max);
              found = end.calls;
              if (end.rest && r.stoppedBy !== 'aborted')
                sse(chunk(job.kind, ids, { text: end.rest }, logprobs(), index));
            } else {
              const parsed = parseToolCalls(r.text, names, max);
              if (parsed) [text, found] = [parsed.content, parsed.calls];
            }
            if (found.length) {
              calls = found.map((c, i) => ({
                ...c,
                id: i === 0 && forced ? callId : `call_${randomBytes(12).toString('hex')}`,
              }));
              finish = 'tool_calls';
              if (held && r.stoppedBy !== 'aborted') sse(chunk(job.kind, ids, { calls }, null, index));
            }
          }
          if (job.stream && r.stoppedBy !== 'aborted')
            sse(chunk(job.kind, ids, { finish }, logprobs(), index));
          return { p, r, finish, lp, logprobs, calls, text };
        });
    };
    const choices = prompts.flatMap((_, p) => {
      let promptIn = () => undefined as void;
      const firstIn = new Promise<void>((r) => (promptIn = r));
      // ended before its prompt was in: the others go on
      const first = choice(p, 0, promptIn).finally(promptIn);
      return [first, ...Array.from({ length: k - 1 }, (_, j) => firstIn.then(() => choice(p, j + 1)))];
    });
    // One choice failing fails the request: the others stop at their next step.
    const all = await Promise.all(choices).catch((e: unknown) => {
      gone.abort();
      throw e;
    });
    const results = all.map((d) => d.r);
    // Each prompt counts once, as OpenAI counts it; its cached part as its choice that found most.
    // Every candidate of best_of counts as generated.
    const u = usage(
      prompts.reduce((a, t) => a + t.length, 0),
      results.reduce((a, r) => a + r.generatedTokens.length, 0),
      prompts.reduce(
        (a, _, p) => a + Math.max(...results.slice(p * k, (p + 1) * k).map((r) => r.cachedPromptTokens ?? 0)),
        0,
      ),
    );
    const promptLogprobs = prompts.map((_, p) => all[p * k]!.lp?.prompt);
    // best_of: each prompt's n candidates of highest mean log-probability per token, best first
    // (the earlier candidate among equals; one with no token ranks last).
    const meanLogprob = (d: (typeof all)[number]) =>
      d.lp!.into.length ? d.lp!.into.reduce((a, t) => a + t.logprob, 0) / d.lp!.into.length : -Infinity;
    const done =
      k === n
        ? all
        : prompts.flatMap((_, p) =>
            all
              .slice(p * k, (p + 1) * k)
              .map((d, j) => ({ d, j, score: meanLogprob(d) }))
              .sort((a, b) => b.score - a.score || a.j - b.j)
              .slice(0, n)
              .map((c) => c.d),
          );
    log(
      `${endpoint}: ${u.prompt_tokens} prompt + ${u.completion_tokens} generated tokens` +
        `${done.length > 1 ? ` in ${done.length} choices` : ''}, ${results.map((r) => r.stoppedBy).join(' ')}`,
    );
    if (results.some((r) => r.stoppedBy === 'aborted')) return; // nobody is listening
    if (job.stream) {
      if (job.includeUsage) sse(usageChunk(job.kind, ids, u));
      res.end('data: [DONE]\n\n');
      return;
    }
    const reply = (text: (d: (typeof done)[number]) => string, lp: (d: (typeof done)[number]) => Logprobs) =>
      done.map((d) => ({
        text: text(d),
        finish: d.finish,
        logprobs: lp(d),
        ...(d.calls ? { calls: d.calls } : {}),
      }));
    if (job.echo) {
      const head = prompts.map((t, p) => {
        const src = job.prompts![p]!;
        return typeof src === 'string' ? src : o.model.tokenizer.decode(t);
      });
      return sendJson(
        res,
        200,
        completionReply(
          ids,
          reply(
            (d) => head[d.p]! + d.r.text,
            (d) =>
              d.lp
                ? job.logprobs !== undefined
                  ? echoLogprobs(prompts[d.p]!, promptLogprobs[d.p]!, d.lp.into, o.model.tokenizer)
                  : null
                : null,
          ),
          u,
        ),
      );
    }
    const answer = reply(
      (d) => d.text,
      (d) => (job.logprobs !== undefined ? d.logprobs() : null),
    );
    sendJson(res, 200, job.kind === 'chat' ? chatReply(ids, answer, u) : completionReply(ids, answer, u));
  };

  /**
   * Each input's final hidden states pooled as the file says (the last position's when it does
   * not say: what llama.cpp gives a model made for text), then scaled to length 1 as OpenAI's
   * are; the inputs share the batcher's steps with everything else.
   */
  const embeddings = async (req: IncomingMessage, res: ServerResponse, job: EmbeddingJob) => {
    const { info } = o.model;
    if (!o.runner.step)
      throw new ApiError(
        501,
        "embeddings need executors that step runs (each run's rows as hidden states): these do not",
      );
    if (job.dimensions !== undefined && job.dimensions !== info.nEmbd)
      throw new ApiError(
        400,
        `this model's embeddings have ${info.nEmbd} dimensions and cannot be shortened to ${job.dimensions}: leave dimensions out`,
        'dimensions',
      );
    const inputs = job.inputs.map((src, i) =>
      checkedTokens(src, job.inputs.length > 1 ? `input ${i}` : 'the input', 'input', false),
    );
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const pooling = info.pooling ?? 'last';
    const vectors = await Promise.all(
      inputs.map((tokens) => {
        const into = new Float32Array(info.nEmbd);
        return batcher
          .submit({
            prompt: '',
            promptTokens: tokens,
            maxTokens: 0,
            sampling: { seed: 0, temperature: 0 },
            signal: gone.signal,
            embed: { pooling, into },
          })
          .then((r) => {
            metrics.record(r);
            if (r.stoppedBy === 'aborted') throw new ApiError(499, 'the client went away');
            return into;
          });
      }),
    ).catch((e: unknown) => {
      gone.abort();
      throw e;
    });
    for (const v of vectors) {
      let sum = 0;
      for (const x of v) sum += x * x;
      const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
      for (let i = 0; i < v.length; i++) v[i]! *= scale;
    }
    const tokens = inputs.reduce((a, t) => a + t.length, 0);
    sendJson(res, 200, {
      object: 'list',
      data: vectors.map((v, index) => ({
        object: 'embedding',
        index,
        embedding: job.base64
          ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
          : Array.from(v),
      })),
      model: o.modelName,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /health')
      return sendJson(res, draining ? 503 : 200, { status: draining ? 'draining' : 'ok' });
    if (!authorised(req))
      throw new ApiError(401, 'missing or wrong API key: send Authorization: Bearer <key>');
    switch (route) {
      case 'GET /metrics': {
        metrics.queued = batcher.queued;
        metrics.active = batcher.activeCount;
        const text = metrics.render();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(text);
        return;
      }
      case 'GET /v1/models':
        return sendJson(res, 200, {
          object: 'list',
          data: [{ id: o.modelName, object: 'model', created: 0, owned_by: 'redblue' }],
        });
      case 'POST /v1/completions':
        return complete(res, completionJob(await readBody(req)), 'completions');
      case 'POST /v1/chat/completions':
        return complete(res, chatJob(await readBody(req)), 'chat');
      case 'POST /v1/embeddings':
        return embeddings(req, res, embeddingJob(await readBody(req)));
      // llama-server's: clients count and inspect tokens with the model's own tokenizer.
      case 'POST /tokenize': {
        const t = tokenizeJob(await readBody(req));
        const { tokenizer } = o.model;
        const ids = tokenizer.encode(t.content, {
          addBos: t.addSpecial && tokenizer.addBos,
          parseSpecial: true,
        });
        return sendJson(res, 200, {
          tokens: t.withPieces ? ids.map((id) => ({ id, piece: tokenizer.piece(id) })) : ids,
        });
      }
      case 'POST /detokenize': {
        const ids = detokenizeJob(await readBody(req));
        const outside = ids.find((t) => t >= o.model.info.nVocab);
        if (outside !== undefined)
          throw new ApiError(
            400,
            `token ${outside} is outside the vocabulary (ids 0-${o.model.info.nVocab - 1})`,
            'tokens',
          );
        return sendJson(res, 200, { content: o.model.tokenizer.decode(ids) });
      }
      default:
        throw new ApiError(
          404,
          `no route ${route}: try POST /v1/completions, POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, POST /tokenize, POST /detokenize, /health or /metrics`,
        );
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    // A keep-alive connection would hold shutdown open for keepAliveTimeout after its last reply.
    res.once('finish', () => {
      if (draining) req.socket.end();
    });
    handle(req, res).then(
      () => metrics.request(url, res.statusCode),
      (e: unknown) => {
        const err = e instanceof ApiError ? e : new ApiError(500, e instanceof Error ? e.message : String(e));
        metrics.request(url, err.status);
        if (err.status === 499 || res.destroyed) return;
        if (res.headersSent) {
          // mid-stream: say so in the stream, then end it
          res.end(`data: ${JSON.stringify(err.body())}\n\n`);
          return;
        }
        sendJson(res, err.status, err.body());
      },
    );
  };
  const server = o.listening ?? (await listen(o.host, o.port));
  server.removeAllListeners('request'); // listenWhileLoading's "loading" answers
  server.on('request', onRequest);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  return {
    server,
    port,
    metrics,
    async drain() {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections(); // keep-alive connections with nothing in flight
      await batcher.idle();
      await closed;
    },
  };
}
