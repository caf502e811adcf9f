// Shared-memory transport between the executor processes of one host: a segment in /dev/shm
// created by rank 0 and attached by the others, with collectives and point-to-point messages
// that run entirely in native code (native/src/shm) and resolve Promises. See docs/shm.md.
import { readdirSync, readFileSync } from 'node:fs';
import type { NativeThreadPool } from '../native/addon.js';
import {
  shmAddon,
  type NativeShmCommunicator,
  type ShmBenchOp,
  type ShmDType,
  type ShmOptions,
} from '../native/shm.js';

export type { ShmBenchOp, ShmDType, ShmOptions } from '../native/shm.js';

type Data = ArrayBufferView;

const addon = shmAddon;

export const SEGMENT_DIR = '/dev/shm';
export const SEGMENT_PREFIX = 'redblue-shm-';
const NAME = /^[A-Za-z0-9._-]{1,200}$/;

function checkInt(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${what} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

/** A set of ranks that runs collectives together (same set on every member). */
export class ShmGroup {
  constructor(
    readonly id: number,
    readonly ranks: readonly number[],
  ) {}
  get size(): number {
    return this.ranks.length;
  }
}

function dtypeOf(data: Data, dtype: ShmDType | undefined): ShmDType {
  if (dtype) {
    const need = dtype === 'f32' ? 4 : 2;
    if (data.byteLength % need !== 0) {
      throw new RangeError(`a ${dtype} buffer needs a length that is a multiple of ${need} bytes`);
    }
    return dtype;
  }
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Uint16Array) return 'bf16';
  throw new TypeError(
    'pass a Float32Array (f32) or a Uint16Array of bf16 bits, or give the dtype explicitly',
  );
}

