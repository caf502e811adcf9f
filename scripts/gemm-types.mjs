#!/usr/bin/env node
// Prompt-sized GEMM of each weight type on one core: Y = X·Wᵀ at m = 512, n = k = 2048 (a
// prompt step's tiles, weights from cache), best of 5, in GFLOP/s. Compares the types' kernels
// with each other in one run; `redblue bench model` is the figure that counts.
//
//   node scripts/gemm-types.mjs [q4_0,q4_k,iq4_xs,q6_k,q5_k,q8_0] [path/to/redblue.node]
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { randomFloats } from './random-floats.mjs';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const lib = require(resolve(process.argv[3] ?? 'build/Release/redblue.node'));
const pool = new lib.ThreadPool(lib.currentAffinity().slice(0, 1));
const m = 512;
const n = 2048;
const k = 2048;
const x = randomFloats(m * k);
const y = new Float32Array(m * n);
const wf = randomFloats(n * k);
for (const type of (process.argv[2] ?? 'q4_0,q4_k,iq4_xs,q6_k,q5_k,q8_0').split(',')) {
  const w = lib.quantize(type, wf, n, k, 'auto');
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    lib.matmulQ(pool, { type, m, n, k, w, x, y });
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`${type.padEnd(7)} ${((2 * m * n * k) / best / 1e6).toFixed(1)} GFLOP/s`);
}
pool.close();
