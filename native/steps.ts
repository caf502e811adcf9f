// Typed access to the node executor's native steps (native/src/bindings/executor_bindings.cc)
// and the collective that spans hosts (native/src/bindings/hosts_bindings.cc).
import { loadAddon, type NativeThreadPool } from './addon.js';
import type { DataCredentials } from './data.js';

export interface StepBrick {
  m0: number;
  m1: number;
  n0: number;
  n1: number;
  k0: number;
  k1: number;
  /** Byte offset of the brick's partial-C slot in the staging area. */
  partialOffset: number;
  /** Its C chunk's flag in the done array (bricks of `mine` only). */
  doneIndex?: number;
}

export interface GemmStepArgs {
  m: number;
  n: number;
  k: number;
  aOffset: number;
  bOffset: number;
  cOffset: number;
  mine: StepBrick[];
  all: StepBrick[];
  cRow0: number;
  cRow1: number;
  node: number;
  /** The done array (one uint32 per C chunk of the plan: 1 once its result is in place). */
  doneOffset?: number;
  doneCount?: number;
}

export interface StepTimings {
  computeSeconds: number;
  exchangeSeconds: number;
  totalSeconds: number;
  bytesReceived: number;
}

/** What a gemm step did (its executed schedule): bricks computed one after another (the plan's
 * sequential steps), C chunks accumulated, blocks of A and B fetched and their bytes. */
export interface StepSchedule {
  steps: number;
  cChunks: number;
  blocksFetched: number;
  bytesFetched: number;
  /** Node-local bytes mapped for the step at most (its A and B buffers). */
  localPeakBytes: number;
  /** The NUMA node the kernel reports for those buffers' pages (-1 unknown, -2 several). */
  localNode: number;
}

export interface LayerStackConfig {
  dtype: string;
  n: number;
  k: number;
  layers: number;
  seed: number;
  mirror: boolean;
  rowLo: number;
  rowHi: number;
  node: number;
}

export interface PassTimings {
  seconds: number;
  computeSeconds: number;
  /** Waiting for the slowest peer to finish each layer (load imbalance), before the exchange. */
  waitSeconds: number;
  exchangeSeconds: number;
  passes: number;
  /** Rows per rank at the end of the run (balancing moves them between layers). */
  rows: number[];
}

export interface NativeLayerStack {
  /** Makes `count` more layers, from `source` (whole n×k f32 layers from `sourceOffset`) or the seed. */
  addLayers(
    pool: NativeThreadPool,
    count: number,
    source?: ArrayBuffer,
    sourceOffset?: number,
  ): Promise<number>;
  run(
    pool: NativeThreadPool,
    communicator: unknown,
    options: {
      m: number;
      iters: number;
      seed: number;
      rowsPerRank: number[];
      /** Every rank holds every layer (mirror): move rows towards the faster ranks. */
      balance?: boolean;
      out?: ArrayBuffer;
      yOffset?: number;
      xOffset?: number;
    },
  ): Promise<PassTimings>;
  release(): void;
  readonly weightBytes: number;
  readonly layersMade: number;
  readonly backing: string;
}

interface ExecutorAddon {
  fillUniform(buffer: ArrayBuffer, byteOffset: number, count: number, seed: number, stream: number): void;
  gemmStep(
    pool: NativeThreadPool,
    communicator: unknown,
    staging: ArrayBuffer,
    args: GemmStepArgs,
  ): Promise<StepTimings & StepSchedule>;
  LayerStack: new (config: LayerStackConfig) => NativeLayerStack;
}

export function executorAddon(): ExecutorAddon {
  return loadAddon<ExecutorAddon>();
}

/** Streams of the counter-based generator: A and B of a seeded gemm. */
export const STREAM_A = 11;
export const STREAM_B = 12;

/** A host leader's end of the native link between leaders (hosts/grpc_host_link.h). */
export interface HostEndpoint {
  /** The port it serves on (peers fetch this leader's blocks there). */
  readonly port: number;
  /** With `ucx`: this leader's UCX worker address, for the other leaders to reach it by. */
  readonly ucxAddress?: Buffer;
  readonly endpoint: unknown;
  /** Stops serving; runs that hold it fail their next exchange. */
  close(): void;
}

interface HostsAddon {
  hostEndpoint(options: { address: string; ucx?: boolean } & DataCredentials): HostEndpoint;
  ucxBytesSent(): number;
  ucxAbortExchanges(): void;
  hostsCollective(
    communicator: unknown,
    options: {
      firstRank: number;
      hostFirstRanks: number[];
      /**
       * The leader's exchange between hosts, natively: every host's leader address, in host
       * order; with every leader's UCX worker address too, the exchange runs over UCX.
       */
      link?: { endpoint: unknown; leaders: string[]; run: string; ucxLeaders?: Buffer[] };
      timeoutMs?: number;
    },
  ): { collective: unknown; rank: number; size: number };
}

export type HostsCollectiveOptions = Parameters<HostsAddon['hostsCollective']>[1];

/**
 * The collective of one multi-host run: shared memory inside the host, then between hosts the
 * leader's native `link` to the other leaders.
 */
export function hostsCollective(
  communicator: unknown,
  options: HostsCollectiveOptions,
): { collective: unknown; rank: number; size: number } {
  return loadAddon<HostsAddon>().hostsCollective(communicator, options);
}

/**
 * Serves this leader's blocks to the other hosts' leaders on `address` (host:port, port 0: any);
 * with `ucx`, also makes a UCX worker for the exchange over UCX.
 */
export function hostEndpoint(address: string, creds: DataCredentials, ucx = false): HostEndpoint {
  return loadAddon<HostsAddon>().hostEndpoint({ address, ...creds, ...(ucx ? { ucx } : {}) });
}

/** Bytes this process has sent to other hosts' leaders over UCX (proof of the wire in tests). */
export function ucxBytesSent(): number {
  return loadAddon<HostsAddon>().ucxBytesSent();
}

/** The executor is stopping: a UCX exchange still waiting for a peer ends now, with an error. */
export function ucxAbortExchanges(): void {
  loadAddon<HostsAddon>().ucxAbortExchanges();
}
