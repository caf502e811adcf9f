// Multi-host mode inside an executor: the layer stack's all-gathers go through a collective that
// spans hosts (native/src/executor/hosts_collective.h). The host's leader (local rank 0) hands
// the host's block to its supervisor over a private unix socket (transport/leader-link.ts); the
// supervisor exchanges it with the other hosts' supervisors over gRPC and returns every host's
// block.
import { hostsCollective } from '../../native/steps.js';
import type { CrossHost } from '../../transport/control.js';
import { LeaderLink } from '../../transport/leader-link.js';

let current: { run: string; peers: unknown; link: LeaderLink } | undefined;

/** The collective for one multi-host run (made once per run, reused for its passes). */
export function crossHostPeers(communicator: unknown, hosts: CrossHost): unknown {
  if (current?.run === hosts.run) return current.peers;
  current?.link.close();
  // Connected now, so that the first exchange of the run does not pay for it.
  const link = new LeaderLink(hosts.supervisor.replace(/^unix:/, ''));
  const state: { run: string; peers: unknown; link: LeaderLink } = { run: hosts.run, peers: undefined, link };
  const exchange = (
    block: Buffer,
    hostBytes: number[],
    seq: number,
    done: (err: Error | null, data?: Uint8Array) => void,
  ): void => link.exchange({ tag: `${hosts.run}:${seq}`, data: block, hostBytes }, done);
  state.peers = hostsCollective(communicator, {
    firstRank: hosts.firstRank,
    hostFirstRanks: hosts.hostFirstRanks,
    exchange,
  });
  current = state;
  return state.peers;
}
