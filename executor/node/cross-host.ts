// Multi-host mode inside an executor: the layer stack's all-gathers (and the model's
// all-reduces) go through a collective that spans hosts (native/src/executor/hosts_collective.h).
// The host's leader (local rank 0) exchanges the host's block with the other hosts' leaders
// natively (its endpoint, opened once per session by OpenHostLink; no JS between layers), or,
// when the supervisor names no leaders (TLS runs), hands it to its supervisor over a private unix
// socket (transport/leader-link.ts), which exchanges it over gRPC.
import { hostEndpoint, hostsCollective, type HostEndpoint } from '../../native/steps.js';
import type { CrossHost } from '../../transport/control.js';
import { LeaderLink } from '../../transport/leader-link.js';

let current: { run: string; peers: unknown; link?: LeaderLink } | undefined;
let endpoint: HostEndpoint | undefined;

/** Serves this leader's end of the native link between host leaders (one per session). */
export function openHostLink(address: string, token: string): { port: number } {
  endpoint ??= hostEndpoint(address, token || undefined);
  return { port: endpoint.port };
}

export function closeHostLink(): void {
  endpoint?.close();
  endpoint = undefined;
}

/** The collective for one multi-host run (made once per run, reused for its passes). */
export function crossHostPeers(communicator: unknown, hosts: CrossHost): unknown {
  if (current?.run === hosts.run) return current.peers;
  current?.link?.close();
  current = undefined;
  const base = { firstRank: hosts.firstRank, hostFirstRanks: hosts.hostFirstRanks };
  if (hosts.leaders?.length) {
    // Only the leader has (and needs) an endpoint; the other ranks exchange inside the host.
    const link = endpoint
      ? { endpoint: endpoint.endpoint, leaders: hosts.leaders, run: hosts.run }
      : undefined;
    current = {
      run: hosts.run,
      peers: hostsCollective(communicator, { ...base, ...(link ? { link } : {}) }),
    };
    return current.peers;
  }
  // Connected now, so that the first exchange of the run does not pay for it.
  const link = new LeaderLink(hosts.supervisor.replace(/^unix:/, ''));
  const exchange = (
    block: Buffer,
    hostBytes: number[],
    seq: number,
    done: (err: Error | null, data?: Uint8Array) => void,
  ): void => link.exchange({ tag: `${hosts.run}:${seq}`, data: block, hostBytes }, done);
  current = { run: hosts.run, link, peers: hostsCollective(communicator, { ...base, exchange }) };
  return current.peers;
}
