#!/usr/bin/env node
// What picking one token costs in JS (model/sampling.ts), per setting and vocabulary size, against
// one plain pass over the same logits in the same run (a loop finding their largest value: what
// any look at every logit costs at least). Between two decode steps the executors wait for it, so at 14 ms a
// token (a 0.5B model here) each 0.14 ms is 1 % of the generation rate. Needs `npm run build:ts`.
//
//   node scripts/sampler-cost.mjs [vocab,vocab…]      (default 32000,151936)
import { performance } from 'node:perf_hooks';
import { Sampler } from '../dist/model/sampling.js';

const settings = [
  ['greedy (--temp 0)', { temperature: 0 }],
  ["llama.cpp's defaults (top-k 40, top-p 0.95, min-p 0.05)", {}],
  ['the same with --repeat-penalty 1.1', { repeatPenalty: 1.1 }],
  ['top-k off (top-p 0.95, min-p 0.05)', { topK: 0 }],
];
const time = (f, reps) => {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) f();
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  return best * 1e3; // µs
};
for (const n of (process.argv[2] ?? '32000,151936').split(',').map(Number)) {
  const logits = new Float32Array(n);
  // A spread like a model's: most tokens far below the top few.
  for (let i = 0; i < n; i++) logits[i] = Math.sin(i * 12.9898) * 4 + (i % 97 === 0 ? 6 : 0);
  let sink = 0;
  const pass = time(() => {
    let m = -Infinity;
    for (let i = 0; i < n; i++) if (logits[i] > m) m = logits[i];
    sink += m;
  }, 200);
  for (const [name, p] of settings) {
    const s = new Sampler(n, { seed: 1, ...p });
    for (let t = 0; t < 64; t++) s.accept((t * 7919) % n);
    const us = time(() => (sink += s.sample(logits)), 100);
    console.log(`vocab ${n}: ${name}: ${us.toFixed(0)} µs a token, ${(us / pass).toFixed(1)} plain passes`);
  }
  if (sink === 0.5) console.log(''); // keeps the loops from being optimised away
}
