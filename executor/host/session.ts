// One coordinator's session on this host: the node executors it started, clients of the peer
// hosts, and (across hosts) the leader executor's native link to the other hosts' leaders. The
// supervisor holds at most one; ending it stops the executors.
import * as grpc from '@grpc/grpc-js';
import { hostOf, joinHostPort } from '../../common/address.js';
import type { CrossHost, LinkTransport } from '../../transport/control.js';
import type { Auth } from '../../transport/grpc-data.js';
import { HostClient } from '../../transport/host-client.js';
import type { MachineTopology } from '../../native/topology.js';
import { LocalCluster } from './local-cluster.js';
import type { StepRanks } from './steps.js';
import { int, invalid, list } from './host-validate.js';

export class HostSession {
  /** The port of the leader executor's link to the other hosts' leaders (multi-host sessions). */
  leaderPort?: number;
  /** With `--transport ucx`: the leader executor's UCX worker address. */
  ucxAddress?: Buffer;
  /**
   * Every host's leader link address, in host order, and every leader's UCX worker address when
   * all have one (asked of the peers once per session).
   */
  private leaderAddresses?: Promise<{ leaders: string[]; ucxLeaders?: Buffer[] }>;

  private constructor(
    readonly id: string,
    readonly hostIndex: number,
    /** Clients of the other hosts, by host index (this host's entry is unused). */
    readonly peers: HostClient[],
    readonly cluster: LocalCluster,
    readonly call: grpc.ServerWritableStream<unknown, unknown>,
    private readonly listenHost: string,
    private readonly nodes: number,
  ) {}

  /**
   * Starts the host's executors and, across hosts, the leader's end of the link between host
   * leaders with our credentials (the per-layer exchange runs natively, leader to leader, never
   * through JS); then connects to the peers, so that a run's first exchange does not pay for it.
   */
  static async start(o: {
    id: string;
    hostIndex: number;
    peers: string[];
    call: grpc.ServerWritableStream<unknown, unknown>;
    topology: MachineTopology;
    listen: string;
    auth: Auth;
    /** The leaders' exchange: over gRPC (the native data path) or UCX. */
    transport?: LinkTransport;
  }): Promise<HostSession> {
    const cluster = await LocalCluster.start({ topology: o.topology });
    const peers = o.peers.map((addr, i) =>
      i === o.hostIndex ? undefined : new HostClient(addr, `host ${i} (${addr})`, o.auth),
    ) as HostClient[];
    const s = new HostSession(
      o.id,
      o.hostIndex,
      peers,
      cluster,
      o.call,
      hostOf(o.listen),
      o.topology.nodes.length,
    );
    if (o.peers.length > 1) {
      const tls = o.auth.tls;
      try {
        // Guarded as every step is: an executor killed while the session starts (a loaded
        // machine takes seconds to start one) is named with its death, not as a dropped call.
        const link = await cluster.guard(
          cluster.clients[0]!.openHostLink({
            address: joinHostPort(s.listenHost, 0),
            token: o.auth.token ?? '',
            ...(tls ? { tlsCert: tls.cert, tlsKey: tls.key, tlsCa: tls.ca } : {}),
            ...(o.transport === 'ucx' ? { ucx: true } : {}),
          }),
        );
        s.leaderPort = link.port;
        if (link.ucxAddress?.length) s.ucxAddress = link.ucxAddress;
      } catch (e) {
        for (const p of peers) p?.close();
        await cluster.stop();
        throw e;
      }
    }
    for (const p of peers) {
      p?.raw.waitForReady(Date.now() + 10_000, () => undefined);
      p?.warmDataPath().catch(() => undefined); // a peer that is not up yet is found out by the run
    }
    return s;
  }

  /**
   * Every host's leader link address, in host order: the peers' ports asked of them (their
   * sessions are open before any run), at the addresses the coordinator gave for them.
   */
  private leaders(): Promise<{ leaders: string[]; ucxLeaders?: Buffer[] }> {
    this.leaderAddresses ??= Promise.all(
      this.peers.map(async (p, h) => {
        if (h === this.hostIndex)
          return { address: joinHostPort(this.listenHost, this.leaderPort!), ucx: this.ucxAddress };
        const l = await p.leaderPort(this.id);
        return { address: joinHostPort(hostOf(p.address), l.port), ucx: l.ucxAddress };
      }),
    ).then((all) => {
      const leaders = all.map((a) => a.address);
      // UCX only when every leader has a worker: hosts started with different transports meet
      // on gRPC.
      const ucx = all.every((a) => a.ucx && a.ucx.length > 0);
      return ucx ? { leaders, ucxLeaders: all.map((a) => a.ucx!) } : { leaders };
    });
    this.leaderAddresses.catch(() => {
      this.leaderAddresses = undefined; // asked again by the next run
    });
    return this.leaderAddresses;
  }

  /**
   * The ranks of a multi-host step, checked against the session: this host's first rank, and
   * what its executors need to reach the other hosts (none when the session has one host).
   */
  async hostRanks(req: StepRanks): Promise<{ first: number; hosts?: CrossHost }> {
    const world = int('world', req.world, 1, 1 << 16);
    const hostFirst = list<number>('hostFirstRanks', req.hostFirstRanks, 4097).map((r) =>
      int('hostFirstRanks', r, 0, world),
    );
    if (
      hostFirst.length !== this.peers.length + 1 ||
      hostFirst[0] !== 0 ||
      hostFirst[hostFirst.length - 1] !== world
    )
      throw invalid(
        'hostFirstRanks must list the first rank of every host of the session, then the world size',
      );
    const first = hostFirst[this.hostIndex]!;
    if (
      int('firstRank', req.firstRank, 0, world) !== first ||
      hostFirst[this.hostIndex + 1]! - first !== this.nodes
    )
      throw invalid(`this host has ranks [${first}, ${first + this.nodes}), not as the request says`);
    if (typeof req.run !== 'string' || !/^[\w.-]{1,64}$/.test(req.run))
      throw invalid('run must be a short name');
    if (this.peers.length === 1) return { first };
    // The leaders exchange natively, at their link addresses.
    return {
      first,
      hosts: { firstRank: first, hostFirstRanks: hostFirst, run: req.run, ...(await this.leaders()) },
    };
  }

  /** Stops the executors, closes the peer clients and ends the coordinator's stream. */
  async stop(): Promise<void> {
    for (const p of this.peers) p?.close();
    await this.cluster.stop();
    try {
      this.call.end();
    } catch {
      // already gone
    }
  }
}
