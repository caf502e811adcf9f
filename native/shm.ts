// The TypeScript face of the shared-memory communicator (native/src/bindings/shm_bindings.cc);
// transport/shm.ts wraps it for use.
import { loadAddon, type NativeThreadPool } from './addon.js';

export type ShmDType = 'f32' | 'bf16';
export type ShmBenchOp =
  'allReduce' | 'allReduceSlot' | 'allGather' | 'reduceScatter' | 'broadcast' | 'barrier';

export interface ShmOptions {
  /** Segment name: the file is /dev/shm/redblue-shm-<name>. Letters, digits, '-', '_', '.'. */
  name: string;
  rank: number;
  size: number;
  /** Per rank and group staging slot (two halves); large collectives are chunked through it. */
  slotBytes?: number;
  /** Per ordered pair mailbox for send/recv; larger messages are chunked. */
  mailboxBytes?: number;
  /** Distinct groups (rank sets) the segment can hold, world included. */
  maxGroups?: number;
  /** Launcher-chosen run id: attachers ignore a segment with another token. */
  token?: number;
  /** Bound of every wait on a live peer. A dead peer is detected within ~50 ms regardless. */
  timeoutMs?: number;
  /** How long attachers wait for rank 0 to create the segment and all ranks to join. */
  attachTimeoutMs?: number;
  /** Busy-wait before sleeping on the futex; default 50 µs, 0 when ranks outnumber cpus. */
  spinUs?: number;
  /** All-reduce up to this many bytes uses one sync (every rank sums everything). */
  smallBytes?: number;
  /**
   * How long a group's native queue thread spins for the next call before sleeping (default 0).
   * Saves a thread wake-up per call from JS when every rank has spare cpus.
   */
  queueSpinUs?: number;
  /** Bytes per rank per round of a large collective (default 1 MiB: stays in cache). */
  roundBytes?: number;
  /** 'auto' uses a hugetlbfs mount when one has enough free 2 MiB pages. */
  hugePages?: 'auto' | 'none' | 'require';
}

type Data = ArrayBufferView;

export interface NativeShmCommunicator {
  readonly rank: number;
  readonly size: number;
  readonly path: string;
  readonly backing: string;
  readonly segmentBytes: number;
  readonly slotBytes: number;
  readonly mailboxBytes: number;
  group(ranks: number[]): number;
  barrier(group: number): Promise<void>;
  allReduce(group: number, data: Data, dtype: ShmDType): Promise<void>;
  slotBuffer(group: number, count: number, dtype: ShmDType): ArrayBuffer;
  allReduceSlot(group: number, count: number, dtype: ShmDType): Promise<void>;
  allGatherV(group: number, send: Data, recv: Data, recvBytes: number[]): Promise<void>;
  reduceScatterV(group: number, send: Data, recv: Data, counts: number[], dtype: ShmDType): Promise<void>;
  broadcast(group: number, data: Data, root: number): Promise<void>;
  send(dst: number, data: Data): Promise<void>;
  recv(src: number, out?: Data): Promise<number | ArrayBuffer>;
  sendBuffer(dst: number): Promise<ArrayBuffer>;
  postSend(dst: number, bytes: number): void;
  recvBuffer(src: number): Promise<ArrayBuffer>;
  releaseRecv(src: number): void;
  bench(op: ShmBenchOp, group: number, bytes: number, iters: number, dtype: ShmDType): Promise<number>;
  usePool(pool: NativeThreadPool | null, minBytes?: number): void;
  close(): void;
}

export interface ShmAddon {
  shmOpen(options: ShmOptions): Promise<NativeShmCommunicator>;
  shmRemoveStale(name: string): boolean;
  shmMemcpy(bytes: number, iters: number): number;
}

export const shmAddon = (): ShmAddon => loadAddon<ShmAddon>();
