#!/usr/bin/env node
// The rows8 kernels of each weight type on each kernel path, one core, best of several calls:
//   gemm: Y = X·Wᵀ at m = 512 (or --m), n = k = 2048, weights from cache, in GFLOP/s;
//   gemv: m = 1, n = k = 4096, in GB/s of weights: from cache (one matrix) or, with --dram,
//         cycling over 8 matrices (75 MiB of Q4_0), so every call reads DRAM.
// Compares paths and types with each other in one run (docs/kernels.md quotes it); the figure
// that counts is `redblue bench model`.
//
//   node scripts/rows8-paths.mjs gemm q4_0,q4_k,q6_k avx2,avx512vnni [--m 8]
//   node scripts/rows8-paths.mjs gemv q4_k,q6_k avx2,avx512vnni --dram
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomFloats } from './random-floats.mjs';

const [mode = 'gemm', typesArg = 'q4_0,q4_k,q6_k', pathsArg = 'avx2,auto', ...rest] = process.argv.slice(2);
if (mode !== 'gemm' && mode !== 'gemv') {
  console.error(`unknown mode '${mode}': use gemm or gemv`);
  process.exit(2);
}
const flag = (name) => rest.includes(name);
const value = (name, dflt) => (rest.includes(name) ? Number(rest[rest.indexOf(name) + 1]) : dflt);
const require = createRequire(import.meta.url);
const lib = require(resolve(process.env.REDBLUE_ADDON ?? 'build/Release/redblue.node'));
const pool = new lib.ThreadPool(lib.currentAffinity().slice(0, 1));
const gemv = mode === 'gemv';
const m = gemv ? 1 : value('--m', 512);
const n = gemv ? 4096 : 2048;
const k = n;
const copies = gemv && flag('--dram') ? 8 : 1;
const x = randomFloats(m * k);
const y = new Float32Array(m * n);
const wf = randomFloats(n * k);
for (const type of typesArg.split(',')) {
  const ws = [];
  for (let c = 0; c < copies; c++)
    ws.push(lib.interleaveRows8(type, lib.quantize(type, wf, n, k, 'auto'), n, k));
  const cells = [];
  for (const path of pathsArg.split(',')) {
    if (!lib.kernelPaths().supported.includes(path) && path !== 'auto') continue;
    if (!lib.rows8Runs(type, path)) {
      cells.push(`${path} -`);
      continue;
    }
    let best = Infinity;
    for (let r = 0; r < (gemv ? 32 : 7); r++) {
      const t0 = performance.now();
      lib.matmulQ(pool, { type, m, n, k, w: ws[r % copies], x, y, rows8: true, isa: path });
      best = Math.min(best, performance.now() - t0);
    }
    const rate = gemv ? ws[0].length / best / 1e6 : (2 * m * n * k) / best / 1e6;
    cells.push(`${path} ${rate.toFixed(1)}`);
  }
  const unit = gemv ? `GB/s (${copies > 1 ? 'DRAM' : 'cache'})` : `GFLOP/s m=${m}`;
  console.log(`${type.padEnd(7)} ${unit}  ${cells.join('  ')}`);
}
pool.close();
