// The executor control plane over gRPC (proto/executor.proto): a typed server and client.
// Unix-domain sockets on one host; the same service over TCP serves several hosts.
import * as grpc from '@grpc/grpc-js';
import type { WireBrick, WireRange } from './bricks.js';
import { loadService } from './proto.js';

export interface HelloReply {
  rank: number;
  world: number;
  pid: number;
  cpus: number[];
  memoryNode: number;
  hostname: string;
  version: string;
  /** GB/s its pinned threads read from its node's memory, measured when it started. */
  readGbps: number;
}
export interface AttachRequest {
  session: string;
  stagingBytes: number;
  staging: string;
}
export interface GemmRequest {
  m: number;
  n: number;
  k: number;
  bricks: WireBrick[];
  allBricks: { rank: number; bricks: WireBrick[] }[];
  aOffset: number;
  bOffset: number;
  cOffset: number;
  partialOffset: number;
  cRows: WireRange;
  /** The done array's offset (absent or 0: none), and a recovery step's chunks to compute. */
  doneOffset?: number;
  redo?: boolean;
  redoChunks?: number[];
}
export interface GemmReply {
  computeSeconds: number;
  exchangeSeconds: number;
  totalSeconds: number;
  bytesReceived: number;
  steps: number;
  cChunks: number;
  blocksFetched: number;
  bytesFetched: number;
  localPeakBytes: number;
  localNode: number;
}
export interface PlaceLayersRequest {
  dtype: string;
  n: number;
  k: number;
  layers: number;
  seed: number;
  placement: string;
  rows: WireRange;
  count: number;
  rowsPerRank: number[];
  fresh: boolean;
  fromStaging: boolean;
  sourceOffset: number;
}
export interface PlaceLayersReply {
  weightBytes: number;
  backing: string;
  seconds: number;
  layersMade: number;
}
export interface RunLayersRequest {
  m: number;
  iters: number;
  seed: number;
  yOffset: number;
  xOffset: number;
  collect: boolean;
  /** Multi-host mode (executor/node/cross-host.ts); null or absent on one host. */
  hosts?: CrossHost | null;
  /** Every rank holds every layer (mirror): rows follow the ranks' measured speed. */
  balance?: boolean;
}
export interface CrossHost {
  firstRank: number;
  hostFirstRanks: number[];
  run: string;
  /** Every host's leader link address in host order: the native exchange. */
  leaders: string[];
  /** Every leader's UCX worker address, in host order: the exchange runs over UCX. */
  ucxLeaders?: Buffer[];
}
/** How host leaders exchange a run's blocks: the native gRPC link, or UCX. */
export type LinkTransport = 'grpc' | 'ucx';
/** What `--transport` may ask for: a link, or `auto` (UCX where an RDMA device exists). */
export const TRANSPORT_CHOICES = ['auto', 'ucx', 'grpc'] as const;
export type TransportChoice = (typeof TRANSPORT_CHOICES)[number];
export function isTransportChoice(v: string): v is TransportChoice {
  return (TRANSPORT_CHOICES as readonly string[]).includes(v);
}

