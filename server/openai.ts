// The OpenAI API's shapes as `redblue serve` speaks them: request bodies checked field by field
// (a wrong type or range is a 400 that names the field), and the replies and stream chunks of
// /v1/completions and /v1/chat/completions; /v1/embeddings' request.
import type { ChatMessage } from '../model/chat.js';
import type { SamplingParams, TokenLogprob } from '../model/sampling.js';
import {
  compileJsonSchema,
  type CompileOptions,
  JsonSchemaError,
  type JsonShape,
} from '../model/json-constraint.js';
import { forcedCallSchema, type CallPiece, type ToolCall, type ToolSpec } from '../model/tool-calls.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type = status === 401
      ? 'authentication_error'
      : status >= 500
        ? 'server_error'
        : 'invalid_request_error',
  ) {
    super(message);
  }
  body(): { error: { message: string; type: string; param: string | null; code: number } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.status } };
  }
}

/** What a request asks the engine for, whichever endpoint it came through. */
export interface Job {
  kind: 'completion' | 'chat';
  /**
   * A completion's prompts, each text or token ids (used as they are: no BOS added); each gets
   * n choices (prompt p's choice j is choice p·n + j).
   */
  prompts?: (string | number[])[];
  messages?: ChatMessage[];
  /** undefined: until an end-of-generation token or the context is full. */
  maxTokens?: number;
  /** The sampler's knobs the request gave (others keep llama.cpp's defaults); no seed: a random one. */
  sampling: Partial<SamplingParams> & { temperature: number; topP: number };
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  /** llama.cpp's extension: generate past end-of-generation tokens (benchmarks fix the length so). */
  ignoreEos: boolean;
  /** Log-probabilities asked for: how many most likely tokens beside the chosen one (0-20). */
  logprobs?: number;
  /** Completions: the prompt comes back before the completion (with logprobs: scored too). */
  echo?: boolean;
  /** Choices to generate for the prompt, each its own sequence (OpenAI's `n`). */
  n: number;
  /**
   * Completions' `best_of`: candidates generated for each prompt (≥ n, never streamed), of which
   * the n with the highest mean log-probability per token are returned. Absent: n.
   */
  bestOf?: number;
  /**
   * `response_format`: each choice is one JSON object (`json_object`), keeping to a schema
   * (`json_schema`).
   */
  json?: true | JsonShape;
  /**
   * Chat `tools` the answer may call (absent with tool_choice "none"); `forced`: those of which it
   * must call one (tool_choice "required": all; a function's name: that one), and then `json`
   * keeps the answer to the call's schema.
   */
  tools?: {
    specs: ToolSpec[];
    forced?: ToolSpec[];
    /** Calls kept of an answer (parallel_tool_calls: false: 1). */
    maxCalls?: number;
  };
}

type Body = Record<string, unknown>;

function num(b: Body, key: string, min: number, max: number): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw new ApiError(400, `${key} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`, key);
  return v;
}

function int(b: Body, key: string, min: number, max: number): number | undefined {
  const v = num(b, key, min, max);
  if (v !== undefined && !Number.isInteger(v))
    throw new ApiError(400, `${key} must be a whole number, got ${v}`, key);
  return v;
}

function bool(b: Body, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean')
    throw new ApiError(400, `${key} must be true or false, got ${JSON.stringify(v)}`, key);
  return v;
}

/** OpenAI's `logit_bias`: { "token id": bias from -100 to 100 } (-100 bans a token in practice). */
function logitBias(b: Body): [number, number][] | undefined {
  const v = b.logit_bias;
  if (v === undefined || v === null) return undefined;
  const entries = typeof v === 'object' && !Array.isArray(v) ? Object.entries(v) : undefined;
  if (!entries || entries.length > 1024)
    throw new ApiError(
      400,
      'logit_bias must be an object of at most 1024 "token id": bias entries',
      'logit_bias',
    );
  return entries.map(([k, x]) => {
    if (!/^\d{1,9}$/.test(k))
      throw new ApiError(400, `logit_bias keys are token ids, got ${JSON.stringify(k)}`, 'logit_bias');
    if (typeof x !== 'number' || !Number.isFinite(x) || x < -100 || x > 100)
      throw new ApiError(
        400,
        `logit_bias of token ${k} must be a number from -100 to 100, got ${JSON.stringify(x)}`,
        'logit_bias',
      );
    return [Number(k), x];
  });
}

