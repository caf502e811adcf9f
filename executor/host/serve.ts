// `redblue executor`: one host served to coordinators until a signal (or, when a launcher holds
// our stdin, until it closes). Checks that the address is safe to serve on with the credentials
// given, that a batch system started only one supervisor here, and shapes the topology (cpus,
// virtual nodes) before the supervisor starts.
import { readTopology, type MachineTopology } from '../../native/topology.js';
import { restrictToCpus, virtualize } from '../../native/virtual-nodes.js';
import { isLoopback, joinHostPort } from '../../common/address.js';
import { UsageError } from '../../common/errors.js';
import { launchPlace } from '../launch/launch-env.js';
import type { LinkTransport, TransportChoice } from '../../transport/control.js';
import {
  authFromOptions,
  chooseTransport,
  parseListen,
  tokenFromStdin,
  type SecurityOpts,
} from './options.js';
import { Supervisor } from './supervisor.js';

export interface ServeHostOptions extends SecurityOpts {
  listen: string;
  dataPort: number;
  virtualNodes?: number;
  exitOnEof?: boolean;
  cpus?: number[];
  /** How the leaders exchange (default auto). */
  transport?: TransportChoice;
  log: (line: string) => void;
}

export interface ServedHost {
  /** Where it serves (the port filled in when --listen asked for port 0). */
  address: string;
  port: number;
  /** Port of the native data path (the same credentials as `port`). */
  dataPort: number;
  topology: MachineTopology;
  /** "token", "TLS", "token + TLS" or "no authentication (loopback)". */
  authentication: string;
  /** How this host's leader exchanges with the others, and why. */
  transport: { transport: LinkTransport; reason: string };
}

export async function serveHost(o: ServeHostOptions): Promise<ServedHost> {
  const listen = parseListen(o.listen);
  const auth = authFromOptions(o);
  if (o.tokenStdin) {
    if (o.tokenFile) throw new UsageError('give the token either in --token-file or on stdin, not both');
    auth.token = await tokenFromStdin();
    if (auth.token.length < 16) throw new UsageError('the token on stdin must be at least 16 characters');
  }
  if (!isLoopback(listen.host) && !auth.token && !auth.tls) {
    throw new UsageError(
      `--listen ${o.listen} is reachable from other hosts: give --token-file F or --tls-cert/--tls-key/--tls-ca`,
    );
  }
  const place = launchPlace();
  if (place && place.localRank > 0) {
    throw new UsageError(
      `${place.source}: this is task ${place.localRank} on its host; run one \`redblue executor\` per host (it starts one executor per NUMA node)`,
    );
  }
  let topology = readTopology();
  if (o.cpus) {
    try {
      topology = restrictToCpus(topology, o.cpus);
    } catch (e) {
      throw new UsageError(`--cpus: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (o.virtualNodes !== undefined) topology = virtualize(topology, o.virtualNodes);
  const transport = chooseTransport(o.transport ?? 'auto');
  const sup = new Supervisor({
    listen: joinHostPort(listen.host, listen.port),
    transport: transport.transport,
    dataPort: o.dataPort,
    topology,
    auth,
    ...(place ? { place } : {}),
    log: o.log,
  });
  const port = await sup.start();
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    void sup.stop().finally(() => process.exit(code));
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  if (o.exitOnEof) {
    process.stdin.on('end', () => stop(0));
    process.stdin.on('close', () => stop(0));
    process.stdin.resume();
  }
  return {
    address: joinHostPort(listen.host, port),
    port,
    dataPort: sup.dataPort,
    topology,
    authentication:
      [auth.token ? 'token' : '', auth.tls ? 'TLS' : ''].filter(Boolean).join(' + ') ||
      'no authentication (loopback)',
    transport,
  };
}
