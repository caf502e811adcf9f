// A typed, promise-returning client of one host's supervisor (proto/hosts.proto): every call
// carries the credentials and a deadline, and every failure names the host.
import * as grpc from '@grpc/grpc-js';
import { DataClient, statusOf } from './native-data.js';
import { hostOf, joinHostPort } from '../common/address.js';
import {
  authMetadata,
  callMessage,
  channelCredentials,
  channelOptions,
  hostsServices,
  type Auth,
} from './grpc-data.js';
import type { WireBrick } from './bricks.js';
import type {
  ForwardReply,
  LoadModelReply,
  LoadModelRequest,
  LinkTransport,
  LoadProgressReply,
  SeqRunMsg,
} from './control.js';

export interface HostNodeInfo {
  cpus: number[];
  memoryBytes: number;
  physicalNode: number;
  /** What the node could still give at hello (0: not known); see native/available-memory.ts. */
  availableBytes: number;
  hugeFreeBytes: number;
  hugePageBytes: number;
}
export interface HostHello {
  hostname: string;
  version: string;
  nodes: HostNodeInfo[];
  virtualNodes: boolean;
  pid: number;
  launchRank: number;
  launchSize: number;
  /** Port of the host's native data path on the same address (0: none, a host too old). */
  dataPort: number;
}
export interface HostGemmRequest {
  m: number;
  n: number;
  k: number;
  bricks: { node: number; bricks: WireBrick[] }[];
  aOffset: number;
  bOffset: number;
  cOffset: number;
  partialOffset: number;
  /** The done array (absent or 0: none). */
  doneOffset?: number;
  /**
   * A recovery step: `bricks` then lists the plan's bricks of every rank it had (node = the plan's
   * rank), and node i of this host computes the chunks redoChunks[i] instead.
   */
  redoChunks?: { chunks: number[] }[];
}
export interface RankTimings {
  computeSeconds: number;
  exchangeSeconds: number;
  totalSeconds: number;
  bytesReceived: number;
}
export interface HostPlaceRequest {
  dtype: string;
  n: number;
  k: number;
  layers: number;
  seed: number;
  placement: string[];
  firstRank: number;
  rowsPerRank: number[];
  count: number;
  fresh: boolean;
  /** The weights are in the staging area at sourceOffset (this call's first layer, n×k f32 each). */
  fromStaging?: boolean;
  sourceOffset?: number;
}
export interface PlacedRank {
  weightBytes: number;
  backing: string;
  layersMade: number;
}
export interface HostRunRequest {
  m: number;
  iters: number;
  seed: number;
  collect: boolean;
  yOffset: number;
  xOffset: number;
  firstRank: number;
  world: number;
  run: string;
  hostFirstRanks: number[];
  /** One host whose ranks all hold every layer: rows follow the ranks' speed. */
  balance?: boolean;
}
/** A host's part of a model (per node of the host, in order; `path` as the host sees it). */
export interface HostLoadModelRequest {
  path: string;
  ctx: number;
  firstRank: number;
  world: number;
  ranks: Omit<LoadModelRequest, 'path' | 'ctx'>[];
  /** KV slots per executor (absent or 0: 1), and the row-invariant kernels. */
  slots?: number;
  batchInvariant?: boolean;
  invariantTokens?: number;
  mirrorEmbeddings?: boolean;
}
export interface HostForwardRequest {
  tokens: number[];
  pos: number;
  logits: 'last' | 'all' | 'none';
  firstRank: number;
  world: number;
  run: string;
  hostFirstRanks: number[];
  /** A step of several sequences (see ForwardRequest.runs). */
  runs?: SeqRunMsg[];
}
export interface PassTimingsMsg {
  /** A host leader's exchange with the other leaders ("ucx" or "grpc"), and what it sent over UCX. */
  link?: string;
  linkBytesSent?: number;
  seconds: number;
  computeSeconds: number;
  exchangeSeconds: number;
  passes: number;
  waitSeconds: number;
}