function stops(b: Body): string[] {
  const v = b.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string' && s.length > 0))
    throw new ApiError(400, 'stop must be a non-empty string or a list of at most 4 of them', 'stop');
  return list as string[];
}

function common(b: Body, kind: Job['kind']): Omit<Job, 'prompt' | 'messages'> {
  // OpenAI's limit; choices beyond the free slots wait for one, as other requests do.
  const n = int(b, 'n', 1, 128) ?? 1;
  const maxKey = b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = int(b, maxKey, 0, 1 << 20);
  const streamOptions = b.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && typeof streamOptions !== 'object')
    throw new ApiError(400, 'stream_options must be an object', 'stream_options');
  const includeUsage = bool((streamOptions ?? {}) as Body, 'include_usage') ?? false;
  const sampling: Job['sampling'] = {
    temperature: num(b, 'temperature', 0, 2) ?? 0.8,
    topP: num(b, 'top_p', 0, 1) ?? 0.95,
  };
  // OpenAI's penalties (-2 to 2) look, as llama.cpp's, at the last repeat_last_n tokens.
  for (const [field, key, min, max, whole] of [
    ['seed', 'seed', 0, Number.MAX_SAFE_INTEGER, true],
    ['topK', 'top_k', 0, 1 << 20, true],
    ['minP', 'min_p', 0, 1, false],
    ['repeatPenalty', 'repeat_penalty', 0, 10, false],
    ['repeatLastN', 'repeat_last_n', 0, 1 << 20, true],
    ['frequencyPenalty', 'frequency_penalty', -2, 2, false],
    ['presencePenalty', 'presence_penalty', -2, 2, false],
  ] as const) {
    const v = (whole ? int : num)(b, key, min, max);
    if (v !== undefined) sampling[field] = v; // absent stays absent: the sampler's default applies
  }
  const bias = logitBias(b);
  if (bias) sampling.logitBias = bias;
  // Completions: `logprobs: N`, the N most likely tokens too. Chat: `logprobs: true`, and
  // `top_logprobs: N` for those.
  let logprobs: number | undefined;
  if (kind === 'completion') logprobs = int(b, 'logprobs', 0, 20);
  else {
    const top = int(b, 'top_logprobs', 0, 20);
    if (bool(b, 'logprobs')) logprobs = top ?? 0;
    else if (top !== undefined) throw new ApiError(400, 'top_logprobs needs logprobs: true', 'top_logprobs');
  }
  return {
    kind,
    // OpenAI's completions default to 16 tokens; chat goes on until the model ends its answer.
    ...(maxTokens !== undefined ? { maxTokens } : kind === 'completion' ? { maxTokens: 16 } : {}),
    sampling,
    stop: stops(b),
    stream: bool(b, 'stream') ?? false,
    includeUsage,
    ignoreEos: bool(b, 'ignore_eos') ?? false,
    ...(logprobs !== undefined ? { logprobs } : {}),
    n,
    ...jsonFormat(b),
  };
}

/**
 * OpenAI's `response_format`: `text` (the default), `json_object`, or `json_schema` with
 * `json_schema.schema` (the subset compileJsonSchema follows; anything else a 400 naming it).
 */
function jsonFormat(b: Body): { json?: true | JsonShape } {
  const v = b.response_format;
  if (v === undefined || v === null) return {};
  const type = typeof v === 'object' && !Array.isArray(v) ? (v as Body).type : undefined;
  if (type === 'text') return {};
  if (type === 'json_object') return { json: true };
  if (type === 'json_schema') {
    const js = (v as Body).json_schema;
    const schema = typeof js === 'object' && js !== null ? (js as Body).schema : undefined;
    if (schema === undefined)
      throw new ApiError(400, 'response_format json_schema needs json_schema.schema', 'response_format');
    try {
      return { json: compileJsonSchema(schema) };
    } catch (e) {
      if (!(e instanceof JsonSchemaError)) throw e;
      throw new ApiError(400, `response_format json_schema: ${e.message}`, 'response_format');
    }
  }
  throw new ApiError(
    400,
    'response_format must be { "type": "text" }, { "type": "json_object" } or { "type": "json_schema", "json_schema": { "schema": ... } }',
    'response_format',
  );
}

function object(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(400, 'the request body must be a JSON object');
  return body as Body;
}

/** Choices one request may ask for in all (prompts × n), as OpenAI bounds a list of prompts. */
export const MAX_CHOICES = 2048;