function elementBytes(data: Data): number {
  return 'BYTES_PER_ELEMENT' in data
    ? (data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT
    : 1;
}

export class ShmCommunicator {
  readonly world: ShmGroup;
  private closed = false;

  private constructor(private readonly native: NativeShmCommunicator) {
    const all = Array.from({ length: native.size }, (_, i) => i);
    this.world = new ShmGroup(native.group(all), all);
  }

  /**
   * Creates (rank 0) or attaches (others) the segment, replacing a stale one left by a killed
   * run, and waits until every rank has joined.
   */
  static async open(options: ShmOptions): Promise<ShmCommunicator> {
    if (typeof options?.name !== 'string' || !NAME.test(options.name)) {
      throw new TypeError(
        `name must be 1-200 letters, digits, '-', '_' or '.', got ${String(options?.name)}`,
      );
    }
    checkInt(options.size, 'size', 1, 64);
    checkInt(options.rank, 'rank', 0, options.size - 1);
    if (options.maxGroups !== undefined) checkInt(options.maxGroups, 'maxGroups', 1, 64);
    if (options.token !== undefined) checkInt(options.token, 'token', 0, Number.MAX_SAFE_INTEGER);
    const native = await addon().shmOpen(options);
    const comm = new ShmCommunicator(native);
    try {
      await comm.barrier();
    } catch (err) {
      comm.close();
      throw err;
    }
    return comm;
  }

  get rank(): number {
    return this.native.rank;
  }
  /** The native communicator, for native executor steps that run collectives themselves. */
  get handle(): unknown {
    return this.native;
  }
  get size(): number {
    return this.native.size;
  }
  /** The segment file, e.g. /dev/shm/redblue-shm-run1. */
  get path(): string {
    return this.native.path;
  }
  /** 'shm' (tmpfs pages) or 'hugetlb' (2 MiB pages). */
  get backing(): string {
    return this.native.backing;
  }
  get segmentBytes(): number {
    return this.native.segmentBytes;
  }
  /** Bytes a collective moves per round (half a slot). */
  get chunkBytes(): number {
    return this.native.slotBytes;
  }
  /** Largest zero-copy message (one mailbox). */
  get mailboxBytes(): number {
    return this.native.mailboxBytes;
  }

  /**
   * Splits copies and sums of at least minBytes (default 256 KiB) per round over the pool's
   * pinned workers (this rank's node-local cpus); null goes back to the calling thread only.
   */
  usePool(pool: NativeThreadPool | null, minBytes?: number): void {
    if (minBytes !== undefined) checkInt(minBytes, 'minBytes', 0, Number.MAX_SAFE_INTEGER);
    this.native.usePool(pool, minBytes);
  }

  /** Every member must call this with the same ranks before using the group. */
  group(ranks: readonly number[]): ShmGroup {
    if (!Array.isArray(ranks) || ranks.length === 0)
      throw new TypeError('a group needs a non-empty array of ranks');
    for (const r of ranks) checkInt(r, 'group rank', 0, this.size - 1);
    const sorted = [...ranks].sort((a, b) => a - b);
    return new ShmGroup(this.native.group(sorted), sorted);
  }

  barrier(group: ShmGroup = this.world): Promise<void> {
    return this.native.barrier(group.id);
  }

  /** In-place sum over the group. Uint16Array data is bf16, summed in f32 and rounded once. */
  allReduce(data: Float32Array | Uint16Array, group: ShmGroup = this.world, dtype?: ShmDType): Promise<void> {
    return this.native.allReduce(group.id, data, dtypeOf(data, dtype));
  }

  /**
   * Zero-copy all-reduce input: a view of this rank's slot in shared memory. Write the input
   * there, then call allReduceSlot(count) as the next collective on the group; the sum is then
   * in the same view (valid until the next collective on the group).
   */
  slotBuffer(
    count: number,
    group: ShmGroup = this.world,
    dtype: ShmDType = 'f32',
  ): Float32Array | Uint16Array {
    checkInt(count, 'count', 0, Number.MAX_SAFE_INTEGER);
    const buf = this.native.slotBuffer(group.id, count, dtype);
    return dtype === 'f32' ? new Float32Array(buf) : new Uint16Array(buf);
  }

  allReduceSlot(count: number, group: ShmGroup = this.world, dtype: ShmDType = 'f32'): Promise<void> {
    checkInt(count, 'count', 0, Number.MAX_SAFE_INTEGER);
    return this.native.allReduceSlot(group.id, count, dtype);
  }

  /** recv gets every member's `send` (all the same length), in group order. */
  allGather(send: Data, recv: Data, group: ShmGroup = this.world): Promise<void> {
    return this.native.allGatherV(
      group.id,
      send,
      recv,
      group.ranks.map(() => send.byteLength),
    );
  }

  /** counts[i]: elements member i contributes (elements of recv's type). */
  allGatherV(send: Data, recv: Data, counts: readonly number[], group: ShmGroup = this.world): Promise<void> {
    const e = elementBytes(recv);
    return this.native.allGatherV(
      group.id,
      send,
      recv,
      counts.map((c) => c * e),
    );
  }

  /** send holds group.size equal blocks; recv gets this member's block summed over the group. */
  reduceScatter(
    send: Float32Array | Uint16Array,
    recv: Float32Array | Uint16Array,
    group: ShmGroup = this.world,
  ) {
    const dtype = dtypeOf(send, undefined);
    const n = send.length / group.size;
    if (!Number.isInteger(n))
      throw new RangeError(`send length ${send.length} is not divisible by ${group.size}`);
    return this.native.reduceScatterV(
      group.id,
      send,
      recv,
      group.ranks.map(() => n),
      dtype,
    );
  }

  /** counts[i]: elements of member i's block; send holds sum(counts) elements. */
  reduceScatterV(
    send: Float32Array | Uint16Array,
    recv: Float32Array | Uint16Array,
    counts: readonly number[],
    group: ShmGroup = this.world,
  ): Promise<void> {
    return this.native.reduceScatterV(group.id, send, recv, [...counts], dtypeOf(send, undefined));
  }

  /** root is a world rank that belongs to the group. */
  broadcast(data: Data, root: number, group: ShmGroup = this.world): Promise<void> {
    return this.native.broadcast(group.id, data, root);
  }

  send(dst: number, data: Data): Promise<void> {
    return this.native.send(dst, data);
  }

  /** The next message from src, as a new ArrayBuffer. */
  async recv(src: number): Promise<ArrayBuffer> {
    return (await this.native.recv(src)) as ArrayBuffer;
  }

  /** The next message from src into `out`; resolves with its length in bytes. */
  async recvInto(src: number, out: Data): Promise<number> {
    return (await this.native.recv(src, out)) as number;
  }

  /** Zero-copy send: a view of the mailbox to dst (once it is free); fill it, then postSend. */
  async sendBuffer(dst: number): Promise<Uint8Array> {
    return new Uint8Array(await this.native.sendBuffer(dst));
  }

  postSend(dst: number, bytes: number): void {
    this.native.postSend(dst, bytes);
  }

  /** Zero-copy receive of a message up to mailboxBytes; call releaseRecv(src) when done. */
  async recvBuffer(src: number): Promise<Uint8Array> {
    return new Uint8Array(await this.native.recvBuffer(src));
  }

  releaseRecv(src: number): void {
    this.native.releaseRecv(src);
  }

  /** Seconds per operation of a native loop (no JS round trip); all members must call it. */
  bench(op: ShmBenchOp, bytes: number, iters: number, group: ShmGroup = this.world, dtype: ShmDType = 'f32') {
    return this.native.bench(op, group.id, bytes, iters, dtype);
  }

  /** Fails calls in flight, leaves the segment; the last rank to leave removes it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}

/** Removes /dev/shm/redblue-shm-<name> if no live process uses it; true if it removed something. */
export function removeStaleSegment(name: string): boolean {
  return addon().shmRemoveStale(name);
}

/** Directories segments may live in: /dev/shm and any hugetlbfs mount. */
export function segmentDirs(): string[] {
  const huge = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'hugetlbfs')
    .map((f) => f[1]!);
  return [SEGMENT_DIR, ...huge];
}

/** Paths of redblue segments currently present (for clean-up checks). */
export function listSegments(): string[] {
  return segmentDirs().flatMap((d) =>
    readdirSync(d)
      .filter((f) => f.startsWith(SEGMENT_PREFIX))
      .map((f) => `${d}/${f}`),
  );
}

/** Seconds per memcpy of `bytes` (private buffers): the bandwidth limit for collectives. */
export function memcpySeconds(bytes: number, iters: number): number {
  return addon().shmMemcpy(bytes, iters);
}
