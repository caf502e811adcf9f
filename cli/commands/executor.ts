// `redblue executor --listen HOST:PORT`: serves this host to coordinators on other hosts
// (multi-host mode). One supervisor per host; it starts one executor per (virtual) NUMA node
// while a coordinator holds a session.
import type { Command } from 'commander';
import { parsePositiveInt } from '../../common/errors.js';
import { parseCpuList, parseDataPort, parseTransport } from '../../executor/host/options.js';
import { serveHost, type ServeHostOptions } from '../../executor/host/serve.js';

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
    .option('--exit-on-eof', "stop when stdin closes (the launcher's ssh connection went away)")
    .option(
      '--transport <T>',
      "how this host's leader exchanges with the other hosts' leaders: auto (UCX where an RDMA device exists, else grpc), ucx (UCX over what it finds: RDMA, TCP, shared memory; UCX_TLS and UCX_NET_DEVICES pass through) or grpc (the native data path)",
      parseTransport,
      'auto',
    );
  addSecurityOptions(cmd).action(async (o: Omit<ServeHostOptions, 'log'>) => {
    const host = await serveHost({ ...o, log: (l) => process.stderr.write(`redblue executor: ${l}\n`) });
    // Launchers wait for this line; the port matters when --listen asked for port 0.
    process.stdout.write(`ready ${host.port}\n`);
    process.stderr.write(
      `redblue executor: serving ${host.address}, ${host.topology.nodes.length} node(s), ${host.authentication}; ` +
        `bulk data on port ${host.dataPort}; leaders exchange over ${host.transport.transport} (${host.transport.reason})\n`,
    );
    await new Promise(() => undefined);
  });
}
