#!/usr/bin/env node
// The step a server runs for N decoding sequences (one token each, each in its own KV slot, with
// the batch-invariant kernels serve loads): ms a step and tokens/s, best of a few rounds. The
// executors' work for a batch without the HTTP, the sampling and the client that `redblue
// bench serve` also measures; builds compare by alternating REDBLUE_ADDON. Needs `npm run build`.
//
//   node scripts/serve-step.mjs MODEL.gguf [executors=2] [sequences=8] [steps=48] [rounds=2]
import { performance } from 'node:perf_hooks';
import { readTopology } from '../dist/native/topology.js';
import { virtualize } from '../dist/native/virtual-nodes.js';
import { LocalCluster } from '../dist/executor/host/local-cluster.js';
import { loadModel, runnerOf } from '../dist/executor/coordinator/generate.js';

const [model, ...rest] = process.argv.slice(2);
if (!model) {
  console.error(
    'usage: node scripts/serve-step.mjs MODEL.gguf [executors=2] [sequences=8] [steps=48] [rounds=2]',
  );
  process.exit(2);
}
const [executors, sequences, steps, rounds] = [2, 8, 48, 2].map((d, i) => Number(rest[i] ?? d));
const cluster = await LocalCluster.start({ topology: virtualize(readTopology(), executors) });
try {
  const m = await loadModel(cluster, {
    path: model,
    ctx: steps * rounds + 8,
    slots: sequences,
    batchInvariant: true,
  });
  const runner = runnerOf(cluster);
  const rows = new Float32Array(sequences * m.info.nVocab);
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++)
      await runner.step(
        Array.from({ length: sequences }, (_, s) => 100 + s + i),
        Array.from({ length: sequences }, (_, s) => ({
          slot: s,
          pos: r * steps + i,
          count: 1,
          logits: true,
        })),
        rows,
      );
    best = Math.min(best, (performance.now() - t0) / steps);
  }
  console.log(
    `${sequences} sequences on ${executors} executors: ${best.toFixed(2)} ms a step, ${((sequences * 1e3) / best).toFixed(0)} tokens/s`,
  );
} finally {
  await cluster.stop();
}
