#!/usr/bin/env node
// The step `generate --lookup` runs to check drafted tokens: one sequence, the token chosen and k
// drafts at a context of 300, a row of logits each, through the row-invariant kernels. ms a step
// and its ratio to the step of one token (k = 0), best of 3 rounds: what a draft of k tokens must
// win back (k + 1 tokens a step at best). Builds compare by alternating REDBLUE_ADDON. Needs
// `npm run build`.
//
//   node scripts/draft-step.mjs MODEL.gguf [executors=2] [steps=32] [k=0,1,2,3,4,5,6,7,8,15]
import { performance } from 'node:perf_hooks';
import { readTopology } from '../dist/native/topology.js';
import { virtualize } from '../dist/native/virtual-nodes.js';
import { LocalCluster } from '../dist/executor/host/local-cluster.js';
import { loadModel, runnerOf } from '../dist/executor/coordinator/generate.js';

const [model, executors = '2', steps = '32', list = '0,1,2,3,4,5,6,7,8,15'] = process.argv.slice(2);
if (!model) {
  console.error('usage: node scripts/draft-step.mjs MODEL.gguf [executors=2] [steps=32] [k=0,1,2,…]');
  process.exit(2);
}
const ks = list.split(',').map(Number);
const most = Math.max(...ks);
const cluster = await LocalCluster.start({ topology: virtualize(readTopology(), Number(executors)) });
try {
  const m = await loadModel(cluster, { path: model, ctx: 1024, draftTokens: most });
  const runner = runnerOf(cluster);
  const rows = new Float32Array((most + 1) * m.info.nVocab);
  const context = 300;
  await runner.step(
    Array.from({ length: context }, (_, j) => 100 + (j % 50)),
    [{ slot: 0, pos: 0, count: context, logits: 0 }],
    rows,
  );
  const best = new Map();
  for (let round = 0; round < 3; round++)
    for (const k of ks) {
      const t0 = performance.now();
      for (let i = 0; i < Number(steps); i++)
        await runner.step(
          Array.from({ length: 1 + k }, (_, j) => 100 + j + i),
          [{ slot: 0, pos: context + i, count: 1 + k, logits: 1 + k }],
          rows,
        );
      best.set(k, Math.min(best.get(k) ?? Infinity, (performance.now() - t0) / Number(steps)));
    }
  const one = best.get(0) ?? best.get(ks[0]);
  for (const k of ks)
    console.log(`k=${k}: ${best.get(k).toFixed(2)} ms a step, ${(best.get(k) / one).toFixed(2)}× one token`);
} finally {
  await cluster.stop();
}
