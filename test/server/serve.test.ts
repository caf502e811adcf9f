// `redblue serve` as its users reach it: the official `openai` client against a real server
// process (2 executors) on a GGUF file the test writes, with a chat template of its own. Greedy
// completions equal `redblue generate`'s; streams equal whole replies; stop strings, seeds,
// usage, bad requests, a client that leaves mid-stream, and SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gv } from '../../model/gguf/value.js';
import { readGguf } from '../../model/gguf/read.js';
import { createTokenizer } from '../../model/tokenizer/index.js';
import { writeGguf } from '../../model/gguf/write.js';
import { syntheticModel, writeSyntheticModel } from '../../model/synth.js';
import { SMALL_LLAMA } from '../helpers/model-shapes.js';
import { cliPath, leftovers, repoRoot, runCli } from '../helpers/cli.js';
import { jsonStructureBias } from '../helpers/json-bias.js';
import { ChatTemplate, type ChatMessage } from '../../model/chat.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-serve-'));
const KEY = 'serve-test-key-0123456789';
const SMALL = SMALL_LLAMA;
const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}";
const model = join(dir, 'chat.gguf');

let proc: ChildProcess;
let port = 0;
let client: OpenAI;
/** The main server's stderr so far. */
let stderr = (): string => '';
const exited = () =>
  new Promise<number | null>((r) => (proc.exitCode !== null ? r(proc.exitCode) : proc.on('exit', r)));

/** A server on the test's model (2 executors, 8 slots, the API key) with `flags`; its port once it listens. */
async function startServe(
  flags: string[],
): Promise<{ proc: ChildProcess; port: number; stderr: () => string }> {
  const p = spawn(
    process.execPath,
    [
      cliPath,
      'serve',
      '-m',
      model,
      '--port',
      '0',
      '--virtual-nodes',
      '2',
      '--api-key',
      KEY,
      '--parallel',
      '8',
      ...flags,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const listening = await new Promise<number>((resolve, reject) => {
    let out = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    p.on('exit', (code) => reject(new Error(`serve exited (${code}): ${err}`)));
  });
  return { proc: p, port: listening, stderr: () => err };
}

beforeAll(async () => {
  const { metadata, tensors } = syntheticModel(SMALL);
  writeGguf(model, {
    metadata: new Map([...metadata, ['tokenizer.chat_template', gv.string(TEMPLATE)]]),
    tensors,
  });
  ({ proc, port, stderr } = await startServe([]));
  client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: KEY, maxRetries: 0 });
}, 60_000);

