// Fuzzing the request bodies of `redblue serve` (/v1/completions, /v1/chat/completions): any JSON,
// and bodies shaped like OpenAI requests with fields of every type and range. Each gives a job
// whose values are inside the ranges the engine takes, or an ApiError 400 naming the field.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ApiError, chatJob, completionJob, type Job } from '../../server/openai.js';
import { attempt, fuzz } from './harness.js';

const FILE = 'test/fuzz/server-requests.test.ts';
const refusal = { type: ApiError };

const odd: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, 0, -1, 1, 0.5, 2, 3, 1e300, 2 ** 53, 2 ** 20 + 1, '', 'x', [], {}),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }),
);
const field = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 5, arbitrary: good as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: odd });
const part = fc.oneof(fc.record({ type: fc.constant('text'), text: fc.string() }), odd);
const message = fc.oneof(
  fc.record(
    {
      role: field(fc.constantFrom('system', 'developer', 'user', 'assistant', 'tool')),
      content: field(fc.oneof(fc.string(), fc.array(part, { maxLength: 3 }))),
    },
    { requiredKeys: [] },
  ),
  odd,
);
const options = fc.record(
  {
    n: field(fc.integer({ min: 1, max: 130 })),
    max_tokens: field(fc.nat({ max: 100 })),
    max_completion_tokens: field(fc.nat({ max: 100 })),
    temperature: field(fc.double({ min: 0, max: 2, noNaN: true })),
    top_p: field(fc.double({ min: 0, max: 1, noNaN: true })),
    top_k: field(fc.nat({ max: 100 })),
    min_p: field(fc.double({ min: 0, max: 1, noNaN: true })),
    repeat_penalty: field(fc.double({ min: 0, max: 10, noNaN: true })),
    repeat_last_n: field(fc.nat({ max: 4096 })),
    frequency_penalty: field(fc.double({ min: -2, max: 2, noNaN: true })),
    presence_penalty: field(fc.double({ min: -2, max: 2, noNaN: true })),
    logprobs: field(fc.oneof(fc.nat({ max: 25 }), fc.boolean())),
    top_logprobs: field(fc.nat({ max: 25 })),
    echo: field(fc.boolean()),
    response_format: field(fc.record({ type: field(fc.constantFrom('text', 'json_object', 'json_schema')) })),
    logit_bias: field(
      fc.dictionary(
        fc.oneof(fc.nat().map(String), fc.string()),
        fc.oneof(fc.double(), fc.integer({ min: -100, max: 100 })),
        {
          maxKeys: 4,
        },
      ),
    ),
    seed: field(fc.nat()),
    stop: field(
      fc.oneof(fc.string({ minLength: 1 }), fc.array(fc.string({ minLength: 1 }), { maxLength: 5 })),
    ),
    stream: field(fc.boolean()),
    stream_options: field(fc.record({ include_usage: field(fc.boolean()) }, { requiredKeys: [] })),
    ignore_eos: field(fc.boolean()),
  },
  { requiredKeys: [] },
);

/** The job's values are inside what the sampler and the batcher accept. */
function checkJob(j: Job): void {
  const inRange = (v: number | undefined, lo: number, hi: number, whole = false) => {
    if (v === undefined) return;
    expect(Number.isFinite(v) && v >= lo && v <= hi).toBe(true);
    if (whole) expect(Number.isInteger(v)).toBe(true);
  };
  inRange(j.sampling.temperature, 0, 2);
  inRange(j.sampling.topP, 0, 1);
  inRange(j.sampling.topK, 0, 1 << 20, true);
  inRange(j.sampling.minP, 0, 1);
  inRange(j.sampling.repeatPenalty, 0, 10);
  inRange(j.sampling.repeatLastN, 0, 1 << 20, true);
  inRange(j.sampling.frequencyPenalty, -2, 2);
  inRange(j.sampling.presencePenalty, -2, 2);
  inRange(j.logprobs, 0, 20, true);
  inRange(j.n, 1, 128, true);
  for (const [t, b] of j.sampling.logitBias ?? []) {
    inRange(t, 0, Number.MAX_SAFE_INTEGER, true);
    inRange(b, -100, 100);
  }
  if (j.echo) expect(j.kind === 'completion' && !j.stream).toBe(true);
  inRange(j.maxTokens, 0, 1 << 20, true);
  inRange(j.sampling.seed, 0, Number.MAX_SAFE_INTEGER, true);
  expect(j.stop.length).toBeLessThanOrEqual(4);
  for (const s of j.stop) expect(typeof s === 'string' && s.length > 0).toBe(true);
  if (j.kind === 'completion') {
    expect(j.prompts!.length).toBeGreaterThan(0);
    expect(j.prompts!.length * j.n).toBeLessThanOrEqual(2048);
    for (const p of j.prompts!)
      if (typeof p !== 'string') {
        expect(p.length).toBeGreaterThan(0);
        for (const t of p) expect(Number.isSafeInteger(t) && t >= 0).toBe(true);
      }
  } else for (const m of j.messages!) expect(typeof m.content).toBe('string');
}

function request(parse: (body: unknown) => Job, body: unknown): void {
  // What the server does with a body: JSON text, parsed again (no undefined, no -0).
  const json: unknown = JSON.parse(JSON.stringify(body) ?? 'null');
  const out = attempt(refusal, () => parse(json));
  if (out.ok) checkJob(out.value);
  else expect((out.error as ApiError).status).toBe(400);
}

describe('fuzz: serve request bodies', () => {
  it('any JSON to either endpoint', () => {
    fuzz(
      FILE,
      fc.property(fc.jsonValue({ maxDepth: 3 }), (body) => {
        request(completionJob, body);
        request(chatJob, body);
      }),
      300,
    );
  });

  it('/v1/completions bodies with fields of any type', () => {
    fuzz(
      FILE,
      fc.property(
        options,
        field(
          fc.oneof(
            fc.string(),
            fc.array(fc.string(), { maxLength: 2 }),
            fc.array(fc.oneof(fc.nat(), fc.integer(), fc.double()), { maxLength: 4 }),
            fc.array(fc.array(fc.nat(), { maxLength: 3 }), { maxLength: 2 }),
            fc.array(fc.oneof(fc.string(), fc.array(fc.nat(), { maxLength: 3 }), odd), { maxLength: 40 }),
          ),
        ),
        (o, prompt) => request(completionJob, { ...o, prompt }),
      ),
      300,
    );
  });

  it('/v1/chat/completions bodies with messages of any shape', () => {
    fuzz(
      FILE,
      fc.property(options, field(fc.array(message, { maxLength: 4 })), (o, messages) =>
        request(chatJob, { ...o, messages }),
      ),
      300,
    );
  });
});
