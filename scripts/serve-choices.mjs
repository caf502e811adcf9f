#!/usr/bin/env node
// n choices of one long prompt against a running `redblue serve`: requests with n = 1 and n = 4
// in turn, each on a prompt no request sent before, 16 tokens a choice. The later choices copy
// the first one's cache of the prompt (Batcher.admit), so n = 4 should take about what n = 1
// takes, not four prompts' time. Prints each request's prompt tokens, those found cached (the
// most any choice found) and its time.
//
//   node scripts/serve-choices.mjs http://127.0.0.1:8080 [rounds=2] [prompt repeats=130]
import { performance } from 'node:perf_hooks';

const { fetch } = globalThis;
const [base, roundsArg = '2', repeatsArg = '130'] = process.argv.slice(2);
if (!base) {
  console.error('usage: node scripts/serve-choices.mjs SERVER_URL [rounds=2] [prompt repeats=130]');
  process.exit(2);
}
const text = 'The quick brown fox jumps over the lazy dog. '.repeat(Number(repeatsArg));
for (let round = 0; round < Number(roundsArg); round++)
  for (const n of [1, 4]) {
    const prompt = `Request ${round}-${n}-${Date.now()}: ${text}`;
    const t0 = performance.now();
    const res = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, max_tokens: 16, temperature: 0.8, seed: 1, n, ignore_eos: true }),
    });
    const j = await res.json();
    if (!res.ok) throw new Error(JSON.stringify(j));
    console.log(
      `n=${n}: ${j.usage.prompt_tokens} prompt tokens (${j.usage.prompt_tokens_details.cached_tokens} cached), ` +
        `${j.usage.completion_tokens} generated, ${(performance.now() - t0).toFixed(0)} ms`,
    );
  }