afterAll(() => {
  proc?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const PROMPT = 'Once upon a time';
/**
 * Request i of a set that differ (the drafting tests): its own prompt and length, greedy for even
 * i and sampled (seeded) for odd, to the end of its length.
 */
const numbered = (c: OpenAI, i: number, tokens: number, extra: Record<string, unknown> = {}) =>
  c.completions.create({
    model: 'm',
    prompt: `${PROMPT} ${i}`,
    max_tokens: tokens + 4 * i,
    temperature: i % 2 ? 0.9 : 0,
    seed: i,
    ignore_eos: true,
    ...extra,
  } as never);
const raw = (path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${port}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
  });
async function metric(name: string): Promise<number> {
  const text = await (await raw('/metrics')).text();
  const m = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** `redblue generate`'s greedy answer to PROMPT on the served file (the server's reference). */
function generated(n: number, ...flags: string[]) {
  const gen = runCli([
    'generate',
    '-m',
    model,
    '-p',
    PROMPT,
    '-n',
    String(n),
    '--temp',
    '0',
    '--json',
    '--virtual-nodes',
    '2',
    ...flags,
  ]);
  expect(gen.code, gen.stderr).toBe(0);
  return JSON.parse(gen.stdout) as { text: string; promptTokens: number[]; generatedTokens: number[] };
}

describe('redblue serve', () => {
  it('completes greedily exactly as redblue generate does, streamed or not, with usage', async () => {
    const ref = generated(12);
    const r = await client.completions.create({
      model: 'chat.gguf',
      prompt: PROMPT,
      max_tokens: 12,
      temperature: 0,
    });
    expect(r.choices[0]!.text).toBe(ref.text);
    expect(r.choices[0]!.finish_reason).toBe(ref.generatedTokens.length === 12 ? 'length' : 'stop');
    expect(r.usage).toEqual({
      prompt_tokens: ref.promptTokens.length,
      completion_tokens: ref.generatedTokens.length,
      total_tokens: ref.promptTokens.length + ref.generatedTokens.length,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    const stream = await client.completions.create({
      model: 'chat.gguf',
      prompt: PROMPT,
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: unknown;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(ref.text);
    // The same prompt again: all of it but its last token found in the slot the first one left.
    expect(usage).toEqual({
      ...r.usage,
      prompt_tokens_details: { cached_tokens: ref.promptTokens.length - 1 },
    });
    // llama-server's /tokenize and /detokenize: the model's own tokens, BOS with add_special.
    const tok = async (path: string, body: object) =>
      (await (await raw(path, { method: 'POST', body: JSON.stringify(body) })).json()) as Record<
        string,
        unknown
      >;
    expect((await tok('/tokenize', { content: PROMPT, add_special: true })).tokens).toEqual(ref.promptTokens);
    const bare = (await tok('/tokenize', { content: PROMPT })).tokens as number[];
    expect(bare).toEqual(ref.promptTokens.slice(1));
    expect((await tok('/detokenize', { tokens: [...bare, ...ref.generatedTokens] })).content).toBe(
      PROMPT + ref.text,
    );
    const pieces = (await tok('/tokenize', { content: PROMPT, with_pieces: true })).tokens as {
      id: number;
      piece: string;
    }[];
    expect(pieces.map((p) => p.id)).toEqual(bare);
    expect(pieces.map((p) => p.piece).join('')).toBe(` ${PROMPT}`); // SentencePiece's leading space
  });

  it("closes a streamed answer's connection when the client asks for that", async () => {
    // A client that sends `connection: close` reads to the socket's end; a server that kept the
    // connection open would leave it waiting for its keep-alive timeout.
    const body = JSON.stringify({ model: 'm', prompt: PROMPT, max_tokens: 4, stream: true });
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.setEncoding('utf8').on('data', (d: string) => (got += d));
    const ended = new Promise<number>((resolve) => {
      const t0 = performance.now();
      sock.on('end', () => resolve(performance.now() - t0));
    });
    sock.write(
      `POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${KEY}\r\n` +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
    const ms = await Promise.race([ended, new Promise<number>((r) => setTimeout(() => r(-1), 4000))]);
    sock.destroy();
    expect(got).toMatch(/^HTTP\/1\.1 200/);
    expect(got).toMatch(/\r\nconnection: close\r\n/i);
    expect(got).toContain('data: [DONE]');
    expect(ms).toBeGreaterThan(0); // ended within 4 s (keep-alive would hold it 5 s)
  });

  it("chats through the file's template, streamed or not, and lists the model", async () => {
    const messages = [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: 'Hello there' },
    ];
    const r = await client.chat.completions.create({
      model: 'chat.gguf',
      messages,
      max_tokens: 10,
      temperature: 0,
    });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0]!.message.role).toBe('assistant');
    // [system] … \n[user] … \n[assistant] : more tokens than the bare words
    expect(r.usage!.prompt_tokens).toBeGreaterThan(10);
    const s = await client.chat.completions.create({
      model: 'chat.gguf',
      messages,
      max_tokens: 10,
      temperature: 0,
      stream: true,
    });
    let text = '';
    let role = '';
    for await (const c of s) {
      text += c.choices[0]?.delta?.content ?? '';
      role ||= c.choices[0]?.delta?.role ?? '';
    }
    expect(role).toBe('assistant');
    expect(text).toBe(r.choices[0]!.message.content);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['chat.gguf']);
    expect(stderr()).toMatch(/chat prompts from the file's chat template/);
  });

  it('stops before a stop string, and a seed gives the same text every time', async () => {
    const full = (
      await client.completions.create({ model: 'm', prompt: PROMPT, max_tokens: 24, temperature: 0 })
    ).choices[0]!.text;
    const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
    const cut = await client.completions.create({
      model: 'm',
      prompt: PROMPT,
      max_tokens: 24,
      temperature: 0,
      stop: [stop],
    });
    expect(cut.choices[0]!.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(cut.choices[0]!.finish_reason).toBe('stop');
    const seeded = () =>
      client.completions.create({ model: 'm', prompt: PROMPT, max_tokens: 16, temperature: 0.9, seed: 42 });
    const [a, b] = [await seeded(), await seeded()];
    expect(a.choices[0]!.text).toBe(b.choices[0]!.text);
  });

  it('n choices: choice i is the request with seed + i, streamed or not, the prompt counted once', async () => {
    const ask = { model: 'm', prompt: PROMPT, max_tokens: 12, temperature: 0.9, top_k: 0, min_p: 0 };
    const singles = await Promise.all(
      [42, 43, 44].map((seed) => client.completions.create({ ...ask, seed } as typeof ask)),
    );
    // The seeds give different texts (else the check below could not tell the choices apart).
    expect(new Set(singles.map((r) => r.choices[0]!.text)).size).toBeGreaterThan(1);
    const r = await client.completions.create({ ...ask, seed: 42, n: 3 } as typeof ask);
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(r.choices.map((c) => c.text)).toEqual(singles.map((s) => s.choices[0]!.text));
    expect(r.choices.map((c) => c.finish_reason)).toEqual(singles.map((s) => s.choices[0]!.finish_reason));
    expect(r.usage!.prompt_tokens).toBe(singles[0]!.usage!.prompt_tokens);
    expect(r.usage!.completion_tokens).toBe(singles.reduce((a, s) => a + s.usage!.completion_tokens, 0));

    const stream = await client.completions.create({
      ...ask,
      seed: 42,
      n: 3,
      stream: true,
      stream_options: { include_usage: true },
    } as typeof ask & { stream: true });
    const texts = ['', '', ''];
    const finishes: (string | null)[][] = [[], [], []];
    let usage: unknown;
    for await (const c of stream) {
      if (c.usage) {
        // OpenAI's usage chunk: the last, with no choices
        expect(c.choices).toEqual([]);
        usage = c.usage;
      }
      for (const ch of c.choices) {
        texts[ch.index] += ch.text;
        if (ch.finish_reason) finishes[ch.index]!.push(ch.finish_reason);
      }
    }
    expect(texts).toEqual(r.choices.map((c) => c.text));
    expect(finishes).toEqual(r.choices.map((c) => [c.finish_reason]));
    expect(usage).toMatchObject({
      prompt_tokens: r.usage!.prompt_tokens,
      completion_tokens: r.usage!.completion_tokens,
    });

    // A prompt no request sent before: choice 0 computes it, the others take its slot's cache of
    // all but its last token (a copy, counted as cached), and still give what they give alone.
    const fresh = { ...ask, prompt: 'Far over the misty mountains cold, to dungeons deep and caverns old' };
    const cachedBefore = await metric('redblue_prompt_tokens_cached_total');
    const shared = await client.completions.create({ ...fresh, seed: 7, n: 3 } as typeof ask);
    const L = shared.usage!.prompt_tokens;
    expect(L).toBeGreaterThan(10);
    // (Choice 0 may find its first token or two, BOS, in a free slot's cache.)
    const found = (await metric('redblue_prompt_tokens_cached_total')) - cachedBefore;
    expect(found).toBeGreaterThanOrEqual(2 * (L - 1));
    expect(found).toBeLessThanOrEqual(2 * (L - 1) + 2);
    expect(shared.usage!.prompt_tokens_details!.cached_tokens).toBe(L - 1);
    for (const [i, c] of shared.choices.entries())
      expect(c.text).toBe(
        (await client.completions.create({ ...fresh, seed: 7 + i } as typeof ask)).choices[0]!.text,
      );

    // A list of prompts (text or ids), as evaluation harnesses send a batch: prompt p's choice j
    // is choice p·n + j, each the single request with that prompt and seed + j.
    const list = [PROMPT, [1, 15043, 3186], 'The quick brown fox'];
    // (The client's types list text or ids, not both in one list; the API takes either.)
    const batch = await client.completions.create({
      ...ask,
      max_tokens: 6,
      seed: 3,
      n: 2,
      prompt: list as string[],
    });
    const one = await Promise.all(
      list.flatMap((prompt) =>
        [3, 4].map((seed) => client.completions.create({ ...ask, max_tokens: 6, seed, prompt })),
      ),
    );
    expect(batch.choices.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(batch.choices.map((c) => c.text)).toEqual(one.map((r) => r.choices[0]!.text));
    expect(batch.usage!.prompt_tokens).toBe(
      one.reduce((a, r, i) => a + (i % 2 ? 0 : r.usage!.prompt_tokens), 0),
    );
    expect(batch.usage!.completion_tokens).toBe(one.reduce((a, r) => a + r.usage!.completion_tokens, 0));

    // Chat: each choice's stream opens with its role; echo: every choice carries the prompt and
    // its scores (computed once).
    const chat = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'Hello' }],
      max_tokens: 4,
      n: 2,
      stream: true,
    });
    const roles: number[] = [];
    for await (const c of chat) for (const ch of c.choices) if (ch.delta.role) roles.push(ch.index);
    expect(roles.sort()).toEqual([0, 1]);
    const echoed = await client.completions.create({
      ...ask,
      seed: 42,
      n: 2,
      echo: true,
      logprobs: 1,
      max_tokens: 3,
    });
    const [a, b] = echoed.choices.map((c) => c.logprobs!);
    const p = singles[0]!.usage!.prompt_tokens;
    expect(a!.token_logprobs!.slice(0, p)).toEqual(b!.token_logprobs!.slice(0, p));
    expect(a!.token_logprobs![0]).toBeNull();
    expect(a!.token_logprobs!.slice(1, p).every((v) => typeof v === 'number' && v < 0)).toBe(true);
    for (const [i, c] of echoed.choices.entries())
      expect(c.text).toBe(PROMPT + singles[i]!.choices[0]!.text.slice(0, c.text.length - PROMPT.length));
  });

  it('best_of: the n candidates of highest mean log-probability, each the request with its seed; all counted', async () => {
    const plain = { model: 'm', prompt: PROMPT, max_tokens: 10, temperature: 1, top_k: 0, min_p: 0 };
    const ask = { ...plain, logprobs: 0 };
    // Candidate i is the request with seed + i (as choice i of n), scored by its tokens' mean.
    const singles = await Promise.all(
      [7, 8, 9, 10].map((seed) => client.completions.create({ ...ask, seed } as typeof ask)),
    );
    const mean = (r: (typeof singles)[number]) => {
      const l = r.choices[0]!.logprobs!.token_logprobs!;
      return l.reduce((a, v) => a + v, 0) / l.length;
    };
    const ranked = singles
      .map((r, i) => ({ text: r.choices[0]!.text, score: mean(r), i }))
      .sort((a, b) => b.score - a.score || a.i - b.i);
    expect(new Set(ranked.map((c) => c.score)).size).toBe(4); // distinct: the order is the check
    const best = await client.completions.create({ ...ask, seed: 7, n: 2, best_of: 4 } as typeof ask);
    expect(best.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(best.choices.map((c) => c.text)).toEqual(ranked.slice(0, 2).map((c) => c.text));
    expect(best.choices.map((c) => c.logprobs!.token_logprobs)).toEqual(
      ranked.slice(0, 2).map((c) => singles[c.i]!.choices[0]!.logprobs!.token_logprobs),
    );
    // Every candidate's tokens are generated, so counted (as OpenAI bills them).
    expect(best.usage!.completion_tokens).toBe(singles.reduce((a, r) => a + r.usage!.completion_tokens, 0));
    // Not asked for, the log-probabilities rank the candidates but are not returned.
    const quiet = await client.completions.create({ ...plain, seed: 7, best_of: 4 } as typeof plain);
    expect(quiet.choices.map((c) => [c.text, c.logprobs])).toEqual([[ranked[0]!.text, null]]);
    // best_of equal to n is n.
    const same = await client.completions.create({ ...ask, seed: 7, n: 2, best_of: 2 } as typeof ask);
    expect(same.choices.map((c) => c.text)).toEqual(singles.slice(0, 2).map((r) => r.choices[0]!.text));
  });

  it('applies frequency and presence penalties as redblue generate does', async () => {
    const plain = generated(24);
    const ref = generated(24, '--frequency-penalty', '2', '--presence-penalty', '2', '--repeat-last-n', '32');
    // The penalties change this model's greedy text (it repeats tokens without them), so a
    // server that ignored the fields would fail below.
    expect(ref.generatedTokens).not.toEqual(plain.generatedTokens);
    const r = await client.completions.create({
      model: 'm',
      prompt: PROMPT,
      max_tokens: 24,
      temperature: 0,
      frequency_penalty: 2,
      presence_penalty: 2,
      // llama.cpp's field, beside OpenAI's
      ...({ repeat_last_n: 32 } as object),
    });
    expect(r.choices[0]!.text).toBe(ref.text);
    // logit_bias as generate's -l: the plain text's first token banned (-100), "The" (450) raised.
    const t0 = plain.generatedTokens[0]!;
    const biased = generated(24, '-l', `${t0}-100`, '-l', '450+3');
    expect(biased.generatedTokens[0]).not.toBe(t0);
    const b = await client.completions.create({
      model: 'm',
      prompt: PROMPT,
      max_tokens: 24,
      temperature: 0,
      logit_bias: { [t0]: -100, 450: 3 },
    });
    expect(b.choices[0]!.text).toBe(biased.text);
  });

  it('JSON mode: each choice is one JSON object, streamed or not, keeping to a schema when given', async () => {
    // This random model would write anything; biased towards the structural tokens it closes an
    // object soon, which JSON.parse must then read.
    const tokenizer = createTokenizer(readGguf(model).metadata);
    const logit_bias = Object.fromEntries(jsonStructureBias(tokenizer));
    const ask = {
      model: 'm',
      prompt: PROMPT,
      max_tokens: 32,
      temperature: 0,
      logit_bias,
      response_format: { type: 'json_object' },
    };
    const r = await client.completions.create(
      ask as Parameters<typeof client.completions.create>[0] & { stream?: false },
    );
    expect(r.choices[0]!.finish_reason).toBe('stop');
    const text = r.choices[0]!.text;
    expect(typeof JSON.parse(text)).toBe('object');
    expect(text.trim().startsWith('{')).toBe(true);
    let streamed = '';
    const s = await client.completions.create({ ...ask, stream: true } as Parameters<
      typeof client.completions.create
    >[0] & { stream: true });
    for await (const c of s) streamed += c.choices[0]?.text ?? '';
    expect(streamed).toBe(text);
    // Unbiased and sampled: whatever comes is a prefix of an object, blank runs bounded.
    const free = await client.completions.create({
      ...ask,
      logit_bias: {},
      temperature: 1,
      seed: 5,
      n: 3,
    } as typeof ask & { stream?: false });
    for (const c of free.choices) {
      if (c.finish_reason === 'stop') expect(typeof JSON.parse(c.text)).toBe('object');
      expect(c.text).not.toMatch(/^\s{21}/);
    }
    // A schema: the keys it names and nothing else, each value of its kind, the required ones
    // all there (the chat endpoint, as OpenAI's client sends structured outputs; shaped as
    // Pydantic writes an enum class and an Optional field).
    const schema = {
      $defs: { Color: { enum: ['red', 'green'], title: 'Color', type: 'string' } },
      type: 'object',
      properties: {
        color: { $ref: '#/$defs/Color' },
        ok: { type: 'boolean' },
        n: { anyOf: [{ type: 'integer' }, { type: 'null' }], default: null },
        day: { type: 'string', format: 'date' },
      },
      required: ['color', 'ok', 'day'],
      additionalProperties: false,
    };
    for (const seed of [1, 2]) {
      const c = await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'Describe it.' }],
        max_tokens: 120,
        temperature: 0.7,
        seed,
        logit_bias,
        response_format: { type: 'json_schema', json_schema: { name: 'thing', strict: true, schema } },
      });
      expect(c.choices[0]!.finish_reason).toBe('stop');
      const v = JSON.parse(c.choices[0]!.message.content!) as Record<string, unknown>;
      expect(Object.keys(v).every((k) => ['color', 'ok', 'n', 'day'].includes(k))).toBe(true);
      const day = v.day as string;
      expect(new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10)).toBe(day);
      expect(['red', 'green']).toContain(v.color);
      expect(typeof v.ok).toBe('boolean');
      if ('n' in v) expect(v.n === null || Number.isInteger(v.n)).toBe(true);
    }
    for (const [format, message] of [
      [{ type: 'json_schema', json_schema: {} }, /needs json_schema\.schema/],
      [
        {
          type: 'json_schema',
          json_schema: { schema: { type: 'object', properties: { a: { pattern: '(?=x)' } } } },
        },
        /\$\.properties\.a\.pattern: lookahead \(\?= \/ \?!\) is not supported/,
      ],
    ] as const) {
      const refused = await raw('/v1/completions', {
        method: 'POST',
        body: JSON.stringify({ prompt: 'x', response_format: format }),
      });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
  });

  it('tools: a forced call comes back as tool_calls, streamed or not; tools and past calls reach the prompt', async () => {
    const tokenizer = createTokenizer(readGguf(model).metadata);
    // Biased towards JSON's structure, and away from blanks (this random model would fill the
    // call with them, up to MAX_WS at a time).
    const blanks: [number, number][] = [];
    for (let id = 0; id < tokenizer.vocabSize; id++)
      if (/^\s+$/.test(tokenizer.piece(id)) && blanks.length < 1000) blanks.push([id, -100]);
    const logit_bias = Object.fromEntries([...jsonStructureBias(tokenizer), ...blanks]);
    const weather = {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['c', 'f'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    };
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'get_weather', description: 'Weather now', parameters: weather },
      },
      {
        type: 'function' as const,
        function: {
          name: 'noop',
          parameters: { type: 'object', properties: {}, additionalProperties: false },
        },
      },
    ];
    const messages = [{ role: 'user' as const, content: 'Weather in Paris?' }];
    const ask = {
      model: 'm',
      messages,
      tools,
      tool_choice: { type: 'function' as const, function: { name: 'get_weather' } },
      max_tokens: 56,
      temperature: 0,
      logit_bias,
    };
    const r = await client.chat.completions.create(ask);
    const c = r.choices[0]!;
    expect(c.finish_reason, JSON.stringify(c.message)).toBe('tool_calls');
    expect(c.message.content).toBeNull();
    const call = c.message.tool_calls![0]!;
    expect(call.type).toBe('function');
    expect(call.id).toMatch(/^call_[0-9a-f]{24}$/);
    if (call.type !== 'function') throw new Error('not a function call');
    expect(call.function.name).toBe('get_weather');
    const args = JSON.parse(call.function.arguments) as { city: string; unit: string };
    expect(Object.keys(args).sort()).toEqual(['city', 'unit']);
    expect([...args.city].length).toBeLessThanOrEqual(8);
    expect(['c', 'f']).toContain(args.unit);
    // The prompt: the template's (which knows no tools) with the tools in a system message.
    const chat = ChatTemplate.fromMetadata(readGguf(model).metadata, tokenizer);
    const specs = tools.map((t) => t.function);
    expect(chat.render(messages, specs)).toContain('"name":"get_weather"');
    expect(r.usage!.prompt_tokens).toBe(chat.tokens(messages, undefined, specs).length);

    // "required" with two functions: a call of one of them, its arguments the named one's.
    const any = await client.chat.completions.create({
      ...ask,
      tool_choice: 'required',
    });
    expect(any.choices[0]!.finish_reason, JSON.stringify(any.choices[0]!.message)).toBe('tool_calls');
    const one = any.choices[0]!.message.tool_calls![0]!;
    if (one.type !== 'function') throw new Error('not a function call');
    const got = JSON.parse(one.function.arguments) as Record<string, unknown>;
    if (one.function.name === 'get_weather') expect(Object.keys(got).sort()).toEqual(['city', 'unit']);
    else expect(one.function.name).toBe('noop');

    // Streamed: the call comes in pieces as OpenAI streams one (id, type and name with the first,
    // then the arguments' text as it is generated), and they make up the same call.
    let content = '';
    let streamed = '';
    let finish = '';
    const pieces: { id?: string; type?: string; name?: string; arguments?: string }[] = [];
    const s = await client.chat.completions.create({ ...ask, stream: true });
    for await (const k of s) {
      const ch = k.choices[0]!;
      content += ch.delta.content ?? '';
      for (const t of ch.delta.tool_calls ?? []) {
        expect(t.index).toBe(0);
        pieces.push({ id: t.id, type: t.type, name: t.function?.name, arguments: t.function?.arguments });
        streamed += t.function?.arguments ?? '';
      }
      finish = ch.finish_reason ?? finish;
    }
    expect([content, finish]).toEqual(['', 'tool_calls']);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces[0]).toMatchObject({ type: 'function', name: 'get_weather' });
    expect(pieces[0]!.id).toMatch(/^call_/);
    expect(pieces.slice(1).every((p) => p.id === undefined && p.name === undefined)).toBe(true);
    expect(JSON.parse(streamed)).toEqual(JSON.parse(call.function.arguments));

    // A conversation that goes on after the call: the call and its answer are in the prompt.
    const history: ChatMessage[] = [
      ...messages,
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: call.id, name: 'get_weather', arguments: call.function.arguments }],
      },
      { role: 'tool', content: '{"temp": 21}', toolCallId: call.id },
    ];
    const after = await client.chat.completions.create({
      model: 'm',
      messages: [
        ...messages,
        { role: 'assistant', content: null, tool_calls: [{ ...call }] },
        { role: 'tool', content: '{"temp": 21}', tool_call_id: call.id },
      ],
      tools: [tools[1]!], // the context of 256 tokens holds one tool's signature beside the history
      max_tokens: 4,
      temperature: 0,
    });
    const shown = chat.render(history, [specs[1]!]);
    expect(after.usage!.prompt_tokens).toBe(chat.tokens(history, undefined, [specs[1]!]).length);
    expect(shown).toContain('<tool_response>\n{"temp": 21}\n</tool_response>');
    expect(shown).toContain(`"arguments": ${call.function.arguments}`);

    for (const [body, message] of [
      [
        { tool_choice: { type: 'function', function: { name: 'nope' } } },
        /tool_choice names nope, which is not one of tools \(get_weather, noop\)/,
      ],
      [
        { tool_choice: 'required', tools: [{ type: 'function', function: { name: 'bad name' } }] },
        /tools\[0\]\.function\.name must be/,
      ],
      [
        {
          tools: [
            {
              type: 'function',
              function: {
                name: 'f',
                parameters: { type: 'object', properties: { a: { type: 'string', format: 'color' } } },
              },
            },
          ],
          tool_choice: 'required',
        },
        /tools\[0\]\.function\.parameters: \$\.properties\.a\.format: "color" is not supported/,
      ],
      [
        { response_format: { type: 'json_object' }, tool_choice: 'required' },
        /response_format cannot be given with a tool_choice that forces a call/,
      ],
      [{ tools: undefined, tool_choice: 'auto' }, /tool_choice needs tools/],
      [{ parallel_tool_calls: 'no' }, /parallel_tool_calls must be true or false/],
    ] as const) {
      const refused = await raw('/v1/chat/completions', {
        method: 'POST',
        body: JSON.stringify({ messages, tools, ...body }),
      });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
  });

  it('returns log-probabilities, streamed or not: the chosen token and the most likely ones', async () => {
    const ask = { model: 'm', prompt: PROMPT, max_tokens: 10, temperature: 0, logprobs: 3 };
    const r = await client.completions.create(ask);
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).toHaveLength(r.usage!.completion_tokens);
    expect(lp.tokens!.join('')).toBe(r.choices[0]!.text);
    let offset = 0;
    lp.tokens!.forEach((t, i) => {
      expect(lp.text_offset![i]).toBe(offset);
      offset += t.length;
      const top = Object.values(lp.top_logprobs![i]!);
      // Greedy: the chosen token is the most likely one.
      expect(lp.token_logprobs![i]).toBe(Math.max(...top));
      expect(lp.token_logprobs![i]!).toBeLessThan(0);
      expect(top.reduce((a, v) => a + Math.exp(v), 0)).toBeLessThanOrEqual(1);
    });
    const stream = await client.completions.create({ ...ask, stream: true });
    const streamed: (typeof lp)[] = [];
    for await (const c of stream) if (c.choices[0]?.logprobs) streamed.push(c.choices[0].logprobs);
    expect(streamed.flatMap((s) => s.tokens)).toEqual(lp.tokens);
    expect(streamed.flatMap((s) => s.token_logprobs)).toEqual(lp.token_logprobs);
    expect(streamed.flatMap((s) => s.text_offset)).toEqual(lp.text_offset);

    const chat = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'Hello there' }],
      max_tokens: 8,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    const content = chat.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(chat.usage!.completion_tokens);
    expect(Buffer.from(content.flatMap((c) => c.bytes!)).toString('utf8')).toBe(
      chat.choices[0]!.message.content,
    );
    for (const c of content) {
      expect(c.top_logprobs).toHaveLength(2);
      expect(c.top_logprobs[0]!).toEqual({ token: c.token, logprob: c.logprob, bytes: c.bytes });
    }
    // Without asking: none.
    // The prompt as token ids: the same answer.
    const ids = generated(1).promptTokens;
    const byIds = await client.completions.create({ ...ask, prompt: ids });
    expect(byIds.choices[0]!.text).toBe(r.choices[0]!.text);
    expect(byIds.choices[0]!.logprobs!.token_logprobs).toEqual(lp.token_logprobs);
    const plain = await client.completions.create({ ...ask, logprobs: undefined });
    expect(plain.choices[0]!.logprobs).toBeNull();
  });

  it("echo scores the prompt token by token: each position's distribution as its prefix's own", async () => {
    const text = 'The quick brown fox jumps over the lazy dog, and then it runs far away into the woods.';
    // Its tokens (later -p wins over the helper's).
    const promptIds = generated(1, '-p', text).promptTokens;
    expect(promptIds.length).toBeGreaterThan(16); // several steps of rows when others decode
    const ask = { model: 'm', prompt: text, max_tokens: 0, temperature: 0, logprobs: 4, echo: true };
    const alone = await client.completions.create(ask);
    const lp = alone.choices[0]!.logprobs!;
    expect(alone.choices[0]!.text).toBe(text);
    expect(alone.usage!.completion_tokens).toBe(0);
    expect(lp.tokens).toHaveLength(alone.usage!.prompt_tokens);
    expect(lp.token_logprobs![0]).toBeNull();
    expect(lp.top_logprobs![0]).toBeNull();
    // Position p's top tokens are what a completion of the prompt's first p tokens ranks first.
    for (const p of [1, 2, Math.floor(promptIds.length / 2), promptIds.length - 1]) {
      const next = await client.completions.create({
        model: 'm',
        prompt: promptIds.slice(0, p),
        max_tokens: 1,
        temperature: 0,
        logprobs: 4,
      });
      const want = next.choices[0]!.logprobs!.top_logprobs![0]!;
      const got = lp.top_logprobs![p]!;
      expect(Object.keys(got)).toEqual(Object.keys(want));
      for (const k of Object.keys(want)) expect(got[k]).toBeCloseTo(want[k]!, 4);
      expect(lp.token_logprobs![p]!).toBeLessThan(0);
    }
    // The same numbers while 7 other sequences decode beside it (the rows it takes per step are
    // those the slots leave), and a completion after the echoed prompt.
    const others = Array.from({ length: 7 }, (_, i) =>
      client.completions.create({ model: 'm', prompt: `Story ${i}`, max_tokens: 24, temperature: 0 }),
    );
    const busy = await client.completions.create(ask);
    await Promise.all(others);
    expect(busy.choices[0]!.logprobs).toEqual(lp);
    const more = await client.completions.create({ ...ask, max_tokens: 3 });
    const plain = await client.completions.create({ ...ask, max_tokens: 3, echo: false });
    expect(more.choices[0]!.text).toBe(text + plain.choices[0]!.text);
    expect(more.choices[0]!.logprobs!.token_logprobs!.slice(promptIds.length)).toEqual(
      plain.choices[0]!.logprobs!.token_logprobs,
    );
  });

  it("a prompt that begins with a slot's last sequence starts after it, with the same tokens", async () => {
    const cached = () => metric('redblue_prompt_tokens_cached_total');
    const first = await client.completions.create({
      model: 'm',
      prompt: PROMPT,
      max_tokens: 12,
      temperature: 0,
    });
    // The next turn resends the conversation so far (as chat clients do) and adds to it.
    const next = PROMPT + first.choices[0]!.text + ' and then';
    const before = await cached();
    const r = await client.completions.create({ model: 'm', prompt: next, max_tokens: 8, temperature: 0 });
    const reused = (await cached()) - before;
    expect(r.usage!.prompt_tokens_details!.cached_tokens).toBe(reused);
    expect(reused).toBeGreaterThanOrEqual(generated(1).promptTokens.length - 1);
    expect(reused).toBeLessThan(r.usage!.prompt_tokens);
    // What redblue generate computes from nothing.
    expect(r.choices[0]!.text).toBe(generated(8, '-p', next).text);
  });

  it('refuses bad requests with OpenAI-style errors and keeps serving', async () => {
    const bad: [RequestInit & { path?: string }, number, RegExp][] = [
      [{ method: 'POST', body: '{"prompt": "x", ' }, 400, /not JSON/],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', n: 3, best_of: 2 }) },
        400,
        /best_of \(2\) must be at least n \(3\)/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', best_of: 2, stream: true }) },
        400,
        /best_of picks among whole completions, so it cannot stream/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', best_of: 21 }) },
        400,
        /best_of must be a number from 1 to 20/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 'many' }) },
        400,
        /max_tokens must be a number/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', temperature: 7 }) },
        400,
        /temperature must be a number from 0 to 2/,
      ],
      [{ method: 'POST', body: JSON.stringify({ prompt: 'word '.repeat(400) }) }, 400, /context holds 256/],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 1000 }) },
        400,
        /exceed the context of 256 tokens/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', frequency_penalty: -3 }) },
        400,
        /frequency_penalty must be a number from -2 to 2/,
      ],
      [
        {
          method: 'POST',
          body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }),
          path: '/v1/chat/completions',
        },
        400,
        /top_logprobs needs logprobs: true/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: [1, 99999999] }) },
        400,
        /the prompt: token 99999999 is outside the vocabulary/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', echo: true, stream: true }) },
        400,
        /echo is answered whole/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', n: 200 }) },
        400,
        /n must be a number from 1 to 128/,
      ],
      [{ method: 'POST', body: JSON.stringify({ prompt: ['x', 5] }) }, 400, /prompt must be a string/],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', logit_bias: { 5: 101 } }) },
        400,
        /logit_bias of token 5 must be a number from -100 to 100/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: 'x', logit_bias: { 99999999: 1 } }) },
        400,
        /logit_bias names token 99999999, outside the vocabulary/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: Array(20).fill('x'), n: 128 }) },
        400,
        /20 prompts × n = 128 asks for 2560 choices; at most 2048/,
      ],
      [
        { method: 'POST', body: JSON.stringify({ prompt: ['x', 'word '.repeat(400)] }) },
        400,
        /prompt 1 is \d+ tokens but the context holds 256/,
      ],
      [
        {
          method: 'POST',
          body: JSON.stringify({ messages: [{ role: 'robot', content: 'x' }] }),
          path: '/v1/chat/completions',
        },
        400,
        /role must be/,
      ],
      [{ method: 'GET', path: '/v1/nothing' }, 404, /no route GET \/v1\/nothing/],
      [{ method: 'POST', path: '/tokenize', body: '{"content": 5}' }, 400, /content must be a string/],
      [
        { method: 'POST', path: '/detokenize', body: '{"tokens": [99999999]}' },
        400,
        /token 99999999 is outside/,
      ],
      [{ method: 'POST', body: '{}', headers: { authorization: 'Bearer wrong' } }, 401, /API key/],
    ];
    for (const [init, status, msg] of bad) {
      const res = await raw(init.path ?? '/v1/completions', init);
      expect(res.status, String(init.body)).toBe(status);
      const body = (await res.json()) as { error: { message: string; type: string } };
      expect(body.error.message).toMatch(msg);
    }
    await expect(
      new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'nope', maxRetries: 0 }).models.list(),
    ).rejects.toMatchObject({ status: 401 });
    const health = await raw('/health', { headers: { authorization: '' } });
    expect(health.status).toBe(200);
    // Connections outlive a client's pause between requests (Node's 5 s default did not).
    expect(health.headers.get('keep-alive')).toBe('timeout=65');
    const ok = await client.completions.create({ model: 'm', prompt: PROMPT, max_tokens: 2, temperature: 0 });
    expect(ok.usage!.completion_tokens).toBe(2);
    const text = await (await raw('/metrics')).text();
    expect(text).toMatch(/^redblue_requests_total\{route="\/v1\/completions",status="400"\} [1-9]\d*$/m);
    expect(text).toMatch(/^redblue_executor_seconds_total\{rank="1",kind="exchange"\} /m);
    // Decode steps' vectors are small: one host's all-reduces ran flat, on both ranks.
    expect(text).toMatch(/^redblue_executor_allreduces_total\{rank="1",algorithm="shm-flat"\} [1-9]\d*$/m);
  });

  it('8 concurrent streams give exactly the tokens each gets alone', async () => {
    const prompts = [
      'Once upon a time',
      'The quick brown fox',
      'In a hole in the ground there lived',
      'Hello',
      'It was a bright cold day in April, and the clocks were striking thirteen.',
      'Call me Ishmael.',
      'A',
      'All happy families are alike; each unhappy family is unhappy in its own way.',
    ];
    const ask = (prompt: string, i: number) =>
      client.completions.create({
        model: 'm',
        prompt,
        max_tokens: 10 + 3 * i,
        temperature: 0,
        ignore_eos: true,
      } as never);
    const aloneText: string[] = [];
    for (const [i, p] of prompts.entries()) aloneText.push((await ask(p, i)).choices[0]!.text);
    const stepsBefore = await metric('redblue_steps_total');
    const seqsBefore = await metric('redblue_step_sequences_total');
    // Streamed, all at once: they share steps (each step carries several sequences).
    const together = await Promise.all(
      prompts.map(async (prompt, i) => {
        const s = await client.completions.create({
          model: 'm',
          prompt,
          max_tokens: 10 + 3 * i,
          temperature: 0,
          stream: true,
          ignore_eos: true,
        } as never);
        let text = '';
        for await (const c of s as unknown as AsyncIterable<{ choices: { text: string }[] }>)
          text += c.choices[0]?.text ?? '';
        return text;
      }),
    );
    expect(together).toEqual(aloneText);
    const steps = (await metric('redblue_steps_total')) - stepsBefore;
    const seqs = (await metric('redblue_step_sequences_total')) - seqsBefore;
    // 8 streams of 10-31 tokens alone would take 164 steps and more; together far fewer.
    expect(seqs / steps).toBeGreaterThan(3);
    expect(await metric('redblue_kv_slots{state="in_use"}')).toBe(0);
    expect(await metric('redblue_kv_slots{state="total"}')).toBe(8);
  });

  // The next step is posted before the sampled tokens' text is passed on, so a stop string ends
  // a sequence whose next row is already being computed, and a queued request may take its slot
  // at the step after: each must still get exactly its text alone.
  it('more requests than slots, some ending at stop strings mid-batch: each as alone', async () => {
    const prompts = Array.from({ length: 11 }, (_, i) => `${PROMPT} ${'and then '.repeat(i % 4)}${i}`);
    const plain = (prompt: string, i: number) => ({
      model: 'm',
      prompt,
      max_tokens: 12 + 2 * i,
      temperature: 0,
      ignore_eos: true,
    });
    const full = await Promise.all(prompts.map((p, i) => client.completions.create(plain(p, i) as never)));
    // Every other request stops at three characters from the middle of its text.
    const stops = full.map((r, i) => {
      const t = r.choices[0]!.text;
      return i % 2 ? [t.slice(Math.floor(t.length / 2), Math.floor(t.length / 2) + 3)] : undefined;
    });
    const want = full.map((r, i) => {
      const t = r.choices[0]!.text;
      return stops[i] ? t.slice(0, t.indexOf(stops[i]![0]!)) : t;
    });
    const together = await Promise.all(
      prompts.map(async (p, i) => {
        const r = await client.completions.create({ ...plain(p, i), stop: stops[i] } as never);
        return r.choices[0]!;
      }),
    );
    expect(together.map((c) => c.text)).toEqual(want);
    expect(together.map((c) => c.finish_reason)).toEqual(stops.map((st) => (st ? 'stop' : 'length')));
    expect(await metric('redblue_kv_slots{state="in_use"}')).toBe(0);
  });

  it('a client that leaves mid-stream frees the model at the next token', async () => {
    const before = await metric('redblue_generations_aborted_total');
    const ac = new AbortController();
    const s = await client.completions.create(
      { model: 'm', prompt: PROMPT, max_tokens: 200, temperature: 0, stream: true },
      { signal: ac.signal },
    );
    let chunks = 0;
    try {
      for await (const _ of s) if (++chunks === 2) ac.abort();
    } catch {
      // the aborted stream
    }
    expect(chunks).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 50 && (await metric('redblue_generations_aborted_total')) === before; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await metric('redblue_generations_aborted_total')).toBe(before + 1);
    expect(await metric('redblue_active_requests')).toBe(0);
    expect(await metric('redblue_kv_slots{state="in_use"}')).toBe(0);
    const next = await client.completions.create({
      model: 'm',
      prompt: PROMPT,
      max_tokens: 3,
      temperature: 0,
    });
    expect(next.usage!.completion_tokens).toBe(3);
  });

  it('--lookup: streams that feed drafted tokens get the same texts, some drafts taken', async () => {
    const lookup = await startServe(['--lookup', '7', '--lookup-shared']);
    try {
      const drafting = new OpenAI({
        baseURL: `http://127.0.0.1:${lookup.port}/v1`,
        apiKey: KEY,
        maxRetries: 0,
      });
      // A random model seldom repeats itself: three tokens raised far above the rest make all of
      // its text, which then repeats (drafts taken and missed). One stream, then four together.
      const logit_bias = { 450: 100, 4996: 100, 17354: 100 };
      const ask = (c: OpenAI, i: number) => numbered(c, i, 24, { logit_bias });
      const texts = async (c: OpenAI, n: number) =>
        (await Promise.all(Array.from({ length: n }, (_, i) => ask(c, i)))).map((r) => r.choices[0]!.text);
      expect(await texts(drafting, 1)).toEqual(await texts(client, 1));
      expect(await texts(drafting, 4)).toEqual(await texts(client, 4));
      const m = await (
        await fetch(`http://127.0.0.1:${lookup.port}/metrics`, {
          headers: { authorization: `Bearer ${KEY}` },
        })
      ).text();
      const count = (o: string, text = m) =>
        Number(new RegExp(`^redblue_draft_tokens_total\\{outcome="${o}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
      expect(count('accepted')).toBeGreaterThan(0);
      expect(count('drafted')).toBeGreaterThan(count('accepted'));
      // --lookup-shared: the same unbiased request again drafts its answer from the first one's
      // text (the random model seldom repeats itself, so its own context drafts little).
      const accepted = async () =>
        count(
          'accepted',
          await (
            await fetch(`http://127.0.0.1:${lookup.port}/metrics`, {
              headers: { authorization: `Bearer ${KEY}` },
            })
          ).text(),
        );
      const again = () =>
        drafting.completions.create({
          model: 'm',
          prompt: 'Shared texts',
          max_tokens: 40,
          temperature: 0,
          ignore_eos: true,
        } as never);
      const before = await accepted();
      const first = (await again()).choices[0]!.text;
      const once = (await accepted()) - before;
      const second = (await again()).choices[0]!.text;
      const twice = (await accepted()) - before - once;
      expect(second).toBe(first);
      expect(twice, `accepted ${once} then ${twice}`).toBeGreaterThan(Math.max(20, 2 * once));
    } finally {
      lookup.proc.kill('SIGTERM');
      await new Promise((r) => lookup.proc.on('exit', r));
    }
  });

  it('--draft: a stream decoding alone gets the texts of the server without it, the model drafting for itself always right', async () => {
    const draft = await startServe(['--draft', model, '--draft-p-min', '0', '--draft-max', '4']);
    try {
      const drafting = new OpenAI({
        baseURL: `http://127.0.0.1:${draft.port}/v1`,
        apiKey: KEY,
        maxRetries: 0,
      });
      const count = async (o: string) => {
        const m = await (
          await fetch(`http://127.0.0.1:${draft.port}/metrics`, {
            headers: { authorization: `Bearer ${KEY}` },
          })
        ).text();
        return Number(
          new RegExp(`^redblue_draft_tokens_total\\{outcome="${o}"\\} (\\d+)$`, 'm').exec(m)?.[1],
        );
      };
      const ask = (c: OpenAI, i: number) => numbered(c, i, 20);
      // Alone, greedy (streamed too): drafted, every guess right, the same text.
      expect((await ask(drafting, 0)).choices[0]!.text).toBe((await ask(client, 0)).choices[0]!.text);
      const stream = await drafting.completions.create({
        model: 'm',
        prompt: PROMPT,
        max_tokens: 12,
        temperature: 0,
        stream: true,
      });
      let streamed = '';
      for await (const c of stream) streamed += c.choices[0]?.text ?? '';
      const plain = await client.completions.create({
        model: 'm',
        prompt: PROMPT,
        max_tokens: 12,
        temperature: 0,
      });
      expect(streamed).toBe(plain.choices[0]!.text);
      expect(await count('drafted')).toBeGreaterThan(0);
      expect(await count('accepted')).toBe(await count('drafted'));
      // Sampled: the guesses are greedy, some miss; the same text.
      expect((await ask(drafting, 1)).choices[0]!.text).toBe((await ask(client, 1)).choices[0]!.text);
      // Three together: batched without drafts, the same texts as each alone.
      const together = await Promise.all([0, 1, 2].map((i) => ask(drafting, i)));
      const alone = await Promise.all([0, 1, 2].map((i) => ask(client, i)));
      expect(together.map((r) => r.choices[0]!.text)).toEqual(alone.map((r) => r.choices[0]!.text));
    } finally {
      draft.proc.kill('SIGTERM');
      expect(await new Promise((r) => draft.proc.on('exit', r))).toBe(0);
      expect(leftovers(draft.proc.pid!)).toEqual([]);
    }
  });

  it('embeds: unit vectors of the hidden size, as float or base64, each input as alone, usage counted; bad asks refused', async () => {
    const texts = ['Once upon a time', 'the cat', 'Once upon a time'];
    const r = await client.embeddings.create({ model: 'chat.gguf', input: texts });
    expect(r.object).toBe('list');
    expect(r.data.map((d) => d.index)).toEqual([0, 1, 2]);
    const tokens = await Promise.all(
      texts.map(async (t) => {
        const res = await raw('/tokenize', {
          method: 'POST',
          body: JSON.stringify({ content: t, add_special: true }),
        });
        return ((await res.json()) as { tokens: number[] }).tokens;
      }),
    );
    expect(r.usage).toEqual({
      prompt_tokens: tokens.reduce((a, t) => a + t.length, 0),
      total_tokens: tokens.reduce((a, t) => a + t.length, 0),
    });
    for (const d of r.data) {
      expect(d.embedding).toHaveLength(SMALL.nEmbd);
      expect(Math.hypot(...d.embedding)).toBeCloseTo(1, 5);
    }
    expect(r.data[2]!.embedding).toEqual(r.data[0]!.embedding);
    expect(r.data[1]!.embedding).not.toEqual(r.data[0]!.embedding);
    // Alone, as token ids, and as base64 (little-endian float32): the same vector.
    const alone = await client.embeddings.create({ model: 'm', input: tokens[1]! });
    expect(alone.data[0]!.embedding).toEqual(r.data[1]!.embedding);
    const b64 = await raw('/v1/embeddings', {
      method: 'POST',
      body: JSON.stringify({ input: texts[1], encoding_format: 'base64' }),
    });
    const packed = Buffer.from(
      ((await b64.json()) as { data: { embedding: string }[] }).data[0]!.embedding,
      'base64',
    );
    expect(Array.from(new Float32Array(packed.buffer, packed.byteOffset, packed.length / 4))).toEqual(
      r.data[1]!.embedding,
    );
    const refused = async (body: unknown, status: number, message: RegExp) => {
      const res = await raw('/v1/embeddings', { method: 'POST', body: JSON.stringify(body) });
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
    };
    await refused({ input: '' }, 400, /input must be a non-empty string/);
    await refused({ input: [[1, 2], 'x', []] }, 400, /input must be/);
    await refused(
      { input: 'x', dimensions: 8 },
      400,
      new RegExp(`have ${SMALL.nEmbd} dimensions and cannot be shortened to 8`),
    );
    await refused({ input: 'x', encoding_format: 'hex' }, 400, /encoding_format must be 'float' or 'base64'/);
    await refused({ input: [[1, 999_999]] }, 400, /token 999999 is outside the vocabulary/);
    await refused(
      { input: 'word '.repeat(400) },
      400,
      /tokens but the context holds \d+ \(serve --ctx sets it\)/,
    );
    // Still serving.
    expect((await client.embeddings.create({ model: 'm', input: 'the cat' })).data[0]!.embedding).toEqual(
      r.data[1]!.embedding,
    );
  });

  it('SIGTERM finishes the request in hand, stops the executors and exits 0', async () => {
    const pending = client.completions.create({ model: 'm', prompt: PROMPT, max_tokens: 40, temperature: 0 });
    await new Promise((r) => setTimeout(r, 50));
    proc.kill('SIGTERM');
    const r = await pending;
    expect(r.choices[0]!.text.length).toBeGreaterThan(0);
    expect(await exited()).toBe(0);
    expect(stderr()).toMatch(/SIGTERM: finishing the requests in hand, then stopping/);
    expect(leftovers(proc.pid!)).toEqual([]);
  });
});

