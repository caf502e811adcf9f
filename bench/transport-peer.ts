// The two ends of `redblue bench transport`, run inside the pretend hosts (network namespaces):
//   node transport-peer.js raw-server HOST:PORT   a raw TCP server: "send me N bytes" → N bytes
//   node transport-peer.js client JSON            measures gRPC against the raw socket, prints JSON
// gRPC is measured against a real host supervisor (`redblue executor`), pulling blocks of its
// staging area (the path partial sums take between hosts) and pushing into it: through the data
// path the engine uses (the Data service on gRPC's C++ core), and through grpc-js (the Host
// service's own Read and Write, the path under TLS).
import { createServer, connect, type Socket } from 'node:net';
import { HostClient } from '../transport/host-client.js';
import { rawTcpFetch, rawTcpServe } from '../transport/native-data.js';

export interface ClientArgs {
  grpc: string;
  raw: string;
  token: string;
  sizes: number[];
  /** Bytes to move per size (at least two blocks). */
  totalBytes: number;
  pings: number;
}

export interface PeerResults {
  /** GB/s per block size. */
  grpcRead: Record<string, number>;
  grpcWrite: Record<string, number>;
  grpcJsRead: Record<string, number>;
  grpcJsWrite: Record<string, number>;
  grpcReadDefaultWindow: Record<string, number>;
  raw: Record<string, number>;
  /** The same from a native (C++) raw socket client and server. */
  rawNative: Record<string, number>;
  /** Microseconds per round trip of a small message. */
  grpcRttUs: number;
  rawRttUs: number;
}

function hostPort(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
}

function rawServer(address: string): void {
  const block = Buffer.alloc(64 << 20, 7);
  const server = createServer((s) => {
    s.setNoDelay(true);
    let pending = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 8) {
        const n = Number(pending.readBigUInt64LE(0));
        pending = pending.subarray(8);
        // Answer with n bytes (a block, or an 8-byte pong).
        for (let left = n; left > 0; left -= block.length)
          s.write(block.subarray(0, Math.min(left, block.length)));
      }
    });
    s.on('error', () => undefined);
  });
  const { host, port } = hostPort(address);
  // and the native one on the next port
  rawTcpServe(host, port + 1);
  server.listen(port, host, () => process.stdout.write('ready\n'));
}

/** Asks for `bytes` and resolves when they all arrived. */
function rawFetch(s: Socket, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= bytes) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    const req = Buffer.alloc(8);
    req.writeBigUInt64LE(BigInt(bytes));
    s.write(req);
  });
}

async function timeIt(reps: number, f: () => Promise<unknown>): Promise<number> {
  await f(); // warm-up (connection, first allocation)
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) await f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function client(a: ClientArgs): Promise<PeerResults> {
  const auth = { token: a.token };
  const host = new HostClient(a.grpc, 'bench host', auth);
  const js = new HostClient(a.grpc, 'bench host', auth, {}, { nativeData: false });
  const slow = new HostClient(
    a.grpc,
    'bench host',
    auth,
    { 'grpc-node.flow_control_window': 65535 },
    { nativeData: false },
  );
  const session = await host.open({ session: 'bench', hostIndex: 0, peers: [a.grpc] }, () => undefined);
  const maxSize = Math.max(...a.sizes);
  await host.stage(maxSize);
  const dst = new Uint8Array(maxSize);
  const src = new Uint8Array(maxSize).fill(3);
  const { host: rh, port: rp } = hostPort(a.raw);
  const sock = connect(rp, rh);
  sock.setNoDelay(true);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const out: PeerResults = {
    grpcRead: {},
    grpcWrite: {},
    grpcJsRead: {},
    grpcJsWrite: {},
    grpcReadDefaultWindow: {},
    raw: {},
    rawNative: {},
    grpcRttUs: 0,
    rawRttUs: 0,
  };
  for (const size of a.sizes) {
    const reps = Math.max(2, Math.ceil(a.totalBytes / size));
    const key = String(size);
    const view = dst.subarray(0, size);
    out.raw[key] = (reps * size) / (await timeIt(reps, () => rawFetch(sock, size))) / 1e9;
    out.rawNative[key] = (reps * size) / (await rawTcpFetch(rh, rp + 1, size, reps)) / 1e9;
    out.grpcRead[key] = (reps * size) / (await timeIt(reps, () => host.read(0, view))) / 1e9;
    out.grpcWrite[key] =
      (reps * size) / (await timeIt(reps, () => host.write(0, src.subarray(0, size)))) / 1e9;
    out.grpcJsRead[key] = (reps * size) / (await timeIt(reps, () => js.read(0, view))) / 1e9;
    out.grpcJsWrite[key] =
      (reps * size) / (await timeIt(reps, () => js.write(0, src.subarray(0, size)))) / 1e9;
    out.grpcReadDefaultWindow[key] =
      (Math.max(2, reps >> 2) * size) /
      (await timeIt(Math.max(2, reps >> 2), () => slow.read(0, view))) /
      1e9;
  }
  out.rawRttUs = ((await timeIt(a.pings, () => rawFetch(sock, 8))) / a.pings) * 1e6;
  out.grpcRttUs = ((await timeIt(a.pings, () => host.hello())) / a.pings) * 1e6;
  sock.destroy();
  session.cancel();
  await host.closeSession();
  host.close();
  js.close();
  slow.close();
  return out;
}

const [role, arg] = process.argv.slice(2);
if (role === 'raw-server' && arg) rawServer(arg);
else if (role === 'client' && arg) {
  client(JSON.parse(arg) as ClientArgs).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`transport bench client: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
