// One rank of a shm test, run as its own process (child_process.fork). The scenario and its
// parameters arrive as JSON in argv[2]; results go back to the parent over IPC. Every rank
// regenerates all ranks' inputs from the seed, so it can check results against a sequential sum.
import { ShmCommunicator } from '../../dist/transport/shm.js';
import { createThreadPool } from '../../dist/native/binding.js';

const cfg = JSON.parse(process.argv[2]);
const send = (msg) => new Promise((res) => process.send(msg, res));

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function f32Data(rank, n, salt) {
  const r = rng(cfg.seed * 7919 + rank * 104729 + salt * 31 + n);
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = r() * 2 - 1;
  return a;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toBf16(x) {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
function fromBf16(b) {
  u32[0] = b << 16;
  return f32[0];
}
function bf16Data(rank, n, salt) {
  const f = f32Data(rank, n, salt);
  const a = new Uint16Array(n);
  for (let i = 0; i < n; ++i) a[i] = toBf16(f[i] * 8);
  return a;
}

// Sum over the given ranks in order, rounding to f32 after every addition like the native code.
function expectedF32(ranks, n, salt) {
  const out = new Float32Array(n);
  ranks.forEach((r, k) => {
    const d = f32Data(r, n, salt);
    for (let i = 0; i < n; ++i) out[i] = k === 0 ? d[i] : Math.fround(out[i] + d[i]);
  });
  return out;
}
function expectedBf16(ranks, n, salt) {
  const acc = new Float32Array(n);
  ranks.forEach((r, k) => {
    const d = bf16Data(r, n, salt);
    for (let i = 0; i < n; ++i) acc[i] = k === 0 ? fromBf16(d[i]) : Math.fround(acc[i] + fromBf16(d[i]));
  });
  const out = new Uint16Array(n);
  for (let i = 0; i < n; ++i) out[i] = toBf16(acc[i]);
  return out;
}

const failures = [];
let checks = 0;
function check(what, got, want) {
  checks++;
  if (got.length !== want.length) {
    failures.push(`${what}: length ${got.length} != ${want.length}`);
    return;
  }
  for (let i = 0; i < want.length; ++i) {
    if (got[i] !== want[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      failures.push(`${what}: [${i}] = ${got[i]}, expected ${want[i]}`);
      return;
    }
  }
}

async function collectives(c) {
  const all = c.world.ranks;
  const n = c.size;
  for (const len of cfg.sizes) {
    const a = f32Data(c.rank, len, 1);
    await c.allReduce(a);
    check(`allReduce f32 n=${len}`, a, expectedF32(all, len, 1));
  }
  for (const len of cfg.bf16Sizes) {
    const a = bf16Data(c.rank, len, 2);
    await c.allReduce(a);
    check(`allReduce bf16 n=${len}`, a, expectedBf16(all, len, 2));
  }
  // Zero-copy all-reduce: inputs written straight into the shared slot, the sum read from it.
  for (const len of [0, 1, 17, 1000, 100003, 500000].filter((l) => l * 4 <= c.chunkBytes)) {
    const view = c.slotBuffer(len);
    view.set(f32Data(c.rank, len, 12));
    await c.allReduceSlot(len);
    check(`allReduceSlot f32 n=${len}`, view, expectedF32(all, len, 12));
  }
  {
    const len = Math.min(777, c.chunkBytes / 2);
    const view = c.slotBuffer(len, c.world, 'bf16');
    view.set(bf16Data(c.rank, len, 13));
    await c.allReduceSlot(len, c.world, 'bf16');
    check(`allReduceSlot bf16 n=${len}`, view, expectedBf16(all, len, 13));
  }
  for (const len of [0, 1, 7, 300001]) {
    const mine = f32Data(c.rank, len, 3);
    const out = new Float32Array(len * n);
    await c.allGather(mine, out);
    const want = new Float32Array(len * n);
    all.forEach((r, k) => want.set(f32Data(r, len, 3), k * len));
    check(`allGather n=${len}`, out, want);
  }
  const counts = all.map((r) => ((r * 7 + 3) % 5) * 100003 + r + 1);
  counts[0] = 0;
  {
    const mine = f32Data(c.rank, counts[c.rank], 4);
    const out = new Float32Array(counts.reduce((s, x) => s + x, 0));
    await c.allGatherV(mine, out, counts);
    const want = new Float32Array(out.length);
    let off = 0;
    all.forEach((r, k) => {
      want.set(f32Data(r, counts[k], 4), off);
      off += counts[k];
    });
    check(`allGatherV counts=${counts}`, out, want);
  }
  for (const per of [0, 1, 33, 200003]) {
    const total = per * n;
    const send = f32Data(c.rank, total, 5);
    const out = new Float32Array(per);
    await c.reduceScatter(send, out);
    check(
      `reduceScatter per=${per}`,
      out,
      expectedF32(all, total, 5).subarray(c.rank * per, (c.rank + 1) * per),
    );
  }
  {
    const total = counts.reduce((s, x) => s + x, 0);
    const send = f32Data(c.rank, total, 6);
    const out = new Float32Array(counts[c.rank]);
    await c.reduceScatterV(send, out, counts);
    const off = counts.slice(0, c.rank).reduce((s, x) => s + x, 0);
    check(
      `reduceScatterV counts=${counts}`,
      out,
      expectedF32(all, total, 6).subarray(off, off + counts[c.rank]),
    );
  }
  {
    const total = 40001 * n;
    const send = bf16Data(c.rank, total, 7);
    const out = new Uint16Array(40001);
    await c.reduceScatter(send, out);
    check(
      'reduceScatter bf16',
      out,
      expectedBf16(all, total, 7).subarray(c.rank * 40001, (c.rank + 1) * 40001),
    );
  }
  for (const len of [0, 5, 1_000_003]) {
    const root = n - 1;
    const a = c.rank === root ? f32Data(root, len, 8) : new Float32Array(len);
    await c.broadcast(a, root);
    check(`broadcast n=${len}`, a, f32Data(root, len, 8));
  }
  // Point-to-point around a ring; 1.5M floats span several mailbox chunks.
  const next = (c.rank + 1) % n;
  const prev = (c.rank + n - 1) % n;
  for (const len of [0, 10, 1_500_001]) {
    const [, got] = await Promise.all([c.send(next, f32Data(c.rank, len, 9)), c.recv(prev)]);
    check(`send/recv n=${len}`, new Float32Array(got), f32Data(prev, len, 9));
    const into = new Float32Array(len + 3);
    const [, bytes] = await Promise.all([c.send(next, f32Data(c.rank, len, 10)), c.recvInto(prev, into)]);
    check(`recvInto n=${len}`, into.subarray(0, bytes / 4), f32Data(prev, len, 10));
  }
  // Zero-copy: write straight into the mailbox, read straight out of it.
  const zlen = 1000;
  const view = await c.sendBuffer(next);
  new Float32Array(view.buffer, view.byteOffset, zlen).set(f32Data(c.rank, zlen, 11));
  c.postSend(next, zlen * 4);
  const inbox = await c.recvBuffer(prev);
  check(
    'zero-copy send/recv',
    new Float32Array(inbox.buffer, inbox.byteOffset, inbox.byteLength / 4).slice(),
    f32Data(prev, zlen, 11),
  );
  c.releaseRecv(prev);
  await c.barrier();
}

// Several groups with operations in flight at once; ops of one group keep their order.
async function groups(c) {
  const defs = cfg.groups.filter((g) => g.includes(c.rank));
  const made = defs.map((g) => c.group(g));
  const jobs = [];
  made.forEach((g, gi) => {
    const id = cfg.groups.indexOf(defs[gi]); // the same on every member
    for (let it = 0; it < cfg.iterations; ++it) {
      const salt = 100 + id * 1000 + it * 2;
      const len = 1000 + it * 50001 + id;
      const a = f32Data(c.rank, len, salt);
      jobs.push(
        c.allReduce(a, g).then(() => check(`group ${g.ranks} it ${it}`, a, expectedF32(g.ranks, len, salt))),
      );
      const mine = f32Data(c.rank, 999, salt + 1);
      const out = new Float32Array(999 * g.size);
      jobs.push(
        c.allGather(mine, out, g).then(() => {
          const want = new Float32Array(out.length);
          g.ranks.forEach((r, k) => want.set(f32Data(r, 999, salt + 1), k * 999));
          check(`group ${g.ranks} allGather it ${it}`, out, want);
        }),
      );
    }
  });
  await Promise.all(jobs);
  await c.barrier();
  // Which channel each group got here: every member must have got the same one.
  return { groupIds: Object.fromEntries(made.map((g, gi) => [cfg.groups.indexOf(defs[gi]), g.id])) };
}

// Runs all-reduces (or, with cfg.op 'p2p', rank 0 receives what rank 1 sends) until one fails
// (a peer gets killed by the parent meanwhile).
async function untilFailure(c) {
  const a = new Float32Array(cfg.len);
  let started = false;
  const t0 = Date.now();
  const step =
    cfg.op === 'p2p' ? () => (c.rank === 0 ? c.recvInto(1, a) : c.send(0, a)) : () => c.allReduce(a);
  for (;;) {
    try {
      await step();
    } catch (err) {
      return { error: err.message, ms: Date.now() - t0 };
    }
    if (!started) {
      started = true;
      await send({ type: 'started' });
    }
  }
}

async function mismatch(c) {
  try {
    if (c.rank === 0) await c.allReduce(new Float32Array(100));
    else await c.allGather(new Float32Array(10), new Float32Array(10 * c.size));
    return { error: null };
  } catch (err) {
    return { error: err.message };
  }
}

// Opens the communicator, drops every reference to it without close() and collects garbage
// (node --expose-gc) until its wrapper is provably gone: the rank must stay a member anyway.
// On the parent's 'exit' message the process ends normally, still without close().
async function dropAndCollect() {
  let c = await ShmCommunicator.open({ name: cfg.name, rank: cfg.rank, size: cfg.size, ...cfg.options });
  const path = c.path;
  let collected = false;
  const registry = new FinalizationRegistry(() => (collected = true));
  registry.register(c, 'wrapper');
  c = null;
  for (let i = 0; i < 100 && !collected; ++i) {
    globalThis.gc();
    await new Promise((res) => setTimeout(res, 10));
  }
  const timer = setInterval(() => {}, 1000);
  process.on('message', (m) => {
    if (m?.type !== 'exit') return;
    clearInterval(timer);
    process.disconnect();
  });
  await send({ type: 'ready', path, collected });
}

// Ranks 0 .. cfg.racers-1 create every group that holds all of them, each at the same instant
// (a start time on the shared monotonic clock, one per group, from rank 0), on cfg.segments
// fresh segments; the other ranks only attach. Returns each racer's group ids per segment and
// the sum of one all-reduce on the racers' own group (a split group would time out instead).
async function claimRace() {
  const segments = [];
  const racing = cfg.rank < cfg.racers;
  const all = (1 << cfg.racers) - 1;
  for (let s = 0; s < cfg.segments; ++s) {
    const c = await ShmCommunicator.open({
      ...cfg.options,
      name: `${cfg.name}-${s}`,
      rank: cfg.rank,
      size: cfg.size,
    });
    try {
      const t0 = new BigInt64Array([process.hrtime.bigint() + 2_000_000n]);
      await c.broadcast(t0, 0);
      const ids = {};
      let sum = null;
      if (racing) {
        let k = 0n;
        for (let m = 1; m < 1 << cfg.size; ++m) {
          if ((m & all) !== all) continue;
          const ranks = [];
          for (let r = 0; r < cfg.size; ++r) if (m & (1 << r)) ranks.push(r);
          const start = t0[0] + k++ * 200_000n;
          while (process.hrtime.bigint() < start);
          try {
            ids[m] = c.group(ranks).id;
          } catch (err) {
            ids[m] = String(err.message);
          }
        }
        const a = new Float32Array([cfg.rank + 1]);
        try {
          await c.allReduce(a, c.group(Array.from({ length: cfg.racers }, (_, r) => r)));
          sum = a[0];
        } catch (err) {
          sum = String(err.message);
        }
      }
      await c.barrier();
      segments.push({ ids, sum });
    } finally {
      c.close();
    }
  }
  checks = segments.length;
  return { segments };
}

async function main() {
  if (cfg.scenario === 'dropAndCollect') return dropAndCollect();
  if (cfg.scenario === 'claimRace') {
    const result = await claimRace();
    await send({ type: 'result', checks, failures, ...result });
    process.disconnect();
    return;
  }
  const c = await ShmCommunicator.open({ name: cfg.name, rank: cfg.rank, size: cfg.size, ...cfg.options });
  if (cfg.scenario === 'exitWithoutClose') {
    await c.barrier();
    await send({ type: 'result', path: c.path });
    process.disconnect(); // the process ends with the communicator still open
    return;
  }
  let result = {};
  const pool = cfg.poolCpus ? createThreadPool(cfg.poolCpus) : null;
  if (pool) c.usePool(pool, 4096);
  try {
    if (cfg.scenario === 'collectives') await collectives(c);
    else if (cfg.scenario === 'groups') result = await groups(c);
    else if (cfg.scenario === 'untilFailure') result = await untilFailure(c);
    else if (cfg.scenario === 'mismatch') result = await mismatch(c);
    else if (cfg.scenario === 'hold') {
      await send({ type: 'ready', path: c.path });
      // Blocks until killed; if the test process dies first, end instead of lingering.
      const timer = setInterval(() => {}, 1000);
      process.once('disconnect', () => clearInterval(timer));
      await new Promise(() => {});
    }
  } finally {
    c.close(); // also on failure: the last rank to leave removes the segment
    pool?.close();
  }
  await send({
    type: 'result',
    checks,
    failures: failures.slice(0, 5),
    path: c.path,
    backing: c.backing,
    ...result,
  });
  process.disconnect();
}

main().catch(async (err) => {
  await send({ type: 'result', fatal: String(err?.stack ?? err) });
  process.exitCode = 1;
  process.disconnect();
});
