// The machine's read bandwidth, the reference that memory-bound figures (layer stacks, token
// generation) are compared with in the same run.
import { createThreadPool } from '../native/binding.js';
import { measureReadBandwidth } from '../native/read-speed.js';

/**
 * Read bandwidth (GB/s, best of `repeats`) over `bytes` of node-local memory with one pinned
 * thread per cpu given: what the memory system allows that many cores to stream.
 */
export function streamRead(cpus: number[], bytes: number, repeats: number): number {
  const pool = createThreadPool(cpus);
  try {
    return measureReadBandwidth(pool, 0, bytes, repeats);
  } finally {
    pool.close();
  }
}
