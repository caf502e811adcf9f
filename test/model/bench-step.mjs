// A manual measurement, not a test: a TinyLlama-shaped q4_0 model (random weights, tensors
// laid out as in a GGUF file) on one rank: tokens/s at m=1 and for a 64-token prompt, and the
// weight bytes read per token against the read bandwidth of the same threads (readBytes).
//   node test/model/bench-step.mjs        (env: CPUS=0,1  TOKENS=48  MODEL=/tmp/...bin)
import { createRequire } from 'node:module';
import { randomFillSync } from 'node:crypto';
import { openSync, writeSync, closeSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const addon = createRequire(import.meta.url)(
  process.env.REDBLUE_ADDON ?? new URL('../../build/Release/redblue.node', import.meta.url).pathname,
);
const path = process.env.MODEL ?? join(tmpdir(), 'redblue-tinyllama-q4_0.bin');
const cpus = (process.env.CPUS ?? '0,1').split(',').map(Number);
const L = 22,
  E = 2048,
  H = 32,
  KV = 4,
  HD = 64,
  FF = 5632,
  V = 32000,
  CTX = 512;
const tensors = [];
let offset = 4096;
const plan = (name, type, dims) => {
  const bytes = type === 0 ? dims[0] * 4 : (dims[0] / 32) * 18 * (dims[1] ?? 1);
  offset = Math.ceil(offset / 32) * 32;
  tensors.push({ name, type, dims, offset, bytes });
  offset += bytes;
};
plan('token_embd.weight', 2, [E, V]);
for (let l = 0; l < L; l++) {
  const b = `blk.${l}.`;
  plan(b + 'attn_norm.weight', 0, [E]);
  plan(b + 'attn_q.weight', 2, [E, H * HD]);
  plan(b + 'attn_k.weight', 2, [E, KV * HD]);
  plan(b + 'attn_v.weight', 2, [E, KV * HD]);
  plan(b + 'attn_output.weight', 2, [H * HD, E]);
  plan(b + 'ffn_norm.weight', 0, [E]);
  plan(b + 'ffn_gate.weight', 2, [E, FF]);
  plan(b + 'ffn_up.weight', 2, [E, FF]);
  plan(b + 'ffn_down.weight', 2, [FF, E]);
}
plan('output_norm.weight', 0, [E]);
plan('output.weight', 2, [E, V]);
if (!existsSync(path) || statSync(path).size !== offset) {
  const fd = openSync(path, 'w');
  for (const t of tensors) {
    const buf = new Uint8Array(t.bytes);
    if (t.type === 0) new Float32Array(buf.buffer).fill(1);
    else {
      randomFillSync(buf);
      for (let i = 0; i < buf.length; i += 18) {
        buf[i] = 0x00;
        buf[i + 1] = 0x20;
      } // d = 2^-7
    }
    writeSync(fd, buf, 0, buf.length, t.offset);
  }
  closeSync(fd);
}
const cfg = {
  path,
  node: 0,
  arch: 'llama',
  nLayer: L,
  nEmbd: E,
  nHead: H,
  nHeadKv: KV,
  headDim: HD,
  nFf: FF,
  nVocab: V,
  nCtx: CTX,
  normEps: 1e-5,
  ropeBase: 10000,
  ropeScale: 1,
  ropeNeox: false,
  tensors: tensors.map((t) => ({ name: t.name, type: t.type, dims: t.dims, offset: t.offset })),
  split: { rank: 0, ranks: 1, kvHeads: [0, KV], ff: [0, FF], vocab: [0, V], vocabPerRank: [V] },
};
const comm = await addon.shmOpen({ name: `bench-${process.pid}`, rank: 0, size: 1 });
await comm.barrier(comm.group([0]));
const pool = new addon.ThreadPool(cpus);
const shard = new addon.ModelShard(cfg);
const loaded = await shard.load(pool);
console.log('load', loaded);
const tokens = Number(process.env.TOKENS ?? 48);
let pos = 0;
for (let i = 0; i < 4; i++) await shard.forward(pool, comm, Int32Array.of(i + 1), pos++, 'last');
const times = [];
const t0 = performance.now();
for (let i = 0; i < tokens; i++) {
  const r = await shard.forward(pool, comm, Int32Array.of((i * 7919) % V), pos++, 'last');
  times.push(r.seconds);
}
const wall = (performance.now() - t0) / 1000;
times.sort((a, b) => a - b);
const med = times[times.length >> 1];
const perTok = loaded.weightBytes; // every weight byte once per token (embeddings: one row)
console.log(
  `m=1: ${tokens} tokens in ${wall.toFixed(2)} s: ${(tokens / wall).toFixed(2)} tok/s (median step ${(med * 1e3).toFixed(1)} ms, native ${(1 / med).toFixed(2)} tok/s)`,
);
console.log(
  `weights read per token ${(perTok / 2 ** 20).toFixed(1)} MiB → ${(perTok / med / 1e9).toFixed(2)} GB/s`,
);
// prompt: 64 tokens in one call
const pr = await shard.forward(
  pool,
  comm,
  Int32Array.from({ length: 64 }, (_, i) => i + 5),
  0,
  'last',
);
console.log(`m=64 prompt: ${(64 / pr.seconds).toFixed(1)} tok/s (${pr.seconds.toFixed(2)} s)`);
// read bandwidth with the same pool: the weight buffer's size, from a fresh node-local allocation
const alloc = addon.allocate(loaded.weightBytes, 0);
const bw = [];
for (let i = 0; i < 5; i++) {
  const s = performance.now();
  addon.readBytes(pool, alloc.buffer);
  bw.push(loaded.weightBytes / ((performance.now() - s) / 1000) / 1e9);
}
console.log(
  `readBytes (${cpus.length} threads) over ${(loaded.weightBytes / 2 ** 20).toFixed(0)} MiB: best ${Math.max(...bw).toFixed(2)} GB/s, runs ${bw.map((x) => x.toFixed(2)).join(' ')}`,
);
addon.release(alloc.buffer);
shard.release();
comm.close();
pool.close();
