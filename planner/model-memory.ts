// Does a model's split fit the memory of the nodes it would run on? Pure: the split (each rank's
// weights and KV cache), the sequences held side by side, and what each rank's node can give
// (native/available-memory.ts, read by whoever runs the ranks). Ranks that share a memory node
// (virtual nodes, or cores of one socket) are summed against it: each alone would fit and all
// together not. Free huge pages are a pool apart: a rank's buffer (its weights, then its KV cache)
// goes there when whole pages of it are left, as the executors allocate (NodeBuffer), else into
// ordinary memory.
import { formatBytes } from '../common/format.js';
import type { ModelSplit } from './model-split.js';

/** A rank's memory node and what that node can give (unknown: not checked). */
export interface MemoryPlace {
  host: number;
  memoryNode: number;
  availableBytes?: number;
  hugeFreeBytes?: number;
  hugePageBytes?: number;
}

/**
 * What an executor holds beside its weights and KV cache: Node, gRPC and the addon (19-20 MiB
 * measured by `redblue bench model`), activations, logits and step scratch: counted generously.
 */
export const EXECUTOR_OVERHEAD_BYTES = 64 << 20;

/**
 * Left to everything else on the node (the coordinator's process, the kernel, the model file's
 * pages while they are copied): a run that takes a node's last pages makes the kernel kill
 * something.
 */
export function reserveBytes(availableBytes: number): number {
  return Math.max(256 << 20, Math.floor(availableBytes * 0.03));
}

/** What a machine (or node) can give new buffers: its available memory and free huge pages, less the reserve. */
export function usableBytes(have: { bytes: number; hugeFreeBytes: number }): number {
  return have.bytes + have.hugeFreeBytes - reserveBytes(have.bytes);
}

/**
 * Why a host cannot make a staging area of `bytes` (undefined: it can), given what it has and
 * the bytes of the area the new one replaces (freed first).
 */
export function stagingShortfall(
  bytes: number,
  have: { bytes: number; hugeFreeBytes: number },
  replacedBytes = 0,
): string | undefined {
  if (bytes <= usableBytes(have) + replacedBytes) return undefined;
  return `a staging area of ${formatBytes(bytes)} (the blocks of A, B and C this host's bricks read and write) does not fit in its memory: ${formatBytes(have.bytes)} available${have.hugeFreeBytes ? ` and ${formatBytes(have.hugeFreeBytes)} of free huge pages` : ''}, ${formatBytes(reserveBytes(have.bytes))} of it left to the rest of the system; ask for a smaller --m, --n or --k, or spread the gemm over more hosts`;
}