/**
 * OpenAI's text-or-tokens fields (a completion's prompt, an embedding's input): a text, token ids,
 * or a non-empty list of either; undefined when it is none of those. `nonEmpty`: an empty text
 * does not count as one.
 */
function textsOrTokens(v: unknown, nonEmpty: boolean): (string | number[])[] | undefined {
  const one = (p: unknown): string | number[] | undefined =>
    typeof p === 'string' && (!nonEmpty || p.length > 0)
      ? p
      : Array.isArray(p) && p.length > 0 && p.every((t) => Number.isSafeInteger(t) && t >= 0)
        ? (p as number[])
        : undefined;
  const single = one(v);
  const list = single !== undefined ? [single] : Array.isArray(v) ? v.map(one) : [];
  return list.length === 0 || list.some((p) => p === undefined) ? undefined : (list as (string | number[])[]);
}

/** POST /v1/completions */
export function completionJob(body: unknown): Job {
  const b = object(body);
  // As OpenAI takes it: text, token ids, or a list of either (evaluation harnesses send batches).
  const prompts = textsOrTokens(b.prompt, false);
  if (!prompts)
    throw new ApiError(
      400,
      'prompt must be a string, a list of token ids, or a non-empty list of those',
      'prompt',
    );
  const job = {
    ...common(b, 'completion'),
    ...echo(b),
    prompts,
  };
  const bestOf = bestOfOf(b, job.n, job.stream);
  const each = bestOf ?? job.n;
  if (prompts.length * each > MAX_CHOICES)
    throw new ApiError(
      400,
      `${prompts.length} prompts × ${bestOf !== undefined ? `best_of = ${bestOf}` : `n = ${job.n}`} asks for ${prompts.length * each} choices; at most ${MAX_CHOICES}`,
      'prompt',
    );
  return bestOf !== undefined && bestOf > job.n ? { ...job, bestOf } : job;
}

/** OpenAI's `best_of` (completions): 1-20 candidates a prompt, at least n, not with stream. */
function bestOfOf(b: Body, n: number, stream: boolean): number | undefined {
  const v = int(b, 'best_of', 1, 20);
  if (v === undefined) return undefined;
  if (v < n) throw new ApiError(400, `best_of (${v}) must be at least n (${n})`, 'best_of');
  if (v > n && stream)
    throw new ApiError(
      400,
      'best_of picks among whole completions, so it cannot stream: ask without stream',
      'best_of',
    );
  return v;
}

function echo(b: Body): { echo?: boolean } {
  if (!bool(b, 'echo')) return {};
  if (bool(b, 'stream')) throw new ApiError(400, 'echo is answered whole: ask without stream', 'echo');
  return { echo: true };
}

/** llama-server's POST /tokenize: `content`, `add_special` (BOS where the model wants it; default false), `with_pieces`. */
export function tokenizeJob(body: unknown): { content: string; addSpecial: boolean; withPieces: boolean } {
  const b = object(body);
  if (typeof b.content !== 'string') throw new ApiError(400, 'content must be a string', 'content');
  return {
    content: b.content,
    addSpecial: bool(b, 'add_special') ?? false,
    withPieces: bool(b, 'with_pieces') ?? false,
  };
}

/** llama-server's POST /detokenize: `tokens`, a list of token ids. */
export function detokenizeJob(body: unknown): number[] {
  const t = object(body).tokens;
  if (!Array.isArray(t) || !t.every((x) => Number.isSafeInteger(x) && x >= 0))
    throw new ApiError(400, 'tokens must be a list of token ids', 'tokens');
  return t as number[];
}

/** POST /v1/embeddings: what to embed (text or token ids, one or a list) and how to encode it. */
export interface EmbeddingJob {
  /** Text is tokenized as a prompt is (BOS where the model asks); token ids are used as they are. */
  inputs: (string | number[])[];
  base64: boolean;
  /** OpenAI's `dimensions`: must be the model's own width when given (see embeddingJob). */
  dimensions?: number;
}

