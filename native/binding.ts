// Process binding and pinned worker pools.
import { loadAddon, type NativeThreadPool } from './addon.js';

/** The cpus this thread may run on, as the OS reports them. */
export function currentAffinity(): number[] {
  return loadAddon().currentAffinity();
}

/** One worker thread per cpu of the node, each pinned to its cpu. Close it when done. */
export function createThreadPool(cpus: number[]): NativeThreadPool {
  return new (loadAddon().ThreadPool)(cpus);
}