/** A client-visible failure of one host, with the gRPC code when there was one. */
export class HostCallError extends Error {
  constructor(
    message: string,
    readonly code?: grpc.status,
  ) {
    super(message);
  }
}

type Raw = Record<string, (...a: unknown[]) => unknown> & grpc.Client;

const DEFAULT_DEADLINE_MS = 600_000;

export class HostClient {
  readonly raw: Raw;
  private readonly md: grpc.Metadata;
  /**
   * The host's native data path (the Data service, on the port Hello names): every byte of the
   * staging area moves there, under the same token and TLS certificate as this client's calls.
   */
  private data: Promise<DataClient> | undefined;

  constructor(
    readonly address: string,
    public label: string,
    private readonly auth: Auth,
    /** Channel options on top of the bulk-data defaults (benchmarks compare settings). */
    extra: Record<string, unknown> = {},
  ) {
    const { credentials, options } = channelCredentials(auth);
    this.raw = new (hostsServices().Host)(
      address,
      credentials,
      channelOptions({ ...options, ...extra }),
    ) as unknown as Raw;
    this.md = authMetadata(auth);
  }

  private fail(err: unknown): HostCallError {
    const e = err as Partial<grpc.ServiceError>;
    let msg = callMessage(err);
    if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
      msg = `unreachable (${msg})`;
    }
    return new HostCallError(`${this.label}: ${msg}`, e.code);
  }

  unary<Req, Res>(method: string, req: Req, deadlineMs = DEFAULT_DEADLINE_MS): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = this.raw[method]!.bind(this.raw);
      fn(req, this.md, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: Res) =>
        err ? reject(this.fail(err)) : resolve(res),
      );
    });
  }

  waitForReady(deadlineMs: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.raw.waitForReady(Date.now() + deadlineMs, (err) =>
        err ? reject(new HostCallError(`${this.label}: not reachable (${err.message})`)) : resolve(),
      ),
    );
  }

  hello(deadlineMs = 10_000): Promise<HostHello> {
    return this.unary('hello', {}, deadlineMs);
  }

  /** Opens the session stream; `onLost` is called once if it ends without close(). */
  open(
    req: { session: string; hostIndex: number; peers: string[] },
    onLost: (err: HostCallError) => void,
  ): Promise<{ pids: number[]; readGbps: number[]; cancel(): void }> {
    return new Promise((resolve, reject) => {
      const call = (this.raw.open as (r: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<unknown>)(
        req,
        this.md,
      );
      let ready = false;
      let cancelled = false;
      const lost = (err: HostCallError) => {
        if (cancelled) return;
        cancelled = true;
        if (ready) onLost(err);
        else reject(err);
      };
      call.on('data', (ev: { state: string; pids: number[]; readGbps?: number[] }) => {
        if (ev.state === 'ready' && !ready) {
          ready = true;
          resolve({
            pids: ev.pids,
            readGbps: ev.readGbps ?? [],
            cancel: () => {
              cancelled = true;
              call.cancel();
            },
          });
        }
      });
      call.on('error', (err) => lost(this.fail(err)));
      call.on('end', () => lost(new HostCallError(`${this.label}: the host ended the session`)));
    });
  }

  /** A fresh staging area; with `--transport ucx` on the host, its UCX descriptor for peers. */
  async stage(bytes: number): Promise<{ ucxArea?: Buffer }> {
    const r = await this.unary<{ bytes: number }, { ucxArea?: Buffer }>('stage', { bytes });
    return r.ucxArea?.length ? { ucxArea: r.ucxArea } : {};
  }

  fill(offset: number, count: number, seed: number, stream: number): Promise<void> {
    return this.unary('fill', { offset, count, seed, stream });
  }

  /** The native data client, after asking the host once for its data port. */
  private dataPath(): Promise<DataClient> {
    this.data ??= this.hello().then(
      (h) => {
        if (!(h.dataPort > 0))
          throw new HostCallError(
            `${this.label}: the host serves no data path (redblue ${h.version}): run the same redblue version on every host`,
          );
        return new DataClient(joinHostPort(hostOf(this.address), h.dataPort), this.auth);
      },
      (e: unknown) => {
        this.data = undefined; // ask again next time
        throw e;
      },
    );
    return this.data;
  }

  /** Connects the native data path now (best effort), so that the first transfer does not wait for it. */
  async warmDataPath(deadlineMs = 10_000): Promise<void> {
    await (await this.dataPath()).connect(deadlineMs);
  }

  /** A data path call's failure as this host's error, with its gRPC code. */
  private async viaData<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (e) {
      const { message, code } = statusOf(e);
      throw new HostCallError(`${this.label}: ${message}`, code);
    }
  }

  /** Writes `data` into the host's staging area at `offset`. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    const path = await this.dataPath();
    return this.viaData(path.write(offset, data, DEFAULT_DEADLINE_MS));
  }

  /** Reads `dst.byteLength` bytes of the staging area at `offset`. */
  async read(offset: number, dst: Uint8Array, chunkBytes = 0): Promise<void> {
    const path = await this.dataPath();
    return this.viaData(path.read(offset, dst, DEFAULT_DEADLINE_MS, chunkBytes));
  }

  /**
   * Adds the host's f32 values at `offset` into `bytes` of a staging area at `at` as they arrive
   * (native: no JS loop; anywhere in the area, past the window JavaScript sees too).
   */
  async readAddInto(offset: number, area: ArrayBuffer, at: number, bytes: number): Promise<void> {
    const path = await this.dataPath();
    return this.viaData(path.readAddInto(offset, area, at, bytes, DEFAULT_DEADLINE_MS));
  }

  /** Has the host add peer `peer`'s rows into its own: over UCX when `peerUcxArea` is given and the host has UCX. */
  async pullAdd(
    peer: number,
    rows: { offset: number; bytes: number }[],
    peerUcxArea?: Buffer,
  ): Promise<{ bytes: number; link: LinkTransport }> {
    const r = await this.unary<object, { bytes: number; link?: string }>('pullAdd', {
      peer,
      rows,
      ...(peerUcxArea ? { peerUcxArea } : {}),
    });
    return { bytes: r.bytes, link: r.link === 'ucx' ? 'ucx' : 'grpc' };
  }

  gemm(req: HostGemmRequest): Promise<{ ranks: RankTimings[] }> {
    return this.unary('gemm', req);
  }

  placeLayers(req: HostPlaceRequest): Promise<{ ranks: PlacedRank[] }> {
    return this.unary('placeLayers', req);
  }

  runLayers(req: HostRunRequest): Promise<{ ranks: PassTimingsMsg[] }> {
    return this.unary('runLayers', req);
  }

  loadModel(req: HostLoadModelRequest): Promise<{ ranks: LoadModelReply[] }> {
    return this.unary('loadModel', req);
  }

  loadProgress(deadlineMs: number): Promise<{ ranks: LoadProgressReply[] }> {
    return this.unary('loadProgress', {}, deadlineMs);
  }

  forward(req: HostForwardRequest): Promise<{ ranks: ForwardReply[] }> {
    return this.unary('forward', req);
  }

  /** The port of the host's leader link in `session` (multi-host sessions on the native path). */
  /** The port of the host's leader link, and its UCX worker address when it has one. */
  async leaderPort(session: string): Promise<{ port: number; ucxAddress?: Buffer }> {
    return this.unary<{ session: string }, { port: number; ucxAddress?: Buffer }>(
      'leaderPort',
      { session },
      10_000,
    );
  }

  closeSession(deadlineMs = 5000): Promise<void> {
    return this.unary('endSession', {}, deadlineMs);
  }

  close(): void {
    void this.data?.then(
      (c) => c.close(),
      () => undefined,
    );
    this.data = undefined;
    this.raw.close();
  }
}