/** Inputs one request may embed (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

export function embeddingJob(body: unknown): EmbeddingJob {
  const b = object(body);
  const inputs = textsOrTokens(b.input, true);
  if (!inputs)
    throw new ApiError(
      400,
      'input must be a non-empty string, a list of token ids, or a non-empty list of those',
      'input',
    );
  if (inputs.length > MAX_EMBEDDING_INPUTS)
    throw new ApiError(400, `input holds ${inputs.length} items; at most ${MAX_EMBEDDING_INPUTS}`, 'input');
  const format = b.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64')
    throw new ApiError(400, "encoding_format must be 'float' or 'base64'", 'encoding_format');
  const dimensions = int(b, 'dimensions', 1, 1 << 20);
  return {
    inputs,
    base64: format === 'base64',
    ...(dimensions !== undefined ? { dimensions } : {}),
  };
}

/** POST /v1/chat/completions */
export function chatJob(body: unknown): Job {
  const b = object(body);
  const ms = b.messages;
  if (!Array.isArray(ms) || ms.length === 0)
    throw new ApiError(400, 'messages must be a non-empty list of { role, content }', 'messages');
  const messages = ms.map((m, i): ChatMessage => {
    const x = (m ?? {}) as Body;
    if (typeof x.role !== 'string' || !['system', 'developer', 'user', 'assistant', 'tool'].includes(x.role))
      throw new ApiError(
        400,
        `messages[${i}].role must be system, user, assistant or tool`,
        `messages[${i}].role`,
      );
    let content = x.content;
    // Content parts: only text ones are understood.
    if (Array.isArray(content))
      content = content
        .map((p: unknown, j) => {
          const part = (p ?? {}) as Body;
          if (part.type !== 'text' || typeof part.text !== 'string')
            throw new ApiError(
              400,
              `messages[${i}].content[${j}] must be a text part`,
              `messages[${i}].content`,
            );
          return part.text;
        })
        .join('');
    const calls = x.role === 'assistant' ? pastCalls(x.tool_calls, i) : undefined;
    if (calls && (content === undefined || content === null)) content = '';
    if (typeof content !== 'string')
      throw new ApiError(400, `messages[${i}].content must be a string`, `messages[${i}].content`);
    if (x.role === 'tool' && typeof x.tool_call_id !== 'string')
      throw new ApiError(
        400,
        `messages[${i}].tool_call_id must name the call it answers`,
        `messages[${i}].tool_call_id`,
      );
    return {
      role: x.role === 'developer' ? 'system' : x.role,
      content,
      ...(calls ? { toolCalls: calls } : {}),
      ...(x.role === 'tool' ? { toolCallId: x.tool_call_id as string } : {}),
    };
  });
  const job = { ...common(b, 'chat'), messages };
  const tools = toolsOf(b);
  if (!tools) return job;
  if (!tools.forced) return { ...job, tools };
  if (job.json)
    throw new ApiError(
      400,
      'response_format cannot be given with a tool_choice that forces a call (the call is JSON already)',
      'response_format',
    );
  tools.specs.forEach((t, i) => {
    if (t.parameters && tools.forced!.includes(t)) schema(t.parameters, `tools[${i}].function.parameters`);
  });
  // Keys in order: the call's name before its arguments, so that they can stream
  return { ...job, tools, json: schema(forcedCallSchema(tools.forced), 'tool_choice', { ordered: true }) };
}

function schema(v: unknown, param: string, o?: CompileOptions): JsonShape {
  try {
    return compileJsonSchema(v, o);
  } catch (e) {
    if (!(e instanceof JsonSchemaError)) throw e;
    throw new ApiError(400, `${param}: ${e.message}`, param);
  }
}

/** An assistant message's `tool_calls` (undefined where none). */
function pastCalls(v: unknown, i: number): ToolCall[] | undefined {
  if (v === undefined || v === null) return undefined;
  const at = `messages[${i}].tool_calls`;
  if (!Array.isArray(v)) throw new ApiError(400, `${at} must be a list of calls`, at);
  return v.map((c: unknown, j) => {
    const x = (c ?? {}) as Body;
    const f = (x.function ?? {}) as Body;
    if (typeof f.name !== 'string' || typeof f.arguments !== 'string')
      throw new ApiError(
        400,
        `${at}[${j}] must be { id, type: "function", function: { name, arguments } } with arguments a JSON string`,
        at,
      );
    return { id: typeof x.id === 'string' ? x.id : `call_${j}`, name: f.name, arguments: f.arguments };
  });
}

