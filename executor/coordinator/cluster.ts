// The machines of a run as the coordinator's runners see them: hosts, each taking the same
// requests (proto/hosts.proto's Host service), with ranks numbered host by host, node by node.
// `redblue launch` reaches each host's supervisor over gRPC (RemoteCluster, HostClient);
// `redblue run` is the one-host case, this box driven in process (InProcessHost). gemm-run.ts and
// layer-run.ts are written once against this.
import type { Cluster } from '../../planner/types.js';
import type {
  HostGemmRequest,
  HostPlaceRequest,
  HostRunRequest,
  PassTimingsMsg,
  PlacedRank,
  RankTimings,
} from '../../transport/host-client.js';
import type { GemmReply, LinkTransport } from '../../transport/control.js';
import { InProcessHost } from '../host/in-process.js';
import type { LocalCluster } from '../host/local-cluster.js';
import type { MachineTopology } from '../../native/topology.js';
import { machineCluster } from '../../planner/machine-cluster.js';
import type { RemoteCluster } from './remote-cluster.js';

/** One host of a run: its staging area and the steps on its executors. */
export interface RunHost {
  /**
   * A fresh, zeroed staging area of `bytes` (the host's previous one goes); on a host serving
   * UCX, the area's descriptor that its peers' pullAdd reads it by.
   */
  stage(bytes: number): Promise<{ ucxArea?: Buffer }>;
  fill(offset: number, count: number, seed: number, stream: number): Promise<void>;
  write(offset: number, data: Uint8Array): Promise<void>;
  read(offset: number, dst: Uint8Array): Promise<void>;
  /**
   * Adds host `peer`'s f32 values of these byte ranges into this host's (cross-host reduction),
   * over UCX when `peerUcxArea` (the peer's stage reply) is given and this host serves UCX.
   */
  pullAdd(
    peer: number,
    rows: { offset: number; bytes: number }[],
    peerUcxArea?: Buffer,
  ): Promise<{ bytes: number; link: LinkTransport }>;
  /** In process, the executors' replies whole (schedule included); over gRPC, as the proto carries them. */
  gemm(req: HostGemmRequest): Promise<{ ranks: (RankTimings & Partial<GemmReply>)[] }>;
  placeLayers(req: HostPlaceRequest): Promise<{ ranks: PlacedRank[] }>;
  runLayers(req: HostRunRequest): Promise<{ ranks: (PassTimingsMsg & { rows?: number[] })[] }>;
}

export interface RunCluster {
  readonly hosts: RunHost[];
  /** The first global rank of every host, then the world size. */
  readonly hostFirstRanks: number[];
  readonly size: number;
  /** Runs `work`, failing fast and naming the executor or host if one is lost meanwhile. */
  guard<T>(work: Promise<T>): Promise<T>;
  /** The planner's cluster of these machines. */
  plannerCluster(): Cluster;
}

/** This box as a run's one host (one per LocalCluster, so its staging area is reused). */
export interface OneHost extends RunCluster {
  readonly host: InProcessHost;
}

/** This box as the planner's cluster. */
export function localCluster(topo: MachineTopology): Cluster {
  return machineCluster([{ name: topo.hostname, nodes: topo.nodes }], 'local');
}

const oneHosts = new WeakMap<LocalCluster, OneHost>();

export function oneHost(cluster: LocalCluster): OneHost {
  let c = oneHosts.get(cluster);
  if (!c) {
    const host = new InProcessHost(cluster);
    c = {
      host,
      hosts: [host],
      hostFirstRanks: [0, cluster.size],
      size: cluster.size,
      guard: (work) => cluster.guard(work),
      plannerCluster: () => localCluster(cluster.topology),
    };
    oneHosts.set(cluster, c);
  }
  return c;
}

/** The executors of this box or the hosts of a launch, as a run's machines. */
export function runCluster(c: LocalCluster | RemoteCluster | RunCluster): RunCluster {
  return 'hosts' in c ? c : oneHost(c);
}
