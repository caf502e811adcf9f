// Multi-host mode inside an executor: the layer stack's all-gathers go through a collective that
// spans hosts (native/src/executor/hosts_collective.h). The host's leader (local rank 0) hands
// the host's block to its supervisor over a private unix socket; the supervisor exchanges it
// with the other hosts' supervisors over gRPC and returns every host's block.
import * as grpc from '@grpc/grpc-js';
import { loadAddon } from '../native/addon.js';
import type { CrossHost } from '../transport/control.js';
import { callMessage, hostsServices, WINDOW_BYTES } from '../transport/grpc-data.js';

interface HostsAddon {
  hostsCollective(
    communicator: unknown,
    options: {
      firstRank: number;
      hostFirstRanks: number[];
      exchange: (
        block: Buffer,
        hostBytes: number[],
        seq: number,
        done: (err: Error | null, data?: Uint8Array) => void,
      ) => void;
      timeoutMs?: number;
    },
  ): { collective: unknown; rank: number; size: number };
}

/** The private socket is trusted (it lives in the supervisor's own 0700 directory). */
const LEADER_MAX_MESSAGE = 1 << 30;

let current: { run: string; peers: unknown; client: grpc.Client } | undefined;

/** The collective for one multi-host run (made once per run, reused for its passes). */
export function crossHostPeers(communicator: unknown, hosts: CrossHost): unknown {
  if (current?.run === hosts.run) return current.peers;
  current?.client.close();
  // Connected now, so that the first exchange of the run does not pay for it.
  const client = new (hostsServices().Leader)(hosts.supervisor, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': LEADER_MAX_MESSAGE,
    'grpc.max_send_message_length': LEADER_MAX_MESSAGE,
    // Blocks of a prompt pass are megabytes: the default 64 KiB window would throttle them.
    'grpc-node.flow_control_window': WINDOW_BYTES,
  });
  client.waitForReady(Date.now() + 10_000, () => undefined);
  const state: { run: string; peers: unknown; client: grpc.Client } = {
    run: hosts.run,
    peers: undefined,
    client,
  };
  const exchange = (
    block: Buffer,
    hostBytes: number[],
    seq: number,
    done: (err: Error | null, data?: Uint8Array) => void,
  ): void => {
    const fn = (state.client as unknown as Record<string, (...a: unknown[]) => void>).exchange!.bind(
      state.client,
    );
    fn(
      { tag: `${hosts.run}:${seq}`, data: block, hostBytes },
      { deadline: Date.now() + 120_000 },
      (err: grpc.ServiceError | null, reply: { data: Buffer }) => {
        if (err) done(new Error(callMessage(err)));
        else done(null, reply.data);
      },
    );
  };
  state.peers = loadAddon<HostsAddon>().hostsCollective(communicator, {
    firstRank: hosts.firstRank,
    hostFirstRanks: hosts.hostFirstRanks,
    exchange,
  });
  current = state;
  return state.peers;
}
