// One rank of a model-shard test, as its own process: opens the shm communicator, loads its
// shard of the model and runs the steps (given tokens, or the previous step's greedy token),
// then sends every step's logits back over IPC. Loads the addon directly (no compiled TS).
import { createRequire } from 'node:module';

const cfg = JSON.parse(process.argv[2]);
const send = (msg) => new Promise((res) => process.send(msg, res));
const addon = createRequire(import.meta.url)(cfg.addon);

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

let comm;
let pool;
let shard;
try {
  comm = await addon.shmOpen({
    name: cfg.name,
    rank: cfg.shard.split.rank,
    size: cfg.shard.split.ranks,
    spinUs: 0,
  });
  const world = comm.group(Array.from({ length: comm.size }, (_, i) => i));
  await comm.barrier(world);
  pool = new addon.ThreadPool(cfg.cpus);
  shard = new addon.ModelShard(cfg.shard);
  await shard.load(pool);
  const logits = [];
  const tokens = [];
  let pos = 0;
  for (const step of cfg.steps) {
    const ids = step.tokens ?? [argmax(logits[logits.length - 1].slice(-cfg.shard.nVocab))];
    const r = await shard.forward(pool, comm, Int32Array.from(ids), pos, step.logits);
    pos += ids.length;
    tokens.push(...ids);
    logits.push(Array.from(r.logits));
  }
  await send({ type: 'result', logits, tokens });
} catch (err) {
  await send({ type: 'result', error: String(err?.message ?? err) });
} finally {
  shard?.release();
  comm?.close();
  pool?.close();
}
