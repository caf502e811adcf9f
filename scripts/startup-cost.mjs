#!/usr/bin/env node
// What a run costs before its first token: a local cluster's start (executor processes up and
// answering), a model's load on it, and the cluster's stop, best of 3, against a bare node
// process started and ended in the same run (what any executor costs at least). Every
// `redblue generate` pays these; so does every test that starts one. Needs `npm run build`.
//
//   node scripts/startup-cost.mjs MODEL.gguf [executors (default 2)]
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { generate, loadModel } from '../dist/executor/coordinator/generate.js';
import { LocalCluster } from '../dist/executor/host/local-cluster.js';
import { readTopology } from '../dist/native/topology.js';
import { virtualize } from '../dist/native/virtual-nodes.js';

const [model, ranksArg] = process.argv.slice(2);
if (!model) {
  process.stderr.write('usage: node scripts/startup-cost.mjs MODEL.gguf [executors]\n');
  process.exit(2);
}
const ranks = Number(ranksArg ?? 2);
const best = { node: Infinity, start: Infinity, load: Infinity, token: Infinity, stop: Infinity };
for (let round = 0; round < 3; round++) {
  let t = performance.now();
  spawnSync(process.execPath, ['-e', '0']);
  const lap = (k) => {
    const now = performance.now();
    best[k] = Math.min(best[k], now - t);
    t = now;
  };
  lap('node');
  const cluster = await LocalCluster.start({ topology: virtualize(readTopology(), ranks) });
  lap('start');
  const m = await loadModel(cluster, { path: model });
  lap('load');
  await generate(cluster, m, {
    prompt: 'hello',
    maxTokens: 1,
    sampling: { temperature: 0, seed: 1 },
    stopAtEog: false,
  });
  lap('token');
  await cluster.stop();
  lap('stop');
}
const ms = (v) => `${v.toFixed(0)} ms`.padStart(8);
const x = (v) => `${(v / best.node).toFixed(1)}× a bare node process`;
console.log(`${model} on ${ranks} executor(s), best of 3`);
console.log(`bare node process  ${ms(best.node)}`);
console.log(`cluster start      ${ms(best.start)}  ${x(best.start)}`);
console.log(`model load         ${ms(best.load)}  ${x(best.load)}`);
console.log(`prompt + 1 token   ${ms(best.token)}`);
console.log(`cluster stop       ${ms(best.stop)}`);
