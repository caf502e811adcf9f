// The coordinator's view of several hosts (multi-host mode): one supervisor per host, reached over
// gRPC. Each host reports its own topology, which becomes the planner's cluster; a session stream
// per host keeps its executors alive and tells us at once when a host or its link is lost.
import { randomBytes } from 'node:crypto';
import type { Cluster } from '../../planner/types.js';
import type { ClusterOverrides } from '../../planner/cluster.js';
import { machineCluster } from '../../planner/machine-cluster.js';
import { settledWithin } from '../../common/wait.js';
import type { Auth } from '../../transport/grpc-data.js';
import * as grpc from '@grpc/grpc-js';
import { HostCallError, HostClient, type HostHello } from '../../transport/host-client.js';

export interface RemoteClusterOptions {
  addresses: string[];
  auth: Auth;
  /** How long to wait for every host to answer. */
  readyTimeoutMs?: number;
  onProgress?: (ready: number, total: number, what: string) => void;
  /** false: only ask the hosts for their topology (a dry run); no executors start. */
  openSessions?: boolean;
}

export class HostLostError extends Error {
  override name = 'HostLostError';
  constructor(
    message: string,
    /** The host's index in the cluster, and its address. */
    readonly host?: number,
    readonly address?: string,
  ) {
    super(message);
  }
}

/** Codes a live host answers with: the call reached it and it refused (nothing was lost). */
const REFUSALS = new Set<grpc.status>([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.OUT_OF_RANGE,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.UNIMPLEMENTED,
  // One of its executors died: the host says which.
  grpc.status.ABORTED,
]);
const answered = (err: unknown) =>
  err instanceof HostCallError && err.code !== undefined && REFUSALS.has(err.code);

/** A host's step that failed only because another host's leader went away mid-exchange. */
const PEER_LOSS = /the exchange with host \d+'s leader failed/;

/**
 * Promise.all over the hosts' calls of one step, except that a host that failed only because it
 * lost a peer leader (the leaders exchange directly, so it hears of it first) does not hide why:
 * the peer's own failure (its executor died, …) is reported when it comes within 3 s.
 */
export async function allHosts<T>(calls: Promise<T>[]): Promise<T[]> {
  try {
    return await Promise.all(calls);
  } catch (first) {
    if (!(first instanceof Error) || !PEER_LOSS.test(first.message)) throw first;
    const settled = (await settledWithin(Promise.allSettled(calls), 3000)) as
      PromiseSettledResult<T>[] | undefined;
    const cause = settled?.find(
      (s): s is PromiseRejectedResult =>
        s.status === 'rejected' && !(s.reason instanceof Error && PEER_LOSS.test(s.reason.message)),
    );
    throw cause ? cause.reason : first;
  }
}

export class RemoteCluster {
  readonly session = `c${process.pid}-${randomBytes(3).toString('hex')}`;
  hosts: HostClient[] = [];
  hellos: HostHello[] = [];
  private sessions: { readGbps: number[]; cancel(): void }[] = [];
  private failure: Error | undefined;
  private readonly waiters: ((e: Error) => void)[] = [];
  private stopped = false;
  private readonly lost = new Set<number>();

  private constructor() {}

  /** Every rank's measured read bandwidth (GB/s), in global rank order, once sessions are open. */
  get speeds(): number[] {
    return this.sessions.flatMap((s) => s.readGbps);
  }

  static async connect(o: RemoteClusterOptions): Promise<RemoteCluster> {
    const rc = new RemoteCluster();
    const timeout = o.readyTimeoutMs ?? 30_000;
    try {
      let clients = o.addresses.map((a, i) => new HostClient(a, `host ${i} (${a})`, o.auth));
      let ready = 0;
      o.onProgress?.(0, clients.length, 'connecting');
      const hellos = await Promise.all(
        clients.map(async (c) => {
          await c.waitForReady(timeout);
          const h = await c.hello(timeout);
          o.onProgress?.(++ready, clients.length, 'hosts answered');
          return h;
        }),
      );
      // Hosts placed by a batch system say where they belong; keep the given order otherwise.
      if (hellos.every((h) => h.launchRank >= 0)) {
        const order = hellos.map((h, i) => ({ h, i })).sort((a, b) => a.h.launchRank - b.h.launchRank);
        clients = order.map(({ i }, j) => {
          const c = clients[i]!;
          return Object.assign(c, { label: `host ${j} (${c.address})` });
        });
        rc.hellos = order.map(({ h }) => h);
      } else rc.hellos = hellos;
      rc.hosts = clients;
      if (o.openSessions === false) return rc;
      const peers = clients.map((c) => c.address);
      let started = 0;
      rc.sessions = await Promise.all(
        clients.map(async (c, i) => {
          const s = await c.open({ session: rc.session, hostIndex: i, peers }, (err) => rc.fail(err, i));
          o.onProgress?.(++started, clients.length, 'hosts started their executors');
          return s;
        }),
      );
      return rc;
    } catch (e) {
      await rc.stop();
      throw e;
    }
  }

  private fail(err: HostCallError, host: number): void {
    this.lost.add(host);
    if (this.failure || this.stopped) return;
    this.failure = new HostLostError(`${err.message}`, host, this.hosts[host]?.address);
    for (const w of this.waiters.splice(0)) w(this.failure);
  }

  /** Ranks of each host: first global rank of every host, then the world size. */
  get hostFirstRanks(): number[] {
    const out = [0];
    for (const h of this.hellos) out.push(out[out.length - 1]! + h.nodes.length);
    return out;
  }

  get size(): number {
    return this.hostFirstRanks[this.hellos.length]!;
  }

  /** The planner's cluster, from what the hosts reported. */
  plannerCluster(o: ClusterOverrides = {}): Cluster {
    return machineCluster(
      this.hellos.map((h, i) => ({ name: `${h.hostname}#${i}`, nodes: h.nodes })),
      'hosts',
      o,
    );
  }

  /** Runs `work`, failing fast with the host's name if a host or its link is lost meanwhile. */
  async guard<T>(work: Promise<T>): Promise<T> {
    let waiter: ((e: Error) => void) | undefined;
    const lost = new Promise<never>((_, reject) => {
      if (this.failure) reject(this.failure);
      else this.waiters.push((waiter = reject));
    });
    lost.catch(() => undefined);
    try {
      return await Promise.race([work, lost]);
    } catch (err) {
      // A call that failed because its host went away: say which host, once the session notices.
      // A host that answered with a refusal (bad request, its UCX not usable, …) is not lost:
      // its answer is the reason, at once.
      if (!(err instanceof HostLostError) && !answered(err)) {
        const settled = await settledWithin(lost, 3000);
        if (settled instanceof HostLostError) throw settled;
      }
      throw err;
    } finally {
      // Each guarded step would otherwise leave its waiter behind (a leak per token).
      const i = waiter ? this.waiters.indexOf(waiter) : -1;
      if (i >= 0) this.waiters.splice(i, 1);
    }
  }

  /** Ends every session (each host stops its executors) and closes the connections. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A lost host ends its session itself (its keepalives to us fail); don't wait for it.
    await Promise.allSettled(this.hosts.filter((_, i) => !this.lost.has(i)).map((h) => h.closeSession(3000)));
    for (const s of this.sessions) s.cancel();
    for (const h of this.hosts) h.close();
  }
}
