#!/usr/bin/env node
// A/B of two builds of the addon on the quantized kernels, in one process, runs interleaved: on a
// shared VM the machine's speed drifts by a third between runs, so two separate `bench kernels`
// runs cannot show a 10 % change; interleaving narrows that. Reports the best of 10 rounds of
// each. Run it twice, and A against A once: on 2026-12-04 one build against itself read 0.84-1.07.
//
//   cp build/Release/redblue.node /tmp/A.node      # before the change
//   npm run build:native                            # after it
//   node scripts/kernel-ab.mjs /tmp/A.node build/Release/redblue.node q5_0,q4_1
//   node scripts/kernel-ab.mjs /tmp/A.node build/Release/redblue.node q4_0,q4_k --rows8
//
// --rows8: the weights interleaved in groups of 8 rows, as a model's are placed (the one-stream
// GEMVs and the 16-row tiles); without it, the natural layout's kernels.
// GEMV: 24 distinct 4096×4096 matrices (from memory, as decoding reads them; on huge pages where
// the set-up reserved them, as a model's weights), one core. --m N: the same matrices against N
// rows of X (a server's step of N streams reads its weights so), in GB/s of weights still.
// GEMM: m = 64 against 1024×4096 (from cache, as a prompt's tiles run), one core.
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { randomFloats } from './random-floats.mjs';

const argv = process.argv.slice(2);
const mAt = argv.indexOf('--m');
const mRows = mAt >= 0 ? Number(argv[mAt + 1]) : 1;
if (!Number.isInteger(mRows) || mRows < 1 || mRows > 64) {
  console.error('--m takes the rows of X of the from-memory matmul, 1-64');
  process.exit(2);
}
const [pa, pb, list] = argv.filter((a, i) => a !== '--rows8' && a !== '--m' && !(mAt >= 0 && i === mAt + 1));
const rows8 = process.argv.includes('--rows8');
if (!pa || !pb) {
  console.error('usage: node scripts/kernel-ab.mjs A.node B.node [q4_0,q8_0,...] [--rows8] [--m N]');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const libs = [require(resolve(pa)), require(resolve(pb))];
const pools = libs.map((l) => new l.ThreadPool(l.currentAffinity().slice(0, 1)));
const n = 4096;
const k = 4096;
for (const type of (list ?? 'q4_0,q8_0').split(',')) {
  const wf = randomFloats(n * k);
  // The GEMV's matrices in one arena of huge pages where the set-up reserved them, as a model's
  // weights are placed: on the Sapphire Rapids day a change that read 8 % slower there read the
  // same from JS-allocated (4 KiB) pages.
  const q = libs[0].quantize(type, wf, n, k, 'auto');
  const one = rows8 ? libs[0].interleaveRows8(type, q, n, k) : q;
  const arena = libs[0].allocate(24 * one.length, 0, 'auto');
  const whole = new Uint8Array(arena.buffer);
  const mats = Array.from({ length: 24 }, (_, i) => {
    const w = new Uint8Array(arena.buffer, i * one.length, one.length);
    w.set(one);
    w[100 + i] ^= 1; // distinct contents, so no page is shared
    return w;
  });
  const x1 = randomFloats(mRows * k);
  const y1 = new Float32Array(mRows * n);
  const x64 = randomFloats(64 * k);
  const y64 = new Float32Array(64 * 1024);
  const best = [
    [Infinity, Infinity],
    [Infinity, Infinity],
  ];
  const time = (f) => {
    const t0 = process.hrtime.bigint();
    f();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  for (let round = 0; round < 10; round++)
    for (const v of [0, 1]) {
      const gemv = time(() => {
        for (const w of mats)
          libs[v].matmulQ(pools[v], {
            type,
            w: whole,
            wOffset: w.byteOffset,
            n,
            k,
            x: x1,
            m: mRows,
            y: y1,
            rows8,
          });
      });
      const gemm = time(() => {
        for (let r = 0; r < 10; r++)
          libs[v].matmulQ(pools[v], { type, w: mats[0], n: 1024, k, x: x64, m: 64, y: y64, rows8 });
      });
      best[v] = [Math.min(best[v][0], gemv), Math.min(best[v][1], gemm)];
    }
  const gbps = (s) => ((mats.length * mats[0].length) / s / 1e9).toFixed(2);
  const gflops = (s) => ((10 * 2 * 64 * 1024 * k) / s / 1e9).toFixed(1);
  console.log(
    `${type}: ${mRows === 1 ? 'GEMV' : `m=${mRows} from memory`} ${gbps(best[0][0])} → ${gbps(best[1][0])} GB/s (B/A ${(best[0][0] / best[1][0]).toFixed(3)}), ` +
      `GEMM m=64 ${gflops(best[0][1])} → ${gflops(best[1][1])} GFLOP/s (B/A ${(best[0][1] / best[1][1]).toFixed(3)}); ` +
      `GEMV weights on ${arena.backing} pages`,
  );
  libs[0].release(arena.buffer); // each type's own arena: huge pages are few
}
for (const p of pools) p.close?.();
