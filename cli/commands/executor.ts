// `redblue executor --listen HOST:PORT`: serves this host to coordinators on other hosts
// (multi-host mode). One supervisor per host; it starts one executor per (virtual) NUMA node
// while a coordinator holds a session.
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { readTopology, type MachineTopology } from '../../native/topology.js';
import { virtualize } from '../../native/virtual-nodes.js';
import { Supervisor } from '../../executor/host/supervisor.js';
import { launchPlace } from '../../executor/launch/launch-env.js';
import type { Auth } from '../../transport/grpc-data.js';
import { parsePositiveInt, UsageError } from '../errors.js';

/** "0-3,8" → [0, 1, 2, 3, 8]. */
export function parseCpuList(v: string): number[] {
  const out: number[] = [];
  for (const part of v.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) throw new UsageError(`--cpus must be a list like 0-3,8, got '${v}'`);
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    if (hi < lo || hi - lo > 4096) throw new UsageError(`--cpus: bad range '${part}'`);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}

/** The host as if it had only these cpus: nodes keep the listed ones, empty nodes go. */
export function restrictCpus(t: MachineTopology, cpus: number[]): MachineTopology {
  const keep = new Set(cpus);
  const unknown = cpus.filter((c) => !t.nodes.some((n) => n.cpus.includes(c)));
  if (unknown.length) throw new UsageError(`--cpus: this host has no cpu ${unknown.join(', ')}`);
  const nodes = t.nodes
    .map((n) => ({ ...n, cpus: n.cpus.filter((c) => keep.has(c)) }))
    .filter((n) => n.cpus.length > 0);
  return { ...t, nodes, hardwareThreads: cpus.length };
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

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function formatAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

interface SecurityOpts {
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

export function addSecurityOptions(cmd: Command): Command {
  return cmd
    .option('--token-file <F>', 'shared secret: every call must carry the token in this file')
    .option('--tls-cert <F>', "TLS: this host's certificate (PEM), signed by the cluster CA")
    .option('--tls-key <F>', 'TLS: its private key (PEM)')
    .option(
      '--tls-ca <F>',
      'TLS: the cluster CA certificate (PEM); peers must present certificates it signed',
    );
}

/** The first line of stdin (a launcher passes the token this way, never on a command line). */
function firstLine(): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', (l) => {
      resolve(l.trim()); // before close(), which emits 'close' at once
      rl.close();
    });
    rl.once('close', () => reject(new UsageError('--token-stdin: stdin closed before a token line')));
  });
}

export function registerExecutor(program: Command): void {
  const cmd = program
    .command('executor')
    .description('serve this host to a coordinator on another host (multi-host mode)')
    .option('--listen <HOST:PORT>', 'address to serve on', '127.0.0.1:7070')
    .option(
      '--data-port <PORT>',
      'port of the native data path (bulk data) on the same address; 0 (the default) picks a free one, which Hello tells clients',
      parseDataPort,
      0,
    )
    .option('--virtual-nodes <N>', 'split the cpus into N pretend NUMA nodes', (v) =>
      parsePositiveInt(v, '--virtual-nodes'),
    )
    .option('--cpus <LIST>', 'use only these cpus of the host (e.g. 0-3,8)', parseCpuList)
    .option('--token-stdin', 'read the token from the first line of stdin (used by `redblue launch`)')
    .option('--exit-on-eof', "stop when stdin closes (the launcher's ssh connection went away)");
  addSecurityOptions(cmd).action(
    async (
      o: SecurityOpts & {
        listen: string;
        dataPort: number;
        virtualNodes?: number;
        exitOnEof?: boolean;
        cpus?: number[];
      },
    ) => {
      const listen = parseListen(o.listen);
      const auth = authFromOptions(o);
      if (o.tokenStdin) {
        if (o.tokenFile) throw new UsageError('give the token either in --token-file or on stdin, not both');
        auth.token = await firstLine();
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
      if (o.cpus) topology = restrictCpus(topology, o.cpus);
      if (o.virtualNodes !== undefined) topology = virtualize(topology, o.virtualNodes);
      const sup = new Supervisor({
        listen: formatAddress(listen),
        dataPort: o.dataPort,
        topology,
        auth,
        ...(place ? { place } : {}),
        log: (l) => process.stderr.write(`redblue executor: ${l}\n`),
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
      const how =
        [auth.token ? 'token' : '', auth.tls ? 'TLS' : ''].filter(Boolean).join(' + ') ||
        'no authentication (loopback)';
      // Launchers wait for this line; the port matters when --listen asked for port 0.
      process.stdout.write(`ready ${port}\n`);
      process.stderr.write(
        `redblue executor: serving ${formatAddress({ host: listen.host, port })}, ${topology.nodes.length} node(s), ${how}; ` +
          (sup.dataPort ? `bulk data on port ${sup.dataPort}\n` : 'bulk data on the same port (TLS)\n'),
      );
      await new Promise(() => undefined);
    },
  );
}
