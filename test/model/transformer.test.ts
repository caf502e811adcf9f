// The transformer step (native/src/model through native/model.ts): a rank's shard of a tiny
// llama / qwen2 / qwen3 model against a plain TypeScript reference, prompt batches against one
// token per call, 2 and 3 real rank processes (shm communicator) against 1, and the errors.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createThreadPool } from '../../native/binding.js';
import { modelAddon, type ModelShardConfig } from '../../native/model.js';
import { hostEndpoint, hostsCollective } from '../../native/steps.js';
import { removeStaleSegment, ShmCommunicator } from '../../transport/shm.js';
import {
  argmax,
  ReferenceModel,
  splitFor,
  writeTinyModel,
  type TinyModel,
  type TinySpec,
} from './tiny-model.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const addonPath = process.env.REDBLUE_ADDON ?? join(root, 'build', 'Release', 'redblue.node');
const dir = mkdtempSync(join(tmpdir(), 'redblue-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cpus = availableParallelism();

let models = 0;
function model(spec: Omit<TinySpec, 'nLayer' | 'nCtx'> & Partial<TinySpec>): TinyModel {
  return writeTinyModel(join(dir, `m${models++}.bin`), { nLayer: 2, nCtx: 16, ...spec });
}

function shardConfig(m: TinyModel, rank = 0, ranks = 1, ffAlign = 1): ModelShardConfig {
  return { ...m.base, node: 0, split: splitFor(m.base, rank, ranks, ffAlign) };
}

let names = 0;
async function singleRank<T>(
  body: (peers: unknown, pool: ReturnType<typeof createThreadPool>) => Promise<T>,
) {
  const comm = await ShmCommunicator.open({ name: `t${process.pid}-model-${names++}`, rank: 0, size: 1 });
  const pool = createThreadPool([0, 1].map((c) => c % cpus));
  try {
    return await body(comm.handle, pool);
  } finally {
    comm.close();
    pool.close();
  }
}

/** |got − want| ≤ tol · max|want| over the whole vector. */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number) {
  expect(got.length).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  expect(worst).toBeLessThanOrEqual(tol * scale);
}

const ARCHS: { name: string; spec: Omit<TinySpec, 'seed' | 'nLayer' | 'nCtx'> }[] = [
  {
    // f32 matrices, f16 embeddings, Llama 3's rope_freqs, Q/K/V and attn_output biases
    name: 'llama',
    spec: {
      arch: 'llama',
      nEmbd: 64,
      nHead: 8,
      nHeadKv: 4,
      headDim: 8,
      nFf: 96,
      nVocab: 50,
      matrixType: 'f32',
      embdType: 'f16',
      ropeFreqs: true,
      biases: true,
    },
  },
  {
    // biases, NeoX RoPE with linear scaling, tied embeddings, bf16 matrices
    name: 'qwen2',
    spec: {
      arch: 'qwen2',
      nEmbd: 48,
      nHead: 6,
      nHeadKv: 2,
      headDim: 8,
      nFf: 80,
      nVocab: 37,
      matrixType: 'bf16',
      tied: true,
      ropeScale: 2,
    },
  },
  {
    // q/k norms, nHead·headDim ≠ nEmbd, f16 matrices
    name: 'qwen3',
    spec: {
      arch: 'qwen3',
      nEmbd: 32,
      nHead: 4,
      nHeadKv: 2,
      headDim: 16,
      nFf: 72,
      nVocab: 41,
      matrixType: 'f16',
      outputType: 'f32',
    },
  },
];

const PROMPT = [3, 17, 5, 29, 1, 8];

describe('model shard on one rank', () => {
  for (const a of ARCHS)
    for (const path of ['auto', 'scalar'] as const)
      it(`${a.name} (${path} kernels): a prompt batch and single tokens match the f32 reference; one token per call matches the batch`, async () => {
        const m = model({ ...a.spec, seed: 1 });
        const ref = new ReferenceModel(m);
        await singleRank(async (peers, pool) => {
          const shard = new (modelAddon().ModelShard)({ ...shardConfig(m), kernelPath: path });
          const progress: number[][] = [];
          const loaded = await shard.load(pool, (done, total) => progress.push([done, total]));
          expect(loaded.weightBytes).toBeGreaterThan(0);
          expect(loaded.kvBytes).toBeGreaterThanOrEqual(
            2 * m.base.nLayer * m.base.nCtx * m.base.nHeadKv * m.base.headDim * 2,
          );
          const batch = await shard.forward(pool, peers, Int32Array.from(PROMPT), 0, 'all');
          const want = ref.forward(PROMPT, 0);
          expect(batch.logits!.length).toBe(PROMPT.length * m.base.nVocab);
          want.forEach((w, t) =>
            expectClose(batch.logits!.subarray(t * m.base.nVocab, (t + 1) * m.base.nVocab), w, 1e-4),
          );
          // two generated tokens, one per call
          let next = argmax(want[want.length - 1]!);
          for (let pos = PROMPT.length; pos < PROMPT.length + 2; pos++) {
            const r = await shard.forward(pool, peers, Int32Array.of(next), pos, 'last');
            const w = ref.forward([next], pos)[0]!;
            expectClose(r.logits!, w, 1e-4);
            expect(r.seconds).toBeGreaterThanOrEqual(r.computeSeconds);
            next = argmax(w);
          }
          // the same prompt again from position 0, one token per call
          for (let t = 0; t < PROMPT.length; t++) {
            const r = await shard.forward(pool, peers, Int32Array.of(PROMPT[t]!), t, 'last');
            expectClose(r.logits!, batch.logits!.subarray(t * m.base.nVocab, (t + 1) * m.base.nVocab), 1e-5);
          }
          const none = await shard.forward(pool, peers, Int32Array.of(2), PROMPT.length, 'none');
          expect(none.logits).toBeUndefined();
          shard.release();
          expect(progress.length).toBeGreaterThan(0);
          expect(progress[progress.length - 1]![0]).toBe(progress[progress.length - 1]![1]);
        });
      });
});

interface RankResult {
  logits?: number[][];
  tokens?: number[];
  error?: string;
}

async function runRanks(
  m: TinyModel,
  ranks: number,
  ffAlign: number,
  steps: object[],
): Promise<RankResult[]> {
  const name = `t${process.pid}-model-${names++}`;
  const children = Array.from({ length: ranks }, (_, rank) =>
    fork(
      join(here, 'rank-worker.mjs'),
      [
        JSON.stringify({
          addon: addonPath,
          name,
          cpus: [rank % cpus],
          shard: shardConfig(m, rank, ranks, ffAlign),
          steps,
        }),
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    ),
  );
  try {
    return await Promise.all(
      children.map(
        (c) =>
          new Promise<RankResult>((resolve, reject) => {
            c.once('message', (msg) => resolve(msg as RankResult));
            c.once('exit', (code) => reject(new Error(`a rank exited (${code}) without a result`)));
          }),
      ),
    );
  } finally {
    // The ranks close their communicator after answering: let them, so no segment is left.
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
    removeStaleSegment(name);
  }
}

const STEPS = [{ tokens: PROMPT, logits: 'all' }, { logits: 'last' }, { logits: 'last' }, { logits: 'last' }];

// Splits add the partial sums of attn_output and ffn_down in another order (~1e-7 relative),
// which can flip the f16 rounding of a cached K or V element (2^-11 relative); with heads of 8
// elements such a flip moves the logits by up to ~1e-4 of the largest here (f16 and bf16
// weights). With quantized weights (activations quantized too) splits agreed to ≤ 2e-7.
describe('model shard across ranks', () => {
  const cases: {
    name: string;
    spec: Omit<TinySpec, 'seed' | 'nLayer' | 'nCtx'>;
    ffAlign: number;
    tol: number;
  }[] = [
    // 4 KV heads over 3 ranks: 1, 2, 1; biases on Q/K/V and attn_output
    {
      name: 'llama f16, 4 KV heads, biases',
      spec: { ...ARCHS[0]!.spec, matrixType: 'f16', biases: true },
      ffAlign: 1,
      tol: 5e-4,
    },
    // 2 KV heads over 3 ranks: one rank has no heads (its partial sums are zero)
    { name: 'qwen3 f16, 2 KV heads', spec: ARCHS[2]!.spec, ffAlign: 1, tol: 5e-4 },
    { name: 'qwen2 bf16, tied', spec: ARCHS[1]!.spec, ffAlign: 1, tol: 5e-4 },
    // quantized: cuts on 32-element blocks
    {
      name: 'llama q8_0 / q4_0',
      spec: {
        ...ARCHS[0]!.spec,
        nEmbd: 64,
        headDim: 16,
        nFf: 192,
        matrixType: 'q8_0',
        outputType: 'q4_0',
        embdType: 'q4_0',
      },
      ffAlign: 32,
      tol: 1e-5,
    },
    // K types (Q8_K activations) in the feed-forward and output, cut on 256-element super-blocks
    {
      name: 'llama q4_k / q5_k / q6_k',
      spec: {
        arch: 'llama',
        nEmbd: 256,
        nHead: 4,
        nHeadKv: 2,
        headDim: 64,
        nFf: 512,
        nVocab: 40,
        matrixType: 'q8_0',
        layerTypes: { 'ffn_gate.weight': 'q4_k', 'ffn_up.weight': 'q5_k', 'ffn_down.weight': 'q6_k' },
        embdType: 'q4_k',
        outputType: 'q6_k',
      },
      ffAlign: 256,
      tol: 1e-5,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: 2 and 3 ranks give the logits and greedy tokens of 1 rank`, async () => {
      const m = model({ ...c.spec, seed: 2 });
      const one = (await runRanks(m, 1, c.ffAlign, STEPS))[0]!;
      expect(one.error).toBeUndefined();
      for (const ranks of [2, 3]) {
        const all = await runRanks(m, ranks, c.ffAlign, STEPS);
        for (const r of all) {
          expect(r.error).toBeUndefined();
          // every rank holds the same logits, bit for bit
          expect(r.logits).toEqual(all[0]!.logits);
          expect(r.tokens).toEqual(one.tokens);
        }
        all[0]!.logits!.forEach((l, i) => expectClose(l, one.logits![i]!, c.tol));
      }
    });
  }
});

describe('model shard across hosts', () => {
  it('two one-rank hosts (leaders linked natively; all-reduce as gather and rank-order sum) give the bits of two shm ranks', async () => {
    const m = model({ ...ARCHS[2]!.spec, seed: 4 });
    const shm = await runRanks(m, 2, 1, STEPS);
    // Two hosts in this process, each one rank on its own communicator, their leaders linked
    // natively on loopback (each serves its blocks; the other fetches them) as across machines.
    const endpoints = [0, 1].map(() => hostEndpoint('127.0.0.1:0', {}));
    const leaders = endpoints.map((e) => `127.0.0.1:${e.port}`);
    const hosts = await Promise.all(
      [0, 1].map(async (h) => {
        const comm = await ShmCommunicator.open({
          name: `t${process.pid}-model-${names++}`,
          rank: 0,
          size: 1,
        });
        const peers = hostsCollective(comm.handle, {
          firstRank: h,
          hostFirstRanks: [0, 1, 2],
          link: { endpoint: endpoints[h]!.endpoint, leaders, run: `model-${process.pid}` },
        });
        const pool = createThreadPool([h % cpus]);
        const shard = new (modelAddon().ModelShard)(shardConfig(m, h, 2));
        await shard.load(pool);
        return { comm, peers, pool, shard };
      }),
    );
    try {
      const logits: number[][][] = [[], []];
      let tokens = PROMPT;
      let pos = 0;
      for (const step of STEPS) {
        const ids = step.tokens ?? tokens;
        const rs = await Promise.all(
          hosts.map((h) =>
            h.shard.forward(h.pool, h.peers, Int32Array.from(ids), pos, step.logits as 'all' | 'last'),
          ),
        );
        rs.forEach((r, h) => logits[h]!.push(Array.from(r.logits!)));
        pos += ids.length;
        tokens = [argmax(rs[0]!.logits!.subarray(rs[0]!.logits!.length - m.base.nVocab))];
      }
      expect(logits[0]).toEqual(shm[0]!.logits);
      expect(logits[1]).toEqual(shm[0]!.logits);
    } finally {
      for (const h of hosts) {
        h.shard.release();
        h.comm.close();
        h.pool.close();
      }
      for (const e of endpoints) e.close();
    }
  });
});

describe('model shard errors', () => {
  // q8_0 with 2 query heads of 8 per KV head: attn_output's columns come in groups of 16
  const m = model({ ...ARCHS[0]!.spec, matrixType: 'q8_0', seed: 3 });
  it('positions beyond the context, tokens outside the vocabulary and gaps are refused', async () => {
    await singleRank(async (peers, pool) => {
      const shard = new (modelAddon().ModelShard)(shardConfig(m));
      await expect(shard.forward(pool, peers, Int32Array.of(1), 0, 'last')).rejects.toThrow(
        /load the model shard/,
      );
      await shard.load(pool);
      await expect(shard.forward(pool, peers, Int32Array.of(1, 2), 15, 'last')).rejects.toThrow(
        /positions 15\.\.16 do not fit the context of 16 tokens/,
      );
      await expect(shard.forward(pool, peers, Int32Array.of(1, 50), 0, 'last')).rejects.toThrow(
        /token id 50 \(at index 1\) is outside the vocabulary of 50 tokens/,
      );
      await expect(shard.forward(pool, peers, Int32Array.of(-1), 0, 'last')).rejects.toThrow(/token id -1/);
      await expect(shard.forward(pool, peers, Int32Array.of(1), 3, 'last')).rejects.toThrow(
        /position 3 leaves a gap/,
      );
      await expect(shard.forward(pool, peers, new Int32Array(0), 0, 'last')).rejects.toThrow(
        /at least one token/,
      );
      expect(() => shard.forward(pool, peers, Int32Array.of(1), 0, 'first' as 'last')).toThrow(
        /'last', 'all' or 'none'/,
      );
      expect(() => shard.forward(pool, peers, [1] as unknown as Int32Array, 0, 'last')).toThrow(/Int32Array/);
      // a shard split for 2 ranks cannot run on a collective of 1
      const two = new (modelAddon().ModelShard)(shardConfig(m, 0, 2, 32));
      await two.load(pool);
      await expect(two.forward(pool, peers, Int32Array.of(1), 0, 'last')).rejects.toThrow(
        /split for rank 0 of 2/,
      );
      two.release();
      shard.release();
      expect(() => shard.release()).not.toThrow();
      expect(() => shard.forward(pool, peers, Int32Array.of(1), 0, 'last')).toThrow(/released/);
    });
  });
  it('a split that cuts a quantized row inside a block names the tensor', () => {
    const ModelShard = modelAddon().ModelShard;
    const cfg = shardConfig(m, 0, 2);
    cfg.split.ff = [0, 40];
    expect(() => new ModelShard(cfg)).toThrow(
      /blk\.0\.ffn_down\.weight \(q8_0, blocks of 32 elements\) would be cut inside a block at column 40/,
    );
    const heads = shardConfig(m, 0, 4, 32);
    expect(() => new ModelShard(heads)).toThrow(
      /blk\.0\.attn_output\.weight \(q8_0, blocks of 32 elements\) would be cut inside a block at column 16/,
    );
    expect(() => new ModelShard({ ...m.base, node: 0, headDim: 16, split: shardConfig(m).split })).toThrow(
      /blk\.0\.attn_q\.weight has dims \[64, 64\], the configuration implies \[64, 128\]/,
    );
  });
  it('inconsistent configurations and files are refused before anything is copied', () => {
    const ModelShard = modelAddon().ModelShard;
    const ok = shardConfig(m);
    expect(() => new ModelShard({ ...ok, split: { ...ok.split, vocabPerRank: [49] } })).toThrow(
      /vocabPerRank sums to 49/,
    );
    expect(() => new ModelShard({ ...ok, split: { ...ok.split, kvHeads: [0, 5] } })).toThrow(
      /kvHeads \[0, 5\) is not inside \[0, 4\)/,
    );
    expect(() => new ModelShard({ ...ok, nHeadKv: 3 })).toThrow(
      /nHead \(8\) must be a multiple of nHeadKv \(3\)/,
    );
    expect(() => new ModelShard({ ...ok, arch: 'gpt2' as 'llama' })).toThrow(
      /unsupported model architecture 'gpt2'/,
    );
    expect(() => new ModelShard({ ...ok, path: join(dir, 'missing.bin') })).toThrow(/cannot open model file/);
    expect(
      () => new ModelShard({ ...ok, tensors: ok.tensors.filter((t) => t.name !== 'blk.1.ffn_up.weight') }),
    ).toThrow(/has no tensor blk\.1\.ffn_up\.weight/);
    const far = ok.tensors.map((t) => (t.name === 'output.weight' ? { ...t, offset: t.offset + 1e6 } : t));
    expect(() => new ModelShard({ ...ok, tensors: far })).toThrow(/output\.weight .* lies beyond the end/);
    const odd = ok.tensors.map((t) => (t.name === 'blk.0.attn_k.weight' ? { ...t, type: 15 } : t));
    expect(() => new ModelShard({ ...ok, tensors: odd })).toThrow(
      /blk\.0\.attn_k\.weight: ggml type id 15 \(q8_K is ggml's activation format/,
    );
  });
});
