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
  readChunks,
  writeChunks,
  type Auth,
  type BlockMsg,
} from './grpc-data.js';
import type { WireBrick } from './bricks.js';
import type { ForwardReply, LoadModelReply, LoadModelRequest, LoadProgressReply } from './control.js';

export interface HostNodeInfo {
  cpus: number[];
  memoryBytes: number;
  physicalNode: number;
}
export interface HostHello {
  hostname: string;
  version: string;
  nodes: HostNodeInfo[];
  virtualNodes: boolean;
  pid: number;
  launchRank: number;
  launchSize: number;
  /** Port of the host's native data path on the same address (0: none). */
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
}
/** A host's part of a model (per node of the host, in order; `path` as the host sees it). */
export interface HostLoadModelRequest {
  path: string;
  ctx: number;
  firstRank: number;
  world: number;
  ranks: Omit<LoadModelRequest, 'path' | 'ctx'>[];
}
export interface HostForwardRequest {
  tokens: number[];
  pos: number;
  logits: 'last' | 'all' | 'none';
  firstRank: number;
  world: number;
  run: string;
  hostFirstRanks: number[];
}
export interface PassTimingsMsg {
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
  /** The host's native data path, once Hello has named its port (null: the host has none). */
  private data: Promise<DataClient | null> | undefined;
  /**
   * A second client on it for all-gather fetches: a fetch may wait for the peer's next layer,
   * and a client's calls run one after another.
   */
  private fetchData: Promise<DataClient | null> | undefined;
  private readonly token: string | undefined;
  private readonly nativeData: boolean;

