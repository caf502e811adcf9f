// Multi-host mode inside an executor: the layer stack's all-gathers (and the model's
// all-reduces) go through a collective that spans hosts (native/src/executor/hosts_collective.h).
// The host's leader (local rank 0) exchanges the host's block with the other hosts' leaders
// natively (its endpoint, opened once per session by OpenHostLink, with the cluster's token
// and/or TLS certificate): no JS between layers, no supervisor in between.
import { hostEndpoint, hostsCollective, type HostEndpoint } from '../../native/steps.js';
import type {
  CrossHost,
  LinkTransport,
  OpenHostLinkReply,
  OpenHostLinkRequest,
} from '../../transport/control.js';

let current: { run: string; peers: unknown } | undefined;
let endpoint: HostEndpoint | undefined;

/**
 * Serves this leader's end of the native link between host leaders (one per session), with the
 * cluster's token and/or TLS certificate as the supervisor's own.
 */
export function openHostLink(req: OpenHostLinkRequest): OpenHostLinkReply {
  const tls =
    req.tlsCert?.length && req.tlsKey?.length && req.tlsCa?.length
      ? { tls: { cert: req.tlsCert, key: req.tlsKey, ca: req.tlsCa } }
      : {};
  endpoint ??= hostEndpoint(
    req.address,
    { ...(req.token ? { token: req.token } : {}), ...tls },
    req.ucx === true,
  );
  return { port: endpoint.port, ...(endpoint.ucxAddress ? { ucxAddress: endpoint.ucxAddress } : {}) };
}

export function closeHostLink(): void {
  endpoint?.close();
  endpoint = undefined;
}

/** How this executor exchanges with the other leaders in a run across hosts (none: not a leader). */
export function leaderLink(hosts: CrossHost): LinkTransport | undefined {
  if (!endpoint) return undefined;
  return usesUcx(hosts) ? 'ucx' : 'grpc';
}

/** Over UCX when every leader gave its worker's address (and this one has a worker). */
function usesUcx(hosts: CrossHost): boolean {
  return (
    !!endpoint?.ucxAddress &&
    hosts.ucxLeaders?.length === hosts.leaders.length &&
    hosts.ucxLeaders.every((a) => a.length > 0)
  );
}

/** The collective for one multi-host run (made once per run, reused for its passes). */
export function crossHostPeers(communicator: unknown, hosts: CrossHost): unknown {
  if (current?.run === hosts.run) return current.peers;
  current = undefined;
  if (!hosts.leaders?.length)
    throw new Error(
      "a run across hosts needs every host leader's address (a supervisor of another version?)",
    );
  // Only the leader has (and needs) an endpoint; the other ranks exchange inside the host.
  const ucx = usesUcx(hosts);
  const link = endpoint
    ? {
        endpoint: endpoint.endpoint,
        leaders: hosts.leaders,
        run: hosts.run,
        ...(ucx ? { ucxLeaders: hosts.ucxLeaders! } : {}),
      }
    : undefined;
  current = {
    run: hosts.run,
    peers: hostsCollective(communicator, {
      firstRank: hosts.firstRank,
      hostFirstRanks: hosts.hostFirstRanks,
      ...(link ? { link } : {}),
    }),
  };
  return current.peers;
}
