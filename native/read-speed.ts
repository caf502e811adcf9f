// How fast a node's cpus stream its memory: the speed token generation runs at (it reads every
// weight once per token), measured where it is used: by each executor on its own pinned pool and
// node-local memory, and by the planner's dry run node by node.
import type { NativeThreadPool } from './addon.js';
import { readBytes } from './kernels.js';
import { allocateOnNode } from './memory.js';

/**
 * Read bandwidth in GB/s (best of `repeats`, after one untimed pass that wakes the pool and the
 * clocks) of `pool`'s threads over `bytes` of memory on `memoryNode`. 64 MiB (twice a large L3)
 * and 3 repeats take ~50 ms on one core: short enough to run whenever an executor starts.
 */
export function measureReadBandwidth(
  pool: NativeThreadPool,
  memoryNode: number,
  bytes = 64 << 20,
  repeats = 3,
): number {
  // Reserved huge pages when the set-up made them (the same 2 MiB pages as THP, the same GB/s
  // measured): a fresh process's first 64 MiB of THP took 50-140 ms to fault in, and every
  // executor measures as it starts.
  const buf = allocateOnNode(bytes, memoryNode, 'auto');
  try {
    new Uint8Array(buf.buffer).fill(1);
    readBytes(pool, new Uint8Array(buf.buffer));
    let best = Infinity;
    for (let i = 0; i < repeats; i++) {
      const t0 = process.hrtime.bigint();
      readBytes(pool, new Uint8Array(buf.buffer));
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return bytes / best / 1e9;
  } finally {
    buf.release();
  }
}
