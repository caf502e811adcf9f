// Process binding and pinned worker pools.
import { loadAddon, type NativeThreadPool } from './addon.js';
import type { TopologyNode } from './topology.js';

/** Binds every thread of this process to the node's cpus and its memory to the node's memory. */
export function bindToNode(node: TopologyNode): void {
  loadAddon().bindProcess(node.cpus, node.physicalNode);
}

/** The cpus this thread may run on, as the OS reports them. */
export function currentAffinity(): number[] {
  return loadAddon().currentAffinity();
}

/** One worker thread per cpu of the node, each pinned to its cpu. Close it when done. */
export function createThreadPool(cpus: number[]): NativeThreadPool {
  return new (loadAddon().ThreadPool)(cpus);
}