export interface OpenHostLinkRequest {
  address: string;
  token: string;
  /** PEM; empty (or absent): no TLS. */
  tlsCert?: Buffer;
  tlsKey?: Buffer;
  tlsCa?: Buffer;
  /** Also make a UCX worker for the exchange (`--transport ucx`). */
  ucx?: boolean;
}
export interface OpenHostLinkReply {
  port: number;
  /** With `ucx`: the leader's UCX worker address. */
  ucxAddress?: Buffer;
}
export interface RunLayersReply {
  seconds: number;
  computeSeconds: number;
  waitSeconds: number;
  exchangeSeconds: number;
  passes: number;
  /** Rows per rank at the end (balancing moves them). */
  rows?: number[];
  /** A host leader's exchange with the other leaders ("ucx" or "grpc"; empty elsewhere). */
  link?: string;
  /** Bytes it sent over UCX in this run. */
  linkBytesSent?: number;
}
export interface LoadModelRequest {
  path: string;
  ctx: number;
  kvHeads: WireRange;
  ff: WireRange;
  vocab: WireRange;
  vocabPerRank: number[];
  /** Multi-host mode: the executor's global rank and the world size (absent or 0: its own). */
  rank?: number;
  world?: number;
  /** KV slots: sequences held side by side (absent or 0: 1). */
  slots?: number;
  /** Matmul rows through the row-invariant kernels (a batching server). */
  batchInvariant?: boolean;
  /** Steps of at most this many tokens row-invariant too (verifying drafts: generate --lookup). */
  invariantTokens?: number;
  /** A copy of token_embd in the node's memory rather than the file's shared pages (the planner's tokenEmbd.placement). */
  mirrorEmbeddings?: boolean;
}
export interface LoadModelReply {
  weightBytes: number;
  kvBytes: number;
  backing: string;
  seconds: number;
}
export interface LoadProgressReply {
  done: number;
  total: number;
}
export interface ForwardRequest {
  tokens: number[];
  pos: number;
  /** What every rank computes (the vocabulary projection is collective). */
  logits: 'last' | 'all' | 'none';
  /** Whether this rank sends them back. */
  sendLogits: boolean;
  /** Multi-host mode (executor/node/cross-host.ts); null or absent on one host. */
  hosts?: CrossHost | null;
  /**
   * With sendLogits: write them at the start of the staging area (shared memory the coordinator
   * maps) instead of into the reply: 128 KB a token through gRPC cost ~1.5 ms on a small VM.
   */
  logitsToStaging?: boolean;
  /** A step of several sequences: tokens are the runs' tokens in turn; pos and logits unused. */
  runs?: SeqRunMsg[];
}
/** `count` tokens of one sequence at positions pos.. of KV slot `slot` (proto SeqRun). */
export interface SeqRunMsg {
  slot: number;
  pos: number;
  count: number;
  /** The logits after its last token. */
  logits: boolean;
  /** Rows of logits after each of its last logitRows tokens (a scored prompt); 0: as logits says. */
  logitRows?: number;
  /** 1 + the slot whose positions 0…pos-1 this run's slot takes before the step; 0: none. */
  fromSlot?: number;
  /** Its rows are the final hidden states (embeddings), not logits (native SeqRun.hidden). */
  hidden?: boolean;
}
export interface ForwardReply {
  /** f32 little-endian, n_vocab values per returned position (empty when none asked). */
  logits: Uint8Array;
  computeSeconds: number;
  exchangeSeconds: number;
  /** The step's all-reduces by algorithm (AllReduceCounts in native/model.ts). */
  allReduces: Record<string, number>;
  seconds: number;
}
type Empty = Record<string, never>;

/** What an executor implements; each handler may throw to fail the call with its message. */
export interface ExecutorHandlers {
  hello(req: Empty): Promise<HelloReply> | HelloReply;
  attach(req: AttachRequest): Promise<Empty> | Empty;
  gemm(req: GemmRequest): Promise<GemmReply> | GemmReply;
  placeLayers(req: PlaceLayersRequest): Promise<PlaceLayersReply> | PlaceLayersReply;
  runLayers(req: RunLayersRequest): Promise<RunLayersReply> | RunLayersReply;
  loadModel(req: LoadModelRequest): Promise<LoadModelReply> | LoadModelReply;
  loadProgress(req: Empty): Promise<LoadProgressReply> | LoadProgressReply;
  forward(req: ForwardRequest): Promise<ForwardReply> | ForwardReply;
  /** Later steps may come through the staging area's doorbell (native/src/model/step_doorbell.h). */
  startModelLoop(req: Empty): Promise<Empty> | Empty;
  openHostLink(req: OpenHostLinkRequest): Promise<OpenHostLinkReply> | OpenHostLinkReply;
  shutdown(req: Empty): Promise<Empty> | Empty;
}

export type ExecutorClient = {
  [K in keyof ExecutorHandlers]: (
    req: Parameters<ExecutorHandlers[K]>[0],
    deadlineMs?: number,
  ) => Promise<Awaited<ReturnType<ExecutorHandlers[K]>>>;
} & { close(): void; raw: grpc.Client };

