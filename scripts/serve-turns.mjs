#!/usr/bin/env node
// A conversation's turns against a running `redblue serve`: each request resends the text so far
// plus the answer and a few words, as chat clients do. Prints each turn's prompt tokens, how many
// the server found in a slot's KV cache (redblue_prompt_tokens_cached_total) and the request's
// time, so the first turn (everything processed) compares with the next ones (the new tokens).
//
//   node scripts/serve-turns.mjs http://127.0.0.1:8080 [turns=4] [prompt repeats=40]
import { performance } from 'node:perf_hooks';

const { fetch } = globalThis;
const [base, turnsArg = '4', repeatsArg = '40'] = process.argv.slice(2);
if (!base) {
  console.error('usage: node scripts/serve-turns.mjs SERVER_URL [turns=4] [prompt repeats=40]');
  process.exit(2);
}
const cached = async () =>
  Number(
    /^redblue_prompt_tokens_cached_total (\S+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1],
  );
let text = 'The quick brown fox jumps over the lazy dog. '.repeat(Number(repeatsArg));
for (let turn = 1; turn <= Number(turnsArg); turn++) {
  const before = await cached();
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: text, max_tokens: 16, temperature: 0 }),
  });
  const j = await r.json();
  if (!r.ok) throw new Error(JSON.stringify(j));
  const ms = performance.now() - t0;
  console.log(
    `turn ${turn}: ${j.usage.prompt_tokens} prompt tokens, ${(await cached()) - before} found cached, ` +
      `${j.usage.completion_tokens} generated, ${ms.toFixed(0)} ms`,
  );
  text += j.choices[0].text + ' And then the fox said: ';
}
