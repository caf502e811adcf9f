// What a host supervisor is started with (`redblue executor` flags, parsed and checked here so the
// CLI only wires them): the address to serve, the data port, the cpus to use, and its credentials.
import { readFileSync } from 'node:fs';
import { rdmaDevices } from '../../native/rdma.js';
import { createInterface } from 'node:readline';
import type { Auth } from '../../transport/grpc-data.js';
import { isTransportChoice, type LinkTransport, type TransportChoice } from '../../transport/control.js';
import { UsageError } from '../../common/errors.js';

/** "0-3,8" → [0, 1, 2, 3, 8]. */
export function parseCpuList(v: string): number[] {
  const out: number[] = [];
  for (const part of v.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) throw new UsageError(`--cpus must be a list like 0-3,8, got '${v}'`);
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    // Past 2^53, c++ no longer changes c: the loop below would never end.
    if (!Number.isSafeInteger(hi) || hi < lo || hi - lo > 4096)
      throw new UsageError(`--cpus: bad range '${part}'`);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** "HOST:PORT" or "[V6]:PORT"; port 0 picks a free port. */
export function parseListen(v: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535)
    throw new UsageError(`--listen must be HOST:PORT (e.g. 127.0.0.1:7070), got '${v}'`);
  return { host: m[1] ?? m[2]!, port };
}

/** --data-port: 0..65535 (0 picks a free port). */
export function parseDataPort(v: string): number {
  const port = Number(v);
  if (!/^\d{1,5}$/.test(v.trim()) || port > 65535)
    throw new UsageError(`--data-port must be a port number (0-65535; 0 picks a free one), got '${v}'`);
  return port;
}

export interface SecurityOpts {
  tokenFile?: string;
  tokenStdin?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

function readSecret(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

export function tokenFromFile(path: string): string {
  const token = readSecret(path, '--token-file').toString('utf8').trim();
  if (token.length < 16 || /\s/.test(token)) {
    throw new UsageError(`the token in ${path} must be at least 16 characters without spaces`);
  }
  return token;
}

/** Credentials from flags (token or TLS files); the token from stdin is read by the caller. */
export function authFromOptions(o: SecurityOpts): Auth {
  const auth: Auth = {};
  if (o.tokenFile) auth.token = tokenFromFile(o.tokenFile);
  const tls = [o.tlsCert, o.tlsKey, o.tlsCa];
  if (tls.some((x) => x) && !tls.every((x) => x)) {
    throw new UsageError('TLS needs all three of --tls-cert, --tls-key and --tls-ca');
  }
  if (o.tlsCert && o.tlsKey && o.tlsCa) {
    auth.tls = {
      cert: readSecret(o.tlsCert, '--tls-cert'),
      key: readSecret(o.tlsKey, '--tls-key'),
      ca: readSecret(o.tlsCa, '--tls-ca'),
    };
  }
  return auth;
}

/** The first line of stdin (a launcher passes the token this way, never on a command line). */
export function tokenFromStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', (l) => {
      resolve(l.trim()); // before close(), which emits 'close' at once
      rl.close();
    });
    rl.once('close', () => reject(new UsageError('--token-stdin: stdin closed before a token line')));
  });
}

/** `--transport`: how host leaders exchange (auto chooses at start-up, see `chooseTransport`). */
export function parseTransport(v: string): TransportChoice {
  if (isTransportChoice(v)) return v;
  throw new UsageError(`--transport ${v}: give auto, ucx or grpc`);
}

/** `auto` becomes UCX where an RDMA device exists, else gRPC; the reason says which and why. */
export function chooseTransport(asked: TransportChoice): { transport: LinkTransport; reason: string } {
  if (asked !== 'auto') return { transport: asked, reason: `--transport ${asked}` };
  const devices = rdmaDevices().map((d) => d.name);
  return devices.length
    ? { transport: 'ucx', reason: `auto: RDMA device(s) ${devices.join(', ')}` }
    : { transport: 'grpc', reason: 'auto: no RDMA device (/sys/class/infiniband is empty)' };
}