let serviceCache: grpc.ServiceClientConstructor | undefined;
function service(): grpc.ServiceClientConstructor {
  // 64-bit fields come back as numbers (all our sizes fit in 2^53); defaults are filled in.
  serviceCache ??= loadService('executor.proto', 'redblue.v1.Executor', {
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return serviceCache;
}

const METHODS = [
  'hello',
  'attach',
  'gemm',
  'placeLayers',
  'runLayers',
  'loadModel',
  'loadProgress',
  'forward',
  'startModelLoop',
  'openHostLink',
  'shutdown',
] as const;
const RPC_NAME: Record<(typeof METHODS)[number], string> = {
  hello: 'Hello',
  attach: 'Attach',
  gemm: 'Gemm',
  placeLayers: 'PlaceLayers',
  runLayers: 'RunLayers',
  loadModel: 'LoadModel',
  loadProgress: 'LoadProgress',
  forward: 'Forward',
  startModelLoop: 'StartModelLoop',
  openHostLink: 'OpenHostLink',
  shutdown: 'Shutdown',
};

/** Serves the executor on `address` ("unix:/path" or "host:port"); resolves once bound. */
export async function serveExecutor(
  address: string,
  handlers: ExecutorHandlers,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<grpc.Server> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20, 'grpc.enable_channelz': 0 });
  const impl: grpc.UntypedServiceImplementation = {};
  for (const m of METHODS) {
    impl[RPC_NAME[m]] = (
      call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      Promise.resolve()
        .then(() => (handlers[m] as (r: unknown) => unknown)(call.request))
        .then(
          (reply) => callback(null, reply),
          (err: unknown) =>
            callback({
              code: grpc.status.INTERNAL,
              details: err instanceof Error ? err.message : String(err),
            }),
        );
    };
  }
  server.addService(service().service, impl);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(address, credentials, (err) => (err ? reject(err) : resolve())),
  );
  return server;
}

/** A promise-returning client; every call has a deadline (default 10 minutes). */
export function connectExecutor(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): ExecutorClient {
  const Ctor = service();
  // Replies can be large: Forward's logits at every position are tokens × vocabulary × 4 bytes
  // (12 tokens of a 128k vocabulary already pass grpc's default 4 MiB).
  // Executors and supervisors are being started as the client first connects: a refused
  // connection is retried after 50 ms, not grpc's default 1 s, which was most of a local
  // cluster's start-up. A local executor's socket is tried at least every 100 ms (the backoff
  // grown to 330 ms had a cluster that was up at 0.5 s wait until 0.8 s); a host's, every 1 s.
  const raw = new Ctor(address, credentials, {
    'grpc.max_receive_message_length': 1 << 30,
    'grpc.initial_reconnect_backoff_ms': 50,
    'grpc.max_reconnect_backoff_ms': address.startsWith('unix:') ? 100 : 1000,
    // No channelz (it keeps every channel's trace for the life of the process: a coordinator
    // that starts executors run after run grew by ~200 arrays and strings a run), and each
    // client's own subchannels, gone with it.
    'grpc.enable_channelz': 0,
    'grpc.use_local_subchannel_pool': 1,
  });
  const client: Record<string, unknown> = {
    raw,
    close: () => {
      closedClients.add(raw);
      raw.close();
    },
  };
  for (const m of METHODS) {
    const fnName = m.charAt(0).toLowerCase() + m.slice(1);
    client[m] = (req: unknown, deadlineMs = 600_000) =>
      new Promise((resolve, reject) => {
        const fn = (raw as unknown as Record<string, (...a: unknown[]) => void>)[fnName]!.bind(raw);
        fn(req, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, reply: unknown) => {
          // With gRPC's status code: ProcessGroup.guard waits longer for the exit behind a
          // dropped connection (UNAVAILABLE), so that the error names the dead rank.
          if (err) reject(Object.assign(new Error(err.details || err.message), { code: err.code }));
          else resolve(reply);
        });
      });
  }
  return client as unknown as ExecutorClient;
}

/** Waits until the channel is connected (the executor is listening), or rejects at the deadline. */
/** Clients closed by their owner (grpc-js's own state does not say so while connecting). */
const closedClients = new WeakSet<grpc.Client>();

export async function waitForReady(client: ExecutorClient, deadlineMs: number): Promise<void> {
  // In short waits: grpc-js keeps one wait's timer to its deadline even after the client is
  // closed, which held a failed run's process open for the whole deadline (30 s).
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      await new Promise<void>((resolve, reject) =>
        client.raw.waitForReady(Math.min(end, Date.now() + 250), (err) => (err ? reject(err) : resolve())),
      );
      return;
    } catch (e) {
      if (closedClients.has(client.raw) || Date.now() >= end) throw e;
    }
  }
}
