// One host in multi-host mode (`redblue executor --listen HOST:PORT`): serves proto/hosts.proto
// on TCP, starts the host's node executors (one per NUMA node, on private unix sockets, as
// `redblue run` does) while a coordinator holds a session, owns the host's staging area, and
// exchanges blocks with the other hosts' supervisors. Every call is authenticated and validated;
// the only memory a caller can reach is the staging area, by offsets checked against its size.
import * as grpc from '@grpc/grpc-js';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import type { Server as NetServer } from 'node:net';
import { serveLeaderLink } from '../../transport/leader-link.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import type { MachineTopology } from '../../native/topology.js';
import type { SharedArea } from '../../transport/shared-area.js';
import { DataServer } from '../../transport/native-data.js';
import { hostOf, joinHostPort } from '../../common/address.js';
import type { CrossHost } from '../../transport/control.js';
import {
  callMessage,
  CHUNK_BYTES,
  checkToken,
  encodeBlock,
  hostsServices,
  RpcError,
  serverCredentials,
  serverOptions,
  widenServerWindows,
  widenSessionWindows,
  type Auth,
  type BlockMsg,
} from '../../transport/grpc-data.js';
import {
  HostClient,
  type HostGemmRequest,
  type HostPlaceRequest,
  type HostForwardRequest,
  type HostLoadModelRequest,
  type HostRunRequest,
} from '../../transport/host-client.js';
import { LocalCluster } from './local-cluster.js';
import { executorAddon } from '../../native/steps.js';
import { cRowsOf, partialBytesOf } from '../node/gemm-layout.js';
import { brickFromWire, rangeToWire, type WireBrick } from '../../transport/bricks.js';
import { byteRange, int, invalid, list, MAX_DIM, oneOf, range, tag as checkTag } from './host-validate.js';
import type { LaunchPlace } from '../launch/launch-env.js';

/** Our version (package.json sits above dist/ when compiled, next to the sources otherwise). */
function version(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // try the next place
    }
  }
  return 'unknown';
}

export interface SupervisorOptions {
  listen: string;
  /** Port of the native data path on the listen address (0 or absent: a free one). */
  dataPort?: number;
  topology: MachineTopology;
  auth: Auth;
  place?: LaunchPlace;
  log?: (line: string) => void;
}

interface Session {
  id: string;
  hostIndex: number;
  peers: HostClient[];
  cluster: LocalCluster;
  call: grpc.ServerWritableStream<unknown, unknown>;
  /** The port of the leader executor's link to the other hosts' leaders (multi-host, native path). */
  leaderPort?: number;
  /** Every host's leader link address, in host order (asked of the peers once per session). */
  leaders?: Promise<string[]>;
  /**
   * Exchanges between host leaders that went through our JS (the leader link and Host.Fetch, as
   * TLS runs do): none when the leaders exchange natively. Logged when the session ends.
   */
  relayed: number;
}

/** A block put out for the peer leaders of one all-gather. */
interface Outbox {
  data?: Buffer;
  /** Called with the block, or with an error when the session ends first. */
  waiters: ((b: Buffer | Error) => void)[];
  fetched: number;
}

const MAX_OUTBOX = 64;
const FETCH_WAIT_MS = 120_000;

export class Supervisor {
  private server: grpc.Server | undefined;
  private leaderServer: NetServer | undefined;
  private readonly dir: string;
  private session: Session | undefined;
  private starting = false;
  private area: SharedArea | undefined;
  /** The native data path (Read and Write of the staging area); none when TLS is in use. */
  private data: DataServer | undefined;
  /** Areas native code is writing into, and how many calls (see pinArea). */
  private readonly pinned = new Map<SharedArea, number>();
  private readonly outbox = new Map<string, Outbox>();
  /** Blocks asked of the peers ahead of time: tag → host → the block. */
  private readonly prefetched = new Map<string, Map<number, Promise<Buffer>>>();
  private readonly log: (line: string) => void;
  boundPort = 0;
  /** Port of the native data path (0: none, as under TLS). */
  get dataPort(): number {
    return this.data?.port ?? 0;
  }