/** `tools` and `tool_choice` (OpenAI's; undefined without tools or with "none"). */
function toolsOf(b: Body): Job['tools'] {
  const v = b.tools;
  const choice = b.tool_choice ?? 'auto';
  if (v === undefined || v === null) {
    if (b.tool_choice !== undefined && b.tool_choice !== null && choice !== 'none')
      throw new ApiError(400, 'tool_choice needs tools', 'tool_choice');
    return undefined;
  }
  if (!Array.isArray(v) || v.length === 0 || v.length > 128)
    throw new ApiError(
      400,
      'tools must be a list of 1-128 { type: "function", function: { name, ... } }',
      'tools',
    );
  const specs = v.map((t: unknown, i): ToolSpec => {
    const x = (t ?? {}) as Body;
    const f = (x.function ?? {}) as Body;
    const at = `tools[${i}]`;
    if (x.type !== 'function') throw new ApiError(400, `${at}.type must be "function"`, at);
    if (typeof f.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(f.name))
      throw new ApiError(
        400,
        `${at}.function.name must be 1-64 letters, digits, _ or -`,
        `${at}.function.name`,
      );
    if (f.description !== undefined && typeof f.description !== 'string')
      throw new ApiError(400, `${at}.function.description must be a string`, `${at}.function.description`);
    const p = f.parameters;
    if (p !== undefined && (typeof p !== 'object' || p === null || Array.isArray(p)))
      throw new ApiError(
        400,
        `${at}.function.parameters must be a JSON schema object`,
        `${at}.function.parameters`,
      );
    return {
      name: f.name,
      ...(f.description !== undefined ? { description: f.description as string } : {}),
      ...(p !== undefined ? { parameters: p as Record<string, unknown> } : {}),
    };
  });
  const names = specs.map((t) => t.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new ApiError(400, `tools: the name ${twice} is given twice`, 'tools');
  if (choice === 'none') return undefined;
  const one = bool(b, 'parallel_tool_calls') === false ? { maxCalls: 1 } : {};
  if (choice === 'auto') return { specs, ...one };
  if (choice === 'required') return { specs, forced: specs, ...one };
  const named = (choice as Body | undefined)?.function as Body | undefined;
  const name = typeof choice === 'object' && (choice as Body).type === 'function' ? named?.name : undefined;
  if (typeof name !== 'string')
    throw new ApiError(
      400,
      'tool_choice must be "none", "auto", "required" or { type: "function", function: { name } }',
      'tool_choice',
    );
  const spec = specs.find((t) => t.name === name);
  if (!spec)
    throw new ApiError(
      400,
      `tool_choice names ${name}, which is not one of tools (${names.join(', ')})`,
      'tool_choice',
    );
  return { specs, forced: [spec], ...one };
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** The prompt tokens found in a slot's KV cache (not processed again). */
  prompt_tokens_details: { cached_tokens: number };
}

export function usage(prompt: number, completion: number, cached = 0): Usage {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
  };
}

export interface ReplyIds {
  id: string;
  created: number;
  model: string;
}

/** A token's text and bytes, as the tokenizer gives them. */
export interface TokenPieces {
  piece(id: number): string;
  pieceBytes(id: number): Uint8Array;
}

/** A choice's `logprobs`, in the endpoint's form; null where none were asked. */
export type Logprobs = CompletionLogprobs | ChatLogprobs | null;

export interface CompletionLogprobs {
  tokens: string[];
  /** null: an echoed prompt's first token (nothing before it to predict it). */
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  /** Where each token's text begins in the completion's text (with echo: the prompt's pieces first). */
  text_offset: number[];
}

/** The completions form (OpenAI's legacy one): `offset` is where the first token's text begins. */
export function completionLogprobs(entries: TokenLogprob[], t: TokenPieces, offset = 0): CompletionLogprobs {
  const tokens = entries.map((e) => t.piece(e.token));
  const text_offset = tokens.map((s) => ((offset += s.length), offset - s.length));
  return {
    tokens,
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((x) => [t.piece(x.token), x.logprob]))),
    text_offset,
  };
}

/** Where the text after `l`'s tokens begins (`start`: where they began). */
export function endOffset(l: CompletionLogprobs, start: number): number {
  return l.tokens.reduce((a, s) => a + s.length, start);
}

/**
 * An echoed completion's logprobs: the prompt's tokens (the first without a logprob; the others
 * scored by the positions before them), then the completion's. Offsets count token pieces, which
 * may differ from the prompt's text (a leading space the tokenizer adds, BOS).
 */
