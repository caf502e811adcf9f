// Node-local buffers: memory bound to one NUMA node, huge-page backed when possible.
import { loadAddon, type Backing, type HugePolicy } from './addon.js';

export interface NodeBuffer {
  readonly buffer: ArrayBuffer;
  readonly bytes: number;
  readonly node: number;
  /** What the kernel gave: hugetlb (2 MiB pages), thp (transparent huge pages) or normal pages. */
  readonly backing: Backing;
  /** Unmaps now; the ArrayBuffer becomes detached (length 0). Safe to call twice. */
  release(): void;
}

/**
 * Allocates `bytes` on NUMA node `node`. `huge`: 'auto' tries hugetlbfs pages, then transparent
 * huge pages, then normal pages; 'require' fails unless hugetlbfs pages are free; 'thp' skips
 * hugetlbfs; 'none' uses normal pages. Also freed by the garbage collector if never released.
 */
export function allocateOnNode(bytes: number, node: number, huge: HugePolicy = 'auto'): NodeBuffer {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(`buffer size must be a non-negative whole number of bytes, got ${String(bytes)}`);
  }
  if (!Number.isSafeInteger(node) || node < 0) {
    throw new RangeError(`node must be a non-negative whole number, got ${String(node)}`);
  }
  const addon = loadAddon();
  const a = addon.allocate(bytes, node, huge);
  return {
    buffer: a.buffer,
    bytes: a.bytes,
    node: a.node,
    backing: a.backing,
    release: () => void addon.release(a.buffer),
  };
}