  constructor(private readonly o: SupervisorOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'redblue-host-'));
    this.log = o.log ?? (() => undefined);
  }

  get leaderPath(): string {
    return join(this.dir, 'leader.sock');
  }

  async start(): Promise<number> {
    try {
      // Bulk data on the addon's gRPC C++ core, same address, a port of its own, the same token.
      // With TLS the data stays on the Host service (the native path has no TLS).
      if (!this.o.auth.tls)
        this.data = new DataServer(hostOf(this.o.listen), this.o.auth.token, this.o.dataPort ?? 0);
      const server = new grpc.Server(serverOptions());
      this.server = server;
      widenServerWindows(server);
      server.addService(hostsServices().Host.service, this.handlers());
      this.boundPort = await new Promise<number>((resolve, reject) =>
        server.bindAsync(this.o.listen, serverCredentials(this.o.auth), (err, port) =>
          err ? reject(err) : resolve(port),
        ),
      );
      widenSessionWindows(server);
      // The leader executor's exchanges come in on a private socket (our own 0700 directory).
      this.leaderServer = await serveLeaderLink(this.leaderPath, (req) => this.exchange(req));
      return this.boundPort;
    } catch (e) {
      await this.stop(); // nothing half-started keeps the process alive
      throw e;
    }
  }

  /**
   * Replaces the staging area (the data path maps the file itself, so ours may go at once, unless
   * native code is still writing into it: see `pinArea`).
   */
  private setArea(area: SharedArea | undefined): void {
    this.data?.setArea(area?.name);
    const old = this.area;
    this.area = area;
    if (old && old !== area && !this.pinned.has(old)) old.close();
  }

  /**
   * Runs `f` on the area with the area kept mapped until `f` settles, even if a Stage replaces it
   * meanwhile: native code (PullAdd's readAdd) writes into it from another thread.
   */
  private async pinArea<T>(area: SharedArea, f: () => Promise<T>): Promise<T> {
    this.pinned.set(area, (this.pinned.get(area) ?? 0) + 1);
    try {
      return await f();
    } finally {
      const left = this.pinned.get(area)! - 1;
      if (left > 0) this.pinned.set(area, left);
      else {
        this.pinned.delete(area);
        if (area !== this.area) area.close();
      }
    }
  }

  private need(): Session {
    if (!this.session) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'no session: call Open first');
    return this.session;
  }

  private needArea(): SharedArea {
    this.need();
    if (!this.area) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'no staging area: call Stage first');
    return this.area;
  }

  private get nodes(): number {
    return this.o.topology.nodes.length;
  }

  /** Wraps a handler: authentication first, then errors as gRPC statuses. */
  private unary<Req, Res>(fn: (req: Req) => Promise<Res> | Res) {
    return (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      Promise.resolve()
        .then(() => {
          checkToken(call.metadata, this.o.auth.token);
          return fn(call.request);
        })
        .then(
          (res) => cb(null, res),
          (e: unknown) =>
            cb({ code: e instanceof RpcError ? e.code : grpc.status.INTERNAL, details: callMessage(e) }),
        );
    };
  }

  private static fail(call: { emit(ev: 'error', e: unknown): unknown }, e: unknown): void {
    call.emit('error', {
      code: e instanceof RpcError ? e.code : grpc.status.INTERNAL,
      details: callMessage(e),
    });
  }

  private handlers(): grpc.UntypedServiceImplementation {
    return {
      Hello: this.unary(() => ({
        hostname: this.o.topology.hostname,
        version: version(),
        nodes: this.o.topology.nodes.map((n) => ({
          cpus: n.cpus,
          memoryBytes: n.memoryBytes,
          physicalNode: n.physicalNode,
        })),
        virtualNodes: this.o.topology.virtualNodes !== undefined,
        pid: process.pid,
        dataPort: this.dataPort,
        launchRank: this.o.place?.hostIndex ?? -1,
        launchSize: this.o.place?.hostCount ?? -1,
      })),
      Open: (
        call: grpc.ServerWritableStream<{ session: string; hostIndex: number; peers: string[] }, unknown>,
      ) => {
        this.open(call).catch((e: unknown) => Supervisor.fail(call, e));
      },
      Stage: this.unary(async (req: { bytes: number }) => {
        const s = this.need();
        const limit = Math.floor(this.o.topology.nodes.reduce((a, n) => a + n.memoryBytes, 0) * 0.75);
        const bytes = int('bytes', req.bytes, 64, Math.max(64, limit));
        this.setArea(undefined);
        this.setArea(await s.cluster.stage('h', bytes));
        return { bytes };
      }),
      Fill: this.unary((req: { offset: number; count: number; seed: number; stream: number }) => {
        const area = this.needArea();
        const count = int('count', req.count, 0, area.buffer.byteLength / 4);
        byteRange('fill', req.offset, count * 4, area.buffer.byteLength, 4);
        int('seed', req.seed, 0, Number.MAX_SAFE_INTEGER);
        int('stream', req.stream, 0, 0xffffffff);
        executorAddon().fillUniform(area.buffer, req.offset, count, req.seed, req.stream);
        return {};
      }),
      Write: (call: grpc.ServerReadableStream<BlockMsg, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        let bytes = 0;
        let failed = false;
        const bad = (e: unknown) => {
          if (failed) return;
          failed = true;
          cb({ code: e instanceof RpcError ? e.code : grpc.status.INTERNAL, details: callMessage(e) });
        };
        try {
          checkToken(call.metadata, this.o.auth.token);
          this.needArea();
        } catch (e) {
          bad(e);
          return;
        }
        call.on('data', (m: BlockMsg) => {
          if (failed) return;
          try {
            const area = this.needArea();
            byteRange('write', m.offset, m.data.byteLength, area.buffer.byteLength);
            new Uint8Array(area.buffer, m.offset, m.data.byteLength).set(m.data);
            bytes += m.data.byteLength;
          } catch (e) {
            bad(e);
          }
        });
        call.on('end', () => {
          if (!failed) cb(null, { bytes });
        });
        call.on('error', bad);
      },
      Read: (
        call: grpc.ServerWritableStream<{ offset: number; bytes: number; chunkBytes: number }, Buffer>,
      ) => {
        this.read(call).catch((e: unknown) => Supervisor.fail(call, e));
      },
      PullAdd: this.unary((req: { peer: number; rows: { offset: number; bytes: number }[] }) =>
        this.pullAdd(req),
      ),
      Gemm: this.unary((req: HostGemmRequest) => this.gemm(req)),
      PlaceLayers: this.unary((req: HostPlaceRequest) => this.placeLayers(req)),
      RunLayers: this.unary((req: HostRunRequest) => this.runLayers(req)),
      LoadModel: this.unary((req: HostLoadModelRequest) => this.loadModel(req)),
      LoadProgress: this.unary(() => this.loadProgress()),
      Forward: this.unary((req: HostForwardRequest) => this.forward(req)),
      Fetch: (call: grpc.ServerWritableStream<{ tag: string; fromHost: number }, Buffer>) => {
        this.fetch(call).catch((e: unknown) => Supervisor.fail(call, e));
      },
      EndSession: this.unary(async () => {
        await this.endSession('closed by the coordinator');
        return {};
      }),
      LeaderPort: this.unary((req: { session: string }) => {
        const s = this.need();
        if (req.session !== s.id)
          throw invalid(`this host serves session ${s.id}, not ${String(req.session)}`);
        if (!s.leaderPort)
          throw new RpcError(
            grpc.status.FAILED_PRECONDITION,
            'this host has no leader link (TLS, or one host)',
          );
        return { port: s.leaderPort };
      }),
    };
  }

  private async open(
    call: grpc.ServerWritableStream<{ session: string; hostIndex: number; peers: string[] }, unknown>,
  ) {
    checkToken(call.metadata, this.o.auth.token);
    const req = call.request;
    if (this.session || this.starting) {
      throw new RpcError(
        grpc.status.FAILED_PRECONDITION,
        `this host is busy with session ${this.session?.id ?? '(starting)'}`,
      );
    }
    if (typeof req.session !== 'string' || !/^[\w.:-]{1,64}$/.test(req.session))
      throw invalid('session must be a short name');
    const peers = list<string>('peers', req.peers, 4096);
    const hostIndex = int('hostIndex', req.hostIndex, 0, Math.max(0, peers.length - 1));
    for (const p of peers)
      if (typeof p !== 'string' || p.length > 300) throw invalid('peers must be host:port addresses');
    this.starting = true;
    // The coordinator may go away while the executors start: remember it, then end at once.
    let gone = false;
    const mine: { session?: Session } = {};
    const lost = () => {
      gone = true;
      if (mine.session && this.session === mine.session) void this.endSession('the coordinator went away');
    };
    call.on('cancelled', lost);
    call.on('close', lost);
    call.on('error', lost);
    let cluster: LocalCluster;
    try {
      cluster = await LocalCluster.start({ topology: this.o.topology });
    } finally {
      this.starting = false;
    }
    const session: Session = {
      id: req.session,
      hostIndex,
      peers: peers.map((addr, i) =>
        i === hostIndex ? undefined : new HostClient(addr, `host ${i} (${addr})`, this.o.auth),
      ) as HostClient[],
      cluster,
      call: call as grpc.ServerWritableStream<unknown, unknown>,
      relayed: 0,
    };
    // Across hosts on the native path, the leader executor serves its end of the link between
    // host leaders (the per-layer exchange never passes through JS); under TLS it goes through us.
    if (peers.length > 1 && this.data) {
      try {
        session.leaderPort = (
          await cluster.clients[0]!.openHostLink({
            address: joinHostPort(hostOf(this.o.listen), 0),
            token: this.o.auth.token ?? '',
          })
        ).port;
      } catch (e) {
        await cluster.stop();
        throw e;
      }
    }
    this.session = session;
    mine.session = session;
    // Connect to the peers now: the first exchange of a run should not pay for it.
    for (const p of session.peers) {
      p?.raw.waitForReady(Date.now() + 10_000, () => undefined);
      p?.warmDataPath().catch(() => undefined); // a peer that is not up yet is found out by the run
    }
    this.log(
      `session ${session.id}: host ${hostIndex} of ${peers.length}, ${this.nodes} executor(s) started`,
    );
    // From now on a lost coordinator (stream cancelled, keepalive failed) ends the session.
    if (gone || call.cancelled) {
      await this.endSession('the coordinator went away while the executors started');
      return;
    }
    call.write({ state: 'ready', pids: cluster.pids(), readGbps: cluster.hellos.map((h) => h.readGbps) });
  }

  /** Stops the session's executors and frees the staging area. Idempotent. */
  async endSession(why: string): Promise<void> {
    const s = this.session;
    if (!s) return;
    this.session = undefined;
    this.log(`session ${s.id}: ending (${why}); ${s.relayed} exchange(s) between host leaders relayed here`);
    const ended = new RpcError(grpc.status.ABORTED, `session ${s.id} ended (${why})`);
    for (const [, box] of this.outbox) for (const w of box.waiters.splice(0)) w(ended);
    this.outbox.clear();
    this.data?.clearMailbox(`session ${s.id} ended (${why})`);
    this.prefetched.clear();
    this.setArea(undefined);
    for (const p of s.peers) p?.close();
    await s.cluster.stop();
    try {
      s.call.end();
    } catch {
      // already gone
    }
  }

  private async read(
    call: grpc.ServerWritableStream<{ offset: number; bytes: number; chunkBytes: number }, Buffer>,
  ) {
    checkToken(call.metadata, this.o.auth.token);
    const area = this.needArea();
    const { offset, bytes } = call.request;
    byteRange('read', offset, bytes, area.buffer.byteLength);
    const chunk = call.request.chunkBytes
      ? int('chunkBytes', call.request.chunkBytes, 4096, 4 * CHUNK_BYTES)
      : CHUNK_BYTES;
    await streamOut(call, new Uint8Array(area.buffer, offset, bytes), offset, chunk);
  }

  private async fetch(call: grpc.ServerWritableStream<{ tag: string; fromHost: number }, Buffer>) {
    checkToken(call.metadata, this.o.auth.token);
    const s = this.need();
    s.relayed++;
    const t = checkTag(call.request.tag);
    int('fromHost', call.request.fromHost, 0, s.peers.length - 1);
    const box = this.box(t);
    const data =
      box.data ??
      (await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new RpcError(grpc.status.DEADLINE_EXCEEDED, `block ${t} never came`)),
          FETCH_WAIT_MS,
        );
        box.waiters.push((b) => {
          clearTimeout(timer);
          if (b instanceof Error) reject(b);
          else resolve(b);
        });
      }));
    await streamOut(call, data, 0, CHUNK_BYTES);
    box.fetched++;
    if (box.fetched >= s.peers.length - 1) this.outbox.delete(t);
  }

  private box(t: string): Outbox {
    let box = this.outbox.get(t);
    if (!box) {
      if (this.outbox.size >= MAX_OUTBOX)
        throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, 'too many pending exchanges');
      box = { waiters: [], fetched: 0 };
      this.outbox.set(t, box);
    }
    return box;
  }

  /**
   * Every host's leader link address, in host order: the peers' ports asked of them (their
   * sessions are open before any run), at the addresses the coordinator gave for them.
   */
  private leaders(s: Session): Promise<string[]> {
    s.leaders ??= Promise.all(
      s.peers.map(async (p, h) =>
        h === s.hostIndex
          ? joinHostPort(hostOf(this.o.listen), s.leaderPort!)
          : joinHostPort(hostOf(p.address), await p.leaderPort(s.id)),
      ),
    );
    s.leaders.catch(() => {
      s.leaders = undefined; // asked again by the next run
    });
    return s.leaders;
  }

  /** The leader's all-gather: our block out for the peers, theirs pulled in, in host order. */
  private async exchange(req: { tag: string; data: Buffer; hostBytes: number[] }): Promise<Buffer> {
    const s = this.need();
    s.relayed++;
    const t = checkTag(req.tag);
    const hostBytes = list<number>('hostBytes', req.hostBytes, 4096);
    if (hostBytes.length !== s.peers.length)
      throw invalid(`hostBytes lists ${hostBytes.length} hosts, the session has ${s.peers.length}`);
    if (req.data.byteLength !== hostBytes[s.hostIndex])
      throw invalid('the block does not match its size in hostBytes');
    this.forgetOtherRuns(t);
    // Peers fetch our block over their data path when they have one (the native mailbox), else
    // with Host.Fetch (grpc-js, under TLS). Only blocks with bytes are fetched.
    const readers = hostBytes[s.hostIndex]! > 0 ? s.peers.length - 1 : 0;
    if (this.data) this.data.post(t, req.data, readers);
    else {
      const box = this.box(t);
      box.data = req.data;
      for (const w of box.waiters.splice(0)) w(req.data);
    }
    const total = hostBytes.reduce((a, b) => a + b, 0);
    const out = Buffer.allocUnsafe(total);
    let off = 0;
    const pulls: Promise<void>[] = [];
    const asked = this.prefetched.get(t);
    this.prefetched.delete(t);
    hostBytes.forEach((b, h) => {
      const dst = out.subarray(off, off + b);
      if (h === s.hostIndex) dst.set(req.data);
      else if (b > 0) {
        const early = asked?.get(h);
        pulls.push(
          early
            ? early.then((got) => {
                if (got.byteLength !== b)
                  throw invalid(`block ${t} of host ${h} has ${got.byteLength} bytes, not ${b}`);
                dst.set(got);
              })
            : s.peers[h]!.fetch(t, s.hostIndex, dst, FETCH_WAIT_MS),
        );
      }
      off += b;
    });
    await Promise.all(pulls);
    // Peers fetch our block only when it has bytes; the last fetch removes it, or nobody will.
    if (s.peers.length === 1 || hostBytes[s.hostIndex] === 0) this.outbox.delete(t);
    this.prefetch(s, t, hostBytes);
    return out;
  }

  /**
   * Asks the peers for the next block of the run now, so that the request already waits at each
   * peer when its block arrives (half a round trip less per layer). Only from peers that sent a
   * block this time: a run's blocks keep their sizes from layer to layer.
   */
  private prefetch(s: Session, t: string, hostBytes: number[]): void {
    const m = /^(.*):(\d+)$/.exec(t);
    if (!m) return;
    const next = `${m[1]}:${Number(m[2]) + 1}`;
    const asks = new Map<number, Promise<Buffer>>();
    hostBytes.forEach((b, h) => {
      if (h === s.hostIndex || b === 0) return;
      const p = s.peers[h]!.fetchAny(next, s.hostIndex, FETCH_WAIT_MS);
      p.catch(() => undefined); // a run's last prefetch is never answered: it ends with the session
      asks.set(h, p);
    });
    if (asks.size) this.prefetched.set(next, asks);
  }

  /** A new run: blocks and prefetches of earlier runs of the session will never be used. */
  private forgetOtherRuns(t: string): void {
    const run = t.slice(0, t.lastIndexOf(':'));
    this.data?.forgetOtherRuns(run);
    const stale = new RpcError(grpc.status.ABORTED, `run ${run} replaced an earlier run`);
    for (const [tag, box] of this.outbox) {
      if (tag.slice(0, tag.lastIndexOf(':')) === run) continue;
      for (const w of box.waiters.splice(0)) w(stale);
      this.outbox.delete(tag);
    }
    for (const tag of this.prefetched.keys()) {
      if (tag.slice(0, tag.lastIndexOf(':')) !== run) this.prefetched.delete(tag);
    }
  }

  private async pullAdd(req: { peer: number; rows: { offset: number; bytes: number }[] }) {
    const s = this.need();
    const area = this.needArea();
    const peer = int('peer', req.peer, 0, s.peers.length - 1);
    if (peer === s.hostIndex) throw invalid('a host cannot pull from itself');
    const rows = list<{ offset: number; bytes: number }>('rows', req.rows, 1 << 20);
    for (const r of rows) byteRange('rows', r.offset, r.bytes, area.buffer.byteLength, 4);
    let total = 0;
    await this.pinArea(area, async () => {
      for (const r of rows) {
        await s.peers[peer]!.readAdd(r.offset, new Float32Array(area.buffer, r.offset, r.bytes / 4));
        total += r.bytes;
      }
    });
    return { bytes: total };
  }

  private async gemm(req: HostGemmRequest) {
    const s = this.need();
    const area = this.needArea();
    const m = int('m', req.m, 1, MAX_DIM);
    const n = int('n', req.n, 1, MAX_DIM);
    const k = int('k', req.k, 1, MAX_DIM);
    const total = area.buffer.byteLength;
    byteRange('A', req.aOffset, m * k * 4, total, 4);
    byteRange('B', req.bOffset, k * n * 4, total, 4);
    byteRange('C', req.cOffset, m * n * 4, total, 4);
    const perNode = list<{ node: number; bricks: unknown[] }>('bricks', req.bricks, this.nodes);
    const bricks = Array.from({ length: this.nodes }, () => [] as WireBrick[]);
    for (const e of perNode) {
      const node = int('node', e.node, 0, this.nodes - 1);
      for (const b of list<{ m: unknown; n: unknown; k: unknown }>('bricks', e.bricks, 4096)) {
        const br = { m: range('brick.m', b.m, m), n: range('brick.n', b.n, n), k: range('brick.k', b.k, k) };
        bricks[node]!.push(br);
      }
    }
    const partialBytes = partialBytesOf(
      bricks.map((b) => b.map(brickFromWire)),
      k,
    );
    byteRange('partial C', req.partialOffset, partialBytes, total, 4);
    const allBricks = bricks.map((b, rank) => ({ rank, bricks: b }));
    const P = this.nodes;
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, rank) =>
          c.gemm({
            m,
            n,
            k,
            bricks: bricks[rank]!,
            allBricks,
            aOffset: req.aOffset,
            bOffset: req.bOffset,
            cOffset: req.cOffset,
            partialOffset: req.partialOffset,
            cRows: rangeToWire(cRowsOf(rank, P, m)),
          }),
        ),
      ),
    );
    return { ranks: replies };
  }

  private async placeLayers(req: HostPlaceRequest) {
    const s = this.need();
    const dtype = oneOf('dtype', req.dtype, ['q4_0', 'q8_0', 'f32'] as const);
    const n = int('n', req.n, 1, MAX_DIM);
    const k = int('k', req.k, 1, MAX_DIM);
    if (dtype !== 'f32' && k % 32 !== 0) throw invalid(`k = ${k} must be a multiple of 32 for ${dtype}`);
    const layers = int('layers', req.layers, 1, 1 << 16);
    const count = int('count', req.count, 1, layers);
    int('seed', req.seed, 0, Number.MAX_SAFE_INTEGER);
    const placement = list<string>('placement', req.placement, this.nodes);
    if (placement.length !== this.nodes)
      throw invalid(`placement must name one mode per node (${this.nodes})`);
    placement.forEach((p) => oneOf('placement', p, ['mirror', 'shard'] as const));
    const rowsPerRank = list<number>('rowsPerRank', req.rowsPerRank, 1 << 16).map((r) =>
      int('rowsPerRank', r, 0, n),
    );
    if (rowsPerRank.reduce((a, b) => a + b, 0) !== n) throw invalid(`rowsPerRank must add up to n = ${n}`);
    const first = int('firstRank', req.firstRank, 0, Math.max(0, rowsPerRank.length - this.nodes));
    if (first + this.nodes > rowsPerRank.length) throw invalid("this host's ranks lie outside rowsPerRank");
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, i) => {
          const g = first + i;
          const lo = rowsPerRank.slice(0, g).reduce((a, b) => a + b, 0);
          return c.placeLayers({
            dtype,
            n,
            k,
            layers,
            seed: req.seed,
            placement: placement[i]!,
            rows: { lo, hi: lo + rowsPerRank[g]! },
            count,
            rowsPerRank,
            fresh: req.fresh,
            fromStaging: false,
            sourceOffset: 0,
          });
        }),
      ),
    );
    return { ranks: replies };
  }

  private async runLayers(req: HostRunRequest) {
    const s = this.need();
    const m = int('m', req.m, 1, 1 << 16);
    const iters = int('iters', req.iters, 1, 1 << 20);
    int('seed', req.seed, 0, Number.MAX_SAFE_INTEGER);
    const { first, hosts } = await this.hostRanks(s, req);
    if (req.collect) {
      const area = this.needArea();
      int('yOffset', req.yOffset, 0, area.buffer.byteLength);
      int('xOffset', req.xOffset, 0, area.buffer.byteLength);
    }
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, i) =>
          c.runLayers({
            m,
            iters,
            seed: req.seed,
            yOffset: req.yOffset,
            xOffset: req.xOffset,
            collect: req.collect && first + i === 0,
            ...(hosts ? { hosts } : {}),
          }),
        ),
      ),
    );
    return { ranks: replies };
  }

  /**
   * The ranks of a multi-host step, checked against the session: this host's first rank, and
   * what its executors need to reach the other hosts (none when the session has one host).
   */
  private async hostRanks(
    s: Session,
    req: { world: number; firstRank: number; hostFirstRanks: number[]; run: string },
  ): Promise<{ first: number; hosts?: CrossHost }> {
    const world = int('world', req.world, 1, 1 << 16);
    const hostFirst = list<number>('hostFirstRanks', req.hostFirstRanks, 4097).map((r) =>
      int('hostFirstRanks', r, 0, world),
    );
    if (
      hostFirst.length !== s.peers.length + 1 ||
      hostFirst[0] !== 0 ||
      hostFirst[hostFirst.length - 1] !== world
    )
      throw invalid(
        'hostFirstRanks must list the first rank of every host of the session, then the world size',
      );
    const first = hostFirst[s.hostIndex]!;
    if (
      int('firstRank', req.firstRank, 0, world) !== first ||
      hostFirst[s.hostIndex + 1]! - first !== this.nodes
    )
      throw invalid(`this host has ranks [${first}, ${first + this.nodes}), not as the request says`);
    if (typeof req.run !== 'string' || !/^[\w.-]{1,64}$/.test(req.run))
      throw invalid('run must be a short name');
    if (s.peers.length === 1) return { first };
    // The leaders exchange natively when they can (their link addresses); else through us (TLS).
    const leaders = s.leaderPort ? await this.leaders(s) : undefined;
    return {
      first,
      hosts: {
        firstRank: first,
        hostFirstRanks: hostFirst,
        run: req.run,
        supervisor: this.leaderPath,
        ...(leaders ? { leaders } : {}),
      },
    };
  }

  /**
   * Each executor of the host loads its split of the model. The file is this host's: a path
   * that is not readable here fails at once, naming the host and the path, before any executor
   * starts reading. (An authenticated caller may name any file; only logits ever leave.)
   */
  private async loadModel(req: HostLoadModelRequest) {
    const s = this.need();
    if (typeof req.path !== 'string' || req.path.length === 0 || req.path.length > 4096)
      throw invalid('path must name the GGUF file');
    const path = resolve(req.path);
    try {
      accessSync(path, fsConstants.R_OK);
    } catch (e) {
      throw new RpcError(
        grpc.status.NOT_FOUND,
        `the model ${path} is not readable on ${this.o.topology.hostname} (${(e as NodeJS.ErrnoException).code ?? callMessage(e)}): copy it there or give its path on the hosts with --host-model`,
      );
    }
    const ctx = int('ctx', req.ctx, 1, 1 << 24);
    const world = int('world', req.world, 1, 1 << 16);
    const first = int('firstRank', req.firstRank, 0, world - this.nodes);
    const ranks = list<HostLoadModelRequest['ranks'][number]>('ranks', req.ranks, this.nodes);
    if (ranks.length !== this.nodes) throw invalid(`ranks must give one split per node (${this.nodes})`);
    const span = (name: string, r: unknown) => {
      const x = r as Partial<{ lo: number; hi: number }> | null;
      if (!x || typeof x !== 'object') throw invalid(`${name} is missing`);
      const lo = int(`${name}.lo`, x.lo, 0, MAX_DIM);
      const hi = int(`${name}.hi`, x.hi, lo, MAX_DIM);
      return { lo, hi };
    };
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, i) => {
          const r = ranks[i]!;
          const vocabPerRank = list<number>('vocabPerRank', r.vocabPerRank, world).map((v) =>
            int('vocabPerRank', v, 0, MAX_DIM),
          );
          if (vocabPerRank.length !== world) throw invalid(`vocabPerRank must list all ${world} ranks`);
          return c.loadModel({
            path,
            ctx,
            kvHeads: span('kvHeads', r.kvHeads),
            ff: span('ff', r.ff),
            vocab: span('vocab', r.vocab),
            vocabPerRank,
            rank: first + i,
            world,
          });
        }),
      ),
    );
    return { ranks: replies };
  }

  private async loadProgress() {
    const s = this.need();
    return {
      ranks: await s.cluster.guard(Promise.all(s.cluster.clients.map((c) => c.loadProgress({}, 5000)))),
    };
  }

  /** One step of the model on every executor of the host; global rank 0 sends the logits. */
  private async forward(req: HostForwardRequest) {
    const s = this.need();
    const { first, hosts } = await this.hostRanks(s, req);
    const tokens = list<number>('tokens', req.tokens, 1 << 16).map((t) => int('token', t, 0, 0x7fffffff));
    if (tokens.length === 0) throw invalid('tokens must not be empty');
    const pos = int('pos', req.pos, 0, 1 << 24);
    const logits = oneOf('logits', req.logits, ['last', 'all', 'none'] as const);
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, i) =>
          c.forward({
            tokens,
            pos,
            logits,
            sendLogits: first + i === 0,
            ...(hosts ? { hosts } : {}),
          }),
        ),
      ),
    );
    return { ranks: replies };
  }

  async stop(): Promise<void> {
    await this.endSession('the supervisor is stopping');
    this.server?.forceShutdown();
    this.data?.close();
    this.data = undefined;
    this.leaderServer?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Streams `src` in chunks, honouring back-pressure. */
async function streamOut(
  call: grpc.ServerWritableStream<unknown, Buffer>,
  src: Uint8Array,
  base: number,
  chunk: number,
): Promise<void> {
  for (let off = 0; off < src.byteLength; off += chunk) {
    if (call.cancelled) return;
    const end = Math.min(src.byteLength, off + chunk);
    // Encoded (copied) now: the area may be replaced while the chunk waits in a buffer.
    if (!call.write(encodeBlock(base + off, src.subarray(off, end))))
      await new Promise<void>((r) => call.once('drain', r));
  }
  call.end();
}
