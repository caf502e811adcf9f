#!/usr/bin/env node
// What a decoded token costs outside the executors' step: each token's wall time in the
// coordinator (one doorbell step, its logits copied into one reused buffer, as generate's loop
// does) less the longest step an executor reported, i.e. the thread wake-ups and the JS
// between two steps (docs/model.md, "A step"). Greedy tokens are not sampled: the loop feeds
// fixed ids, so only the step's round trip is timed. Needs `npm run build`.
//
//   node scripts/step-overhead.mjs MODEL.gguf [executors=2] [tokens=128] [rounds=3]
import { performance } from 'node:perf_hooks';
import { readTopology } from '../dist/native/topology.js';
import { virtualize } from '../dist/native/virtual-nodes.js';
import { LocalCluster } from '../dist/executor/host/local-cluster.js';
import { forward, loadModel } from '../dist/executor/coordinator/generate.js';

const [model, executorsArg = '2', tokensArg = '128', roundsArg = '3'] = process.argv.slice(2);
if (!model) {
  console.error('usage: node scripts/step-overhead.mjs MODEL.gguf [executors=2] [tokens=128] [rounds=3]');
  process.exit(2);
}
const [executors, tokens, rounds] = [executorsArg, tokensArg, roundsArg].map(Number);
const cluster = await LocalCluster.start({ topology: virtualize(readTopology(), executors) });
try {
  const m = await loadModel(cluster, { path: model, ctx: tokens + 8 });
  const row = new Float32Array(m.info.nVocab);
  for (let r = 0; r < rounds; r++) {
    let step = 0;
    const t0 = performance.now();
    for (let i = 0; i < tokens; i++) {
      const f = await forward(cluster, [1 + (i % 100)], i, 'last', true, row);
      step += Math.max(...f.replies.map((x) => x.seconds)) * 1e3;
    }
    const wall = (performance.now() - t0) / tokens;
    step /= tokens;
    console.log(
      `round ${r + 1}: ${wall.toFixed(3)} ms a token, the executors' step ${step.toFixed(3)} ms, outside it ${(wall - step).toFixed(3)} ms (${((1 - step / wall) * 100).toFixed(1)}%)`,
    );
  }
} finally {
  await cluster.stop();
}