  constructor(
    readonly address: string,
    public label: string,
    auth: Auth,
    /** Channel options on top of the bulk-data defaults (benchmarks compare settings). */
    extra: Record<string, unknown> = {},
    /** Read and Write over the host's native data path when it has one (benchmarks turn it off). */
    path: { nativeData?: boolean } = {},
  ) {
    this.token = auth.token;
    this.nativeData = path.nativeData !== false && !auth.tls;
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

  stage(bytes: number): Promise<void> {
    return this.unary('stage', { bytes });
  }

  fill(offset: number, count: number, seed: number, stream: number): Promise<void> {
    return this.unary('fill', { offset, count, seed, stream });
  }

  /** The native data client, after asking the host once for its data port. */
  private dataPath(): Promise<DataClient | null> {
    if (!this.nativeData) return Promise.resolve(null);
    this.data ??= this.hello().then(
      (h) =>
        h.dataPort > 0 ? new DataClient(joinHostPort(hostOf(this.address), h.dataPort), this.token) : null,
      (e: unknown) => {
        this.data = undefined; // ask again next time
        throw e;
      },
    );
    return this.data;
  }

  /** Connects the native data path now (best effort), so that the first transfer does not wait for it. */
  async warmDataPath(deadlineMs = 10_000): Promise<void> {
    const path = await this.dataPath();
    await path?.connect(deadlineMs);
  }

  private fetchPath(): Promise<DataClient | null> {
    this.fetchData ??= this.dataPath().then((d) => (d ? new DataClient(d.address, this.token) : null));
    return this.fetchData;
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

  /** A server-streaming call of the Host service (Read, Fetch). */
  private serverStream(method: 'read' | 'fetch', req: unknown, deadlineMs: number) {
    const fn = this.raw[method] as (
      r: unknown,
      md: grpc.Metadata,
      o: grpc.CallOptions,
    ) => grpc.ClientReadableStream<BlockMsg>;
    return fn.call(this.raw, req, this.md, { deadline: Date.now() + deadlineMs });
  }

  /** Streams `data` into the host's staging area at `offset`. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    const path = await this.dataPath();
    if (path) return this.viaData(path.write(offset, data, DEFAULT_DEADLINE_MS));
    return this.grpcWrite(offset, data);
  }

  private grpcWrite(offset: number, data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      const call = (
        this.raw.write as (
          md: grpc.Metadata,
          o: grpc.CallOptions,
          cb: (e: grpc.ServiceError | null) => void,
        ) => grpc.ClientWritableStream<BlockMsg>
      )(this.md, { deadline: Date.now() + DEFAULT_DEADLINE_MS }, (err) =>
        err ? reject(this.fail(err)) : resolve(),
      );
      writeChunks(call, data, offset).then(
        () => call.end(),
        (e: unknown) => {
          call.cancel();
          reject(this.fail(e));
        },
      );
    });
  }

  /** Reads `dst.byteLength` bytes of the staging area at `offset`. */
  async read(offset: number, dst: Uint8Array, chunkBytes = 0): Promise<void> {
    const path = await this.dataPath();
    if (path) return this.viaData(path.read(offset, dst, DEFAULT_DEADLINE_MS, chunkBytes));
    const call = this.serverStream(
      'read',
      { offset, bytes: dst.byteLength, chunkBytes },
      DEFAULT_DEADLINE_MS,
    );
    try {
      const got = await readChunks(call, dst, offset);
      if (got !== dst.byteLength) throw new Error(`read ${got} of ${dst.byteLength} bytes`);
    } catch (e) {
      throw this.fail(e);
    }
  }

  /**
   * Adds the host's f32 values at `offset` into `dst`: on the native data path as they arrive,
   * else read in pieces and added here.
   */
  async readAdd(offset: number, dst: Float32Array): Promise<void> {
    const path = await this.dataPath();
    if (path) return this.viaData(path.readAdd(offset, dst, DEFAULT_DEADLINE_MS));
    const piece = 4 << 20;
    const tmp = new Float32Array(Math.min(piece, dst.length));
    for (let o = 0; o < dst.length; o += piece) {
      const part = dst.subarray(o, o + piece);
      const theirs = tmp.subarray(0, part.length);
      await this.read(offset + o * 4, new Uint8Array(theirs.buffer, 0, theirs.byteLength));
      for (let i = 0; i < part.length; i++) part[i]! += theirs[i]!;
    }
  }

  /** Pulls all-gather block `tag` of host `fromHost` (its bytes known from the layout). */
  async fetch(tag: string, fromHost: number, dst: Uint8Array, deadlineMs: number): Promise<void> {
    const got = await this.fetchAny(tag, fromHost, deadlineMs);
    if (got.byteLength !== dst.byteLength)
      throw new HostCallError(
        `${this.label}: all-gather block ${tag}: got ${got.byteLength} of ${dst.byteLength} bytes`,
      );
    dst.set(got);
  }

  /** Pulls all-gather block `tag` of host `fromHost` whatever its size (asked before it is known). */
  async fetchAny(tag: string, fromHost: number, deadlineMs: number): Promise<Buffer> {
    const path = await this.fetchPath();
    if (path) return this.viaData(path.fetch(tag, fromHost, deadlineMs));
    const call = this.serverStream('fetch', { tag, fromHost }, deadlineMs);
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        const parts: Buffer[] = [];
        let next = 0;
        call.on('data', (m: BlockMsg) => {
          if (m.offset !== next) {
            call.cancel();
            reject(new Error(`all-gather block ${tag}: chunk at ${m.offset}, expected ${next}`));
            return;
          }
          parts.push(m.data);
          next += m.data.byteLength;
        });
        call.on('error', reject);
        call.on('end', () => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts)));
      });
    } catch (e) {
      throw this.fail(e);
    }
  }

  pullAdd(peer: number, rows: { offset: number; bytes: number }[]): Promise<{ bytes: number }> {
    return this.unary('pullAdd', { peer, rows });
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
  async leaderPort(session: string): Promise<number> {
    return (await this.unary<{ session: string }, { port: number }>('leaderPort', { session }, 10_000)).port;
  }

  closeSession(deadlineMs = 5000): Promise<void> {
    return this.unary('endSession', {}, deadlineMs);
  }

  close(): void {
    for (const d of [this.data, this.fetchData])
      void d?.then(
        (c) => c?.close(),
        () => undefined,
      );
    this.data = undefined;
    this.fetchData = undefined;
    this.raw.close();
  }
}