export function echoLogprobs(
  prompt: readonly number[],
  scored: TokenLogprob[],
  generated: TokenLogprob[],
  t: TokenPieces,
): CompletionLogprobs {
  const first = t.piece(prompt[0]!);
  const head = completionLogprobs(scored, t, first.length);
  const tail = completionLogprobs(generated, t, endOffset(head, first.length));
  return {
    tokens: [first, ...head.tokens, ...tail.tokens],
    token_logprobs: [null, ...head.token_logprobs, ...tail.token_logprobs],
    top_logprobs: [null, ...head.top_logprobs, ...tail.top_logprobs],
    text_offset: [0, ...head.text_offset, ...tail.text_offset],
  };
}

export interface ChatLogprobs {
  content: {
    token: string;
    logprob: number;
    bytes: number[];
    top_logprobs: { token: string; logprob: number; bytes: number[] }[];
  }[];
}

export function chatLogprobs(entries: TokenLogprob[], t: TokenPieces): ChatLogprobs {
  const one = (token: number, logprob: number) => ({
    token: t.piece(token),
    logprob,
    bytes: Array.from(t.pieceBytes(token)),
  });
  return {
    content: entries.map((e) => ({
      ...one(e.token, e.logprob),
      top_logprobs: e.top.map((x) => one(x.token, x.logprob)),
    })),
  };
}

/** One choice of a whole reply, in the order of its `index`. */
export interface Choice {
  text: string;
  finish: FinishReason;
  logprobs: Logprobs;
  /** The functions the answer calls (chat with tools); `text` is then what it said beside them. */
  calls?: ToolCall[];
}

/** OpenAI's form of a call (`index`: its place in the list, which stream deltas carry). */
function toolCall(c: ToolCall, index: number) {
  return { index, id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } };
}

/** A piece of the one call a forced answer streams: id, type and name with the first, as OpenAI's. */
function callPiece(c: CallPiece & { id?: string }) {
  return {
    index: 0,
    ...(c.id !== undefined ? { id: c.id, type: 'function' } : {}),
    function: { ...(c.name !== undefined ? { name: c.name } : {}), arguments: c.arguments },
  };
}

export function completionReply(ids: ReplyIds, choices: Choice[], u: Usage) {
  return {
    ...ids,
    object: 'text_completion',
    choices: choices.map((c, index) => ({
      index,
      text: c.text,
      finish_reason: c.finish,
      logprobs: c.logprobs,
    })),
    usage: u,
  };
}

export function chatReply(ids: ReplyIds, choices: Choice[], u: Usage) {
  return {
    ...ids,
    object: 'chat.completion',
    choices: choices.map((c, index) => ({
      index,
      message: c.calls?.length
        ? { role: 'assistant', content: c.text.trim() || null, tool_calls: c.calls.map(toolCall) }
        : { role: 'assistant', content: c.text },
      finish_reason: c.finish,
      logprobs: c.logprobs,
    })),
    usage: u,
  };
}

/**
 * One stream chunk of choice `index`: a piece of text, or (text undefined) the first (chat: the
 * role) or last one; `logprobs`: those of the tokens picked since the choice's last chunk.
 */
export function chunk(
  kind: Job['kind'],
  ids: ReplyIds,
  piece: {
    text?: string;
    first?: boolean;
    finish?: FinishReason;
    calls?: ToolCall[];
    /** A streamed call's piece (ForcedCallStream): its id and name with the first. */
    call?: CallPiece & { id?: string };
  },
  logprobs: Logprobs = null,
  index = 0,
) {
  if (kind === 'completion')
    return {
      ...ids,
      object: 'text_completion',
      choices: [{ index, text: piece.text ?? '', finish_reason: piece.finish ?? null, logprobs }],
    };
  const delta = piece.first
    ? { role: 'assistant', content: '' }
    : piece.calls
      ? { tool_calls: piece.calls.map(toolCall) }
      : piece.call
        ? { tool_calls: [callPiece(piece.call)] }
        : piece.text !== undefined
          ? { content: piece.text }
          : {};
  return {
    ...ids,
    object: 'chat.completion.chunk',
    choices: [{ index, delta, finish_reason: piece.finish ?? null, logprobs }],
  };
}

/** The stream's last chunk when `stream_options.include_usage` asks for it: no choices, the usage. */
export function usageChunk(kind: Job['kind'], ids: ReplyIds, u: Usage) {
  return {
    ...ids,
    object: kind === 'completion' ? 'text_completion' : 'chat.completion.chunk',
    choices: [],
    usage: u,
  };
}