/** One memory node's ranks and what they would take of it. */
export interface NodeMemoryNeed {
  host: number;
  memoryNode: number;
  ranks: number[];
  weightBytes: number;
  kvCacheBytes: number;
  overheadBytes: number;
  /** Of the node's free huge pages, what the ranks' buffers would take. */
  hugeBytes: number;
  /** Of its ordinary memory: the buffers that found no huge pages, and the overhead (fits: this and reserveBytes within availableBytes). */
  ordinaryBytes: number;
  availableBytes: number;
  hugeFreeBytes: number;
  fits: boolean;
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/**
 * Each memory node's need against what it has, for `slots` sequences of `context` positions (the
 * split's own by default: its KV cache bytes scale with both); an empty list where no rank's
 * availability is known.
 */
export function memoryNeeds(
  split: ModelSplit,
  places: readonly MemoryPlace[],
  slots = 1,
  context = split.context,
): NodeMemoryNeed[] {
  if (places.length !== split.ranks.length) return [];
  const groups = new Map<string, number[]>();
  places.forEach((p, i) => {
    if (p.availableBytes === undefined || p.memoryNode < 0) return;
    const key = `${p.host}/${p.memoryNode}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  return [...groups.values()].map((ranks) => {
    const place = places[ranks[0]!]!;
    const page = place.hugePageBytes ?? 2 << 20;
    let hugeLeft = place.hugeFreeBytes ?? 0;
    let huge = 0;
    let ordinary = EXECUTOR_OVERHEAD_BYTES * ranks.length;
    const take = (bytes: number): void => {
      if (bytes === 0) return;
      const whole = roundUp(bytes, page);
      if (whole <= hugeLeft) {
        hugeLeft -= whole;
        huge += whole;
      } else ordinary += whole;
    };
    const kv = (r: number): number =>
      Math.ceil((split.ranks[r]!.kvCacheBytes / split.context) * context) * slots;
    // Every rank maps its weights as it starts loading and its KV cache when done.
    for (const r of ranks) take(split.ranks[r]!.weightBytes);
    for (const r of ranks) take(kv(r));
    return {
      host: place.host,
      memoryNode: place.memoryNode,
      ranks,
      weightBytes: ranks.reduce((a, r) => a + split.ranks[r]!.weightBytes, 0),
      kvCacheBytes: ranks.reduce((a, r) => a + kv(r), 0),
      overheadBytes: EXECUTOR_OVERHEAD_BYTES * ranks.length,
      hugeBytes: huge,
      ordinaryBytes: ordinary,
      availableBytes: place.availableBytes!,
      hugeFreeBytes: place.hugeFreeBytes ?? 0,
      fits: ordinary + reserveBytes(place.availableBytes!) <= place.availableBytes!,
    };
  });
}

function where(n: NodeMemoryNeed, hosts: boolean): string {
  const ranks = `rank${n.ranks.length > 1 ? 's' : ''} ${n.ranks.join(', ')}`;
  return `${hosts ? `host ${n.host}'s ` : ''}memory node ${n.memoryNode} (${ranks})`;
}

function needWords(n: NodeMemoryNeed, kv: string): string {
  return `${formatBytes(n.hugeBytes + n.ordinaryBytes)} (weights ${formatBytes(n.weightBytes)}, KV cache ${formatBytes(n.kvCacheBytes)}${kv}, executors ${formatBytes(n.overheadBytes)})`;
}

/**
 * `--dry-run`'s lines: one per memory node (what its ranks need, from its free huge pages and from
 * the ordinary memory it has available), then where one falls short, what a run would say.
 */
export function renderMemoryNeeds(needs: readonly NodeMemoryNeed[], shortfall?: string): string[] {
  const hosts = new Set(needs.map((n) => n.host)).size > 1;
  return needs
    .map((n) => {
      const pages =
        n.hugeFreeBytes > 0
          ? `${formatBytes(n.hugeBytes)} of its ${formatBytes(n.hugeFreeBytes)} of free huge pages and `
          : '';
      return `memory: ${where(n, hosts)} needs ${needWords(n, '')}: ${pages}${formatBytes(n.ordinaryBytes)} of the ${formatBytes(n.availableBytes)} available${n.fits ? '' : ': does not fit'}`;
    })
    .concat(shortfall ? [`note: a run would stop here: ${shortfall}`] : []);
}

/** The largest whole v in [1, hi) with ok(v), given ok is true below some point; 0 when ok(1) is not. */
function largest(hi: number, ok: (v: number) => boolean): number {
  let lo = 0;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Why the split does not fit `slots` sequences of its context, naming the first node that falls
 * short and by how much, and the fix: the longest context and, with several sequences, the most
 * sequences that would fit. Undefined when every node can hold its ranks' part.
 */
export function memoryShortfall(
  split: ModelSplit,
  places: readonly MemoryPlace[],
  slots = 1,
): string | undefined {
  const needs = memoryNeeds(split, places, slots);
  const short = needs.find((n) => !n.fits);
  if (!short) return undefined;
  const hosts = new Set(needs.map((n) => n.host)).size > 1;
  const fits = (s: number, c: number): boolean => memoryNeeds(split, places, s, c).every((n) => n.fits);
  const maxContext = largest(split.context, (c) => fits(slots, c));
  const maxSlots = slots > 1 ? largest(slots, (s) => fits(s, split.context)) : 0;
  const fix =
    maxContext === 0 && maxSlots === 0
      ? fits(1, 1)
        ? 'ask for fewer sequences and a shorter context'
        : 'the weights alone do not fit: run on more nodes or hosts, or use a smaller quantization of the model'
      : [
          maxContext > 0 ? `ask for a context of at most ${maxContext} positions (--ctx)` : undefined,
          maxSlots > 0 ? `at most ${maxSlots} sequences of ${split.context} (--parallel)` : undefined,
        ]
          .filter(Boolean)
          .join(', or ');
  const kv =
    slots > 1 ? ` for ${slots} sequences of ${split.context} positions` : ` for ${split.context} positions`;
  return `the model does not fit in memory: ${where(short, hosts)} needs ${needWords(short, kv)} but has ${formatBytes(short.availableBytes)} available (${formatBytes(reserveBytes(short.availableBytes))} of it left to the rest of the system)${short.hugeFreeBytes > 0 ? ` and ${formatBytes(short.hugeFreeBytes)} of free huge pages` : ''}: ${fix}`;
}
