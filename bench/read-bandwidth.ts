// The machine's read bandwidth, the reference that memory-bound figures (layer stacks, token
// generation) are compared with in the same run.
import { readBytes } from '../native/kernels.js';
import { allocateOnNode } from '../native/memory.js';
import { createThreadPool } from '../native/binding.js';

/**
 * Read bandwidth (GB/s, best of `repeats`) over `bytes` of node-local memory with one pinned
 * thread per cpu given: what the memory system allows that many cores to stream.
 */
export function streamRead(cpus: number[], bytes: number, repeats: number): number {
  const buf = allocateOnNode(bytes, 0, 'thp');
  const pool = createThreadPool(cpus);
  try {
    new Uint8Array(buf.buffer).fill(1);
    let best = Infinity;
    for (let i = 0; i < repeats; i++) {
      const t0 = process.hrtime.bigint();
      readBytes(pool, new Uint8Array(buf.buffer));
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return bytes / best / 1e9;
  } finally {
    pool.close();
    buf.release();
  }
}
