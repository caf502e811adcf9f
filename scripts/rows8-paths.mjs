#!/usr/bin/env node
// The rows8 kernels of each weight type on each kernel path, one core, best of several calls:
//   gemm: Y = X·Wᵀ at m = 512 (or --m), n = k = 2048, weights from cache, in GFLOP/s;
//   gemv: m = 1, n = k = 4096, in GB/s of weights: from cache (one matrix) or, with --dram,
//         cycling over 8 matrices (75 MiB of Q4_0), so every call reads DRAM; gemm --dram the
//         same matrices at m = --m (a serve step's weights read from memory: --m 8).
// Compares paths and types with each other in one run (docs/kernels.md quotes it); the figure
// that counts is `redblue bench model`.
//
//   node scripts/rows8-paths.mjs gemm q4_0,q4_k,q6_k avx2,avx512vnni [--m 8]
//   node scripts/rows8-paths.mjs gemv q4_k,q6_k avx2,avx512vnni --dram
//   node scripts/rows8-paths.mjs gemm q4_0 avx512vnni --m 8 --dram
//   node scripts/rows8-paths.mjs check q4_0,q8_0 avx512vnni,amx
//   node scripts/rows8-paths.mjs l2 q4_0,q5_k avx512,avx512vnni [--m 8]
// l2: n = 512, k = 2048 (the weights stay in L2, where a kernel's compute shows), 100 calls a
// round timed natively by the pool's worker (timeMatmulQ; from JS a call costs as long as the
// kernel), best of 15 rounds: GB/s of weights at m = 1 (the default), GFLOP/s above it.
// check: every path's Y bit for bit against the first path's, on shapes that cover each tile
// size and edge (test/kernels/rows8.test.ts does the same on the paths CI's cpu has; this
// runs it on another machine, e.g. one with AMX, without the test tools). Exit 1 on a mismatch.
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomFloats } from './random-floats.mjs';

const [mode = 'gemm', typesArg = 'q4_0,q4_k,q6_k', pathsArg = 'avx2,auto', ...rest] = process.argv.slice(2);
if (mode !== 'gemm' && mode !== 'gemv' && mode !== 'check' && mode !== 'l2') {
  console.error(`unknown mode '${mode}': use gemm, gemv, check or l2`);
  process.exit(2);
}
const flag = (name) => rest.includes(name);
const value = (name, dflt) => (rest.includes(name) ? Number(rest[rest.indexOf(name) + 1]) : dflt);
const require = createRequire(import.meta.url);
const lib = require(resolve(process.env.REDBLUE_ADDON ?? 'build/Release/redblue.node'));
const pool = new lib.ThreadPool(lib.currentAffinity().slice(0, mode === 'check' ? 2 : 1));
if (mode === 'check') {
  const paths = pathsArg
    .split(',')
    .filter((p) => p === 'amx-emulated' || lib.kernelPaths().supported.includes(p));
  let bad = 0;
  for (const type of typesArg.split(',')) {
    const before = bad;
    const kType = type.endsWith('_k') || type === 'iq4_xs';
    const shapes = [
      [40, 512, 37],
      [24, 96, 16],
      [24, 320, 33],
      [40, 512, 7],
      [256, 2048, 64],
      [64, 5632, 512],
      // m = 1: the one-stream GEMVs (k = 384 and 416: whole 8-block steps, a 4-block one, a tail)
      [40, 512, 1],
      [40, 384, 1],
      [24, 416, 1],
    ].filter(([, k]) => !kType || k % 256 === 0);
    for (const [n, k, mm] of shapes) {
      const w = lib.interleaveRows8(type, lib.quantize(type, randomFloats(n * k), n, k, 'auto'), n, k);
      const x = randomFloats(mm * k);
      const ys = paths.map((isa) => {
        const y = new Float32Array(mm * n);
        lib.matmulQ(pool, { type, m: mm, n, k, w, x, y, rows8: true, isa });
        return new Uint32Array(y.buffer);
      });
      for (let p = 1; p < paths.length; p++) {
        const diff = ys[p].findIndex((v, i) => v !== ys[0][i]);
        if (diff < 0) continue;
        bad++;
        const f = (u) => new Float32Array(u.buffer)[diff];
        console.log(
          `MISMATCH ${type} n=${n} k=${k} m=${mm}: ${paths[p]} y[${diff}] = ${f(ys[p])}, ${paths[0]} ${f(ys[0])}`,
        );
      }
    }
    console.log(
      `${type}: ${shapes.length} shapes on ${paths.join(', ')}${bad > before ? ': DIFFERENT' : ': same bits'}`,
    );
  }
  pool.close();
  process.exit(bad ? 1 : 0);
}
const l2 = mode === 'l2';
const gemv = mode === 'gemv';
const m = gemv ? 1 : value('--m', l2 ? 1 : 512);
const dram = !l2 && flag('--dram');
const [n, k] = l2 ? [512, 2048] : gemv || dram ? [4096, 4096] : [2048, 2048];
const bytesRate = gemv || (l2 && m === 1); // GB/s of weights, else GFLOP/s
const copies = dram ? 8 : 1;
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
    let best = Infinity; // seconds a call
    for (let r = 0; r < (l2 ? 15 : gemv || dram ? 32 : 7); r++) {
      const o = { type, m, n, k, w: ws[r % copies], x, y, rows8: true, isa: path };
      if (l2) {
        best = Math.min(best, lib.timeMatmulQ(pool, o, 100));
      } else {
        const t0 = performance.now();
        lib.matmulQ(pool, o);
        best = Math.min(best, (performance.now() - t0) / 1e3);
      }
    }
    const rate = bytesRate ? ws[0].length / best / 1e9 : (2 * m * n * k) / best / 1e9;
    cells.push(`${path} ${rate.toFixed(1)}`);
  }
  const where = l2 ? 'L2' : copies > 1 ? 'DRAM' : 'cache';
  const unit = bytesRate ? `GB/s (${where})` : `GFLOP/s m=${m}${l2 ? ' (L2)' : dram ? ' (DRAM)' : ''}`;
  console.log(`${type.padEnd(7)} ${unit}  ${cells.join('  ')}`);
}
pool.close();