describe('redblue serve before the model is in', () => {
  it('takes its port first: a taken port fails at once; /health says loading until the model is in', async () => {
    const taken = createNetServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const busy = (taken.address() as AddressInfo).port;
    const r = runCli(['serve', '-m', model, '--port', String(busy), '--virtual-nodes', '2']);
    await new Promise<void>((res) => taken.close(() => res()));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`127\\.0\\.0\\.1:${busy} is in use .*: choose another --port, or --port 0 for any free one`),
    );
    expect(leftovers(r.pid)).toEqual([]);
    // Free now: the server listens there before its executors start, and says it is loading.
    const p = spawn(
      process.execPath,
      [cliPath, 'serve', '-m', model, '--port', String(busy), '--virtual-nodes', '2'],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    try {
      const first = async (path: string) => {
        for (let i = 0; i < 1000; i++) {
          const got = await fetch(`http://127.0.0.1:${busy}${path}`).then(
            async (res) => ({ status: res.status, body: (await res.json()) as unknown }),
            () => undefined,
          );
          if (got) return got;
          await new Promise((res) => setTimeout(res, 10));
        }
        throw new Error(`no answer on ${path}`);
      };
      const [health, models] = await Promise.all([first('/health'), first('/v1/models')]);
      expect(health).toEqual({ status: 503, body: { status: 'loading' } });
      expect(models.status).toBe(503);
      expect(models.body).toMatchObject({ error: { type: 'unavailable_error', code: 503 } });
      let ok: { status: number; body: unknown } | undefined;
      for (let i = 0; i < 600 && ok?.status !== 200; i++) {
        ok = await first('/health');
        if (ok.status !== 200) await new Promise((res) => setTimeout(res, 50));
      }
      expect(ok).toEqual({ status: 200, body: { status: 'ok' } });
    } finally {
      p.kill('SIGTERM');
      await new Promise((res) => (p.exitCode !== null ? res(p.exitCode) : p.on('exit', res)));
    }
    expect(leftovers(p.pid!)).toEqual([]);
  });
});

