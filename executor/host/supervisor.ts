// One host in multi-host mode (`redblue executor --listen HOST:PORT`): serves proto/hosts.proto
// on TCP to a coordinator and only controls. Its parts: the session (session.ts: the node
// executors started for one coordinator, the peers, the leaders' native link), the staging area
// and its native data path (staging.ts: bytes move there under the same token and TLS
// certificate), and step dispatch (steps.ts). Between hosts the leader executors exchange
// natively, never through here. Every call is authenticated and validated; the only memory a
// caller can reach is the staging area, by offsets checked against its size.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { MachineTopology } from '../../native/topology.js';
import { availableOnNode } from '../../native/available-memory.js';
import { hostOf } from '../../common/address.js';
import {
  callMessage,
  checkToken,
  hostsServices,
  RpcError,
  serverCredentials,
  serverOptions,
  widenServerWindows,
  widenSessionWindows,
  type Auth,
} from '../../transport/grpc-data.js';
import type {
  HostForwardRequest,
  HostGemmRequest,
  HostLoadModelRequest,
  HostPlaceRequest,
  HostRunRequest,
} from '../../transport/host-client.js';
import { int, invalid, list } from './host-validate.js';
import type { LaunchPlace } from '../launch/launch-env.js';
import { HostSession } from './session.js';
import { ExecutorDiedError } from './process-group.js';
import type { LinkTransport } from '../../transport/control.js';
import { HostStaging } from './staging.js';
import { HostSteps } from './steps.js';

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
  /** How the leaders of a multi-host session exchange (default grpc). */
  transport?: LinkTransport;
}

type OpenCall = grpc.ServerWritableStream<{ session: string; hostIndex: number; peers: string[] }, unknown>;

/**
 * The status a failed call answers with: its own, ABORTED when one of this host's executors died
 * (the coordinator then knows the reason at once, not after waiting to see whether the host
 * itself was lost), else INTERNAL.
 */
function statusOf(e: unknown): grpc.status {
  if (e instanceof RpcError) return e.code;
  return e instanceof ExecutorDiedError ? grpc.status.ABORTED : grpc.status.INTERNAL;
}

export class Supervisor {
  private server: grpc.Server | undefined;
  private session: HostSession | undefined;
  private starting = false;
  private staging: HostStaging | undefined;
  private readonly steps: HostSteps;
  private readonly log: (line: string) => void;
  boundPort = 0;
  /** Port of the native data path (0 until started). */
  get dataPort(): number {
    return this.staging?.dataPort ?? 0;
  }

  constructor(private readonly o: SupervisorOptions) {
    this.log = o.log ?? (() => undefined);
    this.steps = new HostSteps(o.topology);
  }

  async start(): Promise<number> {
    try {
      // Bulk data on the addon's gRPC C++ core: same address, a port of its own, the same token
      // and TLS certificate as the Host service.
      this.staging = new HostStaging(
        hostOf(this.o.listen),
        this.o.auth,
        this.o.dataPort ?? 0,
        this.o.transport === 'ucx',
      );
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
      return this.boundPort;
    } catch (e) {
      await this.stop(); // nothing half-started keeps the process alive
      throw e;
    }
  }