describe('redblue serve flags', () => {
  it('refuses a public address without an API key, --parallel beyond 1-64, and more KV cache than memory, saying why', () => {
    const open = runCli(['serve', '-m', model, '--host', '0.0.0.0']);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/--host 0\.0\.0\.0 is reachable from other machines: give --api-key K/);
    const par = runCli(['serve', '-m', model, '--parallel', '65']);
    expect(par.code).toBe(2);
    expect(par.stderr).toMatch(/--parallel must be 1-64, got 65/);
    // 64 sequences of 2^26 positions: 1 TiB of KV cache, refused before any executor loads.
    const long = join(dir, 'long-context.gguf');
    writeSyntheticModel(long, { ...SMALL_LLAMA, nCtx: 2 ** 26 });
    const huge = runCli([
      'serve',
      '-m',
      long,
      '--parallel',
      '64',
      '--ctx',
      String(2 ** 26),
      '--virtual-nodes',
      '2',
    ]);
    expect(huge.code).toBe(2);
    expect(huge.stderr).toMatch(
      /the model does not fit in memory: memory node 0 \(ranks 0, 1\) needs .*KV cache 1\.0 TiB for 64 sequences of 67108864 positions.*: ask for a context of at most \d+ positions \(--ctx\), or at most \d+ sequences of 67108864 \(--parallel\)$/m,
    );
    expect(leftovers(huge.pid)).toEqual([]);
    const missing = runCli(['serve', '-m', join(dir, 'nope.gguf')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/nope\.gguf/);
  });
});