  private need(): HostSession {
    if (!this.session) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'no session: call Open first');
    return this.session;
  }

  /** The session and its staging area (FAILED_PRECONDITION when either is missing). */
  private needStaging(): HostStaging {
    this.need();
    return this.staging!;
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
          (e: unknown) => cb({ code: statusOf(e), details: callMessage(e) }),
        );
    };
  }

  private static fail(call: { emit(ev: 'error', e: unknown): unknown }, e: unknown): void {
    call.emit('error', {
      code: statusOf(e),
      details: callMessage(e),
    });
  }

  private handlers(): grpc.UntypedServiceImplementation {
    const memory = this.o.topology.nodes.reduce((a, n) => a + n.memoryBytes, 0);
    return {
      Hello: this.unary(() => ({
        hostname: this.o.topology.hostname,
        version: version(),
        nodes: this.o.topology.nodes.map((n) => {
          const a = availableOnNode(n.physicalNode);
          return {
            cpus: n.cpus,
            memoryBytes: n.memoryBytes,
            physicalNode: n.physicalNode,
            availableBytes: a?.bytes ?? 0,
            hugeFreeBytes: a?.hugeFreeBytes ?? 0,
            hugePageBytes: a?.hugePageBytes ?? 0,
          };
        }),
        virtualNodes: this.o.topology.virtualNodes !== undefined,
        pid: process.pid,
        dataPort: this.dataPort,
        launchRank: this.o.place?.hostIndex ?? -1,
        launchSize: this.o.place?.hostCount ?? -1,
      })),
      Open: (call: OpenCall) => {
        this.open(call).catch((e: unknown) => Supervisor.fail(call, e));
      },
      Stage: this.unary((req: { bytes: number }) => this.needStaging().stage(this.need(), req, memory)),
      Fill: this.unary((req: { offset: number; count: number; seed: number; stream: number }) => {
        this.needStaging().fill(req);
        return {};
      }),
      PullAdd: this.unary(
        (req: { peer: number; rows: { offset: number; bytes: number }[]; peerUcxArea?: Buffer }) =>
          this.needStaging().pullAdd(this.need(), req),
      ),
      Gemm: this.unary((req: HostGemmRequest) =>
        this.steps.gemm(this.need(), this.needStaging().need(), req),
      ),
      PlaceLayers: this.unary((req: HostPlaceRequest) =>
        this.steps.placeLayers(this.need(), () => this.needStaging().need(), req),
      ),
      RunLayers: this.unary((req: HostRunRequest) =>
        this.steps.runLayers(this.need(), () => this.needStaging().need(), req),
      ),
      LoadModel: this.unary((req: HostLoadModelRequest) => this.steps.loadModel(this.need(), req)),
      LoadProgress: this.unary(() => this.steps.loadProgress(this.need())),
      Forward: this.unary((req: HostForwardRequest) => this.steps.forward(this.need(), req)),
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
            'this host has no leader link (its session has one host)',
          );
        return { port: s.leaderPort, ...(s.ucxAddress ? { ucxAddress: s.ucxAddress } : {}) };
      }),
    };
  }

  /** A coordinator's session: one at a time; the stream's end (or loss) ends it. */
  private async open(call: OpenCall) {
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
    const mine: { session?: HostSession } = {};
    const lost = () => {
      gone = true;
      if (mine.session && this.session === mine.session) void this.endSession('the coordinator went away');
    };
    call.on('cancelled', lost);
    call.on('close', lost);
    call.on('error', lost);
    let session: HostSession;
    try {
      session = await HostSession.start({
        id: req.session,
        hostIndex,
        peers,
        call: call as grpc.ServerWritableStream<unknown, unknown>,
        topology: this.o.topology,
        listen: this.o.listen,
        auth: this.o.auth,
        ...(this.o.transport ? { transport: this.o.transport } : {}),
      });
    } finally {
      this.starting = false;
    }
    this.session = session;
    mine.session = session;
    this.log(
      `session ${session.id}: host ${hostIndex} of ${peers.length}, ${this.o.topology.nodes.length} executor(s) started`,
    );
    // From now on a lost coordinator (stream cancelled, keepalive failed) ends the session.
    if (gone || call.cancelled) {
      await this.endSession('the coordinator went away while the executors started');
      return;
    }
    const cluster = session.cluster;
    call.write({ state: 'ready', pids: cluster.pids(), readGbps: cluster.hellos.map((h) => h.readGbps) });
  }

  /** Stops the session's executors and frees the staging area. Idempotent. */
  async endSession(why: string): Promise<void> {
    const s = this.session;
    if (!s) return;
    this.session = undefined;
    this.log(`session ${s.id}: ending (${why})`);
    this.staging?.replace(undefined);
    await s.stop();
  }

  async stop(): Promise<void> {
    await this.endSession('the supervisor is stopping');
    this.server?.forceShutdown();
    this.staging?.close();
    this.staging = undefined;
  }
}
